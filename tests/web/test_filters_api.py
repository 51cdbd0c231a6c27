"""Filters reach every number of the JSON API, CSV and pages (both databases).

The filtered numbers themselves are checked against an independent reference in
tests/reports/test_filters.py; here each answer is compared with a direct count of the
raw rows the filter keeps, so the plumbing (parsing, the engine, the JSON and CSV
shapes) is what can fail.
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
from flask_analytics.state import current_state

from ..clock import FrozenClock
from ..support.seeded_stats import Seeded, seed
from .test_dashboard import allow


@pytest.fixture
def site(make_app: Any, frozen_clock: FrozenClock) -> tuple[Flask, Seeded]:
    app = make_app(ANALYTICS_TIMEZONE="Europe/Paris")
    allow(app.extensions["analytics_test"])
    return app, seed(app, app.extensions["analytics_test"])


def count_raw(app: Flask, seeded: Seeded, *where: Any) -> tuple[int, int]:
    """Pageviews and per-day distinct visitors (summed) of raw rows matching ``where``."""
    analytics: Analytics = app.extensions["analytics_test"]
    table = analytics.Event.__table__
    with app.app_context(), analytics.db.engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.created_at, table.c.visitor_id).where(*where))
        tz = current_state(app).settings.timezone
        pairs = [(r.created_at, r.visitor_id) for r in rows]
    days: dict[dt.date, set[int]] = {}
    for created_at, visitor in pairs:
        local = created_at.replace(tzinfo=dt.timezone.utc).astimezone(tz).date()
        days.setdefault(local, set()).add(visitor)
    return len(pairs), sum(len(v) for v in days.values())


def test_page_filter_counts_the_pages_pageviews(site: tuple[Flask, Seeded]) -> None:
    app, seeded = site
    client = app.test_client()
    start, end = min(seeded.days).isoformat(), seeded.today.isoformat()
    table = app.extensions["analytics_test"].Event.__table__
    pageviews, visitors = count_raw(
        app, seeded, table.c.name == "pageview", table.c.path == "/pricing"
    )
    assert pageviews > 0
    url = f"/analytics/api/stats?start={start}&end={end}&filter=page:is:/pricing"
    body = client.get(url).get_json()
    assert body["filters"] == ["page:is:/pricing"]
    assert body["totals"]["pageviews"] == pageviews
    unfiltered = client.get(f"/analytics/api/stats?start={start}&end={end}").get_json()
    assert unfiltered["totals"]["pageviews"] > pageviews
    # The page breakdown of the same filter holds that one page.
    rows = client.get(
        f"/analytics/api/breakdown/page?start={start}&end={end}&filter=page:is:/pricing"
    ).get_json()["rows"]
    assert [(r["page"], r["pageviews"], r["visitors"]) for r in rows] == [
        ("/pricing", pageviews, visitors)
    ]


def test_filters_reach_csv_and_pages(site: tuple[Flask, Seeded]) -> None:
    app, seeded = site
    client = app.test_client()
    start, end = min(seeded.days).isoformat(), seeded.today.isoformat()
    query = f"start={start}&end={end}&filter=page:matches:/pri*|/blog/*"
    answer = client.get(f"/analytics/api/breakdown/page?{query}&format=csv")
    assert answer.status_code == 200
    pages = [row["page"] for row in csv.DictReader(io.StringIO(answer.get_data(as_text=True)))]
    assert pages
    assert all(p == "/pricing" or p.startswith("/blog/") for p in pages)
    for page in ("/", "/pages", "/sources", "/locations", "/devices", "/events", "/engagement"):
        response = client.get(f"/analytics{page}?{query}")
        assert response.status_code == 200, page
        assert "filter=page:matches:/pri*%7C/blog/*" in response.get_data(as_text=True), page


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nope:is:x", "Unknown filter dimension"),
        ("source:like:x", "needs an operator"),
        ("source:is:", "empty value"),
        ("source:contains:(none)", "goes with is or is_not"),
        ("prop::is:x", "prop:KEY:OP:VALUE"),
        ("page:is:/a\x00b", "control character"),
    ],
)
def test_bad_filters_answer_400(site: tuple[Flask, Seeded], value: str, message: str) -> None:
    app, _ = site
    client = app.test_client()
    api = client.get("/analytics/api/stats", query_string={"filter": value})
    assert api.status_code == 400
    assert message in api.get_json()["error"]
    page = client.get("/analytics/", query_string={"filter": value})
    assert page.status_code == 400
    assert message in page.get_data(as_text=True)


def test_filtered_range_before_the_raw_events_answers_400(site: tuple[Flask, Seeded]) -> None:
    app, seeded = site
    analytics: Analytics = app.extensions["analytics_test"]
    first = seeded.aggregated[0]
    # The raw events up to the first aggregated day are purged: its rollups stay.
    _, end = day_bounds(seeded.tz, first)
    with app.app_context(), analytics.db.engine.begin() as conn:
        table = analytics.Event.__table__
        conn.execute(sa.delete(table).where(table.c.created_at < end))
    client = app.test_client()
    rng = f"start={first.isoformat()}&end={seeded.today.isoformat()}"
    unfiltered = client.get(f"/analytics/api/stats?{rng}")
    assert unfiltered.status_code == 200
    filtered = client.get(f"/analytics/api/stats?{rng}&filter=source:is:Google")
    assert filtered.status_code == 400
    expected_first = (first + dt.timedelta(days=1)).isoformat()
    assert expected_first in filtered.get_json()["error"]
    later = f"start={expected_first}&end={seeded.today.isoformat()}"
    answer = client.get(f"/analytics/api/stats?{later}&filter=source:is:Google")
    assert answer.status_code == 200
    # Its previous period reaches the purged days: no comparison rather than an error.
    assert answer.get_json()["previous"] is None
    page = client.get(f"/analytics/?{later}&filter=source:is:Google")
    assert page.status_code == 200


def test_breakdown_order_sorts_by_another_count(site: tuple[Flask, Seeded]) -> None:
    app, seeded = site
    client = app.test_client()
    rng = f"start={min(seeded.days).isoformat()}&end={seeded.today.isoformat()}"
    by_visitors = client.get(f"/analytics/api/breakdown/page?{rng}").get_json()
    by_pageviews = client.get(f"/analytics/api/breakdown/page?{rng}&order=pageviews").get_json()
    assert by_visitors["order"] == "visitors"
    assert by_pageviews["order"] == "pageviews"
    views = [r["pageviews"] for r in by_pageviews["rows"]]
    assert views == sorted(views, reverse=True)
    assert sorted(map(str, by_pageviews["rows"])) == sorted(map(str, by_visitors["rows"]))
    # The two orders differ on this data set (else the test could not fail).
    assert [r["page"] for r in by_pageviews["rows"]] != [r["page"] for r in by_visitors["rows"]]
    bad = client.get(f"/analytics/api/breakdown/page?{rng}&order=bounces")
    assert bad.status_code == 400
    assert "not 'bounces'" in bad.get_json()["error"]


def test_stats_say_when_todays_numbers_were_computed(site: tuple[Flask, Seeded]) -> None:
    app, seeded = site
    analytics: Analytics = app.extensions["analytics_test"]
    client = app.test_client()
    assert client.get("/analytics/api/stats?period=7d").get_json()["today_as_of"] is None
    with app.app_context():
        run = analytics.aggregate(seeded.today)
    body = client.get("/analytics/api/stats?period=7d").get_json()
    assert body["today_as_of"] == run.started_at.isoformat() + "Z"
    assert client.get("/analytics/api/stats?period=yesterday").get_json()["today_as_of"] is None


def test_filtered_today_reads_the_runs_sessions(site: tuple[Flask, Seeded]) -> None:
    app, seeded = site
    analytics: Analytics = app.extensions["analytics_test"]
    client = app.test_client()
    url = "/analytics/api/stats?period=today&filter=page:matches:/*&filter=country:is_not:JP"
    live = client.get(url).get_json()["totals"]
    assert live["sessions"] > 0
    with app.app_context():
        analytics.aggregate(seeded.today)
        state = current_state(app)
        with state.engine().connect() as conn:
            from flask_analytics.reports import DateRange, Stats, parse_filters

            stats = Stats(state, conn, filters=parse_filters(["country:is_not:JP"]))
            today = DateRange(seeded.today, seeded.today)
            assert stats.filtered.stored_days(today) == [seeded.today]
    # The run read every event there is: the numbers from its sessions are the same.
    assert client.get(url).get_json()["totals"] == live
