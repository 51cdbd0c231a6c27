"""``/analytics/api/sessions`` (session-length and pages-per-session distributions) and
``/analytics/api/devices`` (type, browser and OS together, screen classes or screen widths), JSON and
CSV, unfiltered and filtered, on both databases.

Expected numbers come from ``tests/support/filter_reference.py`` (pure Python, DESIGN.md's
definitions) over the rows read back from the database, never from the package.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_analytics import Analytics
from flask_analytics.core.clock import day_bounds

from ..clock import FrozenClock
from ..support.filter_reference import FilterSpec, filtered_range, summed
from ..support.seeded_stats import TIMEOUT, Seeded, seed

#: Widths the events get, by visitor (NULL for every fifth visitor: no width sent).
WIDTHS = (360, 390, 1280, 1920)
DURATION_BOUNDS = (0, 10, 30, 60, 180, 600, 1800, 3600)
PAGES_BOUNDS = (0, 1, 2, 3, 4, 5, 10, 20)

#: Query strings and the same filters as the reference takes them.
FILTERS: dict[str, tuple[FilterSpec, ...]] = {
    "": (),
    "&filter=source:is:Google": (("source", "is", ("Google",)),),
    "&filter=page:matches:/blog/*": (("page", "matches", ("/blog/*",)),),
}
IDS = ["unfiltered", "session-filter", "event-filter"]


@pytest.fixture
def site(make_app: Any, frozen_clock: FrozenClock) -> tuple[Flask, Seeded]:
    app = make_app(ANALYTICS_TIMEZONE="Europe/Paris")
    analytics: Analytics = app.extensions["analytics_test"]
    analytics.dashboard_access(lambda: True)
    seeded = seed(app, analytics)
    table: sa.Table = analytics.Event.__table__
    width = sa.case(
        *((table.c.visitor_id % 5 == i, w) for i, w in enumerate(WIDTHS)), else_=sa.null()
    )
    with app.app_context(), analytics.db.engine.begin() as conn:
        conn.execute(sa.update(table).values(screen_width=width))
        seeded.events = [dict(r) for r in conn.execute(sa.select(table)).mappings()]
    return app, seeded


def span(seeded: Seeded) -> str:
    return f"start={min(seeded.days).isoformat()}&end={seeded.today.isoformat()}"


def reference(seeded: Seeded, filters: tuple[FilterSpec, ...]) -> dict[str, list[dict[str, Any]]]:
    days = seeded.days
    every = [days[0] + dt.timedelta(days=i) for i in range((days[-1] - days[0]).days + 1)]
    return filtered_range(
        seeded.events, every, seeded.tz, TIMEOUT, filters, custom=("screen_width",)
    )


@pytest.mark.parametrize("filtered", list(FILTERS), ids=IDS)
def test_session_distributions_match_the_reference(site, filtered):
    app, seeded = site
    ref = reference(seeded, FILTERS[filtered])["DailySession"]
    body = app.test_client().get(f"/analytics/api/sessions?{span(seeded)}{filtered}").get_json()
    sessions = sum(r["sessions"] for r in ref)
    assert sessions > 0
    assert body["sessions"] == sessions
    assert body["filters"] == ([filtered.split("=", 1)[1]] if filtered else [])
    for name, column, bounds in (
        ("duration", "duration_bucket", DURATION_BOUNDS),
        ("pages", "pages_bucket", PAGES_BOUNDS),
    ):
        want = summed(ref, (column,), ("sessions", "total_duration_s", "pageviews"))
        rows = body[name]
        assert [r[column] for r in rows] == list(bounds)  # empty buckets included
        for row in rows:
            counts = want.get(
                (row[column],), dict.fromkeys(("sessions", "total_duration_s", "pageviews"), 0)
            )
            assert {k: row[k] for k in counts} == counts, (name, row)
            assert row["share"] == pytest.approx(counts["sessions"] / sessions)
            expected_views = (
                counts["pageviews"] / counts["sessions"] if counts["sessions"] else None
            )
            assert row["views_per_session"] == pytest.approx(expected_views)
        assert sum(r["sessions"] for r in rows) == sessions
    assert [r["label"] for r in body["duration"]][:3] == [
        "0s\u201310s",
        "10s\u201330s",
        "30s\u20131m",
    ]
    assert body["duration"][-1]["label"] == "1h+"
    assert [r["label"] for r in body["pages"]][-3:] == ["5\u20139", "10\u201319", "20+"]


def test_sessions_csv_holds_both_distributions(site):
    app, seeded = site
    client = app.test_client()
    url = f"/analytics/api/sessions?{span(seeded)}&filter=source:is:Google"
    body = client.get(url).get_json()
    table = list(csv.reader(io.StringIO(client.get(f"{url}&format=csv").get_data(as_text=True))))
    assert table[0] == [
        "distribution", "bucket", "label", "sessions", "share", "total_duration_s",
        "pageviews", "views_per_session",
    ]  # fmt: skip
    rows = table[1:]
    assert [r[0] for r in rows] == ["duration"] * 8 + ["pages"] * 8
    for row, json_row in zip(rows, body["duration"] + body["pages"], strict=True):
        bucket = json_row.get("duration_bucket", json_row.get("pages_bucket"))
        assert (int(row[1]), row[2], int(row[3])) == (
            bucket,
            json_row["label"],
            json_row["sessions"],
        )


def device_rows(
    ref: dict[str, list[dict[str, Any]]], keys: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Reference device rows grouped by ``keys``, most visitors first, then by keys."""
    sums = summed(ref["DailyDevice"], keys, ("visitors", "sessions", "pageviews"))
    rows = [{**dict(zip(keys, key, strict=True)), **counts} for key, counts in sums.items()]
    return sorted(rows, key=lambda r: (-r["visitors"], *((r[k] is None, r[k] or "") for k in keys)))


@pytest.mark.parametrize("filtered", list(FILTERS), ids=IDS)
def test_devices_by_type_browser_and_os(site, filtered):
    app, seeded = site
    client = app.test_client()
    ref = reference(seeded, FILTERS[filtered])
    url = f"/analytics/api/devices?{span(seeded)}{filtered}"
    body = client.get(url).get_json()
    want = device_rows(ref, ("device_type", "browser", "os"))
    assert body["by"] == ["device_type", "browser", "os"]
    assert body["rows"] == want
    assert body["total"] == len(want) > 1
    browsers = client.get(f"{url}&by=os,browser").get_json()  # given order does not matter
    assert browsers["by"] == ["browser", "os"]
    assert browsers["rows"] == device_rows(ref, ("browser", "os"))
    first, second = (client.get(f"{url}&by=browser&limit=2&page={p}").get_json() for p in (1, 2))
    assert first["rows"] + second["rows"] == device_rows(ref, ("browser",))[:4]
    assert first["total"] == len(device_rows(ref, ("browser",)))


@pytest.mark.parametrize("filtered", list(FILTERS), ids=IDS)
def test_devices_by_screen_width(site, filtered):
    app, seeded = site
    client = app.test_client()
    ref = reference(seeded, FILTERS[filtered])
    sums = summed(ref["DailyDimension"], ("value",), ("visitors", "pageviews", "events"))
    want = sorted(
        (
            {"screen_width": None if key[0] is None else int(key[0]), **counts}
            for key, counts in sums.items()
        ),
        key=lambda r: (-r["visitors"], r["screen_width"] is None, str(r["screen_width"] or "")),
    )
    assert {r["screen_width"] for r in want} == {*WIDTHS, None}
    for url in (
        f"/analytics/api/devices?{span(seeded)}{filtered}&by=screen_width",
        f"/analytics/api/breakdown/screen_width?{span(seeded)}{filtered}",
    ):
        body = client.get(url).get_json()
        assert body["dimension"] == "screen_width"
        got = [
            {k: r[k] for k in ("screen_width", "visitors", "pageviews", "events")}
            for r in body["rows"]
        ]
        assert got == want
        assert body["total"] == 5
    table = list(
        csv.reader(
            io.StringIO(
                client.get(
                    f"/analytics/api/devices?{span(seeded)}{filtered}&by=screen_width&format=csv"
                ).get_data(as_text=True)
            )
        )
    )
    assert table[0][:4] == ["screen_width", "visitors", "pageviews", "events"]
    assert [(r[0], int(r[1])) for r in table[1:]] == [
        ("" if r["screen_width"] is None else str(r["screen_width"]), r["visitors"]) for r in want
    ]


def test_devices_csv(site):
    app, seeded = site
    client = app.test_client()
    ref = reference(seeded, ())
    response = client.get(f"/analytics/api/devices?{span(seeded)}&by=device_type,os&format=csv")
    table = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert table[0] == ["device_type", "os", "visitors", "sessions", "pageviews"]
    want = device_rows(ref, ("device_type", "os"))
    assert [[r[0], r[1], *map(int, r[2:])] for r in table[1:]] == [
        [w["device_type"], w["os"], w["visitors"], w["sessions"], w["pageviews"]] for w in want
    ]
    assert response.headers["X-Total-Count"] == str(len(want))


#: Bad parameters and the 400 message each gets.
BAD = [
    ("/analytics/api/devices?by=model", "by must list device_type, browser, os"),
    ("/analytics/api/devices?by=os,os", "by must list device_type, browser, os"),
    ("/analytics/api/devices?by=screen,os", "or be screen or screen_width alone"),
    ("/analytics/api/devices?page=0", "page must be a whole number from 1"),
    ("/analytics/api/devices?by=screen&page=abc", "page must be a whole number from 1"),
    ("/analytics/api/devices?period=5y", "period must be one of"),
    ("/analytics/api/sessions?filter=nope:is:x", "nope"),
    ("/analytics/api/sessions?format=xml", "format must be json or csv"),
    ("/analytics/api/breakdown/screen_width?order=sessions", "screen_width rows count visitors"),
]


def test_bad_parameters_answer_400(make_app):
    app = make_app()
    app.extensions["analytics_test"].dashboard_access(lambda: True)
    client = app.test_client()
    for url, message in BAD:
        response = client.get(url)
        assert response.status_code == 400, url
        assert message in response.get_json()["error"], url


def test_closed_without_access_and_screen_widths_need_raw_events(site):
    app, seeded = site
    analytics: Analytics = app.extensions["analytics_test"]
    client = app.test_client()
    # Raw events of the oldest aggregated day purged: its rollups remain, its widths not.
    day = seeded.aggregated[0]
    table: sa.Table = analytics.Event.__table__
    end_of_day = day_bounds(seeded.tz, day)[1]
    with app.app_context(), analytics.db.engine.begin() as conn:
        conn.execute(sa.delete(table).where(table.c.created_at < end_of_day))
    rng = f"start={day.isoformat()}&end={seeded.today.isoformat()}"
    response = client.get(f"/analytics/api/devices?{rng}&by=screen_width")
    assert response.status_code == 400
    assert (
        "Numbers no daily table holds (screen widths) read raw events, kept from"
        in (response.get_json()["error"])
    )
    assert client.get(f"/analytics/api/devices?{rng}").status_code == 200  # from the rollups
    assert client.get(f"/analytics/api/devices?{rng}&by=screen").status_code == 200  # classes
    analytics.dashboard_access(lambda: False)
    for url in (
        "/analytics/api/sessions",
        "/analytics/api/devices",
        "/analytics/api/devices?by=screen",
    ):
        assert client.get(url).status_code == 403
