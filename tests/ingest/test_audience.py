"""The audience columns at ingest: browser and OS major versions, language, region and
city (City database), screen class, and the visitor hash over the registrable domain.

Parsing is checked value by value on odd, spoofed and missing input; the collect
endpoint and ``track()`` store what the parsers give, on both databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_analytics.errors import ConfigError
from flask_analytics.ingest.audience import primary_language, registrable_domain, screen_class
from flask_analytics.ingest.geo import lookup_location, open_database
from flask_analytics.ingest.useragent import parse_user_agent

from ..conftest import DESKTOP_UA, MOBILE_UA, collect_payload
from ..support.geo import city_record, write_city_mmdb, write_country_mmdb

LANGUAGES = [
    ("en-US,en;q=0.9", "en"),
    ("EN-gb", "en"),
    ("de-CH;q=0.8, fr;q=0.9", "fr"),  # the highest quality wins
    ("fr;q=0.5, de;q=0.5", "fr"),  # the first of equal ones
    ("zh-Hant-TW", "zh"),
    ("gsw-CH, de;q=0.5", "gsw"),  # three-letter ISO 639
    (" en ; q = 0.7 , de ; q=0.6", "en"),  # spaces around parameters
    ("*", None),
    ("*, pt-BR;q=0.5", "pt"),
    ("x-klingon, i-default, es", "es"),  # private and grandfathered tags
    ("en;q=abc, de", "de"),  # malformed quality: that entry is skipped
    ("en;q=2, it;q=0.1", "it"),  # quality above 1
    ("en;q=0, nl;q=0.001", "nl"),  # quality 0 means "not this one"
    ("en;q=0", None),
    ("english, e1, 12, ja", "ja"),
    ("<script>alert(1)</script>, ko", "ko"),
    ("en\x00, sv", "sv"),
    ("é, ü-DE", None),  # not ASCII letters
    ("", None),
    (None, None),
    (",,,;;;", None),
    ("a" * 10_000, None),
    ("x" * 600 + ",en", None),  # past the characters read
]


@pytest.mark.parametrize(("header", "language"), LANGUAGES)
def test_primary_language(header: str | None, language: str | None) -> None:
    assert primary_language(header) == language


SCREENS = [
    (None, None),
    (0, "mobile"),
    (375, "mobile"),
    (575, "mobile"),
    (576, "tablet"),
    (991, "tablet"),
    (992, "laptop"),
    (1439, "laptop"),
    (1440, "desktop"),
    (3840, "desktop"),
]


@pytest.mark.parametrize(("width", "name"), SCREENS)
def test_screen_class(width: int | None, name: str | None) -> None:
    assert screen_class(width) == name


CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{}.0.0.0 Safari/537.36"
)
VERSIONS = [
    (CHROME.format("131"), ("Chrome", "131", "Windows", "10")),
    (MOBILE_UA, ("Safari", "17", "iOS", "17")),
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        ("Firefox", "133", "Linux", None),
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Mobile Safari/537.36",
        ("Chrome", "124", "Android", "14"),
    ),
    # Spoofed versions: a leading zero, seven digits.
    (CHROME.format("0131"), ("Chrome", None, "Windows", "10")),
    (CHROME.format("1234567"), ("Chrome", None, "Windows", "10")),
]


@pytest.mark.parametrize(("ua", "expected"), VERSIONS)
def test_major_versions(ua: str, expected: tuple[Any, ...]) -> None:
    info = parse_user_agent(ua)
    assert (info.browser, info.browser_version, info.os, info.os_version) == expected


def test_bots_have_no_versions() -> None:
    info = parse_user_agent(
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    )
    assert info.is_bot
    assert info.browser_version is None
    assert info.os_version is None


DOMAINS = [
    ("www.example.com", "example.com"),
    ("a.b.example.co.uk", "example.co.uk"),
    ("example.com", "example.com"),
    ("alice.github.io", "alice.github.io"),  # a private suffix: each user a site
    ("co.uk", "co.uk"),  # a public suffix itself stays as it is
    ("localhost", "localhost"),
    ("127.0.0.1", "127.0.0.1"),
    ("[::1]", "[::1]"),
    ("shop.xn--bcher-kva.de", "xn--bcher-kva.de"),
]


@pytest.mark.parametrize(("host", "domain"), DOMAINS)
def test_registrable_domain(host: str, domain: str) -> None:
    assert registrable_domain(host) == domain


# -- stored by collect and track() -----------------------------------------------------------


def stored(app: Flask) -> list[dict[str, Any]]:
    ext = app.extensions["analytics_test"]
    with app.app_context(), ext.db.engine.connect() as conn:
        table = ext.Event.__table__
        return [dict(r) for r in conn.execute(sa.select(table).order_by(table.c.id)).mappings()]


AUDIENCE = ("browser", "browser_version", "os", "os_version", "language", "screen")


def test_collect_stores_the_audience_columns(make_app: Any) -> None:
    app = make_app()
    client = app.test_client()
    sent = [
        (CHROME.format("131"), "de-DE,de;q=0.9,en;q=0.8", 1920),
        (MOBILE_UA, "*", 390),
        (CHROME.format("0131"), None, None),
        (DESKTOP_UA, "pt-BR;q=0.2, x-private, es;q=0.4", 1000),
    ]
    for i, (ua, language, width) in enumerate(sent):
        headers = {"User-Agent": ua}
        if language is not None:
            headers["Accept-Language"] = language
        response = client.post(
            "/_analytics/collect",
            json=collect_payload(url=f"http://localhost/{i}", screen_width=width),
            headers=headers,
            environ_base={"REMOTE_ADDR": f"203.0.113.{i + 1}"},
        )
        assert response.status_code == 202, response.get_json()
    rows = stored(app)
    assert len(rows) == len(sent)
    for row, (ua, language, width) in zip(rows, sent, strict=True):
        info = parse_user_agent(ua)
        assert {k: row[k] for k in AUDIENCE} == {
            "browser": info.browser,
            "browser_version": info.browser_version,
            "os": info.os,
            "os_version": info.os_version,
            "language": primary_language(language),
            "screen": screen_class(width),
        }
    assert [r["language"] for r in rows] == ["de", None, None, "es"]
    assert [r["screen"] for r in rows] == ["desktop", "mobile", None, "laptop"]
    # No database configured: no region or city.
    assert {(r["region"], r["city"]) for r in rows} == {(None, None)}


def test_track_takes_the_language_of_the_request_it_serves(make_app: Any) -> None:
    app = make_app()
    analytics = app.extensions["analytics_test"]
    with app.test_request_context("/signup", headers={"Accept-Language": "fr-CA,fr;q=0.9"}):
        served = analytics.track("signup", url="https://example.com/signup", user_agent=DESKTOP_UA)
    with app.app_context():
        outside = analytics.track("import", url="https://example.com/", user_agent=DESKTOP_UA)
    assert served is not None
    assert served.language == "fr"
    assert outside is not None
    assert outside.language is None
    assert served.browser_version == "124"
    assert served.os_version == "10"
    assert [r["language"] for r in stored(app)] == ["fr", None]


# -- region and city from a City database ----------------------------------------------------

CITY_RECORDS = {
    "198.51.100.0/24": city_record("DE", "BE", "Berlin"),
    "192.0.2.0/24": city_record("US", "CA", "San Francisco"),
    "203.0.113.0/24": city_record("FR", None, None),  # country only
    "100.64.0.0/24": city_record("GB", "<x>", "Bad\x07Name"),  # junk in the database
    "100.64.1.0/24": city_record("JP", "13", "  Tokyo \n "),
    "100.64.2.0/24": city_record("BR", "SP", "S" * 100),
    "2001:db8::/48": city_record("NL", "NH", "Amsterdam"),
}


def expected_location(network: str) -> tuple[str | None, str | None, str | None]:
    """What the columns hold for ``network``'s record, computed from the record."""
    record = CITY_RECORDS[network]
    country = record["country"]["iso_code"]  # type: ignore[index]
    subdivisions = record.get("subdivisions")
    code = subdivisions[0]["iso_code"] if subdivisions else None  # type: ignore[index]
    region = f"{country}-{code}" if code and code.isalnum() else None
    city = record.get("city")
    name = city["names"]["en"].strip() if city else None  # type: ignore[index]
    if name and not name.isprintable():
        name = None
    return country, region, name[:64] if name else None


def test_lookup_location_reads_a_city_database(tmp_path: Path) -> None:
    reader = open_database(str(write_city_mmdb(tmp_path / "city.mmdb", CITY_RECORDS)))
    try:
        found = {
            network: lookup_location(reader, network.split("/")[0]) for network in CITY_RECORDS
        }
        for network, location in found.items():
            assert (location.country, location.region, location.city) == expected_location(
                network
            ), network
        assert found["198.51.100.0/24"].region == "DE-BE"
        assert found["100.64.1.0/24"].city == "Tokyo"
        unknown = lookup_location(reader, "10.1.2.0")
        assert (unknown.country, unknown.region, unknown.city) == (None, None, None)
    finally:
        reader.close()


def test_a_country_database_gives_no_region_or_city(tmp_path: Path) -> None:
    path = write_country_mmdb(tmp_path / "country.mmdb", {"198.51.100.0/24": "DE"})
    reader = open_database(str(path))
    try:
        location = lookup_location(reader, "198.51.100.0")
        assert (location.country, location.region, location.city) == ("DE", None, None)
    finally:
        reader.close()


def test_collect_stores_region_and_city(make_app: Any, tmp_path: Path) -> None:
    path = write_city_mmdb(tmp_path / "city.mmdb", CITY_RECORDS)
    app = make_app(ANALYTICS_GEOIP_DATABASE=str(path))
    client = app.test_client()
    addresses = {
        "198.51.100.0/24": "198.51.100.77",
        "192.0.2.0/24": "192.0.2.200",
        "203.0.113.0/24": "203.0.113.9",
        "100.64.2.0/24": "100.64.2.1",
        "2001:db8::/48": "2001:db8::1234",
    }
    for i, ip in enumerate(addresses.values()):
        response = client.post(
            "/_analytics/collect",
            json=collect_payload(url=f"http://localhost/{i}"),
            headers={"User-Agent": DESKTOP_UA},
            environ_base={"REMOTE_ADDR": ip},
        )
        assert response.status_code == 202
    rows = stored(app)
    assert [(r["country"], r["region"], r["city"]) for r in rows] == [
        expected_location(network) for network in addresses
    ]


# -- visitor identity across subdomains ------------------------------------------------------


def visitor_ids(app: Flask, hosts: list[str]) -> list[int]:
    analytics = app.extensions["analytics_test"]
    ids = []
    with app.app_context():
        for host in hosts:
            event = analytics.track(
                "pageview", url=f"https://{host}/", ip="198.51.100.7", user_agent=DESKTOP_UA
            )
            assert event is not None
            ids.append(event.visitor_id)
    return ids


def test_visitor_host_setting(make_app: Any) -> None:
    hosts = ["example.co.uk", "shop.example.co.uk", "blog.example.co.uk", "other.co.uk"]
    by_hostname = visitor_ids(make_app(), hosts)
    by_domain = visitor_ids(make_app(ANALYTICS_VISITOR_HOST="registrable_domain"), hosts)
    assert len(set(by_hostname)) == 4  # the default: one visitor per hostname
    assert by_domain[0] == by_domain[1] == by_domain[2] != by_domain[3]
    with pytest.raises(ConfigError, match="ANALYTICS_VISITOR_HOST"):
        make_app(ANALYTICS_VISITOR_HOST="domain")
