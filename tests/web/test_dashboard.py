"""dashboard: access control, headers, query parsing, pages, JSON API and CSV.

Numbers shown by the pages, the API and the CSV exports are compared with an
independent computation from the raw events (``tests/support/reference.py`` rows summed over
the range, see ``test_stats``), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Mapping
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import pytest
import sqlalchemy as sa
from flask import Flask

from flask_analytics import Analytics
from flask_analytics.core.rollups import INTERNAL_EVENTS
from flask_analytics.reports import BREAKDOWNS, Breakdown, DateRange
from flask_analytics.state import current_state
from flask_analytics.web.dashboard import (
    CONTENT_SECURITY_POLICY,
    change,
    compact,
    csv_cell,
    duration,
    parse_query,
    preset_range,
)

from ..clock import FrozenClock
from ..conftest import custom_event_model, moments_ago
from ..support.seeded_stats import (
    TIMEZONE,
    Seeded,
    expected_breakdown,
    expected_totals,
    insert,
    make_row,
    seed,
)

PAGES = ["", "pages", "sources", "locations", "devices", "events", "engagement", "realtime"]


def every_url(prefix: str = "/analytics") -> list[str]:
    """Every dashboard URL: pages, page detail, API, CSV, static files."""
    urls = [f"{prefix}/{page}" for page in PAGES]
    urls += [
        f"{prefix}/pages/detail?path=/",
        f"{prefix}/api/stats",
        f"{prefix}/api/stats?format=csv",
        f"{prefix}/api/realtime",
        f"{prefix}/static/dashboard.css",
        f"{prefix}/static/dashboard.js",
    ]
    for name in BREAKDOWNS:
        urls += [f"{prefix}/api/breakdown/{name}", f"{prefix}/api/breakdown/{name}?format=csv"]
    return urls


def fetch(client: Any, url: str) -> Any:
    """GET ``url``, reading and closing the response (static files hold a file open)."""
    response = client.get(url)
    response.get_data()
    response.close()
    return response


def allow(analytics: Analytics, answer: bool = True) -> None:
    analytics.dashboard_access(lambda: answer)


class Page(HTMLParser):
    """Numbers a dashboard page shows: cards (data-metric/data-value) and breakdown
    tables (section[data-dimension] > tr[data-key] > td[data-col][data-value])."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.cards: dict[str, str] = {}
        self.tables: dict[str, dict[str, dict[str, str]]] = {}
        self._dimension: str | None = None
        self._depth = 0
        self._key: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "section":
            if "data-dimension" in a:
                self._dimension = a["data-dimension"]
                self.tables[self._dimension] = {}
                self._depth = 0
            self._depth += 1
        if "data-metric" in a and "data-value" in a:
            self.cards[a["data-metric"]] = a["data-value"]
        if self._dimension is None:
            return
        if tag == "tr" and "data-key" in a:
            self._key = a["data-key"]
            self.tables[self._dimension][self._key] = {}
        if tag == "td" and "data-col" in a and self._key is not None:
            self.tables[self._dimension][self._key][a["data-col"]] = a["data-value"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "section" and self._dimension is not None:
            self._depth -= 1
            if self._depth == 0:
                self._dimension = None
                self._key = None


def as_key(key: Any) -> str:
    return "" if key is None else str(key)


def check_table(
    shown: Mapping[str, Mapping[str, str]],
    expected: Mapping[Any, Mapping[str, int]],
    sort: str,
    limit: int,
) -> None:
    """A page's table shows the top ``limit`` keys with the reference's numbers."""
    by_key = {as_key(k): v for k, v in expected.items()}
    assert len(shown) == min(limit, len(by_key))
    for key, cells in shown.items():
        for col, value in cells.items():
            if col in by_key[key]:
                assert int(value) == by_key[key][col], (key, col)
    hidden = [v[sort] for k, v in by_key.items() if k not in shown]
    if hidden:
        assert min(int(c[sort]) for c in shown.values()) >= max(hidden)


@pytest.fixture
def paris_app(make_app: Any) -> Flask:
    app = make_app(ANALYTICS_TIMEZONE=TIMEZONE)
    allow(app.extensions["analytics_test"])
    return app


@pytest.fixture
def seeded(paris_app: Flask, frozen_clock: FrozenClock) -> Seeded:
    """The seeded data set, with time frozen while the test reads it: the app's "today"
    is the day the data was made for."""
    return seed(paris_app, paris_app.extensions["analytics_test"])


def range_query(rng: DateRange) -> str:
    return f"start={rng.start.isoformat()}&end={rng.end.isoformat()}"


# -- access control and headers ------------------------------------------------------------------


def test_every_url_is_closed_without_an_access_callback(client: Any) -> None:
    for url in every_url():
        response = fetch(client, url)
        assert response.status_code == 403, url
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, url


def test_every_url_is_closed_when_the_callback_refuses(client: Any, analytics: Analytics) -> None:
    allow(analytics, False)
    for url in every_url():
        assert fetch(client, url).status_code == 403, url


def test_every_url_opens_when_the_callback_allows(client: Any, analytics: Analytics) -> None:
    calls = []
    analytics.dashboard_access(lambda: calls.append(1) or True)
    for url in every_url():
        response = fetch(client, url)
        assert response.status_code == 200, url
        headers = response.headers
        assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert "script-src 'self';" in headers["Content-Security-Policy"]
        assert "unsafe-inline" not in headers["Content-Security-Policy"]
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "SAMEORIGIN"
        if "/static/" not in url:
            assert headers["Cache-Control"] == "no-store", url
    assert len(calls) == len(every_url())


def test_dashboard_url_follows_config(make_app: Any) -> None:
    app = make_app(ANALYTICS_DASHBOARD_URL="/admin/stats")
    client = app.test_client()
    assert client.get("/analytics/").status_code == 404
    assert client.get("/admin/stats/").status_code == 403
    allow(app.extensions["analytics_test"])
    for url in every_url("/admin/stats"):
        assert fetch(client, url).status_code == 200, url
    page = client.get("/admin/stats/").get_data(as_text=True)
    assert 'href="/admin/stats/static/dashboard.css' in page


def test_pages_have_no_inline_script_or_style(client: Any, analytics: Analytics) -> None:
    allow(analytics)
    for page in PAGES:
        html = client.get(f"/analytics/{page}").get_data(as_text=True)
        assert "<script>" not in html
        assert " style=" not in html
        assert "<style" not in html
        assert re.search(r"\son[a-z]+\s*=", html) is None, page


# -- query parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("period=fortnight", "period must be one of"),
        ("period=custom", "period=custom needs start and end"),
        ("start=2026-01-01", "start and end are both required"),
        ("start=2026-01-05&end=2026-01-01", "end must not be before start"),
        ("start=2026-02-30&end=2026-03-01", "is not a valid date"),
        ("start=01/02/2026&end=2026-03-01", "start must be a date as YYYY-MM-DD"),
        ("start=2026-01-01&end=2026-01-02&period=7d", "either a preset period or start and end"),
        ("start=1900-01-01&end=1900-01-02", "1971 or later"),
        ("start=2000-01-01&end=2026-01-01", "The range is too long"),
        ("compare=lastweek", "compare must be one of"),
        ("metric=revenue", "metric must be one of"),
        ("limit=0", "limit must be a whole number"),
        ("limit=abc", "limit must be a whole number"),
        ("format=xml", "format must be json or csv"),
        ("start=" + "9" * 5000 + "&end=2026-01-01", "start must be a date"),
    ],
)
def test_bad_parameters_answer_400_with_a_message(
    client: Any, analytics: Analytics, query: str, message: str
) -> None:
    allow(analytics)
    api = client.get(f"/analytics/api/breakdown/page?{query}")
    assert api.status_code == 400
    assert message in api.get_json()["error"]
    assert len(api.get_json()["error"]) < 200
    if "format" not in query:
        page = client.get(f"/analytics/pages?{query}")
        assert page.status_code == 400
        assert message in page.get_data(as_text=True).replace("&#39;", "'")


def test_unknown_dimension_is_404_with_the_list(client: Any, analytics: Analytics) -> None:
    allow(analytics)
    response = client.get("/analytics/api/breakdown/<script>")
    assert response.status_code == 404
    assert "utm_campaign" in response.get_json()["error"]


def test_page_detail_needs_a_path(client: Any, analytics: Analytics) -> None:
    allow(analytics)
    assert client.get("/analytics/pages/detail").status_code == 400
    assert client.get("/analytics/pages/detail?path=javascript:alert(1)").status_code == 400


def test_presets_and_query_round_trip() -> None:
    today = dt.date(2026, 3, 15)
    assert preset_range("today", today) == DateRange(today, today)
    assert preset_range("yesterday", today) == DateRange(dt.date(2026, 3, 14), dt.date(2026, 3, 14))
    assert preset_range("7d", today) == DateRange(dt.date(2026, 3, 9), today)
    assert preset_range("30d", today).days == 30
    assert preset_range("90d", today).days == 90
    assert preset_range("12mo", today) == DateRange(dt.date(2025, 4, 1), today)
    assert preset_range("12mo", dt.date(2026, 12, 5)).start == dt.date(2026, 1, 1)
    query = parse_query(
        {"start": "2026-01-01", "end": "2026-01-31", "compare": "year", "metric": "pageviews"},
        today,
    )
    assert query.period == "custom"
    assert query.comparison == DateRange(dt.date(2025, 1, 1), dt.date(2025, 1, 31))
    assert parse_query(query.params(), today) == query
    assert parse_query({}, today).range == preset_range("30d", today)
    assert parse_query({"compare": "none"}, today).comparison is None


def test_formatting_helpers() -> None:
    assert [compact(v) for v in (0, 999, 1000, 1234, 12_345, 1_234_567)] == [
        "0", "999", "1k", "1.2k", "12k", "1.2M",
    ]  # fmt: skip
    assert [duration(s) for s in (0, 42, 125, 3725)] == ["0s", "42s", "2m 05s", "1h 02m"]
    up = change("visitors", 150, 100)
    assert up is not None
    assert (up.text, up.direction, up.good) == ("50%", "up", True)
    worse = change("bounce_rate", 0.5, 0.4)
    assert worse is not None
    assert (worse.text, worse.direction, worse.good) == ("10 pp", "up", False)
    new = change("pageviews", 5, 0)
    assert new is not None
    assert new.text == "new"
    assert change("visitors", None, 3) is None


def test_csv_cells_never_start_a_formula() -> None:
    for dangerous in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"):
        assert csv_cell(dangerous) == "'" + dangerous
    assert csv_cell("/ok") == "/ok"
    assert csv_cell(-5) == -5
    assert csv_cell(None) == ""


# -- numbers: API, CSV, pages against the reference ---------------------------------------------


def totals_dict(totals: Any) -> dict[str, Any]:
    return totals.counts()


@pytest.mark.parametrize("which", ["aggregated day", "all days"])
def test_api_stats_match_reference(paris_app: Flask, seeded: Seeded, which: str) -> None:
    client = paris_app.test_client()
    rng = (
        DateRange(seeded.aggregated[0], seeded.aggregated[0])
        if which == "aggregated day"
        else DateRange(seeded.live_past, seeded.today)
    )
    expected = expected_totals(seeded, rng)
    previous = expected_totals(seeded, rng.previous())
    body = client.get(f"/analytics/api/stats?{range_query(rng)}").get_json()
    assert body["start"] == rng.start.isoformat()
    assert body["end"] == rng.end.isoformat()
    assert body["totals"] == expected.counts()
    assert body["rates"]["bounce_rate"] == pytest.approx(expected.bounces / expected.sessions)
    assert body["rates"]["views_per_session"] == pytest.approx(
        expected.pageviews / expected.sessions
    )
    assert body["rates"]["avg_visit_duration_s"] == pytest.approx(
        expected.total_duration_s / expected.sessions
    )
    assert body["previous"]["start"] == rng.previous().start.isoformat()
    assert body["previous"]["totals"] == previous.counts()
    assert body["timezone"] == TIMEZONE
    assert body["data_as_of"] is not None

    rows = list(
        csv.reader(
            io.StringIO(
                client.get(f"/analytics/api/stats?{range_query(rng)}&format=csv").get_data(
                    as_text=True
                )
            )
        )
    )
    header, current, before = rows
    assert header[:3] == ["period", "start", "end"]
    assert current[0] == "current"
    assert before[0] == "previous"
    for name, value in expected.counts().items():
        assert int(current[header.index(name)]) == value
    # CSV rates have 4 decimals (the JSON above is exact).
    assert current[header.index("bounce_rate")] == str(round(expected.bounce_rate, 4))
    for name, value in previous.counts().items():
        assert int(before[header.index(name)]) == value


def row_key(row: dict[str, Any], dimension: Breakdown) -> Any:
    """A breakdown row's key: with the parent's value first when the rows carry one."""
    if dimension.parent:
        return (row[dimension.parent], row[dimension.name])
    return row[dimension.name]


def test_api_breakdowns_match_reference_in_json_and_csv(paris_app: Flask, seeded: Seeded) -> None:
    client = paris_app.test_client()
    rng = DateRange(seeded.live_past, seeded.today)
    for name, dimension in BREAKDOWNS.items():
        expected = expected_breakdown(seeded, dimension, rng)
        body = client.get(f"/analytics/api/breakdown/{name}?{range_query(rng)}").get_json()
        assert body["dimension"] == name
        got = {
            row_key(row, dimension): {c: row[c] for c in dimension.counts} for row in body["rows"]
        }
        assert got == expected, name
        for row in body["rows"]:
            for rate in dimension.rates:
                assert set(row) >= {rate}
        response = client.get(f"/analytics/api/breakdown/{name}?{range_query(rng)}&format=csv")
        assert response.mimetype == "text/csv"
        assert "attachment" in response.headers["Content-Disposition"]
        reader = csv.DictReader(io.StringIO(response.get_data(as_text=True)))
        from_csv = {
            row_key({k: v or None for k, v in row.items()}, dimension): {
                c: int(row[c]) for c in dimension.counts
            }
            for row in reader
        }
        assert from_csv == {
            (("'" + k) if isinstance(k, str) and k[:1] in "=+-@" else k): v
            for k, v in expected.items()
        }, name


def test_api_breakdown_limit(paris_app: Flask, seeded: Seeded) -> None:
    client = paris_app.test_client()
    rng = DateRange(seeded.live_past, seeded.today)
    body = client.get(f"/analytics/api/breakdown/page?{range_query(rng)}&limit=2").get_json()
    assert len(body["rows"]) == 2
    assert body["limit"] == 2


@pytest.mark.usefixtures("frozen_clock")  # "today" below is the rows' day
def test_csv_export_defuses_formulas(paris_app: Flask) -> None:
    analytics: Analytics = paris_app.extensions["analytics_test"]
    state = current_state(paris_app)
    now = moments_ago(paris_app, 60)
    rows = [
        make_row(now, 1, utm_source="=cmd|' /C calc'!A0", source="-2+3"),
        make_row(now, 1, name="@SUM(A1)"),
        make_row(now, 1, name="+1"),
    ]
    with paris_app.app_context():
        insert(analytics, rows)
    today = state.today().isoformat()
    client = paris_app.test_client()

    def cells(dimension: str) -> list[str]:
        url = f"/analytics/api/breakdown/{dimension}?start={today}&end={today}&format=csv"
        text = client.get(url).get_data(as_text=True)
        return [row[0] for row in csv.reader(io.StringIO(text))][1:]

    assert cells("utm_source") == ["'=cmd|' /C calc'!A0"]
    assert cells("source") == ["'-2+3"]
    assert sorted(cells("event")) == ["'+1", "'@SUM(A1)"]
    # JSON is data, not a spreadsheet: values stay as they are.
    body = client.get(f"/analytics/api/breakdown/source?start={today}&end={today}").get_json()
    assert body["rows"][0]["source"] == "-2+3"


def test_overview_shows_reference_numbers(paris_app: Flask, seeded: Seeded) -> None:
    client = paris_app.test_client()
    for rng in (
        DateRange(seeded.aggregated[1], seeded.aggregated[1]),
        DateRange(seeded.live_past, seeded.today),
    ):
        html = client.get(f"/analytics/?{range_query(rng)}").get_data(as_text=True)
        page = Page(html)
        expected = expected_totals(seeded, rng)
        for name in ("visitors", "sessions", "pageviews"):
            assert int(page.cards[name]) == getattr(expected, name), name
        assert float(page.cards["bounce_rate"]) == pytest.approx(expected.bounce_rate)
        assert float(page.cards["views_per_session"]) == pytest.approx(expected.views_per_session)
        assert float(page.cards["avg_visit_duration_s"]) == pytest.approx(
            expected.avg_visit_duration_s
        )
        for name in ("page", "source", "country", "device_type"):
            dimension = BREAKDOWNS[name]
            check_table(
                page.tables[name], expected_breakdown(seeded, dimension, rng), dimension.sort, 8
            )
        assert "<svg" in html
        assert "<title>" in html


def test_sub_pages_show_reference_numbers(paris_app: Flask, seeded: Seeded) -> None:
    client = paris_app.test_client()
    rng = DateRange(seeded.live_past, seeded.today)
    q = range_query(rng)
    checks = {
        "pages": ["page", "entry_page", "exit_page"],
        "sources": ["channel", "source", "referrer", "utm_source", "utm_medium", "utm_campaign"],
        "locations": ["country"],
        "devices": ["device_type", "browser", "os"],
    }
    limits = {"pages": 25, "sources": 10, "locations": 50, "devices": 10}
    for endpoint, names in checks.items():
        page = Page(client.get(f"/analytics/{endpoint}?{q}").get_data(as_text=True))
        for name in names:
            dimension = BREAKDOWNS[name]
            check_table(
                page.tables[name],
                expected_breakdown(seeded, dimension, rng),
                dimension.sort,
                limits[endpoint],
            )
    events = Page(client.get(f"/analytics/events?{q}").get_data(as_text=True))
    dimension = BREAKDOWNS["event"]
    check_table(
        events.tables["event"],
        expected_breakdown(seeded, dimension, rng, exclude=INTERNAL_EVENTS),
        "visitors",
        50,
    )
    assert set(events.tables["internal_event"]) == {"engagement"}


def test_page_detail_shows_reference_numbers(paris_app: Flask, seeded: Seeded) -> None:
    client = paris_app.test_client()
    rng = DateRange(seeded.live_past, seeded.today)
    expected = expected_breakdown(seeded, BREAKDOWNS["page"], rng)["/pricing"]
    page = Page(
        client.get(f"/analytics/pages/detail?path=/pricing&{range_query(rng)}").get_data(
            as_text=True
        )
    )
    for name in ("visitors", "pageviews", "entries", "exits"):
        assert int(page.cards[name]) == expected[name], name
    assert float(page.cards["exit_rate"]) == pytest.approx(
        expected["exits"] / expected["pageviews"]
    )
    referrers = page.tables["page_referrer"]
    assert sum(int(c["pageviews"]) for c in referrers.values()) == expected["pageviews"]


def test_engagement_histograms_show_reference_numbers(paris_app: Flask, seeded: Seeded) -> None:
    client = paris_app.test_client()
    rng = DateRange(seeded.live_past, seeded.today)
    html = client.get(f"/analytics/engagement?{range_query(rng)}").get_data(as_text=True)
    expected = expected_totals(seeded, rng)
    page = Page(html)
    assert int(page.cards["sessions"]) == expected.sessions
    # Each histogram's visits add up to the period's visits.
    for histogram in ("duration", "pages"):
        part = html.split(f'data-histogram="{histogram}"')[1].split("</section>")[0]
        values = [
            int(v)
            for v in part.split('data-col="sessions" data-value="')[1:]
            for v in [v.split('"')[0]]
        ]
        assert sum(values) == expected.sessions, histogram


@pytest.mark.clock
def test_realtime_page_shows_live_numbers(paris_app: Flask, seeded: Seeded) -> None:
    client = paris_app.test_client()
    page = Page(client.get("/analytics/realtime").get_data(as_text=True))
    today = DateRange(seeded.today, seeded.today)
    expected = expected_totals(seeded, today)
    assert int(page.cards["visitors"]) == expected.visitors
    assert int(page.cards["pageviews"]) == expected.pageviews
    assert int(page.cards["realtime_pageviews"]) == 4
    body = client.get("/analytics/api/realtime").get_json()
    assert body["visitors"] == 3
    assert len(body["minutes"]) == 30


def test_data_as_of_is_shown(paris_app: Flask, seeded: Seeded) -> None:
    """The label comes with the time the latest aggregation run finished, in the site's
    time zone (read here from the runs table, not from the dashboard's code)."""
    analytics: Analytics = paris_app.extensions["analytics_test"]
    runs = analytics.AggregationRun.__table__
    with paris_app.app_context(), analytics.db.engine.connect() as conn:
        finished = conn.scalar(sa.select(sa.func.max(runs.c.finished_at)))
    assert finished is not None  # seed() aggregated days
    local = finished.replace(tzinfo=dt.timezone.utc).astimezone(ZoneInfo(TIMEZONE))
    shown = f"{local.day} {local.strftime('%b %Y, %H:%M')}"
    client = paris_app.test_client()
    html = client.get("/analytics/").get_data(as_text=True)
    assert f'Data as of <time datetime="{local.isoformat()}" data-as-of>{shown}</time>' in html
    as_of = client.get("/analytics/api/stats").get_json()["data_as_of"]
    assert as_of == finished.isoformat() + "Z"


def test_links_keep_the_period_and_comparison(paris_app: Flask) -> None:
    client = paris_app.test_client()
    html = client.get("/analytics/?start=2026-01-01&end=2026-01-31&compare=year").get_data(
        as_text=True
    )
    assert (
        'href="/analytics/pages?period=custom&amp;start=2026-01-01&amp;end=2026-01-31&amp;compare=year"'
        in html
    )
    assert "metric=pageviews" in html
    assert "1 Jan \N{EN DASH} 31 Jan 2026" in html
    # Previous period arrow: the 31 days before.
    assert "start=2025-12-01&amp;end=2025-12-31" in html


def test_metric_switch_changes_the_chart(paris_app: Flask, seeded: Seeded) -> None:
    client = paris_app.test_client()
    rng = DateRange(seeded.live_past, seeded.today)
    html = client.get(f"/analytics/?{range_query(rng)}&metric=pageviews").get_data(as_text=True)
    assert 'class="fa-kpi is-active" href="/analytics/?period=custom' in html
    assert 'data-metric="pageviews"' in html.split("is-active")[1][:400]
    day = seeded.aggregated[0]
    views = expected_totals(seeded, DateRange(day, day)).pageviews
    assert f"{day.day} {day.strftime('%b %Y')}: {views} pageviews" in html


# -- templates ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("frozen_clock")  # the row stays in "today"
def test_host_base_template_wraps_the_dashboard(make_app: Any) -> None:
    app = make_app(ANALYTICS_BASE_TEMPLATE="host/admin.html")
    allow(app.extensions["analytics_test"])
    host = jinja2.DictLoader(
        {
            "host/admin.html": (
                "<html><head>{% include 'analytics/_assets.html' %}</head><body>"
                "<nav id='host-nav'>Host admin</nav>"
                "{% block body %}<div class='fa'>{% include 'analytics/_header.html' %}"
                "{% block analytics_content %}{% endblock %}</div>{% endblock %}</body></html>"
            ),
            "analytics/_countries.html": (
                "{% macro country_name(code) %}Pays {{ code }}{% endmacro %}"
            ),
        }
    )
    app.jinja_env.loader = jinja2.ChoiceLoader([host, app.jinja_env.loader])  # type: ignore[list-item]
    analytics: Analytics = app.extensions["analytics_test"]
    now = moments_ago(app, 60)
    with app.app_context():
        insert(analytics, [make_row(now, 1, country="FR")])
    client = app.test_client()
    for page in PAGES:
        html = client.get(f"/analytics/{page}").get_data(as_text=True)
        assert "id='host-nav'" in html, page
        assert "fa-tabs" in html, page
    html = client.get("/analytics/locations?period=today").get_data(as_text=True)
    # The host's country name labels the row of the one event inserted above: its numbers.
    row = re.search(r'<tr data-key="FR">(.*?)</tr>', html, re.DOTALL)
    assert row is not None
    assert "Pays FR" in row.group(1)
    one = {"visitors": "1", "sessions": "1", "pageviews": "1"}
    assert Page(html).tables["country"] == {"FR": one}


def today_visitors(client: Any) -> int:
    body = client.get("/analytics/api/stats?period=today").get_json()
    visitors: int = body["totals"]["visitors"]
    return visitors


@pytest.mark.clock
@pytest.mark.parametrize(("ttl", "fresh"), [(0, True), (3600, False)])
def test_todays_numbers_are_reused_for_the_live_ttl(make_app: Any, ttl: int, fresh: bool) -> None:
    app = make_app(ANALYTICS_DASHBOARD_LIVE_TTL=ttl)
    analytics: Analytics = app.extensions["analytics_test"]
    allow(analytics)
    client = app.test_client()
    now = moments_ago(app, 5)
    with app.app_context():
        insert(analytics, [make_row(now, 1)])
        assert today_visitors(client) == 1
        insert(analytics, [make_row(now, 2)])
        assert today_visitors(client) == (2 if fresh else 1)
        # The realtime count never waits for the cache.
        assert client.get("/analytics/api/realtime").get_json()["visitors"] == 2


@pytest.mark.parametrize(
    ("setting", "sent"),
    [
        (None, CONTENT_SECURITY_POLICY),
        ("default-src 'self' cdn.example", "default-src 'self' cdn.example"),
        ("", None),
    ],
)
def test_csp_can_be_replaced_for_host_chrome(make_app: Any, setting: Any, sent: Any) -> None:
    app = make_app(ANALYTICS_DASHBOARD_CSP=setting)
    allow(app.extensions["analytics_test"])
    response = app.test_client().get("/analytics/")
    assert response.headers.get("Content-Security-Policy") == sent
    assert response.headers["Referrer-Policy"] == "no-referrer"


# -- custom dimensions ----------------------------------------------------------------------------


@pytest.mark.usefixtures("frozen_clock")  # the rows stay in "today"
def test_custom_dimension_panel_api_and_csv_match_raw_events(make_app: Any) -> None:
    app = make_app(event_model=custom_event_model)
    analytics: Analytics = app.extensions["analytics_test"]
    analytics.dimension("plan", label="Plan")
    allow(analytics)
    state = current_state(app)
    now = moments_ago(app, 60)
    today = state.local_date(now)
    yesterday = dt.datetime.combine(today - dt.timedelta(days=1), dt.time(12))
    plans = ["pro", "free", "pro", None, "<b>team</b>", "pro"]
    rows = []
    for day_start in (yesterday, now):
        for i, plan in enumerate(plans):
            rows.append(make_row(day_start, 10 + i % 4, plan=plan, name="pageview"))
            rows.append(make_row(day_start, 10 + i % 4, plan=plan, name="signup"))
    with app.app_context():
        insert(analytics, rows)
        analytics.aggregate(today - dt.timedelta(days=1))
    # Independent count: per day, distinct visitors per value; then summed over days.
    expected: dict[Any, dict[str, int]] = {}
    for day_start in (yesterday, now):
        day_rows = [r for r in rows if r["created_at"] == day_start]
        for plan in {r["plan"] for r in day_rows}:
            of_plan = [r for r in day_rows if r["plan"] == plan]
            counts = expected.setdefault(plan, {"visitors": 0, "pageviews": 0, "events": 0})
            counts["visitors"] += len({r["visitor_id"] for r in of_plan})
            counts["pageviews"] += sum(r["name"] == "pageview" for r in of_plan)
            counts["events"] += sum(r["name"] != "pageview" for r in of_plan)
    client = app.test_client()
    q = f"start={today - dt.timedelta(days=1)}&end={today}"
    body = client.get(f"/analytics/api/breakdown/plan?{q}").get_json()
    assert {
        r["plan"]: {k: r[k] for k in ("visitors", "pageviews", "events")} for r in body["rows"]
    } == expected
    text = client.get(f"/analytics/api/breakdown/plan?{q}&format=csv").get_data(as_text=True)
    from_csv = {
        (r["plan"] or None): {k: int(r[k]) for k in ("visitors", "pageviews", "events")}
        for r in csv.DictReader(io.StringIO(text))
    }
    assert from_csv == expected
    html = client.get(f"/analytics/events?{q}").get_data(as_text=True)
    assert "&lt;b&gt;team&lt;/b&gt;" in html
    assert "<b>team</b>" not in html
    check_table(Page(html).tables["custom:plan"], expected, "visitors", 50)
    missing = client.get("/analytics/api/breakdown/nope").get_json()["error"]
    assert "plan" in missing
