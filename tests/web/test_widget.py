"""``analytics_widget(path=...)``: a page's last 30 days, behind the dashboard's access
callback, with inert untrusted paths; numbers against a count of the seeded raw events."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine
from flask import Flask, render_template_string
from flask_sqlalchemy import SQLAlchemy

from flask_analytics import Analytics

from ..conftest import build_app, release_app
from ..support.schema import SchemaKeeper
from ..support.seeded_stats import XSS_IMG, XSS_SCRIPT, insert, make_row

TIMEZONE = ZoneInfo("Europe/Paris")
#: The module's frozen "now": 10:00 in Paris on 2026-03-10.
NOW = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.timezone.utc)
TODAY = NOW.astimezone(TIMEZONE).date()
PATHS = ("/pricing", f"/q/{XSS_SCRIPT}", f"/p/{XSS_IMG}")
#: Seeded days: 33 up to today, so three fall before the widget's 30.
SEEDED_DAYS = 33
TEMPLATE = "{{ analytics_widget(path=path) }}"


def seed_rows() -> list[dict[str, Any]]:
    """Pageviews of PATHS and of another page, and custom events on PATHS (not pageviews),
    a few visitors per day, at Paris times between 00:30 and 23:30 (yesterday's late ones
    are still yesterday in Paris, after 23:00 UTC); today's stop before NOW."""
    rows = []
    for back in range(SEEDED_DAYS):
        day = TODAY - dt.timedelta(days=back)
        for index, path in enumerate(PATHS):
            for visitor in range((back * 7 + index * 3) % 5):
                hour = (visitor * 5 + index + back) % 23
                local = dt.datetime.combine(day, dt.time(hour, 30), TIMEZONE)
                created = local.astimezone(dt.timezone.utc)
                if back == 0 and created >= NOW:
                    created = NOW - dt.timedelta(minutes=5 + visitor)
                naive = created.replace(tzinfo=None)
                visitor_id = 1000 * back + 10 * visitor + index
                for view in range(1 + visitor % 3):
                    rows.append(make_row(naive + dt.timedelta(seconds=view), visitor_id, path=path))
                rows.append(make_row(naive, visitor_id, path="/elsewhere"))
                rows.append(make_row(naive, visitor_id, name="signup", path=path))
    return rows


def independent_count(events: list[dict[str, Any]], path: str) -> dict[dt.date, tuple[int, int]]:
    """(visitors, pageviews) of ``path`` per Paris day of the last 30, from the raw rows."""
    visitors: dict[dt.date, set[int]] = defaultdict(set)
    pageviews: dict[dt.date, int] = defaultdict(int)
    for event in events:
        if event["name"] != "pageview" or event["path"] != path:
            continue
        day = event["created_at"].replace(tzinfo=dt.timezone.utc).astimezone(TIMEZONE).date()
        visitors[day].add(event["visitor_id"])
        pageviews[day] += 1
    days = [TODAY - dt.timedelta(days=back) for back in range(29, -1, -1)]
    return {day: (len(visitors[day]), pageviews[day]) for day in days}


@pytest.fixture(scope="module")
def frozen() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture(scope="module")
def widget_app(
    module_database_url: str, schemas: SchemaKeeper, frozen: None
) -> Iterator[tuple[Flask, list[dict[str, Any]]]]:
    """33 days of traffic; days before yesterday aggregated, yesterday and today live."""
    app, db = build_app(module_database_url, schemas, "widget", ANALYTICS_TIMEZONE="Europe/Paris")
    analytics: Analytics = app.extensions["analytics_test"]
    allowed = {"value": True}
    analytics.dashboard_access(lambda: allowed["value"])
    app.config["WIDGET_ALLOWED"] = allowed
    with app.app_context():
        insert(analytics, seed_rows())
        for back in range(2, SEEDED_DAYS):
            analytics.aggregate(TODAY - dt.timedelta(days=back))
        with db.engine.connect() as conn:
            events = [
                dict(r) for r in conn.execute(sa.select(analytics.Event.__table__)).mappings()
            ]
    yield app, events
    release_app(app, db, schemas)


def render(app: Flask, path: Any) -> str:
    with app.test_request_context("/cms/edit"):
        return render_template_string(TEMPLATE, path=path)


def shown(html: str) -> tuple[dict[dt.date, tuple[int, int]], tuple[int, int]]:
    """The widget's columns (day -> visitors, pageviews) and its two totals."""
    days = {
        dt.date.fromisoformat(day): (int(visitors), int(pageviews))
        for day, visitors, pageviews in re.findall(
            r'data-day="([^"]+)" data-visitors="(\d+)" data-pageviews="(\d+)"', html
        )
    }
    totals = dict(re.findall(r'<dd data-metric="(\w+)">([\d,]+)</dd>', html))
    return days, (
        int(totals["visitors"].replace(",", "")),
        int(totals["pageviews"].replace(",", "")),
    )


@pytest.mark.parametrize("path", PATHS)
def test_numbers_equal_a_count_of_the_raw_events(widget_app, path):
    app, events = widget_app
    expected = independent_count(events, path)
    days, totals = shown(render(app, path))
    assert days == expected
    assert totals == (
        sum(visitors for visitors, _ in expected.values()),
        sum(pageviews for _, pageviews in expected.values()),
    )
    assert totals[0] > 0
    # Live days (yesterday, today) and aggregated ones are both in.
    assert expected[TODAY][1] > 0 or expected[TODAY - dt.timedelta(days=1)][1] > 0


def test_a_page_without_visits_shows_zeros(widget_app):
    app, _ = widget_app
    days, totals = shown(render(app, "/never-visited"))
    assert len(days) == 30
    assert set(days.values()) == {(0, 0)}
    assert totals == (0, 0)


def test_columns_scale_to_the_busiest_day(widget_app):
    app, _ = widget_app
    html = render(app, "/pricing")
    heights = {
        int(visitors): float(height)
        for height, visitors in re.findall(
            r'height="([\d.]+)" data-day="[^"]+" data-visitors="(\d+)"', html
        )
    }
    top = max(heights)
    assert heights[top] == 40.0
    assert heights.get(0, 0.0) == 0.0


@pytest.mark.parametrize("callback", ["refuses", "missing"])
def test_a_viewer_the_access_callback_refuses_gets_nothing(widget_app, callback):
    app, _ = widget_app
    analytics: Analytics = app.extensions["analytics_test"]
    hooks = analytics.state(app).hooks
    saved = hooks.access
    app.config["WIDGET_ALLOWED"]["value"] = False
    if callback == "missing":
        hooks.access = None  # no callback at all: closed, as the dashboard is
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    with app.app_context():
        engine = analytics.db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        assert render(app, "/pricing") == ""
        assert statements == []  # nothing was even read
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
        app.config["WIDGET_ALLOWED"]["value"] = True
        hooks.access = saved
    assert render(app, "/pricing").startswith("<section")


class Elements(HTMLParser):
    """Every start tag and every attribute of a fragment."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += attrs


@pytest.mark.parametrize("path", [f"/q/{XSS_SCRIPT}", f"/p/{XSS_IMG}", "/a\"onmouseover='x'"])
def test_an_untrusted_path_stays_text(widget_app, path):
    app, _ = widget_app
    html = render(app, path)
    parser = Elements()
    parser.feed(html)
    assert set(parser.tags) <= {"section", "link", "p", "span", "code", "dl", "div", "dt", "dd",
                                "svg", "rect", "title", "a"}  # fmt: skip
    assert "script" not in parser.tags
    assert "img" not in parser.tags
    assert not [name for name, _ in parser.attributes if name.startswith("on") or name == "style"]
    # The path is shown as text, in the title attribute and in the details link.
    assert dict(parser.attributes)["title"] == path
    assert html.count("&lt;") >= path.count("<")


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("pricing", ValueError),
        ("", ValueError),
        ("/a\x00b", ValueError),
        ("/" + "a" * 3000, ValueError),
        (None, TypeError),
        (42, TypeError),
    ],
)
def test_a_path_that_is_not_a_page_path_is_refused(widget_app, path, error):
    app, _ = widget_app
    with pytest.raises(error, match="path must"):
        render(app, path)


def test_without_the_dashboard_the_widget_has_no_stylesheet_or_link(tmp_path, frozen):
    app = Flask("no_dashboard")
    app.config.update(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'plain.db'}")
    db = SQLAlchemy()
    db.init_app(app)
    analytics = Analytics(db=db, dashboard=False)
    analytics.init_app(app)
    analytics.dashboard_access(lambda: True)
    with app.app_context():
        db.create_all()
        insert(analytics, [make_row(NOW.replace(tzinfo=None) - dt.timedelta(hours=1), 1)])
    html = render(app, "/")
    assert "<link" not in html
    assert "<a " not in html
    assert shown(html)[1] == (1, 1)
    with app.app_context():
        db.engine.dispose()
