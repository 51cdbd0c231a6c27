"""A data set for comparisons: 31 days of traffic in Paris and today until 14:30, made at
a frozen instant, with days aggregated, archived and purged (see :func:`seed_compare`)."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Flask

from flask_analytics import Analytics
from flask_analytics.core.clock import day_bounds

from .seeded_stats import day_events, insert, make_row

TZ = ZoneInfo("Europe/Paris")
#: 14:30 in Paris (CET, UTC+1): the frozen "now" of the whole module.
NOW = dt.datetime(2027, 3, 17, 13, 30)
TODAY = dt.date(2027, 3, 17)
SUMMARY = ("visitors", "sessions", "pageviews", "bounces", "total_duration_s", "events")
PAGE = ("visitors", "pageviews", "entries", "exits", "total_engagement_ms")


@dataclass
class Site:
    app: Flask
    #: Every event generated (read back with ids), the purged ones included.
    events: list[dict[str, Any]]


def local_at(day: dt.date, hour: int, minute: int) -> dt.datetime:
    """Naive UTC of a Paris wall-clock time."""
    wall = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=TZ)
    return wall.astimezone(dt.timezone.utc).replace(tzinfo=None)


def realtime_rows() -> list[dict[str, Any]]:
    """Visits of the last minutes: a Google landing then /pricing, a visitor whose
    previous page is older than the realtime window, a direct landing."""
    minutes = dt.timedelta(minutes=1)
    return [
        make_row(NOW - 20 * minutes, 7001, path="/", source="Google", referrer_host="google.com"),
        make_row(NOW - 10 * minutes, 7001, path="/pricing"),
        make_row(NOW - 40 * minutes, 7002, path="/about"),
        make_row(NOW - 15 * minutes, 7002, path="/pricing"),
        make_row(NOW - 5 * minutes, 7003, path="/docs/install"),
        make_row(
            NOW - 4 * minutes, 7004, path="/", source="github.com", referrer_host="github.com"
        ),
    ]


#: Days aggregated (the others are live): the two purged days (31 and 30 days ago), the
#: month's and the week's cut days (archived after), yesterday's (aggregated but raw),
#: and a few more, so comparisons mix stored and live days.
AGGREGATED = [TODAY - dt.timedelta(days=n) for n in (31, 30, 28, 20, 12, 9, 7, 1)]


def seed_compare(app: Flask) -> list[dict[str, Any]]:
    """Write the data set into ``app`` (time frozen at :data:`NOW`) and return every event
    generated, read back with its id (the purged ones included)."""
    analytics: Analytics = app.extensions["analytics_test"]
    rnd = random.Random(21)
    rows: list[dict[str, Any]] = []
    days = [TODAY - dt.timedelta(days=n) for n in range(31, 0, -1)]
    for day in days:
        rows += day_events(rnd, *day_bounds(TZ, day), 10)
    rows += day_events(rnd, day_bounds(TZ, TODAY)[0], NOW - dt.timedelta(minutes=55), 10)
    rows += realtime_rows()
    with app.app_context():
        insert(analytics, rows)
        for day in AGGREGATED:
            analytics.aggregate(day)
        table = analytics.Event.__table__
        with analytics.db.engine.connect() as conn:
            events = [dict(r) for r in conn.execute(sa.select(table)).mappings()]
        analytics.archive(older_than_days=5)
        archive = analytics.EventArchive.__table__
        with analytics.db.engine.begin() as conn:
            purged_before = day_bounds(TZ, TODAY - dt.timedelta(days=29))[0]
            conn.execute(sa.delete(archive).where(archive.c.created_at < purged_before))
    return events
