"""Scopes: two customers' traffic in one database, each viewer limited to their own.

Alpha's events are on ``alpha.example``, Bravo's on ``bravo.example``; every string either
customer's traffic holds (paths, referrers, sources, UTM values, browsers, event
properties) carries the customer's name, and their visitors never share an id. A viewer
with a scope must see none of the other customer's strings on any route of the dashboard
blueprint (enumerated from ``app.url_map``, so a new route is covered without editing
this file), in JSON, CSV and HTML, with and without filters, suggestions and realtime
included, through the access callback, a scoped share link or a scoped API token; and their numbers must be those of their own traffic alone, computed by the
plain-Python reference (``tests/support/reference.py``) over their own events.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
import time_machine
from flask import Flask, request, url_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.routing import Rule

from flask_analytics import Analytics, Scope
from flask_analytics.access import SHARE, TOKEN, create_grant
from flask_analytics.core.clock import day_bounds
from flask_analytics.reports import BREAKDOWNS
from flask_analytics.state import current_state

from ..conftest import build_app, release_app
from ..support.reference import reference_daily
from ..support.schema import SchemaKeeper
from ..support.seeded_stats import TIMEOUT, TIMEZONE, day_events, insert, make_row

NOW = dt.datetime(2026, 11, 18, 15, 0, tzinfo=dt.timezone.utc)
TODAY = dt.date(2026, 11, 18)
DAYS = [TODAY - dt.timedelta(days=n) for n in range(3, -1, -1)]
SPAN = {"start": DAYS[0].isoformat(), "end": TODAY.isoformat()}
CUSTOMERS = ("alpha", "bravo")
#: Each customer's scope, three ways that select the same traffic (all of a customer's
#: events are on its hostname and under its path prefix).
SCOPES = {
    "hostnames": lambda c: Scope(hostnames=[f"{c}.example"]),
    "paths": lambda c: Scope(path_prefixes=[f"/{c}/"]),
    "filters": lambda c: Scope(filters=[f"hostname:is:{c}.example"]),
}
#: Values of each route's path arguments (the other customer's never).
ARGUMENTS = {"dimension": ["page", "source", "browser", "utm_campaign"], "name": ["Checkout"]}
#: The hypothesis test draws from every dimension.
EVERY_DIMENSION = [*BREAKDOWNS, "screen", "utm_term", "hostname", "event", "page"]


def marked(rows: list[dict[str, Any]], customer: str, offset: int) -> list[dict[str, Any]]:
    """``rows`` made the customer's: its hostname, and its name in every string."""
    result = []
    for row in rows:
        row = dict(row)
        row["hostname"] = f"{customer}.example"
        row["path"] = f"/{customer}{row['path']}".rstrip("/") + "/"
        row["visitor_id"] = row["visitor_id"] % 10**9 + offset
        for column in ("source", "referrer_host", "utm_source", "utm_campaign", "browser", "os"):
            if row.get(column) is not None:
                row[column] = f"{customer}-{row[column]}"
        if row["name"] not in ("pageview", "engagement"):
            row["name"] = "signup"
            row["props"] = {f"{customer}_plan": f"{customer}-{row['props']['plan']}"}
        result.append(row)
    return result


def customer_events(app: Flask, customer: str, seed_value: int) -> list[dict[str, Any]]:
    rnd = random.Random(seed_value)
    tz = current_state(app).settings.timezone
    now = NOW.replace(tzinfo=None)
    rows: list[dict[str, Any]] = []
    for day in DAYS:
        start, end = day_bounds(tz, day)
        rows += day_events(rnd, start, min(end, now - dt.timedelta(minutes=10)), 8)
    # Right now: the realtime panel's.
    rows += [make_row(now - dt.timedelta(seconds=40 + i), 7_000 + i, path="/live") for i in (1, 2)]
    return marked(rows, customer, 10**9 * (1 + CUSTOMERS.index(customer)))


@pytest.fixture(scope="module")
def site(module_database_url: str, schemas: SchemaKeeper) -> Iterator[tuple[Flask, dict[str, Any]]]:
    with time_machine.travel(NOW, tick=False):
        app, db = build_app(
            module_database_url,
            schemas,
            "scope_leaks",
            ANALYTICS_TIMEZONE=TIMEZONE,
            ANALYTICS_GOALS=[
                {"name": "Signup", "event": "signup"},
                {"name": "Landing", "page": "/*"},
            ],
            ANALYTICS_FUNNELS=[{"name": "Checkout", "steps": ["Landing", "Signup"]}],
        )
        analytics: Analytics = app.extensions["analytics_test"]

        @analytics.dashboard_access
        def scoped() -> Scope | bool:
            customer = request.headers.get("X-Customer", "")
            kind = request.headers.get("X-Scope", "hostnames")
            return SCOPES[kind](customer) if customer in CUSTOMERS else False

        events: dict[str, Any] = {}
        grants: dict[tuple[str, str], str] = {}
        with app.app_context():
            state = current_state(app)
            for customer in CUSTOMERS:
                scope = SCOPES["hostnames"](customer).to_json()
                for kind in (SHARE, TOKEN):
                    grants[kind, customer] = create_grant(state, kind, customer, scope=scope)[0]
            for number, customer in enumerate(CUSTOMERS):
                insert(analytics, customer_events(app, customer, 11 + number))
            for day in DAYS[1:-1]:  # the first day stays live, today too
                analytics.aggregate(day)
            table = analytics.Event.__table__
            with db.engine.connect() as conn:
                stored = [dict(r) for r in conn.execute(sa.select(table)).mappings()]
        for customer in CUSTOMERS:
            events[customer] = [e for e in stored if e["hostname"] == f"{customer}.example"]
        events["grants"] = grants
        yield app, events
        release_app(app, db, schemas)


def get(app: Flask, url: str, customer: str, kind: str = "hostnames", headers: Any = None) -> Any:
    with time_machine.travel(NOW, tick=False):
        return app.test_client().get(
            url, headers=headers or {"X-Customer": customer, "X-Scope": kind}
        )


def other(customer: str) -> str:
    return CUSTOMERS[1 - CUSTOMERS.index(customer)]


def dashboard_rules(app: Flask) -> list[Rule]:
    return sorted(
        (
            r
            for r in app.url_map.iter_rules()
            if r.endpoint.startswith("analytics_dashboard.")
            and r.endpoint != "analytics_dashboard.static"
            and "GET" in (r.methods or ())
            and "token" not in r.arguments
        ),
        key=lambda r: r.rule,
    )


def urls_of(app: Flask, rule: Rule, customer: str, *, every: bool = False) -> list[str]:
    """One URL per value of each path argument of ``rule`` (``key``: the customer's
    property key; ``every``: every dimension, not a few)."""
    arguments = {**ARGUMENTS, "dimension": EVERY_DIMENSION} if every else ARGUMENTS
    values: list[dict[str, str]] = [{}]
    for argument in sorted(rule.arguments):
        choices = arguments.get(argument, [f"{customer}_plan"])
        values = [{**v, argument: c} for v in values for c in choices]
    with app.test_request_context():
        return [url_for(rule.endpoint, **v) for v in values]


def reference_totals(events: list[dict[str, Any]]) -> dict[str, int]:
    sums: dict[str, int] = {}
    for day in DAYS:
        for row in reference_daily(events, day, TIMEZONE, TIMEOUT).get("DailySummary", []):
            for key, value in row.items():
                if key != "date":
                    sums[key] = sums.get(key, 0) + value
    return sums


def assert_clean(body: str, customer: str, where: str) -> None:
    leaked = re.findall(rf".{{0,40}}{other(customer)}.{{0,40}}", body, re.IGNORECASE)
    assert not leaked, f"{where}: {leaked[:3]}"


@pytest.mark.parametrize("customer", CUSTOMERS)
def test_every_route_shows_only_the_viewers_traffic(
    site: tuple[Flask, dict[str, Any]], customer: str
) -> None:
    app, _events = site
    rules = dashboard_rules(app)
    assert {"analytics_dashboard.api_suggest", "analytics_dashboard.api_realtime"} <= {
        r.endpoint for r in rules
    }
    seen_own = False
    for rule in rules:
        for url in urls_of(app, rule, customer):
            filtered = {**SPAN, "filter": "device_type:is:desktop"}
            variants = [SPAN, {**filtered, "format": "csv"}] if "/api/" in url else [filtered]
            for params in variants:
                full = f"{url}?{urlencode(params)}"
                response = get(app, full, customer)
                assert response.status_code in (200, 400, 404), full
                body = response.get_data(as_text=True)
                assert_clean(body, customer, full)
                seen_own = seen_own or customer in body
    assert seen_own  # the viewer's own traffic is there: the check could fail


@pytest.mark.parametrize("kind", SCOPES)
@pytest.mark.parametrize("customer", CUSTOMERS)
def test_scoped_numbers_are_the_customers_own(
    site: tuple[Flask, dict[str, Any]], customer: str, kind: str
) -> None:
    app, events = site
    own = events[customer]
    want = reference_totals(own)
    both = reference_totals(own + events[other(customer)])
    assert want["pageviews"] < both["pageviews"]
    stats = get(app, f"/analytics/api/stats?{urlencode(SPAN)}", customer, kind).get_json()
    assert {k: stats["totals"][k] for k in want} == want
    # A breakdown's rows: the customer's pages with their pageviews.
    rows = get(
        app, f"/analytics/api/breakdown/page?{urlencode(SPAN)}&limit=1000", customer, kind
    ).get_json()["rows"]
    pages: dict[str, int] = {}
    for event in own:
        if event["name"] == "pageview":
            pages[event["path"]] = pages.get(event["path"], 0) + 1
    assert {r["page"]: r["pageviews"] for r in rows} == pages
    # Realtime: the customer's visitors of the last five minutes.
    recent = {
        e["visitor_id"]
        for e in own
        if e["created_at"] >= NOW.replace(tzinfo=None) - dt.timedelta(minutes=5)
    }
    live = get(app, "/analytics/api/realtime", customer, kind).get_json()
    assert live["visitors"] == len(recent) == 2
    # The other customer's values, asked for by name, count nothing.
    probe = f"page:is:/{other(customer)}/pricing/"
    answer = get(
        app, f"/analytics/api/stats?{urlencode({**SPAN, 'filter': probe})}", customer, kind
    )
    assert answer.get_json()["totals"]["pageviews"] == 0


def test_an_empty_scope_shows_nothing(site: tuple[Flask, dict[str, Any]]) -> None:
    app, _events = site
    analytics: Analytics = app.extensions["analytics_test"]
    saved = current_state(app).hooks.access
    try:
        analytics.dashboard_access(lambda: Scope(hostnames=[]))
        stats = get(app, f"/analytics/api/stats?{urlencode(SPAN)}", "alpha").get_json()
        assert stats["totals"]["pageviews"] == 0
        assert get(app, "/analytics/api/realtime", "alpha").get_json()["visitors"] == 0
    finally:
        current_state(app).hooks.access = saved


#: Filters a viewer might try: neutral values and their own customer's.
def filters_for(customer: str) -> st.SearchStrategy[str]:
    values = st.sampled_from(
        [
            f"/{customer}/pricing/",
            f"/{customer}/*",
            "/",
            "desktop",
            "mobile",
            f"{customer}-Google",
            f"{customer}.example",
            "(none)",
            "signup",
            "Direct",
        ]
    )
    dimensions = st.sampled_from(
        ["page", "entry_page", "exit_page", "hostname", "source", "device_type", "event",
         "channel", "browser", f"prop:{customer}_plan", "goal"]
    )  # fmt: skip
    ops = st.sampled_from(["is", "is_not", "contains", "matches"])

    def build(d: str, o: str, v: str) -> str:
        if d == "goal":
            return f"goal:{'is' if o == 'is' else 'is_not'}:Signup"
        if v == "(none)" and o in ("contains", "matches"):
            o = "is"
        return f"{d}:{o}:{v}"

    return st.builds(build, dimensions, ops, values)


@settings(
    max_examples=16,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_route_parameter_or_filter_leaks(site: tuple[Flask, dict[str, Any]], data: Any) -> None:
    """Through the access callback's scope, a scoped share link or a scoped API token."""
    app, events = site
    customer = data.draw(st.sampled_from(CUSTOMERS))
    kind = data.draw(st.sampled_from(list(SCOPES)))
    rule = data.draw(st.sampled_from(dashboard_rules(app)))
    url = data.draw(st.sampled_from(urls_of(app, rule, customer, every=True)))
    params: list[tuple[str, str]] = [
        (k, v) for k, v in data.draw(st.sampled_from([SPAN, {"period": "today"}])).items()
    ]
    params += [("filter", f) for f in data.draw(st.lists(filters_for(customer), max_size=3))]
    if data.draw(st.booleans()):
        params.append(("format", "csv"))
    if "suggest" in url:
        params.append(("q", data.draw(st.sampled_from(["", "a", "o", "/"]))))
    full = f"{url}?{urlencode(params)}"
    via = data.draw(st.sampled_from(["callback", SHARE, TOKEN]))
    headers = None
    if via == SHARE:
        shared = events["grants"][SHARE, customer]
        full = full.replace("/analytics/", f"/analytics/shared/{shared}/", 1)
    elif via == TOKEN and "/api/" in url:
        headers = {"Authorization": f"Bearer {events['grants'][TOKEN, customer]}"}
    response = get(app, full, customer, kind, headers)
    assert response.status_code in (200, 400, 404), full
    assert_clean(response.get_data(as_text=True), customer, full)
