"""The raw path and the rollups agree exactly on every unfiltered question (property test).

Hypothesis draws traffic over four local days of Europe/Paris around the autumn DST
change (a 25-hour day): few visitors, so that their visits collide; gaps at and around
the session timeout; engagement and custom events, visits without pageviews, events
before the first pageview; microsecond times; a custom dimension. Every day is
aggregated (the first one's events may then move to the archive), so ``Stats()`` reads
the daily tables only; ``Stats(raw=True)`` computes the same questions from the
aggregation's ``analytics_session`` rows and raw events, or, for the days whose session
rows are dropped, from raw events alone.
Totals, daily totals, every breakdown (the custom one included) and both session
histograms must be equal, over a drawn sub-range, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flask_analytics import Analytics
from flask_analytics.reports import BREAKDOWNS, DateRange, Stats, custom_breakdown
from flask_analytics.state import current_state

from ..clock import FrozenClock
from ..conftest import custom_event_model

TIMEZONE = "Europe/Paris"
TIMEOUT = 1800
DAYS = tuple(dt.date(2026, 10, 23) + dt.timedelta(days=i) for i in range(4))
DST_DAY = dt.date(2026, 10, 25)
#: Two days after the last one: every aggregation run is final.
NOW = dt.datetime(2026, 10, 28, 12, 0, tzinfo=dt.timezone.utc)
DIMENSION = "plan"

SOURCES: tuple[dict[str, Any], ...] = (
    {"channel": "Direct", "source": None, "referrer_host": None},
    {"channel": "Organic Search", "source": "Google", "referrer_host": "google.com"},
    {
        "channel": "Email",
        "source": "newsletter",
        "referrer_host": None,
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "fall",
    },
    {
        "channel": "Paid Search",
        "source": "Google",
        "referrer_host": "google.com",
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_term": "t",
        "utm_content": "c",
    },
)
DEVICES = (("desktop", "Chrome", "Windows"), ("mobile", "Safari", "iOS"), (None, None, None))
#: Columns left NULL unless an event's source sets them.
UNSET = (
    "referrer_host",
    "source",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
)
#: Seconds after a local midnight that start a visit near an edge: the midnight itself,
#: the DST change (3 h after midnight on the DST day), the last minutes of a 24-hour day
#: and of the 25-hour day, the hour after a 24-hour day's end.
EDGES = (0, 3 * 3600 - 60, 3 * 3600 + 30, 24 * 3600 - 60, 24 * 3600 + 1200, 25 * 3600 - 90)
#: Gaps between a visit's events: at and around the timeout, and across the DST hour.
GAPS = (0, 1, 59, TIMEOUT - 1, TIMEOUT, TIMEOUT + 1, 3 * 3600)

event_steps = st.tuples(
    st.sampled_from(GAPS),
    st.sampled_from(("pageview", "pageview", "engagement", "signup", "outbound")),
    st.sampled_from(("/", "/a", "/b")),
    st.sampled_from((None, "pro", "free")),
    st.sampled_from((0, 999_999)),
)
visits = st.tuples(
    st.integers(0, len(DAYS) - 1),
    st.one_of(st.integers(0, 25 * 3600 - 1), st.sampled_from(EDGES)),
    st.integers(1, 5),
    st.integers(0, len(SOURCES) - 1),
    st.sampled_from(DEVICES),
    st.sampled_from(("FR", "US", None)),
    st.lists(event_steps, min_size=1, max_size=6),
)


def local_midnight(day: dt.date) -> dt.datetime:
    aware = dt.datetime.combine(day, dt.time.min, tzinfo=ZoneInfo(TIMEZONE))
    return aware.astimezone(dt.timezone.utc).replace(tzinfo=None)


def rows_of(drawn: list[Any]) -> list[dict[str, Any]]:
    """Event rows of the drawn visits, inside the four days."""
    rows = []
    end = local_midnight(DAYS[-1] + dt.timedelta(days=1))
    for day, second, visitor, source, device, country, steps in drawn:
        moment = local_midnight(DAYS[day]) + dt.timedelta(seconds=second)
        for index, (gap, name, path, plan, micro) in enumerate(steps):
            moment += dt.timedelta(seconds=gap)
            attribution = SOURCES[source] if index == 0 else {"channel": "Direct"}
            rows.append(
                {
                    **dict.fromkeys(UNSET),
                    "created_at": moment.replace(microsecond=micro),
                    "name": name,
                    "path": path,
                    "hostname": "example.com",
                    "visitor_id": visitor,
                    "device_type": device[0],
                    "browser": device[1],
                    "os": device[2],
                    "country": country,
                    "engagement_ms": 1500 if name == "engagement" else None,
                    "plan": plan,
                    "props": {"plan": plan} if name == "signup" else None,
                    **attribution,
                }
            )
    rows = [r for r in rows if r["created_at"] < end]
    for index, row in enumerate(rows):
        row["event_id"] = str(uuid.UUID(int=index + 1))
    return rows


@pytest.fixture
def custom_app(make_app: Callable[..., Flask]) -> Flask:
    app = make_app(event_model=custom_event_model, ANALYTICS_TIMEZONE=TIMEZONE)
    app.extensions["analytics_test"].dimension(DIMENSION)
    return app


def store(
    app: Flask,
    analytics: Analytics,
    rows: list[dict[str, Any]],
    archive: bool,
    computed: set[int],
) -> None:
    """Empty every analytics table, insert ``rows``, aggregate the four days, move the
    first day's events to the archive when ``archive``, and drop the ``analytics_session``
    rows of the days in ``computed`` (the raw path then cuts their sessions itself)."""
    event: sa.Table = analytics.Event.__table__
    archived: sa.Table = analytics.EventArchive.__table__
    session: sa.Table = analytics.models.Session.__table__
    with app.app_context():
        with analytics.db.engine.begin() as conn:
            for table in reversed(analytics.db.metadata.sorted_tables):
                if table.name.startswith("analytics_") and "salt" not in table.name:
                    conn.execute(sa.delete(table))
            if rows:
                conn.execute(sa.insert(event), rows)
        for day in DAYS:
            analytics.aggregate(day)
        if archive:
            moved = event.c.created_at < local_midnight(DAYS[1])
            with analytics.db.engine.begin() as conn:
                names = list(event.c.keys())
                conn.execute(sa.insert(archived).from_select(names, sa.select(event).where(moved)))
                conn.execute(sa.delete(event).where(moved))
        with analytics.db.engine.begin() as conn:
            conn.execute(sa.delete(session).where(session.c.date.in_([DAYS[i] for i in computed])))


def answers(stats: Stats, rng: DateRange) -> dict[str, Any]:
    """Every unfiltered question over ``rng``: totals, daily totals, breakdowns, histograms."""
    result: dict[str, Any] = {
        "totals": stats.totals(rng),
        "daily_totals": stats.daily_totals(rng),
    }
    for breakdown in (*BREAKDOWNS.values(), custom_breakdown(DIMENSION)):
        result[breakdown.name] = [
            (row.key, row.counts) for row in stats.breakdown(breakdown, rng, limit=1000)
        ]
    for bucket in ("duration_bucket", "pages_bucket"):
        result[bucket] = [(row.key, row.counts) for row in stats.sessions_histogram(rng, bucket)]
    return result


def test_raw_path_equals_the_rollups(custom_app: Flask, frozen_clock: FrozenClock) -> None:
    analytics: Analytics = custom_app.extensions["analytics_test"]
    state = current_state(custom_app)
    frozen_clock.move_to(NOW)
    seen = {"sessions": 0}

    @settings(
        max_examples=6,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        drawn=st.lists(visits, min_size=1, max_size=14),
        bounds=st.one_of(
            st.just([0, len(DAYS) - 1]),
            st.tuples(st.integers(0, len(DAYS) - 1), st.integers(0, len(DAYS) - 1)).map(sorted),
        ),
        archive=st.booleans(),
        computed=st.sets(st.integers(0, len(DAYS) - 1)),
    )
    # The 25th hour of the DST day belongs to it, also when the range starts there and
    # its sessions are cut from raw events.
    @example(
        drawn=[(2, 24 * 3600 + 1200, 1, 0, DEVICES[0], "FR", [(0, "pageview", "/", None, 0)])],
        bounds=[2, 3],
        archive=False,
        computed={2},
    )
    def check(drawn: list[Any], bounds: list[int], archive: bool, computed: set[int]) -> None:
        store(custom_app, analytics, rows_of(drawn), archive, computed)
        rng = DateRange(DAYS[bounds[0]], DAYS[bounds[1]])
        with custom_app.app_context(), state.engine().connect() as conn:
            rollups = answers(Stats(state, conn), rng)
            assert Stats(state, conn).live_days(rng) == []
            raw = answers(Stats(state, conn, raw=True), rng)
        for question, expected in rollups.items():
            assert raw[question] == expected, question
        seen["sessions"] += rollups["totals"].sessions

    check()
    # The examples were not all empty: the equalities compared real numbers.
    assert seen["sessions"] > 15
