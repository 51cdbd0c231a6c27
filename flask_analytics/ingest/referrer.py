"""Referrer, UTM and click-id attribution with GA4-style default channel grouping.

Pure functions without I/O: this runs on the collect hot path, so every lookup table
is built once at import time as an immutable mapping (the known sources, aliases and
click ids are in :mod:`.referrer_sources`) and a call is a handful of string operations
and dict probes.

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
from typing import Final, TypeAlias

from .referrer_sources import (
    ALIASES,
    APPS,
    CC_BRANDS,
    CC_GENERIC,
    CC_SECOND_LEVEL,
    CLICK_IDS,
    HOSTS,
    MASTODON_LABELS,
    Category,
    ClickId,
    Known,
)

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
# our addition (see referrer_sources.SOURCES); everything else is "referral".
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
_Referrer: TypeAlias = "tuple[str | None, str | None, Known | None]"


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
    if label in CC_BRANDS:
        if tld == "com" or not (country or tld in CC_GENERIC):
            return host
        return host[:last] + ".com"
    if country and prev > 0 and label in CC_SECOND_LEVEL:
        start = host.rfind(".", 0, prev) + 1
        if host[start:prev] in CC_BRANDS:
            return host[:prev] + ".com"
    return host


def _lookup(host: str) -> Known | None:
    """Longest known suffix of ``host`` on a dot boundary (host must be lowercased)."""
    if not host or len(host) > _DNS_NAME_MAX:
        return None
    suffix = _fold_country_domain(host)
    while True:
        known = HOSTS.get(suffix)
        if known is not None:
            return known
        dot = suffix.find(".")
        if dot < 0:
            break
        suffix = suffix[dot + 1 :]
    first, sep, rest = host.partition(".")
    if sep and rest and first in MASTODON_LABELS:
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
        app = APPS.get(package)
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


def _utm_source(value: str) -> Known:
    """Canonical (name, category) for a known utm_source, else the value as sent."""
    key = value.strip().lower()
    known = ALIASES.get(key)
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
    known: Known | None = None
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
    present: tuple[ClickId, ...] = ()
    if click_ids:
        lowered = {c.lower() for c in click_ids}
        present = tuple(c for c in CLICK_IDS if c.param in lowered)
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
