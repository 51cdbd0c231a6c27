"""The aggregation writes ``analytics_session``: one row per session of the day, equal to
the reference's sessions (tests/support/reference.py), replaced on every run."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import sqlalchemy as sa
from flask import Flask

from flask_analytics import Analytics
from flask_analytics.core.clock import day_bounds

from ..support.reference import SESSION_ATTRIBUTES, local_date, sessions_of
from ..support.seeded_stats import TIMEOUT, Seeded


def stored_sessions(analytics: Analytics, day: dt.date) -> list[dict[str, Any]]:
    table = analytics.Session.__table__
    with analytics.db.engine.connect() as conn:
        rows = conn.execute(sa.select(table).where(table.c.date == day)).mappings()
        return [dict(r) for r in rows]


def as_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted((k, v) for k, v in row.items() if k != "id"))


def expected_sessions(seeded: Seeded, day: dt.date) -> list[dict[str, Any]]:
    events = [e for e in seeded.events if local_date(e["created_at"], seeded.tz) == day]
    rows = []
    for s in sessions_of(events, TIMEOUT):
        rows.append(
            {
                "date": day,
                "visitor_id": s.visitor,
                "started_at": min(e["created_at"] for e in s.events),
                "ended_at": max(e["created_at"] for e in s.events),
                "duration_s": s.duration,
                "events": len(s.events),
                "pageviews": len(s.pageviews),
                "bounce": s.bounce,
                "entry_path": s.entry,
                "exit_path": s.exit,
                **{k: s.landing.get(k) for k in ("hostname", "referrer_host", *SESSION_ATTRIBUTES)},
            }
        )
    return rows


def test_session_rows_equal_the_reference_and_are_replaced(
    paris_app: Flask, seeded: Seeded
) -> None:
    analytics: Analytics = paris_app.extensions["analytics_test"]
    day = seeded.aggregated[0]
    with paris_app.app_context():
        expected = expected_sessions(seeded, day)
        assert len(expected) > 5
        assert Counter(map(as_key, stored_sessions(analytics, day))) == Counter(
            map(as_key, expected)
        )
        # A late event starting a session of its own: the next run has one more row and
        # still nothing twice.
        late = {**seeded.events[0], "id": None, "event_id": "late-event", "visitor_id": 77}
        late["created_at"] = day_bounds(seeded.tz, day)[0] + dt.timedelta(hours=5)
        del late["id"]
        with analytics.db.engine.begin() as conn:
            conn.execute(sa.insert(analytics.Event.__table__), [late])
        analytics.aggregate(day)
        again = stored_sessions(analytics, day)
        assert len(again) == len(expected) + 1
        assert [r["visitor_id"] for r in again].count(77) == 1


def test_a_day_never_aggregated_has_no_session_rows(paris_app: Flask, seeded: Seeded) -> None:
    analytics: Analytics = paris_app.extensions["analytics_test"]
    with paris_app.app_context():
        assert stored_sessions(analytics, seeded.live_past) == []
        assert stored_sessions(analytics, seeded.today) == []


def test_session_rows_read_back_as_datetimes(paris_app: Flask, seeded: Seeded) -> None:
    analytics: Analytics = paris_app.extensions["analytics_test"]
    with paris_app.app_context():
        rows = stored_sessions(analytics, seeded.aggregated[-1])
        assert rows
        assert all(isinstance(r["started_at"], dt.datetime) for r in rows)
        assert all(r["started_at"] <= r["ended_at"] for r in rows)
