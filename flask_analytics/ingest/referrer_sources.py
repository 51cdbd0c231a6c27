"""The referrer tables: known sources by host, utm_source aliases, android-app packages and
ad click ids, each with its GA4 source category.

Data only, built once at import time as immutable mappings; :mod:`.referrer` holds the
classification that reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal, NamedTuple, TypeAlias

#: GA4 source categories a known source can fall in.
Category: TypeAlias = Literal["search", "social", "video", "shopping", "email"]
#: (source name, category) of a known source.
Known: TypeAlias = "tuple[str, Category | None]"

# --- known sources ---------------------------------------------------------------------
# host suffix -> (name, category). A category of None means "known name, but GA4 puts it
# under Referral" (e.g. GitHub, AI assistants: GA4 has no AI channel).
SOURCES: Final[tuple[tuple[str, str, Category | None], ...]] = (
    # Search engines. Google/Yahoo/Yandex country domains are folded onto .com first.
    ("google.com", "Google", "search"),
    ("bing.com", "Bing", "search"),
    ("duckduckgo.com", "DuckDuckGo", "search"),
    ("yahoo.com", "Yahoo", "search"),
    ("yandex.com", "Yandex", "search"),
    ("ya.ru", "Yandex", "search"),
    ("baidu.com", "Baidu", "search"),
    ("ecosia.org", "Ecosia", "search"),
    ("search.brave.com", "Brave Search", "search"),
    ("startpage.com", "Startpage", "search"),
    ("qwant.com", "Qwant", "search"),
    ("naver.com", "Naver", "search"),
    ("seznam.cz", "Seznam", "search"),
    ("kagi.com", "Kagi", "search"),
    ("ask.com", "Ask", "search"),
    ("aol.com", "AOL", "search"),
    ("msn.com", "MSN", "search"),
    ("so.com", "360 Search", "search"),
    ("sogou.com", "Sogou", "search"),
    ("daum.net", "Daum", "search"),
    ("rambler.ru", "Rambler", "search"),
    ("mojeek.com", "Mojeek", "search"),
    ("metager.org", "MetaGer", "search"),
    ("swisscows.com", "Swisscows", "search"),
    ("presearch.com", "Presearch", "search"),
    ("yep.com", "Yep", "search"),
    # AI assistants: named, but Referral (GA4 has no channel for them).
    ("chatgpt.com", "ChatGPT", None),
    ("chat.openai.com", "ChatGPT", None),
    ("perplexity.ai", "Perplexity", None),
    ("claude.ai", "Claude", None),
    ("gemini.google.com", "Gemini", None),
    ("bard.google.com", "Gemini", None),
    ("copilot.microsoft.com", "Copilot", None),
    ("chat.mistral.ai", "Le Chat", None),
    ("chat.deepseek.com", "DeepSeek", None),
    ("you.com", "You.com", None),
    ("phind.com", "Phind", None),
    ("poe.com", "Poe", None),
    # Google properties that are not web search.
    ("docs.google.com", "Google Docs", None),
    ("play.google.com", "Google Play", None),
    ("groups.google.com", "Google Groups", "social"),
    ("shopping.google.com", "Google Shopping", "shopping"),
    ("aws.amazon.com", "AWS", None),
    # Webmail: GA4 itself lists mail.google.com as search, which is plainly wrong for
    # a newsletter click, so webmail is categorised as email here.
    ("mail.google.com", "Gmail", "email"),
    ("inbox.google.com", "Gmail", "email"),
    ("outlook.live.com", "Outlook", "email"),
    ("outlook.office.com", "Outlook", "email"),
    ("outlook.office365.com", "Outlook", "email"),
    ("outlook.com", "Outlook", "email"),  # incl. safelinks.protection.outlook.com
    ("mail.live.com", "Outlook", "email"),
    ("mail.yahoo.com", "Yahoo Mail", "email"),
    ("mail.yandex.com", "Yandex Mail", "email"),
    ("mail.aol.com", "AOL Mail", "email"),
    ("mail.proton.me", "Proton Mail", "email"),
    ("mail.protonmail.com", "Proton Mail", "email"),
    ("fastmail.com", "Fastmail", "email"),
    ("mail.zoho.com", "Zoho Mail", "email"),
    ("mail.zoho.eu", "Zoho Mail", "email"),
    ("e.mail.ru", "Mail.ru", "email"),
    ("gmx.net", "GMX", "email"),
    ("gmx.de", "GMX", "email"),
    ("gmx.com", "GMX", "email"),
    ("web.de", "WEB.DE", "email"),
    ("mail.tuta.com", "Tuta", "email"),
    # Social networks and communities.
    ("facebook.com", "Facebook", "social"),
    ("fb.com", "Facebook", "social"),
    ("fb.me", "Facebook", "social"),
    ("messenger.com", "Messenger", "social"),
    ("instagram.com", "Instagram", "social"),
    ("twitter.com", "Twitter", "social"),
    ("t.co", "Twitter", "social"),
    ("x.com", "Twitter", "social"),
    ("linkedin.com", "LinkedIn", "social"),
    ("lnkd.in", "LinkedIn", "social"),
    ("reddit.com", "Reddit", "social"),
    ("redd.it", "Reddit", "social"),
    ("news.ycombinator.com", "Hacker News", "social"),
    ("pinterest.com", "Pinterest", "social"),
    ("pin.it", "Pinterest", "social"),
    ("tiktok.com", "TikTok", "social"),
    ("snapchat.com", "Snapchat", "social"),
    ("mastodon.social", "Mastodon", "social"),
    ("mastodon.online", "Mastodon", "social"),
    ("mastodon.world", "Mastodon", "social"),
    ("mas.to", "Mastodon", "social"),
    ("mstdn.social", "Mastodon", "social"),
    ("mstdn.jp", "Mastodon", "social"),
    ("fosstodon.org", "Mastodon", "social"),
    ("hachyderm.io", "Mastodon", "social"),
    ("infosec.exchange", "Mastodon", "social"),
    ("techhub.social", "Mastodon", "social"),
    ("universeodon.com", "Mastodon", "social"),
    ("bsky.app", "Bluesky", "social"),
    ("threads.net", "Threads", "social"),
    ("threads.com", "Threads", "social"),
    ("tumblr.com", "Tumblr", "social"),
    ("vk.com", "VK", "social"),
    ("ok.ru", "Odnoklassniki", "social"),
    ("weibo.com", "Weibo", "social"),
    ("weibo.cn", "Weibo", "social"),
    ("discord.com", "Discord", "social"),
    ("discord.gg", "Discord", "social"),
    ("discordapp.com", "Discord", "social"),
    ("telegram.org", "Telegram", "social"),
    ("telegram.me", "Telegram", "social"),
    ("t.me", "Telegram", "social"),
    ("whatsapp.com", "WhatsApp", "social"),
    ("wa.me", "WhatsApp", "social"),
    ("line.me", "LINE", "social"),
    ("lobste.rs", "Lobsters", "social"),
    ("producthunt.com", "Product Hunt", "social"),
    ("dev.to", "Dev.to", "social"),
    ("medium.com", "Medium", "social"),
    ("quora.com", "Quora", "social"),
    ("stackoverflow.com", "Stack Overflow", "social"),
    ("stackexchange.com", "Stack Exchange", "social"),
    ("slashdot.org", "Slashdot", "social"),
    ("xing.com", "XING", "social"),
    # Code hosts: well-known names, but not in GA4's social list -> Referral.
    # (github.io is deliberately absent: those are user sites, not GitHub.)
    ("github.com", "GitHub", None),
    ("gitlab.com", "GitLab", None),
    # Video.
    ("youtube.com", "YouTube", "video"),
    ("youtu.be", "YouTube", "video"),
    ("vimeo.com", "Vimeo", "video"),
    ("twitch.tv", "Twitch", "video"),
    ("dailymotion.com", "Dailymotion", "video"),
    ("ted.com", "TED", "video"),
    ("bilibili.com", "Bilibili", "video"),
    # Shopping. Amazon/eBay country domains are folded onto .com first.
    ("amazon.com", "Amazon", "shopping"),
    ("amzn.to", "Amazon", "shopping"),
    ("ebay.com", "eBay", "shopping"),
    ("etsy.com", "Etsy", "shopping"),
    ("shopify.com", "Shopify", "shopping"),
    ("shop.app", "Shop", "shopping"),
    ("walmart.com", "Walmart", "shopping"),
    ("alibaba.com", "Alibaba", "shopping"),
    ("aliexpress.com", "AliExpress", "shopping"),
    ("mercadolibre.com", "Mercado Libre", "shopping"),
)

HOSTS: Final[Mapping[str, Known]] = MappingProxyType({h: (n, c) for h, n, c in SOURCES})

# Brands that live on many country domains (google.co.uk, amazon.de, yandex.com.tr):
# "<brand>.<cc>" and "<brand>.co|com.<cc>" are rewritten to "<brand>.com" before the
# suffix lookup, so subdomain entries (mail.yahoo.com) work for every country.
CC_BRANDS: Final = frozenset(
    {
        "google",
        "yahoo",
        "yandex",
        "amazon",
        "ebay",
        "pinterest",
        "aliexpress",
        "mercadolibre",
        "walmart",
    }
)
CC_SECOND_LEVEL: Final = frozenset({"co", "com"})
CC_GENERIC: Final = frozenset({"com", "cat"})  # google.cat is real; longer TLDs are not folded
# First labels that identify a Mastodon instance on any domain (mastodon.example.org).
MASTODON_LABELS: Final = frozenset({"mastodon", "mstdn"})

# utm_source aliases: canonical names (lowercased, with and without spaces) plus the
# short forms marketers actually type.
_EXTRA_ALIASES: Final[tuple[tuple[str, str], ...]] = (
    ("fb", "Facebook"),
    ("ig", "Instagram"),
    ("x", "Twitter"),
    ("yt", "YouTube"),
    ("hn", "Hacker News"),
    ("ddg", "DuckDuckGo"),
    ("bsky", "Bluesky"),
    ("adwords", "Google"),
    ("googleads", "Google"),
    ("google_ads", "Google"),
    ("google-ads", "Google"),
    ("gmail", "Gmail"),
)


def _build_aliases() -> dict[str, Known]:
    by_name: dict[str, Known] = {}
    for _host, name, category in SOURCES:
        by_name.setdefault(name, (name, category))
    aliases: dict[str, Known] = {}
    for name, known in by_name.items():
        low = name.lower()
        aliases[low] = known
        aliases.setdefault(low.replace(" ", ""), known)
    for alias, name in _EXTRA_ALIASES:
        aliases[alias] = by_name[name]
    return aliases


ALIASES: Final[Mapping[str, Known]] = MappingProxyType(_build_aliases())

# android-app://<package>/ referrers (sent by the Google app, Gmail, ...).
APPS: Final[Mapping[str, Known]] = MappingProxyType(
    {
        "com.google.android.googlequicksearchbox": ("Google", "search"),
        "com.google.android.gm": ("Gmail", "email"),
        "com.google.android.youtube": ("YouTube", "video"),
        "com.microsoft.office.outlook": ("Outlook", "email"),
        "com.facebook.katana": ("Facebook", "social"),
        "com.facebook.orca": ("Messenger", "social"),
        "com.instagram.android": ("Instagram", "social"),
        "com.twitter.android": ("Twitter", "social"),
        "com.linkedin.android": ("LinkedIn", "social"),
        "com.reddit.frontpage": ("Reddit", "social"),
        "com.pinterest": ("Pinterest", "social"),
        "com.zhiliaoapp.musically": ("TikTok", "social"),
        "com.discord": ("Discord", "social"),
        "org.telegram.messenger": ("Telegram", "social"),
        "com.whatsapp": ("WhatsApp", "social"),
        "jp.naver.line.android": ("LINE", "social"),
    }
)


class ClickId(NamedTuple):
    """An ad click id query parameter: the source it names, the medium it may imply."""

    param: str
    source: str
    category: Category | None
    #: Medium the click id implies, or "" when it says nothing about paid vs organic.
    medium: str
    #: Source categories for which the implied medium applies; None means any.
    applies_to: frozenset[Category] | None

    def sets_medium_for(self, category: Category | None) -> bool:
        """Whether this click id sets the medium for a source of ``category``."""
        if not self.medium:
            return False
        return self.applies_to is None or (category is not None and category in self.applies_to)


_GOOGLE_ADS_SURFACES: Final[frozenset[Category]] = frozenset({"search", "video", "shopping"})
_SEARCH_ONLY: Final[frozenset[Category]] = frozenset({"search"})
_SOCIAL_ONLY: Final[frozenset[Category]] = frozenset({"social"})

# Priority order: ad click ids first, so the paid platform names the source.
# The implied medium only applies when the resolved source fits the platform: a stale
# gclid in a link shared on Reddit must not turn a Reddit visit into Paid Social.
CLICK_IDS: Final[tuple[ClickId, ...]] = (
    ClickId("gclid", "Google", "search", "cpc", _GOOGLE_ADS_SURFACES),
    ClickId("gbraid", "Google", "search", "cpc", _GOOGLE_ADS_SURFACES),
    ClickId("wbraid", "Google", "search", "cpc", _GOOGLE_ADS_SURFACES),
    # Campaign Manager / DV360 display ads run on publishers' sites, so any referrer.
    ClickId("dclid", "Google", "search", "display", None),
    ClickId("msclkid", "Bing", "search", "cpc", _SEARCH_ONLY),
    ClickId("yclid", "Yandex", "search", "cpc", _SEARCH_ONLY),
    ClickId("ttclid", "TikTok", "social", "cpc", _SOCIAL_ONLY),
    ClickId("li_fat_id", "LinkedIn", "social", "cpc", _SOCIAL_ONLY),
    ClickId("epik", "Pinterest", "social", "cpc", _SOCIAL_ONLY),
    ClickId("rdt_cid", "Reddit", "social", "cpc", _SOCIAL_ONLY),
    ClickId("sccid", "Snapchat", "social", "cpc", _SOCIAL_ONLY),
    # Facebook adds fbclid to every outbound link, ads or not; twclid is likewise not
    # reliably ad-only. They name the source but never imply a paid medium.
    ClickId("fbclid", "Facebook", "social", "", None),
    ClickId("twclid", "Twitter", "social", "", None),
)
