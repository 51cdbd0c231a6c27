"""Hostnames: the one spelling events are stored and compared with.

A page URL's host and the collect request's ``Host`` header are both reduced to the same
form before they are compared or stored: an IP address, or a syntactically valid DNS
name (IDNA 2008 with UTS #46 mapping, through the ``idna`` package) in lower-case ASCII
(``bücher.de`` becomes ``xn--bcher-kva.de``, as browsers send it), without the trailing
dot of a fully qualified name. Anything else (spaces, ``%``, ``<``, ``_``, empty labels,
a label over 63 characters, a port outside 1-65535) is not a hostname, and a wildcard
in ``ANALYTICS_ALLOWED_HOSTS`` (``*.example.com``) can only match whole valid labels.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

import idna

#: Longest DNS name in its text form (RFC 1035: 255 octets on the wire).
DNS_NAME_MAX = 253


@functools.lru_cache(maxsize=4096)
def normalize_hostname(host: str) -> str | None:
    """``host`` as stored (see the module docstring), or None when it is not one.

    Cached: a site's events carry a handful of hostnames, and IDNA costs ~10 µs a name.
    """
    if host.endswith("."):
        host = host[:-1]  # one trailing dot: "localhost." is localhost, "a.." is not a name
    if not host or host.endswith("."):
        return None
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        # A zone id ("fe80::1%eth0") names an interface of the sender, not a site.
        return None if getattr(addr, "scope_id", None) else str(addr)
    try:
        name = idna.encode(host, uts46=True, std3_rules=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return None
    return name if len(name) <= DNS_NAME_MAX else None


def hostname_of_authority(authority: str) -> str | None:
    """The normalized hostname of a ``host[:port]`` (a ``Host`` header), or None when
    the host is not a hostname or the port is not one of 1-65535."""
    try:
        parts = urlsplit("//" + authority)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if host is None or port == 0:
        return None
    return normalize_hostname(host)


@functools.lru_cache(maxsize=64)
def normalize_patterns(patterns: tuple[str, ...]) -> tuple[str, ...]:
    """``ANALYTICS_ALLOWED_HOSTS`` entries in the stored form; a ``*.`` prefix stays.
    An entry that is not a hostname could never match, and is left out."""
    normalized = []
    for pattern in patterns:
        wildcard = pattern.startswith("*.")
        name = normalize_hostname(pattern[2:] if wildcard else pattern)
        if name is not None:
            normalized.append(f"*.{name}" if wildcard else name)
    return tuple(normalized)


def host_allowed(host: str, patterns: Iterable[str]) -> bool:
    """Whether the normalized ``host`` is one of ``patterns`` (normalized): an exact
    name, or ``*.example.com`` for any name of one or more labels below example.com
    (not example.com itself). A valid ``host`` never starts with a dot, so a suffix
    match is a match of whole labels."""
    for pattern in patterns:
        if host == pattern:
            return True
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
    return False
