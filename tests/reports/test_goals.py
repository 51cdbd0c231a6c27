"""Goals (DESIGN.md "Goals"): conversions, events, conversion rates per goal and per
breakdown row, and goal filters, against a plain-Python reference over the seeded events
(aggregated days, a live past day and today; both databases).

The reference cuts sessions with ``support/reference.py``, keeps sessions and events
with ``support/filter_reference.py`` and matches goals here, from the definition: an
event goal is the event's name plus property values compared as text; a page goal is a
pageview whose path matches the glob (``*``: any characters).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_analytics.reports import BREAKDOWNS, DateRange, Stats
from flask_analytics.reports.breakdowns import prop_breakdown
from flask_analytics.reports.filters import BadFilter, parse_filters
from flask_analytics.reports.goals import goal_breakdown, goal_totals
from flask_analytics.state import current_state

from ..support.filter_reference import (
    event_value,
    events_of_day,
    glob_matches,
    kept_sessions,
)
from ..support.reference import local_date
from ..support.seeded_stats import TIMEOUT, TIMEZONE, XSS_SCRIPT, Seeded, insert, make_row, seed

GOALS = [
    {"name": "Signup", "event": "signup"},
    {"name": "Pro signup", "event": "signup", "props": {"plan": "pro"}},
    {"name": "Odd plan", "event": "signup", "props": {"plan": XSS_SCRIPT}},
    {"name": "Pricing", "page": "/pricing*"},
    {"name": "Blog", "page": "/blog/*"},
    {"name": "Never", "event": "no-such-event"},
    {"name": "Purchase", "event": "purchase"},
]
Spec = tuple[str, str, tuple[str, ...]]


def matches(goal: dict[str, Any], event: dict[str, Any]) -> bool:
    if "event" in goal:
        if event["name"] != goal["event"]:
            return False
    elif event["name"] != "pageview" or not glob_matches(goal["page"], event["path"]):
        return False
    props = event.get("props") or {}
    if isinstance(props, str):
        props = json.loads(props)
    return all(k in props and str(props[k]) == str(v) for k, v in goal.get("props", {}).items())


def kept(
    seeded: Seeded, rng: DateRange, filters: Sequence[Spec]
) -> list[tuple[dt.date, Any, list[dict[str, Any]]]]:
    """(day, session, kept events) of every kept session of ``rng``."""
    out = []
    for day in rng.dates():
        day_events = events_of_day(seeded.events, day, seeded.tz)
        for session, events in kept_sessions(day_events, TIMEOUT, filters):
            out.append((day, session, events))
    return out


def expected_goals(
    seeded: Seeded, rng: DateRange, filters: Sequence[Spec]
) -> dict[str, tuple[int, int, int]]:
    """goal -> (visitors, conversions, events) by the definition."""
    sessions = kept(seeded, rng, filters)
    visitors = len({(day, s.visitor) for day, s, evs in sessions if evs})
    result = {}
    for goal in GOALS:
        hits = [(day, e) for day, _, evs in sessions for e in evs if matches(goal, e)]
        result[goal["name"]] = (visitors, len({(d, e["visitor_id"]) for d, e in hits}), len(hits))
    return result


@pytest.fixture
def goals_app(make_app: Any) -> Flask:
    app: Flask = make_app(ANALYTICS_TIMEZONE=TIMEZONE, ANALYTICS_GOALS=GOALS)
    return app


@pytest.fixture
def seeded_goals(goals_app: Flask, frozen_clock: Any) -> Seeded:
    return seed(goals_app, goals_app.extensions["analytics_test"], visitors=25)


FILTER_CASES: list[tuple[str, ...]] = [
    (),
    ("source:is:Google",),
    ("page:matches:/blog/*",),
    ("device_type:is_not:tablet", "country:is:FR|US|(none)"),
]


def as_specs(texts: Sequence[str]) -> list[Spec]:
    return [(f.dimension, f.op, f.values) for f in parse_filters(texts)]


def test_goal_totals_and_breakdowns_match_the_reference(
    goals_app: Flask, seeded_goals: Seeded
) -> None:
    state = current_state(goals_app)
    rng = DateRange(seeded_goals.live_past, seeded_goals.today)
    names = [g["name"] for g in GOALS]
    checked_rows = 0
    for texts in FILTER_CASES:
        with goals_app.app_context(), state.engine().connect() as conn:
            stats = Stats(state, conn, filters=parse_filters(texts))
            got = {
                c.key.name: (c.visitors, c.conversions, c.events)
                for c in goal_totals(stats, rng, [stats.goals[n] for n in names])
            }
            expected = expected_goals(seeded_goals, rng, as_specs(texts))
            assert got == expected, texts
            assert any(conv for _, conv, _ in got.values())
            for dimension, goal in (
                ("source", "Signup"),
                ("page", "Signup"),
                ("country", "Pricing"),
                ("entry_page", "Blog"),
                ("prop:plan", "Signup"),
            ):
                breakdown = (
                    prop_breakdown("plan") if dimension == "prop:plan" else BREAKDOWNS[dimension]
                )
                rows, total = goal_breakdown(stats, breakdown, rng, stats.goals[goal], limit=None)
                want = expected_rows(seeded_goals, rng, as_specs(texts), dimension, goal)
                assert {r.key: (r.visitors, r.conversions, r.events) for r in rows} == want, (
                    texts,
                    dimension,
                    goal,
                )
                assert total == len(want)
                conversions = [r.conversions for r in rows]
                assert conversions == sorted(conversions, reverse=True)
                checked_rows += len(rows)
            stats.close()
    assert checked_rows > 20


def expected_rows(
    seeded: Seeded, rng: DateRange, filters: Sequence[Spec], dimension: str, goal_name: str
) -> dict[Any, tuple[int, int, int]]:
    """key -> (visitors, conversions, events) of a goal breakdown, by the definition."""
    goal = next(g for g in GOALS if g["name"] == goal_name)
    visitors: dict[Any, set[Any]] = defaultdict(set)
    converted: dict[Any, set[Any]] = defaultdict(set)
    events: dict[Any, int] = defaultdict(int)
    session_keys = {
        "source": lambda s: s.landing["source"],
        "country": lambda s: s.landing["country"],
        "entry_page": lambda s: s.entry,
    }
    for day, session, evs in kept(seeded, rng, filters):
        for e in evs:
            if dimension in session_keys:
                key = session_keys[dimension](session)
                visitors[key].add((day, session.visitor))
            elif dimension == "prop:plan":
                key = event_value(e, "prop:plan")
                visitors[key].add((day, session.visitor))
            else:
                key = e["path"]
                if e["name"] == "pageview":
                    visitors[key].add((day, session.visitor))
            if matches(goal, e):
                converted[key].add((day, session.visitor))
                events[key] += 1
    return {k: (len(visitors[k]), len(v), events[k]) for k, v in converted.items()}


def test_a_goal_filter_equals_the_filters_it_stands_for(
    goals_app: Flask, seeded_goals: Seeded
) -> None:
    state = current_state(goals_app)
    rng = DateRange(seeded_goals.live_past, seeded_goals.today)
    same = {
        "goal:is:Signup": ("event:is:signup",),
        "goal:is:Pro signup": ("event:is:signup", "prop:plan:is:pro"),
        "goal:is:Pricing": ("event:is:pageview", "page:matches:/pricing*"),
    }
    goal_names = list(state.hooks.app_goals(state.settings.goals))
    for goal_filter, plain in same.items():
        answers = []
        for texts in ((goal_filter, "source:is_not:Google"), (*plain, "source:is_not:Google")):
            with goals_app.app_context(), state.engine().connect() as conn:
                stats = Stats(state, conn, filters=parse_filters(texts, goals=goal_names))
                pages = stats.breakdown(BREAKDOWNS["page"], rng, limit=None)
                answers.append((stats.totals(rng), [(r.key, r.counts) for r in pages]))
                stats.close()
        assert answers[0] == answers[1], goal_filter
        assert answers[0][0].visitors > 0
    # is_not keeps sessions holding any event that is not a conversion.
    with goals_app.app_context(), state.engine().connect() as conn:
        stats = Stats(state, conn, filters=parse_filters(["goal:is_not:Signup"], goals=goal_names))
        totals = stats.totals(rng)
        stats.close()
    expected_events = sum(
        1
        for _, _, evs in kept(seeded_goals, rng, [("event", "is_not", ("signup",))])
        for e in evs
        if e["name"] != "pageview"
    )
    assert totals.events == expected_events


def test_goal_filters_are_checked() -> None:
    with pytest.raises(BadFilter, match="Unknown goal"):
        parse_filters(["goal:is:Nope"], goals=["Signup"])
    with pytest.raises(BadFilter, match="goal:is:NAME"):
        parse_filters(["goal:contains:Sign"], goals=["Signup"])
    with pytest.raises(BadFilter, match="none are declared"):
        parse_filters(["goal:is:Signup"])
    (parsed,) = parse_filters(["goal:is:Signup|Pricing"], goals=["Signup", "Pricing"])
    assert parsed.values == ("Signup", "Pricing")


def test_revenue_is_summed_exactly_per_currency(goals_app: Flask, seeded_goals: Seeded) -> None:
    """Purchases in EUR and USD (amounts a float would not keep), on a live past day and
    today: per goal and per source row, each currency's exact sum, event count and
    average."""
    rnd = random.Random(11)
    analytics = goals_app.extensions["analytics_test"]
    state = current_state(goals_app)
    pageviews = [
        e
        for e in seeded_goals.events
        if e["name"] == "pageview"
        and e["created_at"] < seeded_goals.now - dt.timedelta(minutes=15)
        and local_date(e["created_at"], seeded_goals.tz)
        in (seeded_goals.live_past, seeded_goals.today)
    ]
    rows = []
    for view in rnd.sample(pageviews, 40):
        currency = rnd.choice(["EUR", "USD", None])
        amount = Decimal(rnd.randrange(1, 10**7)) / 1000 if currency else None
        rows.append(
            make_row(
                view["created_at"],
                view["visitor_id"],
                name="purchase",
                path=view["path"],
                revenue_amount=amount,
                revenue_currency=currency,
                **{k: view[k] for k in ("device_type", "browser", "os", "country")},
            )
        )
    with goals_app.app_context(), analytics.db.engine.connect() as conn:
        insert(analytics, rows)
        events = [dict(r) for r in conn.execute(sa.select(analytics.Event.__table__)).mappings()]
    seeded_goals.events = events
    rng = DateRange(seeded_goals.live_past, seeded_goals.today)
    purchase = {"name": "Purchase", "event": "purchase"}
    expected: dict[Any, dict[str, list[Decimal]]] = defaultdict(lambda: defaultdict(list))
    for _day, session, evs in kept(seeded_goals, rng, []):
        for e in evs:
            if matches(purchase, e) and e["revenue_currency"]:
                for key in (("total",), session.landing["source"]):
                    expected[key][e["revenue_currency"]].append(e["revenue_amount"])
    assert len(expected[("total",)]) == 2
    with goals_app.app_context(), state.engine().connect() as conn:
        stats = Stats(state, conn)
        (total,) = goal_totals(stats, rng, [stats.goals["Purchase"]])
        by_source, _ = goal_breakdown(
            stats, BREAKDOWNS["source"], rng, stats.goals["Purchase"], limit=None
        )
        stats.close()

    def as_dict(revenue: Any) -> dict[str, tuple[Decimal, int]]:
        for r in revenue:
            assert isinstance(r.amount, Decimal)
        return {r.currency: (r.amount, r.events) for r in revenue}

    def want(amounts: dict[str, list[Decimal]]) -> dict[str, tuple[Decimal, int]]:
        return {c: (sum(a, Decimal(0)), len(a)) for c, a in amounts.items()}

    assert as_dict(total.revenue) == want(expected[("total",)])
    eur = next(r for r in total.revenue if r.currency == "EUR")
    assert eur.average == (eur.amount / eur.events).quantize(Decimal("0.000001"))
    got_rows = {r.key: as_dict(r.revenue) for r in by_source if r.revenue}
    assert got_rows == {k: want(v) for k, v in expected.items() if k != ("total",)}
