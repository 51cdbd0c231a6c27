"""Bounce (DESIGN v2): one pageview and no event but ANALYTICS_NON_INTERACTIVE_EVENTS.

Two checks, on SQLite and PostgreSQL:

- hand-made visits whose bounce verdict is written out per setting (empty, the default
  ``["web_vitals"]``, an extra name, ``engagement`` listed): the session computation, the
  aggregated ``analytics_session`` rows and the plain-Python reference must all say so;
- seeded random traffic (one-page visits with and without custom events, web vitals,
  engagement, outbound..., multi-page visits, visits without pageview, gaps at the
  timeout, an extra non-interactive name): the bounces of aggregated days (every daily
  table, ``analytics_session``) and of the raw path (``Stats(raw=True)``, filters that
  keep everything, a live day cut from raw events) equal the reference's
  (``tests/support/reference.py``: sessions by the 30-minute rule, in plain Python).
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine
from flask import Flask

from flask_analytics import Analytics, ConfigError
from flask_analytics.config import DEFAULTS, load_settings
from flask_analytics.core.clock import day_bounds
from flask_analytics.core.rollups import sessions_select, source_events
from flask_analytics.reports import BREAKDOWNS, DateRange, Stats, parse_filter
from flask_analytics.state import current_state

from .conftest import build_app, release_app
from .support.events import raw_event
from .support.reference import as_multiset, local_date, reference_daily, sessions_of
from .support.seeded_stats import SOURCES

TIMEZONE = "Europe/Berlin"
TZ = ZoneInfo(TIMEZONE)
TIMEOUT = 1800
KEY = "ANALYTICS_NON_INTERACTIVE_EVENTS"
#: The app's setting: the default plus a name of the host's own.
CONFIGURED = ("web_vitals", "heartbeat")
HAND_DAY = dt.date(2026, 3, 9)
#: Random traffic; the last day is never aggregated (live: cut from raw events).
DAYS = (dt.date(2026, 3, 10), dt.date(2026, 3, 11), dt.date(2026, 3, 12))
NOW = dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.timezone.utc)

# -- hand-made visits ------------------------------------------------------------------

#: The settings the hand-made visits are judged under.
SETTINGS = {
    "none": (),
    "default": ("web_vitals",),
    "configured": CONFIGURED,
    "engagement": ("engagement", "web_vitals"),
}
ALL = frozenset(SETTINGS)
NOT = frozenset[str]()
VITALS = frozenset({"default", "configured", "engagement"})
#: (steps: (seconds after the previous event, name), per session in time order: the
#: settings under which it is a bounce).
HAND: tuple[tuple[tuple[tuple[int, str], ...], tuple[frozenset[str], ...]], ...] = (
    (((0, "pageview"),), (ALL,)),
    (((0, "pageview"), (2, "web_vitals")), (VITALS,)),
    (((0, "web_vitals"), (0, "pageview")), (VITALS,)),  # the vitals come first
    (((0, "pageview"), (5, "heartbeat")), (frozenset({"configured"}),)),
    (((0, "pageview"), (40, "engagement")), (frozenset({"engagement"}),)),
    (((0, "pageview"), (9, "engagement"), (1, "web_vitals")), (frozenset({"engagement"}),)),
    (((0, "pageview"), (60, "signup")), (NOT,)),  # a one-page visit that signs up
    (((0, "pageview"), (3, "outbound")), (NOT,)),
    (((0, "pageview"), (3, "download")), (NOT,)),
    (((0, "pageview"), (3, "form_submit")), (NOT,)),
    (((0, "pageview"), (3, "Web_Vitals")), (NOT,)),  # names are exact
    (((0, "pageview"), (30, "pageview")), (NOT,)),
    (((0, "pageview"), (30, "pageview"), (1, "web_vitals")), (NOT,)),
    (((0, "signup"),), (NOT,)),  # no pageview: never a bounce
    (((0, "web_vitals"),), (NOT,)),
    (((0, "web_vitals"), (1, "heartbeat")), (NOT,)),
    # Cut by the timeout: a bounce, then a session without pageview.
    (((0, "pageview"), (1, "web_vitals"), (TIMEOUT + 1, "engagement")), (VITALS, NOT)),
    (((0, "pageview"), (TIMEOUT + 1, "pageview")), (ALL, ALL)),
    (((0, "pageview"), (TIMEOUT, "signup")), (NOT,)),  # at the timeout: one visit
    (((0, "pageview"), (TIMEOUT + 1, "signup"), (0, "pageview")), (ALL, NOT)),
)


def hand_rows() -> tuple[list[dict[str, Any]], dict[tuple[int, dt.datetime], frozenset[str]]]:
    """Rows of the hand-made visits on HAND_DAY (visitor i + 1 for visit i), and the
    expected verdicts keyed by (visitor, session start)."""
    rows, expected = [], {}
    start = day_bounds(TZ, HAND_DAY)[0] + dt.timedelta(hours=8)
    for index, (steps, verdicts) in enumerate(HAND):
        visitor = index + 1
        moment = start + dt.timedelta(minutes=5 * index)
        starts = []
        for position, (gap, name) in enumerate(steps):
            moment += dt.timedelta(seconds=gap)
            if position == 0 or gap > TIMEOUT:
                starts.append(moment)
            rows.append(raw_event(moment, visitor, name=name, path=f"/h{position}"))
        assert len(starts) == len(verdicts)
        expected.update({(visitor, s): v for s, v in zip(starts, verdicts, strict=True)})
    return rows, expected


# -- seeded random traffic ---------------------------------------------------------------

NAMES = (
    *("pageview",) * 5,
    *("web_vitals",) * 3,
    "heartbeat",
    "heartbeat",
    "engagement",
    "engagement",
    "signup",
    "outbound",
    "download",
    "form_submit",
)
GAPS = (0, 1, 30, 600, TIMEOUT - 1, TIMEOUT, TIMEOUT + 1, 5000)


def random_rows(rnd: random.Random) -> list[dict[str, Any]]:
    """Visits of few visitors (so that theirs meet) over DAYS, cut at the end of the last."""
    rows = []
    end = day_bounds(TZ, DAYS[-1])[1]
    for day in DAYS:
        start = day_bounds(TZ, day)[0]
        for _ in range(70):
            visitor = 1_000 + rnd.randrange(25)
            attribution = rnd.choice(SOURCES)
            moment = start + dt.timedelta(seconds=rnd.randrange(24 * 3600))
            for position in range(rnd.choice((1, 1, 2, 2, 2, 3, 4))):
                if position:
                    moment += dt.timedelta(seconds=rnd.choice(GAPS))
                first = position == 0 and rnd.random() < 0.8
                name = "pageview" if first else rnd.choice(NAMES)
                path = rnd.choice(("/", "/pricing", "/blog"))
                rows.append(raw_event(moment, visitor, name=name, path=path, **attribution))
    return [r for r in rows if r["created_at"] < end]


@pytest.fixture(scope="module")
def site(module_database_url: str, schemas: Any) -> Iterator[Flask]:
    """One app per database with :data:`CONFIGURED`, holding the hand-made visits and
    the random traffic: HAND_DAY and DAYS but the last aggregated, time frozen at NOW."""
    app, db = build_app(
        module_database_url, schemas, "bounce", ANALYTICS_TIMEZONE=TIMEZONE, **{KEY: CONFIGURED}
    )
    analytics: Analytics = app.extensions["analytics_test"]
    rows = hand_rows()[0] + random_rows(random.Random(16))
    with time_machine.travel(NOW, tick=False), app.app_context():
        with analytics.db.engine.begin() as conn:
            conn.execute(sa.insert(analytics.Event.__table__), rows)
        for day in (HAND_DAY, *DAYS[:-1]):
            analytics.aggregate(day)
    yield app
    release_app(app, db, schemas)


def stored_events(app: Flask) -> list[dict[str, Any]]:
    """Every raw event as stored (the reference orders a visitor's by created_at, id)."""
    table = app.extensions["analytics_test"].Event.__table__
    with app.app_context(), current_state(app).engine().connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table)).mappings()]


def day_events(app: Flask, day: dt.date) -> list[dict[str, Any]]:
    tz = current_state(app).settings.timezone
    return [e for e in stored_events(app) if local_date(e["created_at"], tz) == day]


# -- tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_hand_made_visits_bounce_as_written(site: Flask, setting: str) -> None:
    """The session computation under each setting, and the reference, give the written
    verdicts; the aggregated rows follow the app's own setting."""
    names = SETTINGS[setting]
    expected = {key: int(setting in v) for key, v in hand_rows()[1].items()}
    events = day_events(site, HAND_DAY)
    reference = {
        (s.visitor, s.events[0]["created_at"]): s.bounce
        for s in sessions_of(events, TIMEOUT, names)
    }
    assert reference == expected
    state = current_state(site)
    start, end = day_bounds(state.settings.timezone, HAND_DAY)
    with site.app_context(), state.engine().connect() as conn:
        src = source_events(state.models, start, end).subquery("src")
        sessions = sessions_select(src, TIMEOUT, conn.dialect.name, non_interactive=names).subquery(
            "sessions"
        )
        s = sessions.c
        computed = {
            (r.visitor_id, r.started_at): r.bounce
            for r in conn.execute(sa.select(s.visitor_id, s.started_at, s.bounce))
        }
    assert computed == expected
    assert 0 < sum(expected.values()) < len(expected)


def test_aggregated_session_rows_follow_the_setting(site: Flask) -> None:
    expected = {key: int("configured" in v) for key, v in hand_rows()[1].items()}
    table = site.extensions["analytics_test"].Session.__table__
    with site.app_context(), current_state(site).engine().connect() as conn:
        rows = conn.execute(sa.select(table).where(table.c.date == HAND_DAY)).mappings()
        stored = {(r["visitor_id"], r["started_at"]): r["bounce"] for r in rows}
    assert stored == expected


def test_random_traffic_covers_every_kind_of_visit(site: Flask) -> None:
    """The seeded traffic holds what the comparisons below are about."""
    kinds: Counter[str] = Counter()
    for day in DAYS:
        for s in sessions_of(day_events(site, day), TIMEOUT, CONFIGURED):
            names = {e["name"] for e in s.events} - {"pageview"}
            if not s.pageviews:
                kinds["no pageview"] += 1
            elif len(s.pageviews) > 1:
                kinds["several pages"] += 1
            elif s.bounce:
                kinds["bounce with " + (" ".join(sorted(names)) or "nothing")] += 1
            else:
                kinds.update(f"one page with {n}" for n in names - set(CONFIGURED))
    wanted = [
        "no pageview",
        "several pages",
        "bounce with nothing",
        "bounce with web_vitals",
        "bounce with heartbeat",
        *(f"one page with {n}" for n in ("engagement", "signup", "outbound", "download")),
        "one page with form_submit",
    ]
    assert all(kinds[k] > 0 for k in wanted), kinds


@pytest.mark.parametrize("day", DAYS[:-1])
def test_aggregated_days_equal_the_reference(site: Flask, day: dt.date) -> None:
    """Every daily table (summary, traffic_source, utm bounces included) and the day's
    ``analytics_session`` rows."""
    analytics: Analytics = site.extensions["analytics_test"]
    events = day_events(site, day)
    expected = reference_daily(events, day, TIMEZONE, TIMEOUT, CONFIGURED)
    with site.app_context(), analytics.db.engine.connect() as conn:
        for name, model in analytics.models.daily.items():
            table = model.__table__
            columns = [c for c in table.c if c.name != "id"]
            rows = conn.execute(sa.select(*columns).where(table.c.date == day)).mappings()
            assert as_multiset(rows) == as_multiset(expected[name]), name
        session = analytics.Session.__table__
        stored = conn.execute(
            sa.select(session.c.visitor_id, session.c.started_at, session.c.bounce).where(
                session.c.date == day
            )
        ).all()
    sessions = sessions_of(events, TIMEOUT, CONFIGURED)
    assert Counter(map(tuple, stored)) == Counter(
        (s.visitor, s.events[0]["created_at"], s.bounce) for s in sessions
    )
    summary = expected["DailySummary"][0]
    assert 0 < summary["bounces"] < summary["sessions"]


#: Stats variants: the rollups (+ the live day), the raw path, filters keeping everything.
VARIANTS = {
    "rollups": {},
    "raw": {"raw": True},
    "session filter": {"filters": (parse_filter("hostname:is_not:nowhere.example"),)},
    "event filter": {"filters": (parse_filter("page:matches:*"),)},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_stats_bounces_equal_the_reference(site: Flask, variant: str) -> None:
    """Totals, daily totals and the source breakdown of DAYS (the last one live)."""
    events = stored_events(site)
    days: dict[dt.date, list[dict[str, Any]]] = {}
    by_source: dict[Any, list[int]] = defaultdict(lambda: [0, 0])
    for day in DAYS:
        reference = reference_daily(events, day, TIMEZONE, TIMEOUT, CONFIGURED)
        days[day] = reference["DailySummary"]
        for row in reference["DailyTrafficSource"]:
            by_source[row["source"]][0] += row["sessions"]
            by_source[row["source"]][1] += row["bounces"]
    rng = DateRange(DAYS[0], DAYS[-1])
    state = current_state(site)
    with site.app_context(), state.engine().connect() as conn:
        stats = Stats(state, conn, now=NOW.replace(tzinfo=None), **VARIANTS[variant])
        assert stats.live_days(rng) == [DAYS[-1]]
        totals = stats.totals(rng)
        daily = stats.daily_totals(rng)
        sources = stats.breakdown(BREAKDOWNS["source"], rng, limit=100)
    assert totals.bounces == sum(rows[0]["bounces"] for rows in days.values())
    assert totals.sessions == sum(rows[0]["sessions"] for rows in days.values())
    assert {d: t.bounces for d, t in daily.items()} == {
        d: rows[0]["bounces"] for d, rows in days.items()
    }
    assert {r.key: [r.counts["sessions"], r.counts["bounces"]] for r in sources} == by_source
    assert days[DAYS[-1]][0]["bounces"] > 0


# -- the setting ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "names"),
    [
        (DEFAULTS[KEY], ("web_vitals",)),
        ([], ()),
        (["heartbeat", " web_vitals ", "heartbeat"], ("heartbeat", "web_vitals")),
        ("web_vitals, video play", ("video play", "web_vitals")),
        (("web_vitals",), ("web_vitals",)),
    ],
)
def test_setting_is_read_as_a_list_of_names(value: Any, names: tuple[str, ...]) -> None:
    assert load_settings({**DEFAULTS, KEY: value}).non_interactive_events == names


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["pageview"], "lists 'pageview'"),
        ([1], "must be a list of event names"),
        (None, "must be a list of event names"),
    ],
)
def test_a_bad_setting_fails_early(value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings({**DEFAULTS, KEY: value})
