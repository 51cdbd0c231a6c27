"""The audience breakdowns through the API, CSV and dashboard pages: browser and OS
versions (rows carry their browser / OS), region, city (rows carry their country),
language, screen class, hostname, utm_term and utm_content; unfiltered (rollups and live
days) and filtered (raw path), on both databases.

The seeded traffic gets its audience columns by SQL over the visitor id, the aggregated
days are aggregated again, and every expected number comes from
``tests/support/filter_reference.py`` (pure Python) over the rows read back.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_analytics import Analytics

from ..clock import FrozenClock
from ..support.filter_reference import FilterSpec, filtered_range, summed
from ..support.seeded_stats import TIMEOUT, XSS_SCRIPT, Seeded, seed

#: name -> (table, key, parent or None, counts) as DESIGN.md and the README define them.
DIMENSIONS: dict[str, tuple[str, str, str | None, tuple[str, ...]]] = {
    "browser_version": ("DailyBrowserVersion", "browser_version", "browser", ("visitors", "sessions", "pageviews")),
    "os_version": ("DailyOsVersion", "os_version", "os", ("visitors", "sessions", "pageviews")),
    "region": ("DailyLocation", "region", None, ("visitors", "sessions", "pageviews")),
    "city": ("DailyLocation", "city", "country", ("visitors", "sessions", "pageviews")),
    "language": ("DailyLanguage", "language", None, ("visitors", "sessions", "pageviews")),
    "screen": ("DailyScreen", "screen", None, ("visitors", "sessions", "pageviews")),
    "hostname": ("DailyHostname", "hostname", None, ("visitors", "sessions", "pageviews", "bounces")),
    "utm_term": ("DailyUtm", "utm_term", None, ("sessions", "pageviews", "bounces")),
    "utm_content": ("DailyUtm", "utm_content", None, ("sessions", "pageviews", "bounces")),
}  # fmt: skip
SKIP_NULL = {"utm_term", "utm_content", "region", "city"}

FILTERS: dict[str, tuple[FilterSpec, ...]] = {
    "": (),
    "&filter=language:is:de|fr": (("language", "is", ("de", "fr")),),
    "&filter=browser:is:Chrome&filter=screen:is_not:mobile": (
        ("browser", "is", ("Chrome",)),
        ("screen", "is_not", ("mobile",)),
    ),
    "&filter=city:is:Paris&filter=page:matches:/blog/*": (
        ("city", "is", ("Paris",)),
        ("page", "matches", ("/blog/*",)),
    ),
}


def case(column: sa.ColumnElement[Any], modulo: int, values: tuple[Any, ...]) -> Any:
    return sa.case(*((column % modulo == i, v) for i, v in enumerate(values)), else_=sa.null())


@pytest.fixture(scope="module")
def site(module_database_url: str, schemas: Any) -> Any:
    from ..conftest import build_app, release_app

    app, db = build_app(
        module_database_url,
        schemas,
        "audience_api",
        ANALYTICS_TIMEZONE="Europe/Paris",
        # Each test seeds the data again: no live rows kept from the one before.
        ANALYTICS_DASHBOARD_LIVE_TTL=0,
    )
    yield app
    release_app(app, db, schemas)


@pytest.fixture
def seeded(site: Flask, frozen_clock: FrozenClock) -> Seeded:
    analytics: Analytics = site.extensions["analytics_test"]
    analytics.dashboard_access(lambda: True)
    table: sa.Table = analytics.Event.__table__
    with site.app_context(), analytics.db.engine.begin() as conn:
        conn.execute(sa.delete(table))
    data = seed(site, analytics)
    c = table.c
    v = c.visitor_id
    with site.app_context():
        with analytics.db.engine.begin() as conn:
            conn.execute(
                sa.update(table).values(
                    browser_version=case(v, 3, ("131", "130")),
                    os_version=case(v, 2, ("10", "17")),
                    language=case(v, 4, ("en", "de", "fr")),
                    region=sa.case(
                        (c.country == "FR", case(v, 2, ("FR-IDF", "FR-ARA"))),
                        (c.country == "DE", "DE-BE"),
                        (c.country == "US", "US-CA"),
                        else_=sa.null(),
                    ),
                    city=sa.case(
                        (c.country == "FR", case(v, 2, ("Paris", "Lyon"))),
                        (c.country == "US", "Paris"),  # Paris, Texas: another row
                        (c.country == "GB", XSS_SCRIPT),
                        else_=sa.null(),
                    ),
                    screen=case(v, 5, ("mobile", "tablet", "laptop", "desktop")),
                    hostname=case(v, 2, ("example.com", "blog.example.com")),
                    utm_term=sa.case(
                        (c.utm_source.is_not(None), case(v, 2, ("privacy", "analytics")))
                    ),
                    utm_content=sa.case((c.utm_source.is_not(None), case(v, 3, ("ad_a", "ad_b")))),
                )
            )
        for day in data.aggregated:  # the rollups of the updated events
            analytics.aggregate(day)
        with analytics.db.engine.connect() as conn:
            data.events = [dict(r) for r in conn.execute(sa.select(table)).mappings()]
    return data


def span(seeded: Seeded) -> str:
    return f"start={min(seeded.days).isoformat()}&end={seeded.today.isoformat()}"


def expected(seeded: Seeded, name: str, filters: tuple[FilterSpec, ...]) -> list[dict[str, Any]]:
    """The breakdown's rows by the definition, most of the first count first."""
    table, key, parent, counts = DIMENSIONS[name]
    rows = filtered_range(seeded.events, sorted(seeded.days), seeded.tz, TIMEOUT, filters)
    keys = (key, *((parent,) if parent else ()))
    sums = summed(rows[table], keys, counts)
    found = [
        {**({parent: k[1]} if parent else {}), name: k[0], **c}
        for k, c in sums.items()
        if not (name in SKIP_NULL and k[0] is None)
    ]

    def order(row: dict[str, Any]) -> tuple[Any, ...]:
        parts = [row[key], *([row[parent]] if parent else [])]
        return (-row[counts[0]], *((p is None, p or "") for p in parts))

    return sorted(found, key=order)


def test_breakdowns_and_csv_equal_the_definition(seeded: Seeded, site: Flask) -> None:
    client = site.test_client()
    for filtered, name in ((f, n) for f in FILTERS for n in DIMENSIONS):
        _, _, parent, counts = DIMENSIONS[name]
        want = expected(seeded, name, FILTERS[filtered])
        if not filtered:
            assert len(want) >= 2, name
        body = client.get(f"/analytics/api/breakdown/{name}?{span(seeded)}{filtered}").get_json()
        assert body["dimension"] == name
        columns = [*([parent] if parent else []), name, *counts]
        assert [{k: r[k] for k in columns} for r in body["rows"]] == want, (filtered, name)
        assert body["total"] == len(want), (filtered, name)
        response = client.get(
            f"/analytics/api/breakdown/{name}?{span(seeded)}{filtered}&format=csv"
        )
        table = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
        assert table[0][: len(columns)] == columns, name
        assert [r[: len(columns)] for r in table[1:]] == [
            ["" if w[c] is None else str(w[c]) for c in columns] for w in want
        ], (filtered, name)


def test_versions_of_one_browser_and_devices_by_screen(seeded: Seeded, site: Flask) -> None:
    client = site.test_client()
    filters: tuple[FilterSpec, ...] = (("browser", "is", ("Chrome",)),)
    want = expected(seeded, "browser_version", filters)
    body = client.get(
        f"/analytics/api/breakdown/browser_version?{span(seeded)}&filter=browser:is:Chrome"
    ).get_json()
    assert {r["browser"] for r in body["rows"]} == {"Chrome"}
    assert [r["browser_version"] for r in body["rows"]] == [w["browser_version"] for w in want]
    screens = client.get(f"/analytics/api/devices?{span(seeded)}&by=screen").get_json()
    assert [(r["screen"], r["visitors"]) for r in screens["rows"]] == [
        (w["screen"], w["visitors"]) for w in expected(seeded, "screen", ())
    ]
    # The filter menu offers each version once, whatever browsers have it.
    versions = {w["browser_version"] for w in expected(seeded, "browser_version", ())}
    offered = client.get(f"/analytics/api/suggest/browser_version?{span(seeded)}").get_json()
    values = [v["value"] for v in offered["values"]]
    assert sorted(values) == sorted("(none)" if v is None else v for v in versions)
    refused = client.get(f"/analytics/api/breakdown/browser_version?{span(seeded)}&goal=x")
    assert refused.status_code == 400
    assert "not offered on browser_version" in refused.get_json()["error"]


def test_panels_render_escaped_rows_linking_to_both_filters(seeded: Seeded, site: Flask) -> None:
    client = site.test_client()
    devices = client.get(f"/analytics/devices?{span(seeded)}").get_data(as_text=True)
    for title in ("Browser versions", "OS versions", "Screen sizes"):
        assert f"<h2>{title}</h2>" in devices
    top = expected(seeded, "browser_version", ())[0]
    assert f"{top['browser']} {top['browser_version']}</span>" in devices
    link = re.search(
        r'data-dimension="browser_version".*?<a class="fa-key__text" href="([^"]+)"',
        devices,
        flags=re.DOTALL,
    )
    assert link is not None
    href = link.group(1).replace("&amp;", "&")
    assert f"filter=browser:is:{top['browser']}" in href
    assert f"filter=browser_version:is:{top['browser_version']}" in href
    locations = client.get(f"/analytics/locations?{span(seeded)}").get_data(as_text=True)
    for title in ("Regions", "Cities", "Languages"):
        assert f"<h2>{title}</h2>" in locations
    assert XSS_SCRIPT not in locations
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in locations
    sources = client.get(f"/analytics/sources?{span(seeded)}").get_data(as_text=True)
    assert "<h2>UTM terms</h2>" in sources
    assert "<h2>UTM contents</h2>" in sources
    pages = client.get(f"/analytics/pages?{span(seeded)}").get_data(as_text=True)
    assert "<h2>Hostnames</h2>" in pages
    assert "blog.example.com" in pages
