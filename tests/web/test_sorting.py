"""Sorted lists (``order=COUNT:asc|desc``) on the API and the list pages, both
databases: the rows and their order equal the reference's, today's live rows included
(the smallest-first page cannot be cut in SQL before they are added), and a bad order
answers 400."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask import Flask

from flask_analytics.reports import BREAKDOWNS, DateRange

from ..clock import FrozenClock
from ..support.seeded_stats import Seeded, expected_breakdown, seed


@pytest.fixture
def site(make_app: Any, frozen_clock: FrozenClock) -> tuple[Flask, Seeded]:
    app = make_app(ANALYTICS_TIMEZONE="Europe/Paris")
    analytics = app.extensions["analytics_test"]
    analytics.dashboard_access(lambda: True)
    return app, seed(app, analytics)


def reference_order(
    seeded: Seeded, name: str, rng: DateRange, count: str, ascending: bool
) -> list[Any]:
    """Keys of breakdown ``name`` sorted by ``count`` (ties by key, none last)."""
    rows = expected_breakdown(seeded, BREAKDOWNS[name], rng)
    sign = 1 if ascending else -1
    return [
        key
        for key, _ in sorted(
            rows.items(), key=lambda i: (sign * i[1][count], i[0] is None, i[0] or "")
        )
    ]


def test_the_api_sorts_either_way(site: tuple[Flask, Seeded]) -> None:
    app, seeded = site
    client = app.test_client()
    rng = DateRange(min(seeded.days), seeded.today)
    dates = f"start={rng.start.isoformat()}&end={rng.end.isoformat()}"
    for name, count in (("page", "pageviews"), ("source", "sessions"), ("country", "visitors")):
        for ascending in (False, True):
            expected = reference_order(seeded, name, rng, count, ascending)
            direction = "asc" if ascending else "desc"
            answer = client.get(
                f"/analytics/api/breakdown/{name}?{dates}&order={count}:{direction}&limit=3"
            ).get_json()
            assert answer["order"] == count
            assert answer["ascending"] is ascending
            assert [r[name] for r in answer["rows"]] == expected[:3], (name, direction)
            assert answer["total"] == len(expected)
    # A bare count still sorts largest first, as before.
    plain = client.get(f"/analytics/api/breakdown/page?{dates}&order=pageviews").get_json()
    assert [r["page"] for r in plain["rows"]] == reference_order(
        seeded, "page", rng, "pageviews", False
    )
    for bad in ("pageviews:up", ":asc", "bounce_rate:asc", "nope"):
        response = client.get(f"/analytics/api/breakdown/page?{dates}&order={bad}")
        assert response.status_code == 400, bad
        assert (
            "order" in response.get_json()["error"] or "rows count" in response.get_json()["error"]
        )


def test_list_pages_sort_the_asked_panel(site: tuple[Flask, Seeded]) -> None:
    app, seeded = site
    client = app.test_client()
    rng = DateRange(seeded.today - dt.timedelta(days=6), seeded.today)
    html = client.get("/analytics/pages?period=7d&order=visitors:asc").get_data(as_text=True)
    expected = reference_order(seeded, "page", rng, "visitors", True)
    shown = [part.split('"', 1)[0] for part in html.split('<tr data-key="')[1:]]
    # The main list first (sorted), then entry and exit pages (their own order).
    assert shown[: len(expected)] == [
        (k or "").replace("<", "&lt;").replace(">", "&gt;") for k in expected
    ]
    assert 'aria-sort="ascending"' in html
    # A page of several panels sorts the one ``more`` names; without it, 400.
    html = client.get("/analytics/sources?period=7d&more=source&order=sessions:asc")
    assert html.status_code == 200
    assert html.get_data(as_text=True).count('aria-sort="ascending"') == 1
    assert client.get("/analytics/sources?period=7d&order=sessions:asc").status_code == 400
    assert client.get("/analytics/locations?period=7d&order=bounces").status_code == 400
    assert client.get("/analytics/locations?period=7d&order=visitors:sideways").status_code == 400
