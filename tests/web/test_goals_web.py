"""Goals on the dashboard: ``/api/goals`` (JSON, CSV), ``goal=NAME`` breakdowns, goal
filters and the Goals page (both databases). The numbers are checked against the
reference of tests/reports/test_goals.py; here the plumbing can fail."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from flask import Flask

from flask_analytics.reports import DateRange

from ..clock import FrozenClock
from ..reports.test_funnels import FUNNELS, expected_funnel
from ..reports.test_goals import GOALS, expected_goals, expected_rows
from ..support.seeded_stats import TIMEZONE, Seeded, seed
from .test_dashboard import allow


@pytest.fixture
def site(make_app: Any, frozen_clock: FrozenClock) -> tuple[Flask, Seeded]:
    app = make_app(ANALYTICS_TIMEZONE=TIMEZONE, ANALYTICS_GOALS=GOALS, ANALYTICS_FUNNELS=FUNNELS)
    allow(app.extensions["analytics_test"])
    return app, seed(app, app.extensions["analytics_test"], visitors=20)


def test_goals_api_page_and_breakdowns(site: tuple[Flask, Seeded]) -> None:
    app, seeded = site
    client = app.test_client()
    rng = DateRange(seeded.live_past, seeded.today)
    span = f"start={rng.start}&end={rng.end}"
    expected = expected_goals(seeded, rng, [("source", "is_not", ("Google",))])

    body = client.get(f"/analytics/api/goals?{span}&filter=source:is_not:Google").get_json()
    got = {r["goal"]: (r["visitors"], r["conversions"], r["events"]) for r in body["rows"]}
    assert got == expected
    assert [r["goal"] for r in body["rows"]] == [g["name"] for g in GOALS]
    signup = next(r for r in body["rows"] if r["goal"] == "Signup")
    assert signup["conversion_rate"] == pytest.approx(signup["conversions"] / signup["visitors"])
    assert signup["description"] == "event signup"

    text = client.get(f"/analytics/api/goals?{span}&filter=source:is_not:Google&format=csv").text
    lines = list(csv.DictReader(io.StringIO(text)))
    assert {
        r["goal"]: (int(r["visitors"]), int(r["conversions"]), int(r["events"])) for r in lines
    } == expected

    rows = client.get(f"/analytics/api/breakdown/source?{span}&goal=Signup&limit=100").get_json()
    want = expected_rows(seeded, rng, [], "source", "Signup")
    assert {
        r["source"]: (r["visitors"], r["conversions"], r["events"]) for r in rows["rows"]
    } == want
    assert rows["goal"] == "Signup"
    assert rows["total"] == len(want)

    response = client.get(f"/analytics/api/breakdown/source?{span}&goal=Nope")
    assert response.status_code == 400
    assert "Unknown goal" in response.get_json()["error"]
    response = client.get(f"/analytics/api/goals?{span}&filter=goal:is:Nope")
    assert response.status_code == 400

    # A goal filter narrows the stats to the sessions holding a conversion.
    stats = client.get(f"/analytics/api/stats?{span}&filter=goal:is:Signup").get_json()
    assert stats["totals"]["visitors"] == expected_goals(seeded, rng, [])["Signup"][1]

    overview = client.get(f"/analytics/?{span}").text
    assert 'data-dimension="goal"' in overview
    assert 'data-key="Pro signup"' in overview

    page = client.get(f"/analytics/goals?{span}&goal=Pricing")
    assert page.status_code == 200
    html = page.text
    for goal in GOALS:
        assert f'data-key="{goal["name"]}"' in html
    assert 'data-goal="Pricing"' in html
    assert "&lt;script&gt;" in html
    assert "<script>alert" not in html


def test_funnel_api_and_page(site: tuple[Flask, Seeded]) -> None:
    app, seeded = site
    client = app.test_client()
    rng = DateRange(seeded.live_past, seeded.today)
    span = f"start={rng.start}&end={rng.end}"
    for funnel in FUNNELS:
        body = client.get(f"/analytics/api/funnel/{funnel['name']}?{span}").get_json()
        assert [s["visitors"] for s in body["steps"]] == expected_funnel(seeded, rng, [], funnel)
        assert [s["goal"] for s in body["steps"]] == funnel["steps"]
    body = client.get(
        f"/analytics/api/funnel/Checkout?{span}&filter=country:is:FR&compare=previous"
    ).get_json()
    want = expected_funnel(seeded, rng, [("country", "is", ("FR",))], FUNNELS[0])
    assert [s["visitors"] for s in body["steps"]] == want
    text = client.get(f"/analytics/api/funnel/Checkout?{span}&format=csv").text
    lines = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["visitors"]) for r in lines if r["period"] == "current"] == expected_funnel(
        seeded, rng, [], FUNNELS[0]
    )
    assert client.get(f"/analytics/api/funnel/Nope?{span}").status_code == 404
    page = client.get(f"/analytics/funnels?{span}&funnel=Blog to pro")
    assert page.status_code == 200
    assert 'data-funnel="Blog to pro"' in page.text
    assert page.text.count('class="fa-funnel__step"') == 4
    assert client.get(f"/analytics/funnels?{span}&funnel=Nope").status_code == 400


def test_goals_are_closed_without_access(make_app: Any) -> None:
    app = make_app(ANALYTICS_GOALS=GOALS, ANALYTICS_FUNNELS=FUNNELS)
    client = app.test_client()
    assert client.get("/analytics/api/goals").status_code == 403
    assert client.get("/analytics/goals").status_code == 403
    assert client.get("/analytics/funnels").status_code == 403
    assert client.get("/analytics/api/funnel/Checkout").status_code == 403


def test_goals_page_without_goals_explains_how(make_app: Any, frozen_clock: FrozenClock) -> None:
    app = make_app()
    allow(app.extensions["analytics_test"])
    page = app.test_client().get("/analytics/goals")
    assert page.status_code == 200
    assert "data-goals-empty" in page.text
    assert app.test_client().get("/analytics/api/goals").get_json()["rows"] == []
    page = app.test_client().get("/analytics/funnels")
    assert page.status_code == 200
    assert "data-funnels-empty" in page.text
