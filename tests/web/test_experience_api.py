"""``/analytics/api/experience`` (JSON and CSV) and the Engagement page's Page experience
panel on both databases, against the plain-Python reference of
``tests/support/experience.py``; closed without access; 400 for purged raw days."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from flask import Flask

from flask_analytics import Analytics
from flask_analytics.state import current_state

from ..conftest import build_app, release_app
from ..support.experience import EDGE, THRESHOLDS, ordered_pages, reference, seed_site
from ..support.schema import SchemaKeeper
from ..support.seeded_stats import TIMEOUT, TIMEZONE, XSS_SCRIPT

NOW = dt.datetime(2026, 10, 27, 9, 30, tzinfo=dt.timezone.utc)
TODAY = dt.date(2026, 10, 27)
DAYS = [TODAY - dt.timedelta(days=n) for n in range(4, -1, -1)]
PURGED = TODAY - dt.timedelta(days=40)
SPAN = f"start={DAYS[0]}&end={TODAY}"
RATINGS = ("good", "needs_improvement", "poor")


@pytest.fixture(scope="module")
def site(
    module_database_url: str, schemas: SchemaKeeper
) -> Iterator[tuple[Flask, dict[str, bool], list[dict[str, Any]]]]:
    with time_machine.travel(NOW, tick=False):
        app, db = build_app(
            module_database_url, schemas, "experience_api", ANALYTICS_TIMEZONE=TIMEZONE
        )
        analytics: Analytics = app.extensions["analytics_test"]
        allowed = {"value": True}
        analytics.dashboard_access(lambda: allowed["value"])
        events = seed_site(app, DAYS, DAYS[1:3], PURGED, seed=7)
        yield app, allowed, events
        release_app(app, db, schemas)


def get(app: Flask, url: str) -> Any:
    with time_machine.travel(NOW, tick=False):
        return app.test_client().get(url)


def expected(app: Flask, events: list[dict[str, Any]], filters: Any = ()) -> dict[Any, Any]:
    return reference(events, DAYS, current_state(app).settings.timezone, TIMEOUT, filters)


def check_row(row: dict[str, Any], want: dict[str, Any]) -> None:
    assert row["visitors"] == want["visitors"]
    for name in ("time_on_page_ms", "scroll_depth"):
        assert row[name] == want[name], name
    for name in THRESHOLDS:
        got, ref = row["vitals"][name], want[name]
        assert {k: got[k] for k in ("samples", "p75", *RATINGS)} == ref, name
        for rating in RATINGS:
            share = ref[rating] / ref["samples"] if ref["samples"] else None
            assert got[f"{rating}_share"] == pytest.approx(share)


@pytest.mark.parametrize(
    ("filtered", "spec"),
    [("", ()), ("&filter=source:is:Google", (("source", "is", ("Google",)),))],
    ids=["unfiltered", "filtered"],
)
def test_json_matches_the_reference(site, filtered, spec):
    app, _allowed, events = site
    want = expected(app, events, spec)
    response = get(app, f"/analytics/api/experience?{SPAN}{filtered}")
    assert response.status_code == 200
    body = response.get_json()
    order = ordered_pages(want)
    assert body["total"] == len(order) == int(response.headers["X-Total-Count"])
    assert [r["path"] for r in body["rows"]] == order
    assert body["thresholds"] == {k: list(v) for k, v in THRESHOLDS.items()}
    assert body["filters"] == ([filtered.split("=", 1)[1]] if filtered else [])
    check_row(body["site"], want[None])
    assert body["site"]["path"] is None
    for row in body["rows"]:
        check_row(row, want[row["path"]])
    edge = next(r for r in body["rows"] if r["path"] == EDGE) if not filtered else None
    if edge is not None:
        assert edge["vitals"]["cls"]["rating"] == "poor"


def test_pages_of_the_list(site):
    app, _allowed, events = site
    order = ordered_pages(expected(app, events))
    body = get(app, f"/analytics/api/experience?{SPAN}&limit=2&page=2").get_json()
    assert [r["path"] for r in body["rows"]] == order[2:4]
    assert (body["limit"], body["offset"], body["page"]) == (2, 2, 2)
    assert get(app, f"/analytics/api/experience?{SPAN}&limit=0").status_code == 400


def test_csv_holds_the_site_and_every_page(site):
    app, _allowed, events = site
    want = expected(app, events)
    response = get(app, f"/analytics/api/experience?{SPAN}&format=csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert f"experience-{DAYS[0]}-{TODAY}.csv" in response.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["scope"] for r in table] == ["site"] + ["page"] * (len(want) - 1)
    assert [r["path"] for r in table[1:]] == ordered_pages(want)
    for row in table:
        ref = want[row["path"] or None]
        assert int(row["visitors"]) == ref["visitors"]
        assert int(row["scroll_depth_samples"]) == ref["scroll_depth"]["samples"]
        median = ref["time_on_page_ms"]["median"]
        assert row["time_on_page_ms_median"] == ("" if median is None else str(median))
        for name in THRESHOLDS:
            p75 = ref[name]["p75"]
            assert (float(row[f"{name}_p75"]) if row[f"{name}_p75"] else None) == p75
            assert int(row[f"{name}_samples"]) == ref[name]["samples"]


def test_closed_without_access(site):
    app, allowed, _events = site
    allowed["value"] = False
    try:
        for fmt in ("", "&format=csv"):
            assert get(app, f"/analytics/api/experience?{SPAN}{fmt}").status_code == 403
        assert get(app, "/analytics/engagement").status_code == 403
    finally:
        allowed["value"] = True


def test_purged_days_answer_400_and_the_page_says_why(site):
    app, _allowed, _events = site
    response = get(app, f"/analytics/api/experience?start={PURGED}&end={TODAY}")
    assert response.status_code == 400
    assert "raw events" in response.get_json()["error"]
    page = get(app, f"/analytics/engagement?period=custom&start={PURGED}&end={TODAY}")
    assert page.status_code == 200  # the histograms come from the daily tables
    assert "Page experience reports read raw events" in page.get_data(as_text=True)


def test_the_engagement_page_shows_the_panel(site):
    app, _allowed, events = site
    want = expected(app, events)
    response = get(app, f"/analytics/engagement?period=custom&{SPAN}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    panel = page[page.index('data-panel="experience"') :]
    # The site row first, then the top pages by visitors, paths as text.
    paths = [html.unescape(p) for p in re.findall(r'<tr data-path="([^"]*)"', panel)]
    assert paths == ordered_pages(want)[:10]
    assert XSS_SCRIPT not in page
    assert html.escape(f"/q/{XSS_SCRIPT}") in page
    start = panel.index('data-site="1"')
    site_row = panel[start : panel.index("</tr>", start)]
    for name in THRESHOLDS:
        cell = re.search(rf'data-vital="{name}" data-p75="([^"]*)" data-samples="(\d+)"', site_row)
        assert cell is not None
        assert float(cell.group(1)) == want[None][name]["p75"]
        assert int(cell.group(2)) == want[None][name]["samples"]
    # Formatted values: CLS with 2-3 decimals, times in ms or s, shares as text.
    cls = want[None]["cls"]["p75"]
    assert re.search(rf">{cls:.3f}<|>{cls:.2f}<", site_row)
    lcp = want[None]["lcp"]["p75"]
    assert f"{lcp / 1000:.2f} s" in site_row or f"{lcp:.0f} ms" in site_row
    assert re.search(
        r"Good \d+(\.\d)?% · Needs improvement \d+(\.\d)?% · Poor \d+(\.\d)?%", site_row
    )
    assert 'class="fa-xp__good"' in site_row
