"""Country databases for tests: real MaxMind-format files, built with mmdb-writer."""

from __future__ import annotations

from pathlib import Path

import pytest


def write_country_mmdb(path: Path, countries: dict[str, str]) -> Path:
    """A GeoLite2-Country-type ``.mmdb`` at ``path`` answering ``{network: iso_code}``
    (IPv4 and IPv6 networks); skips the test without the dev extra's mmdb-writer."""
    mmdb_writer = pytest.importorskip("mmdb_writer")
    from netaddr import IPSet

    writer = mmdb_writer.MMDBWriter(
        ip_version=6, database_type="GeoLite2-Country", ipv4_compatible=True
    )
    for network, code in countries.items():
        writer.insert_network(IPSet([network]), {"country": {"iso_code": code}})
    writer.to_db_file(str(path))
    return path


def write_city_mmdb(path: Path, records: dict[str, dict[str, object]]) -> Path:
    """A GeoLite2-City-type ``.mmdb`` at ``path`` answering ``{network: record}``, each
    record in MaxMind's City layout (country, subdivisions, city)."""
    mmdb_writer = pytest.importorskip("mmdb_writer")
    from netaddr import IPSet

    writer = mmdb_writer.MMDBWriter(
        ip_version=6, database_type="GeoLite2-City", ipv4_compatible=True
    )
    for network, record in records.items():
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path


def city_record(country: str, subdivision: object, city: object) -> dict[str, object]:
    """A City database record: ``subdivision`` and ``city`` as stored (None: absent)."""
    record: dict[str, object] = {"country": {"iso_code": country}}
    if subdivision is not None:
        record["subdivisions"] = [{"iso_code": subdivision, "names": {"en": "Somewhere"}}]
    if city is not None:
        record["city"] = {"names": {"en": city, "de": "Anderswo"}}
    return record
