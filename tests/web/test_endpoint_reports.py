"""Reports by Flask endpoint: ``/api/breakdown/endpoint`` (one row per endpoint, not per
slug), ``filter=endpoint:is:NAME`` on the Pages report, ``/api/endpoints`` (visits,
bounce rate, server response time p50/p95) and ``/api/errors`` (404s by referrer),
against a plain-Python reference over the generated events (both databases)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import random
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

DAY = dt.date(2026, 3, 10)
SPAN = f"start={DAY}&end={DAY}"
#: (endpoint, path pattern) of the generated pages; None: a path no rule matched.
PAGES = [
    ("blog.post", "/blog/post-{n}"),
    ("blog.index", "/blog/"),
    ("index", "/"),
    (None, "/wp-login-{n}.php"),
]


def generate(seed: int = 18) -> list[dict[str, Any]]:
    """Visitors with 1-4 pageviews a few minutes apart (one visit each), some clicks,
    some 404s with a referrer, response times on most pageviews (server pageviews)."""
    rnd = random.Random(seed)
    events = []
    for visitor in range(1, 41):
        at = dt.datetime.combine(DAY, dt.time(8)) + dt.timedelta(minutes=visitor * 7)
        for _ in range(rnd.randint(1, 4)):
            endpoint, pattern = rnd.choice(PAGES)
            path = pattern.format(n=rnd.randint(1, 12))
            status = 404 if endpoint is None or rnd.random() < 0.1 else 200
            referrer = rnd.choice([None, "https://links.example/a", "http://localhost/blog/"])
            events.append({
                "name": "pageview", "path": path, "endpoint": endpoint, "status": status,
                "referrer": referrer, "visitor_id": visitor, "created_at": at,
                "duration_ms": rnd.choice([None, *range(1, 400, 7)]),
            })  # fmt: skip
            at += dt.timedelta(seconds=rnd.randint(5, 200))
            if rnd.random() < 0.2:
                events.append({
                    "name": "click", "path": path, "endpoint": endpoint, "status": None,
                    "referrer": None, "visitor_id": visitor, "created_at": at,
                    "duration_ms": None,
                })  # fmt: skip
    return events


@pytest.fixture
def reports_app(make_app: Callable[..., Flask]) -> tuple[Flask, list[dict[str, Any]]]:
    app = make_app()
    analytics = app.extensions["analytics_test"]
    analytics.dashboard_access(lambda: True)
    events = generate()
    table = analytics.Event.__table__
    rows = [
        {**e, "event_id": str(uuid.uuid4()), "hostname": "localhost", "channel": "Direct"}
        for e in events
    ]
    with app.app_context(), analytics.db.engine.begin() as conn:
        conn.execute(sa.insert(table), rows)
    return app, events


def nearest_rank(values: list[int], p: int) -> int | None:
    ordered = sorted(values)
    return ordered[math.ceil(p * len(ordered) / 100) - 1] if ordered else None


def test_endpoint_reports_match_a_reference(
    reports_app: tuple[Flask, list[dict[str, Any]]],
) -> None:
    app, events = reports_app
    client = app.test_client()
    views = [e for e in events if e["name"] == "pageview"]

    # The endpoint breakdown: blog.post is one row for all its slugs.
    body = client.get(f"/analytics/api/breakdown/endpoint?{SPAN}").get_json()
    got = {r["endpoint"]: (r["visitors"], r["pageviews"], r["events"]) for r in body["rows"]}
    want = {}
    for endpoint in {e["endpoint"] for e in events}:
        mine = [e for e in events if e["endpoint"] == endpoint]
        want[endpoint] = (
            len({e["visitor_id"] for e in mine}),
            sum(e["name"] == "pageview" for e in mine),
            sum(e["name"] != "pageview" for e in mine),
        )
    assert got == want
    assert len({e["path"] for e in views if e["endpoint"] == "blog.post"}) > 5

    # Its paths one click away: the Pages report filtered on the endpoint.
    body = client.get(f"/analytics/api/breakdown/page?{SPAN}&filter=endpoint:is:blog.post&limit=100").get_json()  # fmt: skip
    got_pages = {r["page"]: r["pageviews"] for r in body["rows"]}
    want_pages: dict[str, int] = defaultdict(int)
    for e in views:
        if e["endpoint"] == "blog.post":
            want_pages[e["path"]] += 1
    assert got_pages == want_pages
    html = client.get(f"/analytics/pages?{SPAN}&filter=endpoint:is:blog.post").get_data(True)
    assert "Endpoint: blog.post" in html or "Endpoint is blog.post" in html
    # The Pages page's Endpoints panel links each endpoint to that filter.
    html = client.get(f"/analytics/pages?{SPAN}").get_data(True)
    assert "filter=endpoint:is:blog.post" in html
    assert "/wp-login-" in html  # an error page

    # Visits, bounce rate and response times per endpoint.
    body = client.get(f"/analytics/api/endpoints?{SPAN}").get_json()
    got_times = {r["endpoint"]: r for r in body["rows"]}
    assert set(got_times) == {e["endpoint"] for e in views}
    for endpoint, row in got_times.items():
        mine = [e for e in views if e["endpoint"] == endpoint]
        durations = [e["duration_ms"] for e in mine if e["duration_ms"] is not None]
        visitors = {e["visitor_id"] for e in mine}
        # One visit per visitor (pageviews minutes apart); a bounce: one pageview, no click.
        bounced = {
            v for v in visitors
            if sum(e["visitor_id"] == v for e in events) == 1
        }  # fmt: skip
        assert row["pageviews"] == len(mine), endpoint
        assert row["visits"] == len(visitors), endpoint
        assert row["bounce_rate"] == pytest.approx(len(bounced) / len(visitors)), endpoint
        assert row["timed"] == len(durations)
        assert row["p50_ms"] == nearest_rank(durations, 50), endpoint
        assert row["p95_ms"] == nearest_rank(durations, 95), endpoint
    pageviews = [r["pageviews"] for r in body["rows"]]
    assert pageviews == sorted(pageviews, reverse=True)
    text = client.get(f"/analytics/api/endpoints?{SPAN}&format=csv").get_data(as_text=True)
    table = list(csv.DictReader(io.StringIO(text)))
    assert {r["endpoint"] or None: int(r["p95_ms"] or 0) for r in table} == {
        k: v["p95_ms"] or 0 for k, v in got_times.items()
    }

    # Error pages: 404s by path and referrer, with their visitors.
    body = client.get(f"/analytics/api/errors?{SPAN}").get_json()
    got_errors = {(r["path"], r["referrer"]): (r["pageviews"], r["visitors"]) for r in body["rows"]}
    groups: dict[tuple[str, str | None], list[dict[str, Any]]] = defaultdict(list)
    for e in views:
        if e["status"] == 404:
            groups[e["path"], e["referrer"]].append(e)
    assert got_errors == {k: (len(g), len({e["visitor_id"] for e in g})) for k, g in groups.items()}
    assert any(referrer for _, referrer in got_errors)

    # Filters apply: errors of the blog's posts only.
    body = client.get(f"/analytics/api/errors?{SPAN}&filter=endpoint:is:blog.post").get_json()
    assert {(r["path"], r["referrer"]) for r in body["rows"]} == {
        k for k, g in groups.items() if g[0]["endpoint"] == "blog.post"
    }
