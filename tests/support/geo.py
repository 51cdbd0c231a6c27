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
