"""dashboard filters: links carry them, chips and row links, the suggest endpoint, 400s.

Pages, API and CSV under ``filter=DIMENSION:OP:VALUE`` (Flask test client, SQLite and
PostgreSQL). Filtered numbers are checked against ``tests/support/filter_reference.py``
(DESIGN.md's filter definition in plain Python).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask import Flask

from flask_analytics import Analytics
from flask_analytics.reports import BREAKDOWNS, DateRange
from flask_analytics.reports.filters import NONE_VALUE

from ..clock import FrozenClock
from ..support.filter_reference import FilterSpec, Row, filtered_range, summed
from ..support.seeded_stats import (
    TIMEOUT,
    TIMEZONE,
    XSS_IMG,
    XSS_SCRIPT,
    Seeded,
    expected_breakdown,
    expected_totals,
    seed,
)

# -- fixtures and the filtered reference ------------------------------------------------------


@pytest.fixture
def paris_app(make_app: Any) -> Flask:
    app = make_app(ANALYTICS_TIMEZONE=TIMEZONE)
    app.extensions["analytics_test"].dashboard_access(lambda: True)
    return app


@pytest.fixture
def seeded(paris_app: Flask, frozen_clock: FrozenClock) -> Seeded:
    """The seeded data set, time frozen while the test reads it."""
    return seed(paris_app, paris_app.extensions["analytics_test"])


def whole_range(seeded: Seeded) -> DateRange:
    return DateRange(seeded.days[0], seeded.today)


def range_args(rng: DateRange) -> dict[str, str]:
    return {"start": rng.start.isoformat(), "end": rng.end.isoformat()}


def query(rng: DateRange, filters: Iterable[str] = (), **params: str) -> str:
    return urlencode([*range_args(rng).items(), *params.items(), *(("filter", f) for f in filters)])


def reference(seeded: Seeded, rng: DateRange, *filters: FilterSpec) -> dict[str, list[Row]]:
    """The reference's virtual daily rows of ``rng`` under ``filters``."""
    return filtered_range(seeded.events, rng.dates(), seeded.tz, TIMEOUT, filters)


def reference_totals(rows: Mapping[str, list[Row]]) -> dict[str, int]:
    (sums,) = summed(rows["DailySummary"], (), ("visitors", "sessions", "pageviews")).values()
    return sums


def reference_breakdown(
    rows: Mapping[str, list[Row]], table: str, key: str, count: str
) -> dict[Any, int]:
    """``count`` per value of ``key`` (rows whose count is zero left out, as the
    breakdowns of pages do)."""
    sums = summed(rows[table], (key,), (count,))
    return {k[0]: v[count] for k, v in sums.items() if v[count] > 0}


# -- reading pages ------------------------------------------------------------------------


class Parsed(HTMLParser):
    """Links, hidden inputs, chips, notices and card values of a dashboard page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.links: list[dict[str, str]] = []
        self.inputs: list[dict[str, str]] = []
        self.cards: dict[str, str] = {}
        self.texts: dict[str, list[str]] = {}
        self._capture: list[tuple[str, str, list[str]]] = []
        self._section: str | None = None
        self._form = ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "section" and "data-dimension" in a:
            self._section = a["data-dimension"]
        if tag == "a":
            self.links.append({**a, "section": self._section or ""})
        if tag == "form":
            self._form = a.get("class", "")
        if tag == "input" and a.get("type") == "hidden":
            self.inputs.append({**a, "form": self._form})
        if "data-metric" in a and "data-value" in a:
            self.cards[a["data-metric"]] = a["data-value"]
        classes = a.get("class", "").split()
        for name in ("fa-chip__label", "fa-filtered", "fa-error__message"):
            if name in classes:
                self._capture.append((name, tag, []))

    def handle_endtag(self, tag: str) -> None:
        if self._capture and self._capture[-1][1] == tag:
            name, _, parts = self._capture.pop()
            self.texts.setdefault(name, []).append(" ".join("".join(parts).split()))
        if tag == "section":
            self._section = None

    def handle_data(self, data: str) -> None:
        for _, _, parts in self._capture:
            parts.append(data)

    def by_class(self, name: str) -> list[dict[str, str]]:
        return [link for link in self.links if name in link.get("class", "").split()]

    def row_links(self, section: str) -> list[dict[str, str]]:
        return [x for x in self.links if "data-filter-link" in x and x["section"] == section]


def params(href: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(href).query)


def numbers(cards: Mapping[str, str]) -> dict[str, int]:
    return {name: int(cards[name]) for name in ("visitors", "sessions", "pageviews")}


# -- links carry the filters ----------------------------------------------------------------


def test_every_link_keeps_the_filters(paris_app: Flask, seeded: Seeded) -> None:
    rng = whole_range(seeded)
    filters = ["source:is:Google", "country:is:FR"]
    client = paris_app.test_client()
    html = client.get(f"/analytics/?{query(rng, filters, compare='year', metric='pageviews')}")
    assert html.status_code == 200
    page = Parsed(html.get_data(as_text=True))
    special = {"fa-chip__remove", "fa-chip-clear"}
    plain = [
        x
        for x in page.links
        if "data-filter-link" not in x and not special & set(x.get("class", "").split())
    ]
    targets = set()
    compares = set()
    for link in plain:
        found = params(link["href"])
        assert found["filter"] == filters, link
        if found["compare"] != ["year"]:  # the comparison menu's own links
            compares.add(found["compare"][0])
        targets.add(urlsplit(link["href"]).path)
    assert compares == {"previous", "none"}
    # Tabs (realtime too), API/CSV, the page detail of a row, next/previous period.
    for path in ("pages", "sources", "locations", "devices", "events", "engagement", "realtime"):
        assert f"/analytics/{path}" in targets, path
    assert {"/analytics/api/breakdown/page", "/analytics/pages/detail"} <= targets
    csv_links = [x for x in plain if "format=csv" in x["href"]]
    assert len(csv_links) == 4
    periods = [x for x in plain if params(x["href"]).get("period", ["custom"])[0] == "7d"]
    assert periods, "the period menu links"
    assert any(x.get("title") == "Previous period" for x in plain)
    # The custom range form carries everything but the range, filters repeated.
    fields = [(i["name"], i["value"]) for i in page.inputs if i["form"] == "fa-custom"]
    assert fields == [
        ("compare", "year"),
        ("metric", "pageviews"),
        ("filter", filters[0]),
        ("filter", filters[1]),
    ]
    # The filter menu's form carries the whole view, each filter with its dimension.
    menu = [i for i in page.inputs if i["form"] == "fa-filterform"]
    assert [(i["name"], i["value"], i.get("data-filter-dimension")) for i in menu] == [
        ("period", "custom", None),
        ("start", rng.start.isoformat(), None),
        ("end", rng.end.isoformat(), None),
        ("compare", "year", None),
        ("metric", "pageviews", None),
        ("filter", filters[0], "source"),
        ("filter", filters[1], "country"),
    ]


def test_rows_add_their_filter_and_chips_remove_them(paris_app: Flask, seeded: Seeded) -> None:
    rng = whole_range(seeded)
    client = paris_app.test_client()
    html = client.get(f"/analytics/?{query(rng, ['country:is:FR'])}").get_data(as_text=True)
    page = Parsed(html)
    in_fr = reference(seeded, rng, ("country", "is", ("FR",)))
    # Source rows: the country filter stays, the row's source is added; Direct is (none).
    sources = reference_breakdown(in_fr, "DailyTrafficSource", "source", "sessions")
    rows = page.row_links("source")
    assert len(rows) == min(8, len(sources))
    added = {params(x["href"])["filter"][1] for x in rows}
    assert added <= {f"source:is:{NONE_VALUE if k is None else k}" for k in sources}
    assert "source:is:(none)" in added  # Direct traffic is among the FR top sources
    assert all(params(x["href"])["filter"][0] == "country:is:FR" for x in rows)
    # The country panel shows the filtered row only; its link keeps the one filter.
    (country,) = page.row_links("country")
    assert params(country["href"])["filter"] == ["country:is:FR"]
    assert country.get("aria-current") == "true"
    # Page rows filter on the page; a separate link opens the page's detail, filtered.
    for link in page.row_links("page"):
        path = params(link["href"])["filter"][1].removeprefix("page:is:")
        details = [
            x for x in page.by_class("fa-key__detail") if params(x["href"])["path"] == [path]
        ]
        assert len(details) == 1, path
        assert params(details[0]["href"])["filter"] == ["country:is:FR"]
        assert urlsplit(details[0]["href"]).path == "/analytics/pages/detail"
    # Replacing a filter on the same dimension: a source row under a source filter.
    html = client.get(f"/analytics/sources?{query(rng, ['source:is:Google'])}")
    page = Parsed(html.get_data(as_text=True))
    for link in page.row_links("channel"):
        assert params(link["href"])["filter"][0] == "source:is:Google"
    (google,) = page.row_links("source")
    assert params(google["href"])["filter"] == ["source:is:Google"]
    # Chips: one each, removing one keeps the other, clear all keeps the period.
    two = ["source:is:Google", "country:is:FR"]
    page = Parsed(client.get(f"/analytics/devices?{query(rng, two)}").get_data(as_text=True))
    assert page.texts["fa-chip__label"] == ["Source is Google", "Country is FR"]
    removes = page.by_class("fa-chip__remove")
    assert [params(x["href"]).get("filter") for x in removes] == [[two[1]], [two[0]]]
    assert all(urlsplit(x["href"]).path == "/analytics/devices" for x in removes)
    (clear,) = page.by_class("fa-chip-clear")
    assert "filter" not in params(clear["href"])
    assert params(clear["href"])["start"] == [rng.start.isoformat()]
    assert page.texts["fa-filtered"] == [
        "Filtered: Source is Google · Country is FR · numbers read from raw events"
    ]


def test_unfiltered_pages_show_no_chip_or_notice(paris_app: Flask, seeded: Seeded) -> None:
    html = paris_app.test_client().get(f"/analytics/?{query(whole_range(seeded))}")
    page = Parsed(html.get_data(as_text=True))
    assert "fa-chip__label" not in page.texts
    assert "fa-filtered" not in page.texts
    assert not page.by_class("fa-chip-clear")


def test_filter_values_are_escaped(paris_app: Flask, seeded: Seeded) -> None:
    filters = [f"source:is:{XSS_SCRIPT}", f"page:contains:/p/{XSS_IMG}"]
    client = paris_app.test_client()
    for path in ("", "pages", "pages/detail", "realtime"):
        args = query(whole_range(seeded), filters, **({"path": "/"} if path else {}))
        response = client.get(f"/analytics/{path}?{args}")
        assert response.status_code == 200, path
        html = response.get_data(as_text=True)
        assert "<script>alert" not in html, path
        assert "<img src=x" not in html, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
        page = Parsed(html)
        notice = page.texts["fa-filtered"][0]
        assert f"Source is {XSS_SCRIPT}" in notice, path
        assert f"Page contains /p/{XSS_IMG}" in notice, path
        if path != "realtime":
            labels = page.texts["fa-chip__label"]
            assert labels == [f"Source is {XSS_SCRIPT}", f"Page contains /p/{XSS_IMG}"]
            removes = page.by_class("fa-chip__remove")
            assert params(removes[0]["href"])["filter"] == [filters[1]]


# -- numbers ---------------------------------------------------------------------------------


def test_filtered_pages_api_and_csv_equal_the_reference(paris_app: Flask, seeded: Seeded) -> None:
    rng = whole_range(seeded)
    client = paris_app.test_client()
    google = reference(seeded, rng, ("source", "is", ("Google",)))
    expected = reference_totals(google)
    assert 0 < expected["sessions"] < expected_totals(seeded, rng).sessions
    args = query(rng, ["source:is:Google"])
    page = Parsed(client.get(f"/analytics/?{args}").get_data(as_text=True))
    assert numbers(page.cards) == expected
    api = client.get(f"/analytics/api/stats?{args}").get_json()
    assert api["filters"] == ["source:is:Google"]
    assert numbers(api["totals"]) == expected
    # The CSV of pages holds the pages of Google visits only, with their numbers.
    body = client.get(f"/analytics/api/breakdown/page?format=csv&{args}").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(body)))
    pages = reference_breakdown(google, "DailyPage", "path", "pageviews")
    assert {r["page"]: int(r["pageviews"]) for r in rows} == pages
    # An event filter: the page's own pageviews and visitors.
    args = query(rng, ["page:is:/pricing"])
    page = Parsed(client.get(f"/analytics/?{args}").get_data(as_text=True))
    want = reference_totals(reference(seeded, rng, ("page", "is", ("/pricing",))))
    assert 0 < want["pageviews"] < expected_totals(seeded, rng).pageviews
    assert numbers(page.cards) == want


def test_realtime_stays_unfiltered_and_says_so(paris_app: Flask, seeded: Seeded) -> None:
    client = paris_app.test_client()
    html = client.get("/analytics/realtime?filter=source:is:Google").get_data(as_text=True)
    page = Parsed(html)
    today = expected_totals(seeded, DateRange(seeded.today, seeded.today))
    assert int(page.cards["visitors"]) == today.visitors
    assert page.texts["fa-filtered"][0].startswith("Realtime is not filtered:")
    assert "Source is Google" in page.texts["fa-filtered"][0]
    tabs = [x for x in page.links if urlsplit(x["href"]).path == "/analytics/pages"]
    assert tabs
    assert all(params(x["href"])["filter"] == ["source:is:Google"] for x in tabs)
    # Its rows open today's overview filtered on them.
    rows = page.row_links("realtime_page")
    assert rows
    for link in rows:
        assert urlsplit(link["href"]).path == "/analytics/"
        assert params(link["href"])["period"] == ["today"]
        assert params(link["href"])["filter"][0] == "source:is:Google"
        assert params(link["href"])["filter"][1].startswith("page:is:/")
    # Without filters, no notice.
    assert (
        "fa-filtered" not in Parsed(client.get("/analytics/realtime").get_data(as_text=True)).texts
    )


# -- the suggest endpoint ----------------------------------------------------------------------


def ranked(expected: Mapping[Any, Mapping[str, int]], count: str) -> list[tuple[str, int]]:
    return [(NONE_VALUE if k is None else k, v[count]) for k, v in expected.items()]


def test_suggest_answers_the_top_matching_values(paris_app: Flask, seeded: Seeded) -> None:
    rng = whole_range(seeded)
    client = paris_app.test_client()
    body = client.get(f"/analytics/api/suggest/source?{query(rng)}").get_json()
    everything = ranked(expected_breakdown(seeded, BREAKDOWNS["source"], rng), "sessions")
    got = [(v["value"], v["sessions"]) for v in body["values"]]
    assert body["counted"] == "sessions"
    assert len(got) == min(10, len(everything))
    assert set(got) <= set(everything)
    assert [n for _, n in got] == sorted((n for _, n in everything), reverse=True)[: len(got)]
    # q matches any case; the filter on the same dimension is left out, others apply.
    rows = reference(seeded, rng, ("country", "is", ("FR",)))
    in_fr = [
        (NONE_VALUE if k is None else k, n)
        for k, n in reference_breakdown(rows, "DailyTrafficSource", "source", "sessions").items()
    ]
    args = query(rng, ["source:is:Google", "country:is:FR"], q="GO")
    body = client.get(f"/analytics/api/suggest/source?{args}").get_json()
    assert body["filters"] == ["country:is:FR"]
    want = {(k, n) for k, n in in_fr if "go" in k.casefold()}
    assert {"Google", "DuckDuckGo"} <= {k for k, _ in want}
    assert {(v["value"], v["sessions"]) for v in body["values"]} == want
    # Unknown values are offered as (none): direct traffic has no source.
    body = client.get(f"/analytics/api/suggest/source?{query(rng, q='(NONE')}").get_json()
    assert [v["value"] for v in body["values"]] == [NONE_VALUE]
    # Pages, with a limit.
    body = client.get(f"/analytics/api/suggest/page?{query(rng, q='/', limit='3')}").get_json()
    pages = ranked(expected_breakdown(seeded, BREAKDOWNS["page"], rng), "visitors")
    assert len(body["values"]) == 3
    assert {(v["value"], v["visitors"]) for v in body["values"]} <= set(pages)


def test_suggest_without_values_and_bad_requests(paris_app: Flask, seeded: Seeded) -> None:
    client = paris_app.test_client()
    args = query(whole_range(seeded))
    response = client.get(f"/analytics/api/suggest/utm_term?{args}")
    assert response.status_code == 200
    assert response.get_json()["values"] == []  # no visit carries one
    hosts = {e["hostname"] for e in seeded.events}
    response = client.get(f"/analytics/api/suggest/hostname?{args}")
    assert [v["value"] for v in response.get_json()["values"]] == sorted(hosts)
    # A property's values come from its breakdown (the seeded custom events carry plan).
    plans = client.get(f"/analytics/api/suggest/prop:plan?{args}&q=pr").get_json()["values"]
    assert [v["value"] for v in plans] == ["pro"]
    response = client.get(f"/analytics/api/suggest/nope?{args}")
    assert response.status_code == 404
    assert "Unknown filter dimension 'nope'" in response.get_json()["error"]
    response = client.get(f"/analytics/api/suggest/source?{args}&filter=source:sorta:x")
    assert response.status_code == 400
    assert "needs an operator" in response.get_json()["error"]
    response = client.get(f"/analytics/api/suggest/source?{args}&q={'x' * 2001}")
    assert response.status_code == 400


def test_suggest_is_closed_without_access(client: Any, analytics: Analytics) -> None:
    assert client.get("/analytics/api/suggest/source").status_code == 403
    analytics.dashboard_access(lambda: False)
    assert client.get("/analytics/api/suggest/source?q=a").status_code == 403
    analytics.dashboard_access(lambda: True)
    assert client.get("/analytics/api/suggest/source?q=a").status_code == 200


# -- bad filters --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("source:sorta:Google", "needs an operator"),
        ("nope:is:x", "Unknown filter dimension 'nope'"),
        ("source:is:", "has an empty value"),
        ("country:contains:(none)", "(none) goes with is or is_not"),
    ],
)
def test_a_bad_filter_answers_400(paris_app: Flask, value: str, message: str) -> None:
    client = paris_app.test_client()
    args = urlencode({"filter": value})
    for url in ("/analytics/", "/analytics/sources", "/analytics/pages/detail?path=/&"):
        response = client.get(f"{url}{'' if url.endswith('&') else '?'}{args}")
        assert response.status_code == 400, url
        page = Parsed(response.get_data(as_text=True))
        assert message in page.texts["fa-error__message"][0], url
    for url in ("/analytics/api/stats?", "/analytics/api/breakdown/page?format=csv&"):
        response = client.get(f"{url}{args}")
        assert response.status_code == 400, url
        assert message in response.get_json()["error"], url


def test_the_error_page_links_carry_only_good_filters(paris_app: Flask) -> None:
    client = paris_app.test_client()
    args = urlencode([("filter", "country:is:FR"), ("filter", "source:bad:x")])
    page = Parsed(client.get(f"/analytics/pages?{args}").get_data(as_text=True))
    tabs = [x for x in page.links if urlsplit(x["href"]).path == "/analytics/sources"]
    assert tabs
    assert all(params(x["href"])["filter"] == ["country:is:FR"] for x in tabs)
