"""Raw events and daily rows written and read straight through SQL (no pipeline).

Shared by the lifecycle, tasks and cli tests: a known day of visits, raw rows at given
times, finished aggregation runs, and the daily tables read back for comparison.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_analytics import Analytics
from flask_analytics.state import AppState, current_state

#: The day of :func:`add_visits` (and the pinned "today" of the cli tests).
DAY = dt.date(2026, 1, 15)


def raw_event(created_at: dt.datetime, visitor_id: int = 1, **fields: Any) -> dict[str, Any]:
    """A raw event row with the columns a browser pageview would have."""
    row: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "created_at": created_at,
        "name": "pageview",
        "hostname": "example.com",
        "path": "/",
        "referrer": None,
        "referrer_host": None,
        "channel": "Direct",
        "source": None,
        "utm_source": None,
        "utm_medium": None,
        "utm_campaign": None,
        "utm_term": None,
        "utm_content": None,
        "device_type": "desktop",
        "browser": "Chrome",
        "os": "Windows",
        "country": None,
        "browser_version": None,
        "os_version": None,
        "language": None,
        "region": None,
        "city": None,
        "screen": None,
        "visitor_id": visitor_id,
        "engagement_ms": None,
    }
    row.update(fields)
    return row


def add_visits(app: Flask, day: dt.date = DAY) -> None:
    """Three visitors on ``day`` (UTC): 4 pageviews, 1 custom event, 3 sessions."""
    analytics: Analytics = app.extensions["analytics_test"]
    at = dt.datetime.combine(day, dt.time(10))
    rows = [
        (1, "pageview", at),
        (1, "pageview", at + dt.timedelta(minutes=5)),
        (2, "pageview", at + dt.timedelta(hours=1)),
        (2, "signup", at + dt.timedelta(hours=1, minutes=1)),
        (3, "pageview", at + dt.timedelta(hours=2)),
    ]
    with app.app_context(), analytics.db.engine.begin() as conn:
        conn.execute(
            sa.insert(analytics.Event.__table__),
            [
                {
                    "event_id": str(uuid.uuid4()),
                    "created_at": when,
                    "name": name,
                    "hostname": "example.com",
                    "path": "/",
                    "visitor_id": visitor,
                    "channel": "Direct",
                }
                for visitor, name, when in rows
            ],
        )


def add_events(app: Flask, times: Iterable[dt.datetime], **fields: Any) -> list[int]:
    """Insert one raw event per naive UTC time; returns their ids."""
    analytics: Analytics = app.extensions["analytics_test"]
    table: sa.Table = analytics.Event.__table__
    rows = [
        {
            "event_id": str(uuid.uuid4()),
            "created_at": when,
            "name": "pageview",
            "hostname": "example.com",
            "path": f"/p{i % 7}",
            "visitor_id": i % 5,
            "props": {"i": i},
            **fields,
        }
        for i, when in enumerate(times)
    ]
    with app.app_context(), analytics.db.engine.begin() as conn:
        conn.execute(sa.insert(table), rows)
        ids = conn.scalars(
            sa.select(table.c.id).where(table.c.event_id.in_([r["event_id"] for r in rows]))
        ).all()
    return sorted(ids)


def mark_aggregated(app: Flask, day: dt.date, source_events: int) -> None:
    """Record a finished aggregation run of ``day`` that read ``source_events`` events."""
    analytics: Analytics = app.extensions["analytics_test"]
    now = dt.datetime(2026, 3, 1, 12, 0)
    with app.app_context(), analytics.db.engine.begin() as conn:
        conn.execute(
            sa.insert(analytics.AggregationRun.__table__).values(
                date=day, started_at=now, finished_at=now, source_events=source_events
            )
        )


def pin_today(monkeypatch: pytest.MonkeyPatch, app: Flask, today: dt.date = DAY) -> AppState:
    """Pin the site's local "today" (retention and default days are relative to it)."""
    state = current_state(app)
    monkeypatch.setattr(state, "today", lambda: today)
    return state


def summary(app: Flask, day: dt.date = DAY) -> tuple[int, int, int, int] | None:
    """(visitors, sessions, pageviews, events) of ``day``'s summary row."""
    analytics: Analytics = app.extensions["analytics_test"]
    table = analytics.DailySummary.__table__
    with app.app_context(), analytics.db.engine.connect() as conn:
        row = conn.execute(
            sa.select(table.c.visitors, table.c.sessions, table.c.pageviews, table.c.events).where(
                table.c.date == day
            )
        ).first()
    return None if row is None else tuple(row)  # type: ignore[return-value]


def daily_rows(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    """Every daily table's rows without their ids, sorted."""
    analytics: Analytics = app.extensions["analytics_test"]
    out = {}
    with app.app_context(), analytics.db.engine.connect() as conn:
        for name, model in analytics.models.daily.items():
            table: sa.Table = model.__table__
            cols = [c for c in table.c if c.name != "id"]
            out[name] = sorted(tuple(r) for r in conn.execute(sa.select(*cols)))
    return out
