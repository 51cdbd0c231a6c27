"""Audience values read from a request beside the user agent: the visitor's language, the
screen-size class of the page's width, and the host the visitor hash takes.

- Language: the primary subtag (ISO 639, lower case: "en", "pt", "gsw") of the
  Accept-Language entry with the highest quality (the first of equal ones). Entries
  that are not a plain language (``*``, ``x-``/``i-`` private and grandfathered tags,
  malformed ones) or have quality 0 are skipped; a header without a usable entry gives
  None. Only the first :data:`ACCEPT_LANGUAGE_MAX` characters are read.
- Screen class, from the width in CSS pixels the tracker sends (Plausible's bounds):
  mobile below 576, tablet below 992, laptop below 1440, desktop from 1440.
- Visitor host: with ``ANALYTICS_VISITOR_HOST = "registrable_domain"`` the visitor hash
  takes the page host's registrable domain (the label under its public suffix:
  ``shop.example.co.uk`` -> ``example.co.uk``), so one visitor of several subdomains of
  one site counts once per day. The Public Suffix List is the one bundled with the
  ``publicsuffixlist`` package (read from its files, never fetched at run time). IP
  addresses, single labels (``localhost``) and public suffixes themselves stay as they
  are.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Final

#: Characters of an Accept-Language header looked at (real ones are under 200).
ACCEPT_LANGUAGE_MAX: Final = 500
_LANGUAGE: Final = re.compile(r"[a-z]{2,3}")
_QUALITY: Final = re.compile(r"q=(0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)")

#: Screen classes by the width below which they end (the last has no end).
SCREEN_CLASSES: Final = (("mobile", 576), ("tablet", 992), ("laptop", 1440))
DESKTOP: Final = "desktop"


def primary_language(header: str | None) -> str | None:
    """The primary language subtag of the preferred Accept-Language entry, or None."""
    if not header:
        return None
    best: str | None = None
    best_q = 0.0
    for entry in header[:ACCEPT_LANGUAGE_MAX].split(","):
        tag, _, params = entry.partition(";")
        primary = tag.strip().split("-", 1)[0].lower()
        if not _LANGUAGE.fullmatch(primary):
            continue
        q = 1.0
        if params:
            found = _QUALITY.fullmatch(params.strip().replace(" ", "").lower())
            if found is None:
                continue
            q = float(found.group(1))
        if q > best_q:
            best, best_q = primary, q
    return best


def screen_class(width: int | None) -> str | None:
    """The screen-size class of ``width`` (CSS pixels), None without one."""
    if width is None:
        return None
    for name, end in SCREEN_CLASSES:
        if width < end:
            return name
    return DESKTOP


@functools.cache
def _suffix_list() -> object:
    from publicsuffixlist import PublicSuffixList

    # The list bundled with the package (its default source file): no network access.
    return PublicSuffixList()


@functools.lru_cache(maxsize=4096)
def registrable_domain(hostname: str) -> str:
    """``hostname``'s registrable domain (see the module doc), else ``hostname``."""
    if "." not in hostname or hostname.startswith("["):
        return hostname
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        pass
    else:
        return hostname
    domain = _suffix_list().privatesuffix(hostname)  # type: ignore[attr-defined]
    return domain if isinstance(domain, str) else hostname
