"""Referrer, UTM and click-id attribution with GA4-style default channel grouping.

Pure functions without I/O: this runs on the collect hot path, so every lookup table
is built once at import time as an immutable mapping and a call is a handful of
string operations and dict probes.

Hosts are kept in their ASCII (punycode) form because that is what browsers send in
``Referer`` and expose as ``document.referrer``; the rare non-ASCII host (e.g. a page
hostname taken from ``urlsplit``) is converted with the stdlib IDNA 2003 codec so the
two spellings of one host compare equal.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal, NamedTuple, TypeAlias

__all__ = ["CHANNELS", "Attribution", "classify", "source_name"]

#: GA4's default channel group names.
CHANNELS: Final[tuple[str, ...]] = (
    "Direct",
    "Organic Search",
    "Paid Search",
    "Organic Social",
    "Paid Social",
    "Email",
    "Affiliates",
    "Display",
    "Organic Video",
    "Paid Video",
    "Organic Shopping",
    "Paid Shopping",
    "Paid Other",
    "Audio",
    "SMS",
    "Mobile Push Notifications",
    "Referral",
    "Cross-network",
    "Unassigned",
)

# Same limits as the storage columns (models.URL_MAX / HOST_MAX / UTM_MAX); repeated
# here so this module stays importable without SQLAlchemy. Hosts longer than a DNS name
# are rejected outright, so referrer_host always fits HOST_MAX.
REFERRER_MAX: Final = 2000
HOST_MAX: Final = 255
SOURCE_MAX: Final = 255
# RFC 1035: a longer name cannot be resolved, so it is garbage rather than a host.
_DNS_NAME_MAX: Final = 253

Category: TypeAlias = Literal["search", "social", "video", "shopping", "email"]
_Known: TypeAlias = "tuple[str, Category | None]"


@dataclass(frozen=True, slots=True)
class Attribution:
    """Where a page view came from."""

    #: Referrer URL as ``scheme://host/path`` (no userinfo, port, query, fragment).
    referrer: str | None
    #: Lowercased ASCII referrer hostname without a leading ``www.``.
    referrer_host: str | None
    #: Human source name ("Google", "Hacker News", a UTM source, a host); None if unknown.
    source: str | None
    #: One of :data:`CHANNELS`.
    channel: str


_DIRECT: Final = Attribution(referrer=None, referrer_host=None, source=None, channel="Direct")

# --- known sources ---------------------------------------------------------------------
# host suffix -> (name, category). A category of None means "known name, but GA4 puts it
# under Referral" (e.g. GitHub, AI assistants: GA4 has no AI channel).
_SOURCES: Final[tuple[tuple[str, str, Category | None], ...]] = (
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

_HOSTS: Final[Mapping[str, _Known]] = MappingProxyType({h: (n, c) for h, n, c in _SOURCES})

# Brands that live on many country domains (google.co.uk, amazon.de, yandex.com.tr):
# "<brand>.<cc>" and "<brand>.co|com.<cc>" are rewritten to "<brand>.com" before the
# suffix lookup, so subdomain entries (mail.yahoo.com) work for every country.
_CC_BRANDS: Final = frozenset(
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
_CC_SECOND_LEVEL: Final = frozenset({"co", "com"})
_CC_GENERIC: Final = frozenset({"com", "cat"})  # google.cat is real; longer TLDs are not folded
# First labels that identify a Mastodon instance on any domain (mastodon.example.org).
_MASTODON_LABELS: Final = frozenset({"mastodon", "mstdn"})

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


def _build_aliases() -> dict[str, _Known]:
    by_name: dict[str, _Known] = {}
    for _host, name, category in _SOURCES:
        by_name.setdefault(name, (name, category))
    aliases: dict[str, _Known] = {}
    for name, known in by_name.items():
        low = name.lower()
        aliases[low] = known
        aliases.setdefault(low.replace(" ", ""), known)
    for alias, name in _EXTRA_ALIASES:
        aliases[alias] = by_name[name]
    return aliases


_ALIASES: Final[Mapping[str, _Known]] = MappingProxyType(_build_aliases())

# android-app://<package>/ referrers (sent by the Google app, Gmail, ...).
_APPS: Final[Mapping[str, _Known]] = MappingProxyType(
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


class _ClickId(NamedTuple):
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
_CLICK_IDS: Final[tuple[_ClickId, ...]] = (
    _ClickId("gclid", "Google", "search", "cpc", _GOOGLE_ADS_SURFACES),
    _ClickId("gbraid", "Google", "search", "cpc", _GOOGLE_ADS_SURFACES),
    _ClickId("wbraid", "Google", "search", "cpc", _GOOGLE_ADS_SURFACES),
    # Campaign Manager / DV360 display ads run on publishers' sites, so any referrer.
    _ClickId("dclid", "Google", "search", "display", None),
    _ClickId("msclkid", "Bing", "search", "cpc", _SEARCH_ONLY),
    _ClickId("yclid", "Yandex", "search", "cpc", _SEARCH_ONLY),
    _ClickId("ttclid", "TikTok", "social", "cpc", _SOCIAL_ONLY),
    _ClickId("li_fat_id", "LinkedIn", "social", "cpc", _SOCIAL_ONLY),
    _ClickId("epik", "Pinterest", "social", "cpc", _SOCIAL_ONLY),
    _ClickId("rdt_cid", "Reddit", "social", "cpc", _SOCIAL_ONLY),
    _ClickId("sccid", "Snapchat", "social", "cpc", _SOCIAL_ONLY),
    # Facebook adds fbclid to every outbound link, ads or not; twclid is likewise not
    # reliably ad-only. They name the source but never imply a paid medium.
    _ClickId("fbclid", "Facebook", "social", "", None),
    _ClickId("twclid", "Twitter", "social", "", None),
)

# --- GA4 channel rule inputs (compared lowercased) ----------------------------------------
_DISPLAY_MEDIA: Final = frozenset({"display", "banner", "expandable", "interstitial", "cpm"})
_SOCIAL_MEDIA: Final = frozenset(
    {"social", "social-network", "social-media", "sm", "social network", "social media"}
)
_EMAIL_NAMES: Final = frozenset({"email", "e-mail", "e_mail", "e mail"})
_REFERRAL_MEDIA: Final = frozenset({"referral", "app", "link"})
_AFFILIATE_MEDIA: Final = frozenset({"affiliate", "affiliates"})
_PAID_EXACT: Final = frozenset({"ppc", "retargeting"})
# Medium GA4 records for untagged referrals: search engines are "organic"; webmail is
# our addition (see _SOURCES); everything else is "referral".
_IMPLIED_MEDIUM: Final[Mapping[str, str]] = MappingProxyType(
    {"search": "organic", "email": "email"}
)
# GA4: campaign name matches ^(.*(([^a-df-z]|^)shop|shopping).*)$
_SHOP_CAMPAIGN: Final = re.compile(r"(?:^|[^a-df-z])shop|shopping")

# --- URL parsing ------------------------------------------------------------------------
# WHATWG URL parsing strips leading/trailing C0 controls and spaces; so do we.
_C0_AND_SPACE: Final = "".join(map(chr, range(0x21)))
# Browsers end the authority of http(s) URLs at "\" too ("http://a.com\@b.com" is a.com).
_AUTHORITY_END: Final = re.compile(r"[/?#\\]")
# Characters of an ASCII hostname; `not host.strip(_HOST_CHARS)` is a fast "only these".
_HOST_CHARS: Final = "abcdefghijklmnopqrstuvwxyz0123456789-_."

# (url, host with www. kept or None for app referrers, known source or None)
_Referrer: TypeAlias = "tuple[str | None, str | None, _Known | None]"


def _to_ascii(host: str) -> str | None:
    """Punycode form of a lowercased host, or None when IDNA rejects it."""
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except (UnicodeError, ValueError):
        return None


def _ipv6(text: str) -> str | None:
    """Compressed form of an IPv6 literal (without brackets), or None."""
    # Zone ids ("fe80::1%eth0") mean nothing outside the sender's machine.
    if "%" in text:
        return None
    try:
        return str(ipaddress.IPv6Address(text))
    except ValueError:
        return None


def _valid_port(port: str) -> bool:
    # An empty port ("host:") is valid per WHATWG; str.isdigit alone accepts "²".
    return not port or (port.isascii() and port.isdigit())


def _valid_hostname(host: str) -> bool:
    return (
        0 < len(host) <= _DNS_NAME_MAX
        and not host.strip(_HOST_CHARS)
        and host[0] != "."
        and host[-1] != "."
        and ".." not in host
    )


def _parse_host(authority: str) -> tuple[str, bool] | None:
    """(host, is_ipv6) from a URL authority, dropping userinfo and port."""
    if "@" in authority:
        authority = authority.rpartition("@")[2]
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            return None
        port = authority[end + 1 :]
        if port and (port[0] != ":" or not _valid_port(port[1:])):
            return None
        v6 = _ipv6(authority[1:end])
        return None if v6 is None else (v6, True)
    host, _, port = authority.partition(":")
    if port and not _valid_port(port):
        return None
    ascii_host = _to_ascii(host.lower())
    if ascii_host is None:
        return None
    if ascii_host.endswith("."):
        ascii_host = ascii_host[:-1]
    return (ascii_host, False) if _valid_hostname(ascii_host) else None


def _strip_www(host: str) -> str:
    return host[4:] if host.startswith("www.") else host


def _page_host(page_host: str) -> str:
    """The page hostname normalised like a referrer host, for the internal check."""
    host = page_host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        inner = host[1:end] if end > 0 else host[1:]
        return _ipv6(inner) or inner
    if ":" in host:
        if host.count(":") > 1:  # bare IPv6 literal
            return _ipv6(host) or host
        host = host.partition(":")[0]
    if host.endswith("."):
        host = host[:-1]
    return _strip_www(_to_ascii(host) or host)


def _fold_country_domain(host: str) -> str:
    """Rewrite google.co.uk / amazon.de / www.yahoo.co.jp to the brand's .com host."""
    # rfind instead of split(): this runs for every referrer.
    last = host.rfind(".")
    if last < 0:
        return host
    tld = host[last + 1 :]
    prev = host.rfind(".", 0, last)
    label = host[prev + 1 : last]
    country = len(tld) == 2 and tld.isalpha()
    if label in _CC_BRANDS:
        if tld == "com" or not (country or tld in _CC_GENERIC):
            return host
        return host[:last] + ".com"
    if country and prev > 0 and label in _CC_SECOND_LEVEL:
        start = host.rfind(".", 0, prev) + 1
        if host[start:prev] in _CC_BRANDS:
            return host[:prev] + ".com"
    return host


def _lookup(host: str) -> _Known | None:
    """Longest known suffix of ``host`` on a dot boundary (host must be lowercased)."""
    if not host or len(host) > _DNS_NAME_MAX:
        return None
    suffix = _fold_country_domain(host)
    while True:
        known = _HOSTS.get(suffix)
        if known is not None:
            return known
        dot = suffix.find(".")
        if dot < 0:
            break
        suffix = suffix[dot + 1 :]
    first, sep, rest = host.partition(".")
    if sep and rest and first in _MASTODON_LABELS:
        return ("Mastodon", "social")
    if sep and rest and first == "webmail":
        return ("Webmail", "email")
    return None


def source_name(host: str) -> str | None:
    """Known human name for a referrer host ("google.co.uk" -> "Google"), else None."""
    host = host.strip().lower()
    if host.endswith("."):
        host = host[:-1]
    known = _lookup(host)
    return None if known is None else known[0]


def _parse_referrer(raw: str) -> _Referrer | None:
    """Parse an http(s) (or known android-app) referrer; None when unusable."""
    text = raw.strip(_C0_AND_SPACE)
    colon = text.find(":")
    # Schemes we accept are short; bail out before lowercasing a huge prefix.
    if colon <= 0 or colon > 11 or not text.startswith("//", colon + 1):
        return None
    scheme = text[:colon].lower()
    rest = text[colon + 3 :]
    if scheme == "android-app":
        package = _AUTHORITY_END.split(rest, maxsplit=1)[0].lower()
        app = _APPS.get(package)
        return None if app is None else (None, None, app)
    if scheme != "https" and scheme != "http":
        return None
    match = _AUTHORITY_END.search(rest)
    cut = match.start() if match else len(rest)
    parsed = _parse_host(rest[:cut])
    if parsed is None:
        return None
    host, is_v6 = parsed
    path = rest[cut:]
    for stop in ("?", "#"):
        i = path.find(stop)
        if i >= 0:
            path = path[:i]
    # Databases (PostgreSQL text) reject NUL, and it never belongs in a URL path.
    if "\x00" in path:
        path = path.replace("\x00", "")
    # Browsers read "\" as "/" in http(s) URLs; store what they would have requested.
    if "\\" in path:
        path = path.replace("\\", "/")
    if is_v6:
        return f"{scheme}://[{host}]{path or '/'}"[:REFERRER_MAX], host, None
    return f"{scheme}://{host}{path or '/'}"[:REFERRER_MAX], host, _lookup(host)


def _utm_source(value: str) -> _Known:
    """Canonical (name, category) for a known utm_source, else the value as sent."""
    key = value.strip().lower()
    known = _ALIASES.get(key)
    if known is None and "." in key:
        known = _lookup(key[:-1] if key.endswith(".") else key)
    return known if known is not None else (value[:SOURCE_MAX], None)


def _is_paid(medium: str) -> bool:
    # GA4: medium matches ^(.*cp.*|ppc|retargeting|paid.*)$
    return "cp" in medium or medium.startswith("paid") or medium in _PAID_EXACT


def _channel(source_key: str, category: Category | None, medium: str, campaign: str) -> str:
    """GA4 default channel group, rules evaluated in GA4's order (first match wins)."""
    if "cross-network" in campaign:
        return "Cross-network"
    paid = _is_paid(medium)
    shop_campaign = bool(campaign) and _SHOP_CAMPAIGN.search(campaign) is not None
    if paid:
        if category == "shopping" or shop_campaign:
            return "Paid Shopping"
        if category == "search":
            return "Paid Search"
        if category == "social":
            return "Paid Social"
        if category == "video":
            return "Paid Video"
    if medium in _DISPLAY_MEDIA:
        return "Display"
    if paid:
        return "Paid Other"
    if category == "shopping" or shop_campaign:
        return "Organic Shopping"
    if category == "social" or medium in _SOCIAL_MEDIA:
        return "Organic Social"
    if category == "video" or "video" in medium:
        return "Organic Video"
    if category == "search" or medium == "organic":
        return "Organic Search"
    if medium in _REFERRAL_MEDIA:
        return "Referral"
    if category == "email" or medium in _EMAIL_NAMES or source_key in _EMAIL_NAMES:
        return "Email"
    if medium in _AFFILIATE_MEDIA:
        return "Affiliates"
    if medium == "audio":
        return "Audio"
    if medium == "sms" or source_key == "sms":
        return "SMS"
    if (
        medium.endswith("push")
        or "mobile" in medium
        or "notification" in medium
        or source_key == "firebase"
    ):
        return "Mobile Push Notifications"
    return "Unassigned"


def classify(
    *,
    referrer: str | None,
    page_host: str,
    utm: Mapping[str, str],
    click_ids: frozenset[str] = frozenset(),
) -> Attribution:
    """Attribute a page view: cleaned referrer, source name and GA4 default channel.

    Precedence: ``utm_source`` > referrer host > click id for the source;
    ``utm_medium`` > click-id implied medium > medium implied by the referrer
    (organic for search engines, email for webmail, referral otherwise).
    Never raises; unusable input is treated as absent.
    """
    url: str | None = None
    host: str | None = None
    known: _Known | None = None
    parsed = _parse_referrer(referrer) if referrer else None
    if parsed is not None:
        url, full_host, known = parsed
        if full_host is not None:
            host = _strip_www(full_host)
            if host == _page_host(page_host):
                # Navigation inside the site is not a traffic source.
                url = host = known = None
                parsed = None

    utm_source = (utm.get("utm_source") or "").strip()
    utm_medium = (utm.get("utm_medium") or "").strip()
    utm_campaign = (utm.get("utm_campaign") or "").strip()
    has_utm = bool(
        utm_source or utm_medium or utm_campaign or utm.get("utm_term") or utm.get("utm_content")
    )
    present: tuple[_ClickId, ...] = ()
    if click_ids:
        lowered = {c.lower() for c in click_ids}
        present = tuple(c for c in _CLICK_IDS if c.param in lowered)
    if parsed is None and not has_utm and not present:
        return _DIRECT

    source: str | None
    category: Category | None
    from_referrer = False
    source_key = ""  # lowercased utm_source, for the GA4 rules that test the raw source
    if utm_source:
        source, category = _utm_source(utm_source)
        source_key = utm_source.lower()
    elif known is not None:
        source, category = known
        from_referrer = True
    elif host is not None:
        source, category = host, None
        from_referrer = True
    elif present:
        source, category = present[0].source, present[0].category
    else:
        source, category = None, None

    medium = utm_medium.lower()
    if not medium:
        medium = next((c.medium for c in present if c.sets_medium_for(category)), "")
    if not medium and from_referrer:
        medium = _IMPLIED_MEDIUM.get(category or "", "referral")

    channel = _channel(source_key, category, medium, utm_campaign.lower())
    return Attribution(referrer=url, referrer_host=host, source=source, channel=channel)
