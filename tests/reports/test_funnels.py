"""Funnels (DESIGN.md "Funnels") against a plain-Python reference: the seeded traffic
plus hand-made visits with steps out of order, repeated steps and steps split over two
sessions of one visitor (which do not chain), with and without filters, both databases.

The reference reads the definition literally: a session reaches step k when there are
events e1..ek in it, ei matching step i's goal, with non-decreasing times.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_analytics.reports import DateRange, Stats
from flask_analytics.reports.filters import parse_filters
from flask_analytics.reports.funnels import funnel_steps
from flask_analytics.state import current_state

from ..support.seeded_stats import TIMEZONE, Seeded, insert, make_row, seed
from .test_goals import GOALS, Spec, as_specs, kept, matches

FUNNELS = [
    {"name": "Checkout", "steps": ["Pricing", "Signup", "Purchase"]},
    {"name": "Blog to pro", "steps": ["Blog", "Pricing", "Signup", "Pro signup"]},
    {"name": "Loop", "steps": ["Pricing", "Pricing", "Signup"]},
]


def reaches(events: Sequence[dict[str, Any]], steps: Sequence[dict[str, Any]]) -> int:
    """How many steps a session's events reach (by brute force over event choices)."""
    reached = 0
    for k in range(1, len(steps) + 1):
        candidates = [[e for e in events if matches(steps[i], e)] for i in range(k)]
        if any(
            all(a["created_at"] <= b["created_at"] for a, b in itertools.pairwise(choice))
            for choice in itertools.product(*candidates)
        ):
            reached = k
        else:
            break
    return reached


def expected_funnel(
    seeded: Seeded, rng: DateRange, filters: Sequence[Spec], funnel: dict[str, Any]
) -> list[int]:
    goals = {g["name"]: g for g in GOALS}
    steps = [goals[name] for name in funnel["steps"]]
    visitors: list[set[Any]] = [set() for _ in steps]
    for day, session, evs in kept(seeded, rng, filters):
        hits = [e for e in evs if any(matches(s, e) for s in steps)]
        for k in range(reaches(hits, steps)):
            visitors[k].add((day, session.visitor))
    return [len(v) for v in visitors]


@pytest.fixture
def funnel_app(make_app: Any) -> Flask:
    app: Flask = make_app(
        ANALYTICS_TIMEZONE=TIMEZONE, ANALYTICS_GOALS=GOALS, ANALYTICS_FUNNELS=FUNNELS
    )
    return app


def hand_made(seeded: Seeded) -> list[dict[str, Any]]:
    """Visits at noon of the oldest past day, which is never aggregated (an hour before
    the data was made would fall on an aggregated day just after local midnight)."""
    noon = dt.datetime.combine(seeded.live_past, dt.time(12), tzinfo=seeded.tz)
    base = noon.astimezone(dt.timezone.utc).replace(tzinfo=None)
    t = lambda minutes: base + dt.timedelta(minutes=minutes)  # noqa: E731
    view = lambda when, visitor, path: make_row(when, visitor, path=path)  # noqa: E731
    event = lambda when, visitor, name, **kw: make_row(when, visitor, name=name, **kw)  # noqa: E731
    return [
        # Out of order: signup and purchase before pricing: step 1 only.
        event(t(0), 501, "signup", props={"plan": "pro"}),
        event(t(1), 501, "purchase"),
        view(t(2), 501, "/pricing"),
        # Steps split over two sessions (40 minutes apart): step 1 only.
        view(t(0), 502, "/pricing"),
        event(t(40), 502, "signup"),
        event(t(41), 502, "purchase"),
        # Repeated steps: all the way.
        view(t(0), 503, "/pricing"),
        view(t(1), 503, "/pricing"),
        event(t(2), 503, "signup"),
        event(t(2), 503, "signup"),
        event(t(3), 503, "purchase"),
        # Same second for two steps: times are non-decreasing, so it counts.
        view(t(5), 504, "/pricing"),
        event(t(5), 504, "signup"),
        event(t(5), 504, "purchase"),
        # A purchase first, then pricing and signup: the later purchase is missing.
        event(t(0), 505, "purchase"),
        view(t(1), 505, "/pricing"),
        event(t(2), 505, "signup"),
    ]


def test_funnels_match_the_reference(funnel_app: Flask, frozen_clock: Any) -> None:
    analytics = funnel_app.extensions["analytics_test"]
    seeded = seed(funnel_app, analytics, visitors=20)
    with funnel_app.app_context():
        insert(analytics, hand_made(seeded))
        with analytics.db.engine.connect() as conn:
            table = analytics.Event.__table__
            seeded.events = [dict(r) for r in conn.execute(sa.select(table)).mappings()]
    state = current_state(funnel_app)
    rng = DateRange(seeded.live_past, seeded.today)
    goals = state.hooks.app_goals(state.settings.goals)
    funnels = state.hooks.app_funnels(state.settings.funnels, goals)
    checked = 0
    for texts in ((), ("source:is_not:Google",), ("page:is_not:/about",)):
        with funnel_app.app_context(), state.engine().connect() as conn:
            stats = Stats(state, conn, filters=parse_filters(texts))
            for spec in FUNNELS:
                steps = funnel_steps(stats, rng, funnels[spec["name"]], goals)
                got = [s.visitors for s in steps]
                assert got == expected_funnel(seeded, rng, as_specs(texts), spec), (texts, spec)
                assert [s.dropoff for s in steps[1:]] == [a - b for a, b in itertools.pairwise(got)]
                assert steps[-1].conversion_rate == (got[-1] / got[0] if got[0] else None)
                checked += sum(got)
            stats.close()
    assert checked > 50
    # The hand-made visits alone: today, visitors 501-505.
    only = DateRange(seeded.today, seeded.today)
    mine = [e for e in seeded.events if 501 <= e["visitor_id"] <= 505]
    assert reaches_all(mine) == {501: 1, 502: 1, 503: 3, 504: 3, 505: 2}
    assert only.start == seeded.today


def reaches_all(events: list[dict[str, Any]]) -> dict[int, int]:
    """Steps of "Checkout" each hand-made visitor's best session reaches (reference)."""
    goals = {g["name"]: g for g in GOALS}
    steps = [goals[n] for n in FUNNELS[0]["steps"]]
    best: dict[int, int] = {}
    by_visitor = sorted(events, key=lambda e: (e["visitor_id"], e["created_at"], e["id"]))
    for visitor, group in itertools.groupby(by_visitor, key=lambda e: e["visitor_id"]):
        session: list[dict[str, Any]] = []
        for e in group:
            if session and e["created_at"] - session[-1]["created_at"] > dt.timedelta(minutes=30):
                best[visitor] = max(best.get(visitor, 0), reaches(session, steps))
                session = []
            session.append(e)
        best[visitor] = max(best.get(visitor, 0), reaches(session, steps))
    return best
