"""The full list of pages, a page at a time: the API's ``page=``/``offset=`` with a total,
CSV of the whole list or of one page, and the Pages screen's navigation, unfiltered
(rollups plus a live today) and filtered (raw path), on both databases.

Expected lists are computed here from the rows inserted, by the definitions (visitors:
distinct visitors with a pageview of the path per day, summed; order: visitors, then
path), not by the package.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import defaultdict
from collections.abc import Callable
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask

from flask_analytics import Analytics
from flask_analytics.core.clock import day_bounds
from flask_analytics.state import current_state

from ..clock import FrozenClock
from ..support.seeded_stats import insert, make_row

Row = dict[str, Any]


def build(app: Flask) -> tuple[list[Row], str]:
    """Pageviews of /a00../a39 on an aggregated day and /a30../a49 today (live), plus
    engagement-only rows (a path with no pageview is no row of the list); one
    pageview per visitor, Firefox for each path's first visitor. Returns the rows
    and the range's query string."""
    analytics: Analytics = app.extensions["analytics_test"]
    state = current_state(app)
    today = state.today()
    past = today - dt.timedelta(days=2)
    rows: list[Row] = []
    visitor = 0
    for day, paths, spread in ((past, range(40), 5), (today, range(30, 50), 3)):
        start, _ = day_bounds(state.settings.timezone, day)
        for i in paths:
            for n in range(1 + (i * 7) % spread):
                visitor += 1
                browser = "Firefox" if n == 0 else "Chrome"
                at = start + dt.timedelta(minutes=i, seconds=n)
                rows.append(make_row(at, visitor, path=f"/a{i:02d}", browser=browser))
        # Stored only on the past day, live only today: both sides must leave it out.
        rows.append(make_row(start, 999_999, name="engagement", path=f"/engaged-{day}"))
    with app.app_context():
        insert(analytics, rows)
        analytics.aggregate(past)
    return rows, f"start={past.isoformat()}&end={today.isoformat()}"


def expected(rows: list[Row], keep: Callable[[Row], bool] = lambda r: True) -> list[Row]:
    """The page list: paths with kept pageviews, visitors summed per day, in order."""
    visitors: dict[str, set[tuple[dt.date, int]]] = defaultdict(set)
    pageviews: dict[str, int] = defaultdict(int)
    for r in rows:
        if r["name"] == "pageview" and keep(r):
            visitors[r["path"]].add((r["created_at"].date(), r["visitor_id"]))
            pageviews[r["path"]] += 1
    listed = [
        {"page": p, "visitors": len(v), "pageviews": pageviews[p]} for p, v in visitors.items()
    ]
    return sorted(listed, key=lambda r: (-r["visitors"], r["page"]))


@pytest.fixture
def site(make_app: Any, frozen_clock: FrozenClock) -> tuple[Flask, list[Row], str]:
    app = make_app()
    app.extensions["analytics_test"].dashboard_access(lambda: True)
    rows, span = build(app)
    return app, rows, span


def shown(rows: list[Row]) -> list[tuple[str, int, int]]:
    return [(r["page"], r["visitors"], r["pageviews"]) for r in rows]


FILTERS: dict[str, Callable[[Row], bool]] = {
    "": lambda r: True,
    "&filter=page:matches:/a1*": lambda r: r["path"].startswith("/a1"),
    # A session filter: every visit here is one pageview, so its visitor's browser.
    "&filter=browser:is:Firefox": lambda r: r["browser"] == "Firefox",
}


@pytest.mark.parametrize("filtered", list(FILTERS), ids=["rollups", "page", "browser"])
def test_api_pages_add_up_to_the_whole_list(site, filtered):
    app, rows, span = site
    client = app.test_client()
    want = expected(rows, FILTERS[filtered])
    assert len(want) == {"": 50, "&filter=page:matches:/a1*": 10}.get(filtered, 50)
    url = f"/analytics/api/breakdown/page?{span}{filtered}"
    got: list[Row] = []
    for page in range(1, 10):
        response = client.get(f"{url}&limit=7&page={page}")
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        assert (body["total"], body["limit"], body["page"]) == (len(want), 7, page)
        assert body["offset"] == (page - 1) * 7
        assert response.headers["X-Total-Count"] == str(len(want))
        got += body["rows"]
    assert shown(got) == shown(want)  # pages past the end answer no rows
    by_offset = client.get(f"{url}&limit=4&offset=5").get_json()
    assert shown(by_offset["rows"]) == shown(want[5:9])
    assert (by_offset["offset"], by_offset["page"], by_offset["total"]) == (5, None, len(want))
    # Without page or offset: the first 100, as before.
    assert shown(client.get(url).get_json()["rows"]) == shown(want[:100])


def read_csv(response: Any) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_csv_is_the_whole_list_or_the_page_asked(site):
    app, rows, span = site
    client = app.test_client()
    want = expected(rows, FILTERS["&filter=browser:is:Firefox"])
    url = f"/analytics/api/breakdown/page?{span}&filter=browser:is:Firefox&format=csv"
    whole = client.get(url)
    table = read_csv(whole)
    assert table[0][:3] == ["page", "visitors", "pageviews"]
    assert [(r[0], int(r[1]), int(r[2])) for r in table[1:]] == shown(want)
    assert whole.headers["X-Total-Count"] == str(len(want))
    assert whole.headers["Content-Disposition"].endswith('.csv"')
    second = client.get(f"{url}&limit=10&page=2")
    assert [(r[0], int(r[1]), int(r[2])) for r in read_csv(second)[1:]] == shown(want[10:20])
    assert "-page2.csv" in second.headers["Content-Disposition"]
    unfiltered = read_csv(client.get(f"/analytics/api/breakdown/page?{span}&format=csv"))
    assert len(unfiltered) - 1 == len(expected(rows)) == 50


#: Bad page, offset and limit values and the 400 message each gets.
BAD_WINDOWS = [
    ("page=0", "page must be a whole number from 1 to"),
    ("page=-1", "page must be a whole number from 1 to"),
    ("page=abc", "page must be a whole number from 1 to"),
    ("page=99999999999", "page must be a whole number from 1 to"),
    ("limit=100&page=1000002", "page must be a whole number from 1 to 1,000,001"),
    ("offset=-3", "offset must be a whole number from 0 to 100,000,000"),
    ("offset=1e3", "offset must be a whole number from 0 to"),
    ("page=2&offset=10", "Give either page or offset, not both."),
    ("limit=0&page=2", "limit must be a whole number from 1 to"),
    ("format=csv&page=2", "page needs limit (rows per page)."),
]


def test_bad_page_values_answer_400(make_app):
    """Checked before any number is read: an app without data answers the same."""
    app = make_app()
    app.extensions["analytics_test"].dashboard_access(lambda: True)
    client = app.test_client()
    for query, message in BAD_WINDOWS:
        response = client.get(f"/analytics/api/breakdown/page?period=7d&{query}")
        assert response.status_code == 400, query
        assert message in response.get_json()["error"]
        if "format=csv" not in query:  # the screen has no CSV: page=2 is fine there
            screen = client.get(f"/analytics/pages?period=7d&{query}")
            assert screen.status_code == 400, query
            assert message in unescape(screen.get_data(as_text=True))


def page_rows(html: str) -> list[str]:
    """Keys of the page list's rows (the first panel of the Pages screen)."""
    panel = html.split('data-dimension="page"', 1)[1].split("</section>", 1)[0]
    return [unescape(k) for k in re.findall(r'<tr data-key="([^"]*)"', panel)]


def pager_links(html: str) -> dict[str, str]:
    nav = html.split("data-pager", 1)[1].split("</nav>", 1)[0]
    return {
        name: unescape(href)
        for href, name in re.findall(r'href="([^"]+)"[^>]*data-page-link="([^"]+)"', nav)
    }


def test_pages_screen_walks_the_list_keeping_every_parameter(site):
    app, rows, span = site
    client = app.test_client()
    want = [r["page"] for r in expected(rows, FILTERS["&filter=browser:is:Firefox"])]
    url = f"/analytics/pages?{span}&compare=none&filter=browser:is:Firefox&limit=10&page=2"
    html = client.get(url).get_data(as_text=True)
    assert page_rows(html) == want[10:20]
    assert "11&ndash;20 of 50 pages" in html
    assert 'aria-current="page">2</span>' in html
    links = pager_links(html)
    assert set(links) == {"previous", "next", "1", "3", "4", "5"}
    start, end = (value.split("=")[1] for value in span.split("&"))
    for href in links.values():
        params = parse_qs(urlsplit(href).query)
        assert params["filter"] == ["browser:is:Firefox"]
        assert (params["start"], params["end"]) == ([start], [end])
        assert (params["compare"], params["limit"]) == (["none"], ["10"])
    assert "page" not in parse_qs(urlsplit(links["1"]).query)  # page 1 is the bare URL
    walked: list[str] = []
    target: str | None = links["1"]
    while target is not None:
        page = client.get(target).get_data(as_text=True)
        walked += page_rows(page)
        target = pager_links(page).get("next")
    assert walked == want
    last = client.get(links["5"]).get_data(as_text=True)
    assert "41&ndash;50 of 50 pages" in last
    assert "next" not in pager_links(last)
    # Past the end: no rows, the navigation back.
    beyond = client.get(url.replace("page=2", "page=9")).get_data(as_text=True)
    assert page_rows(beyond) == []
    assert "No pages on this page of the list." in beyond
    assert parse_qs(urlsplit(pager_links(beyond)["previous"]).query)["page"] == ["5"]


def test_one_page_list_has_no_navigation(site):
    app, _rows, span = site
    html = app.test_client().get(f"/analytics/pages?{span}").get_data(as_text=True)
    assert len(page_rows(html)) == 25
    assert "data-pager" in html  # 50 pages at 25 a page
    small = app.test_client().get(f"/analytics/pages?{span}&filter=page:matches:/a1*")
    assert len(page_rows(small.get_data(as_text=True))) == 10
    assert "data-pager" not in small.get_data(as_text=True)
