"""Country of a (already anonymized) client address or of a CDN-provided header; region
and city too from a City database.

Three sources, in this order: a configured MaxMind-format database
(``ANALYTICS_GEOIP_DATABASE``), a CDN's header (``ANALYTICS_COUNTRY_HEADER``), and, when
no database is configured, the built-in table (``ANALYTICS_BUILTIN_COUNTRIES``): the
iptocc package, the countries the five regional internet registries (RIRs) delegated
each address block to, refreshed nightly by its maintainer and embedded in its wheel.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.metadata
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

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


@dataclass(frozen=True, slots=True)
class Location:
    """What a database says of an address: country, and with a City database the
    ISO 3166-2 code of its first (largest) subdivision and the city's English name."""

    country: str | None = None
    region: str | None = None
    city: str | None = None


UNKNOWN: Final = Location()
_SUBDIVISION = re.compile(r"[A-Z0-9]{1,3}")
#: Longest city name kept (the column's length).
CITY_MAX: Final = 64


def lookup_location(reader: CountryReader, ip: str) -> Location:
    """Country, region and city of ``ip`` in the database (each None when unknown; a
    Country database knows no region or city)."""
    if not ip:
        return UNKNOWN
    try:
        record = reader.get(ip)
    except ValueError:
        return UNKNOWN
    if not isinstance(record, dict):
        return UNKNOWN
    country = None
    for key in ("country", "registered_country"):
        entry = record.get(key)
        if isinstance(entry, dict):
            country = normalize_country(entry.get("iso_code"))
            if country:
                break
    if country is None:
        return UNKNOWN
    return Location(country, _region(record, country), _city(record))


def _region(record: dict[str, Any], country: str) -> str | None:
    subdivisions = record.get("subdivisions")
    if not isinstance(subdivisions, list) or not subdivisions:
        return None
    first = subdivisions[0]
    code = first.get("iso_code") if isinstance(first, dict) else None
    if not isinstance(code, str) or not _SUBDIVISION.fullmatch(code):
        return None
    return f"{country}-{code}"


def _city(record: dict[str, Any]) -> str | None:
    city = record.get("city")
    names = city.get("names") if isinstance(city, dict) else None
    name = names.get("en") if isinstance(names, dict) else None
    if not isinstance(name, str):
        return None
    name = " ".join(name.split())  # no control characters, no runs of spaces
    if not name or any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in name):
        return None
    return name[:CITY_MAX]


#: The distribution that holds the built-in table.
BUILTIN_PACKAGE = "iptocc"


@functools.cache
def _builtin_lookup() -> Callable[[str], str | None] | None:
    # A stateless function over data compiled into the package: imported once, here, so
    # a host that uninstalled it gets unknown countries instead of an error.
    try:
        from iptocc import country_code
    except ImportError:
        return None
    return country_code


def builtin_country(ip: str) -> str | None:
    """The country the RIRs delegated ``ip``'s block to, or None (not delegated, not an
    address, or the table not installed)."""
    lookup = _builtin_lookup()
    if lookup is None or not ip:
        return None
    return normalize_country(lookup(ip))


@dataclass(frozen=True)
class BuiltinTable:
    """What ``flask analytics status`` says about the built-in table."""

    installed: bool
    version: str | None = None
    #: When its wheel was built from the RIRs' files (None when the wheel does not say).
    data_date: dt.date | None = None


def builtin_table() -> BuiltinTable:
    """The installed built-in table: its version and the date of its data."""
    if _builtin_lookup() is None:
        return BuiltinTable(installed=False)
    try:
        dist = importlib.metadata.distribution(BUILTIN_PACKAGE)
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - imported above
        return BuiltinTable(installed=True)
    return BuiltinTable(installed=True, version=dist.version, data_date=_build_date(dist))


def _build_date(dist: importlib.metadata.Distribution) -> dt.date | None:
    # The wheel's software bill of materials (PEP 770) is written when the wheel is
    # built, minutes after the nightly job fetched the RIRs' files into it.
    for file in dist.files or ():
        if "sboms" in file.parts and file.name.endswith(".json"):
            try:
                stamp = json.loads(file.read_text())["metadata"]["timestamp"]
                return dt.datetime.fromisoformat(stamp[:19]).date()
            except (OSError, ValueError, KeyError, TypeError):
                return None
    return None


@dataclass(frozen=True)
class DatabaseInfo:
    """A configured ``.mmdb`` file's type and build date, from its metadata."""

    database_type: str | None
    built: dt.date | None


def database_info(reader: CountryReader) -> DatabaseInfo:
    """Type and build date of a configured database (maxminddb readers say both)."""
    metadata = getattr(reader, "metadata", None)
    if metadata is None:
        return DatabaseInfo(None, None)
    try:
        meta = metadata()
        epoch = getattr(meta, "build_epoch", None)
        built = dt.datetime.fromtimestamp(epoch, dt.timezone.utc).date() if epoch else None
        return DatabaseInfo(getattr(meta, "database_type", None), built)
    except (OSError, ValueError, OverflowError):
        return DatabaseInfo(None, None)
