"""Countries out of the box: the built-in table (iptocc, the RIRs' delegations) when no
database is configured, after the CDN header; its data date in ``flask analytics status``."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import ipaddress
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from flask_analytics.ingest.geo import builtin_country, builtin_table
from flask_analytics.ingest.privacy import anonymize_ip, parse_ip

from ..conftest import DESKTOP_UA, collect_payload
from ..support.events import pin_today
from ..support.geo import write_country_mmdb

#: Long-standing delegations: (address, country the RIR delegated its block to).
KNOWN = [
    ("8.8.8.8", "US"),  # ARIN, Google
    ("1.0.16.1", "JP"),  # APNIC
    ("193.0.6.139", "NL"),  # RIPE NCC's own network
    ("133.11.0.1", "JP"),  # APNIC, the University of Tokyo
    ("200.160.2.3", "BR"),  # LACNIC, NIC.br
    ("105.160.0.1", "KE"),  # AFRINIC, Safaricom
    ("2001:4860:4860::8888", "US"),  # ARIN, Google Public DNS
    ("2a00:1450:4001:80b::200e", "IE"),  # RIPE NCC, Google Ireland
    ("2001:200:dff:fff1:216:3eff:feb1:44d7", "JP"),  # APNIC, WIDE
    ("2001:12ff:0:4::22", "BR"),  # LACNIC, NIC.br
]

#: Reserved or never delegated: no country.
UNKNOWN = ["10.0.0.1", "192.0.2.1", "203.0.113.7", "127.0.0.1", "::1", "fd00::1", "2001:db8::1"]


def prefix(ip: str) -> str:
    """The /24 or /48 network address, computed here with ipaddress alone."""
    bits = 24 if ipaddress.ip_address(ip).version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False).network_address)


def events(app):
    ext = app.extensions["analytics_test"]
    with app.app_context():
        return list(ext.db.session.scalars(sa.select(ext.Event).order_by(ext.Event.id)))


@pytest.mark.parametrize(("ip", "country"), KNOWN)
def test_known_addresses_and_their_anonymized_prefix(ip, country):
    anon = anonymize_ip(parse_ip(ip))
    assert anon == prefix(ip)  # what the pipeline looks up
    assert builtin_country(ip) == country
    assert builtin_country(anon) == country


def test_reserved_addresses_and_junk_have_no_country():
    for ip in UNKNOWN:
        assert builtin_country(ip) is None, ip
        assert builtin_country(prefix(ip)) is None, ip
    assert builtin_country("") is None
    assert builtin_country("not an address") is None


def post(client, ip, headers=None, count=1):
    return client.post(
        "/_analytics/collect",
        json=[collect_payload(url=f"http://localhost/{i}") for i in range(count)],
        headers={"User-Agent": DESKTOP_UA, **(headers or {})},
        environ_base={"REMOTE_ADDR": ip},
    )


def status(app, monkeypatch, today: dt.date) -> list[str]:
    """The lines of ``flask analytics status`` about countries, on a pinned "today"."""
    pin_today(monkeypatch, app, today)
    result = app.test_cli_runner().invoke(args=["analytics", "status"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Countries:"))
    return [lines[start], *(line for line in lines[start + 1 :] if line.startswith("  Its"))]


def test_countries_appear_with_no_configuration(app, analytics, monkeypatch):
    client = app.test_client()
    assert post(client, "8.8.8.8", count=2).get_json()["accepted"] == 2  # one batch
    assert post(client, "2a00:1450:4001:80b::200e").get_json()["accepted"] == 1
    assert post(client, "203.0.113.7").get_json()["accepted"] == 1
    with app.app_context():
        tracked = analytics.track("signup", url="https://example.com/", ip="1.0.16.1")
        untracked = analytics.track("import", url="https://example.com/")
    assert tracked is not None
    assert untracked is not None
    assert [e.country for e in events(app)] == ["US", "US", "IE", None, "JP", None]

    built = wheel_build_date()
    version = importlib.metadata.version("iptocc")
    assert builtin_table().data_date == built
    assert status(app, monkeypatch, built + dt.timedelta(days=41)) == [
        f"Countries: the built-in table (iptocc {version}: the regional internet registries' "
        f"delegations, data of {built}, 41 days old)."
    ]
    assert status(app, monkeypatch, built + dt.timedelta(days=181))[1:] == [
        "  Its data is over 180 days old: pip install -U iptocc."
    ]


def test_header_first_then_builtin_and_it_can_be_turned_off(make_app, monkeypatch):
    app = make_app(ANALYTICS_COUNTRY_HEADER="CF-IPCountry")
    client = app.test_client()
    post(client, "8.8.8.8", {"CF-IPCountry": "de"})  # the CDN knows better than the RIRs
    post(client, "8.8.8.8", {"CF-IPCountry": "XX"})  # the CDN does not know
    post(client, "8.8.8.8")  # no header on this request
    assert [e.country for e in events(app)] == ["DE", "US", "US"]
    built = wheel_build_date()
    [line] = status(app, monkeypatch, built)
    assert line.startswith("Countries: the CF-IPCountry header, then the built-in table (iptocc ")
    assert line.endswith(f", data of {built}, 0 days old).")

    off = make_app(ANALYTICS_BUILTIN_COUNTRIES=False)
    post(off.test_client(), "8.8.8.8")
    assert [e.country for e in events(off)] == [None]
    assert status(off, monkeypatch, built) == [
        "Countries: unknown (no database, header or built-in table)."
    ]


@pytest.fixture
def mmdb_file(tmp_path: Path) -> Path:
    return write_country_mmdb(tmp_path / "country.mmdb", {"198.51.100.0/24": "BR"})


def wheel_build_date() -> dt.date:
    """The iptocc wheel's build date, read here from its SBOM without the package's code."""
    dist = importlib.metadata.distribution("iptocc")
    [sbom] = [f for f in dist.files or () if "sboms" in str(f) and str(f).endswith(".json")]
    return dt.date.fromisoformat(json.loads(sbom.read_text())["metadata"]["timestamp"][:10])


def test_a_configured_database_replaces_the_builtin_table(make_app, mmdb_file, monkeypatch):
    app = make_app(ANALYTICS_GEOIP_DATABASE=str(mmdb_file))
    client = app.test_client()
    post(client, "198.51.100.3")
    post(client, "8.8.8.8")  # not in the database: unknown, not the built-in's guess
    assert [e.country for e in events(app)] == ["BR", None]

    import maxminddb

    with maxminddb.open_database(str(mmdb_file)) as reader:
        built = dt.datetime.fromtimestamp(reader.metadata().build_epoch, dt.timezone.utc).date()
    assert status(app, monkeypatch, built + dt.timedelta(days=3)) == [
        f"Countries: the database {mmdb_file} (GeoLite2-Country, data of {built}, 3 days old)."
    ]
