"""Country of a (already anonymized) client address or of a CDN-provided header."""

from __future__ import annotations

import re
from typing import Any, Protocol

from ..errors import ConfigError

_ISO_COUNTRY = re.compile(r"[A-Z]{2}")
#: Codes CDNs and databases use for "unknown", Tor, anonymous proxies and satellites.
_NOT_COUNTRIES = frozenset({"XX", "T1", "ZZ", "EU", "AP", "A1", "A2", "O1"})


class CountryReader(Protocol):
    def get(self, ip_address: str) -> Any: ...

    def close(self) -> None: ...


def open_database(path: str) -> CountryReader:
    """Open a MaxMind-format ``.mmdb`` (GeoLite2/GeoIP2 Country or City, DB-IP, ...)."""
    try:
        import maxminddb
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ConfigError(
            "ANALYTICS_GEOIP_DATABASE needs the geo extra: pip install 'flask-analytics[geo]'"
        ) from exc
    try:
        reader: CountryReader = maxminddb.open_database(path)
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        raise ConfigError(f"ANALYTICS_GEOIP_DATABASE {path!r} cannot be opened: {exc}") from exc
    return reader


def normalize_country(value: str | None) -> str | None:
    """An ISO 3166 alpha-2 code, or None for anything else."""
    if not value:
        return None
    code = value.strip().upper()
    if _ISO_COUNTRY.fullmatch(code) and code not in _NOT_COUNTRIES:
        return code
    return None


def lookup_country(reader: CountryReader, ip: str) -> str | None:
    """ISO code of ``ip`` in the database, or None when it is not found."""
    if not ip:
        return None
    try:
        record = reader.get(ip)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    for key in ("country", "registered_country"):
        entry = record.get(key)
        if isinstance(entry, dict):
            code = normalize_country(entry.get("iso_code"))
            if code:
                return code
    return None
