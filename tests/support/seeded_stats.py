"""A seeded data set of raw events and the numbers the reference expects from it.

Raw events are generated (seeded) over a few past days, some aggregated and one left
live, plus today; :func:`expected_totals` and :func:`expected_breakdown` sum
``reference.py``'s pure-Python daily rows over the same events. Used by the reports
tests and the dashboard tests (which render the same numbers).
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_analytics import Analytics
from flask_analytics.core.clock import day_bounds, utcnow
from flask_analytics.reports import Breakdown, DateRange, Totals
from flask_analytics.state import current_state

from .events import raw_event
from .reference import reference_daily

TIMEZONE = "Europe/Paris"
TIMEOUT = 1800

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = '"><img src=x onerror=alert(1)>'

PATHS = ["/", "/pricing", "/blog/launch", "/docs/install", "/about", f"/q/{XSS_SCRIPT}"]
SOURCES: list[dict[str, Any]] = [
    {"channel": "Direct", "source": None, "referrer_host": None},
    {"channel": "Organic Search", "source": "Google", "referrer_host": "google.com"},
    {"channel": "Organic Search", "source": "DuckDuckGo", "referrer_host": "duckduckgo.com"},
    {"channel": "Organic Social", "source": "Hacker News", "referrer_host": "news.ycombinator.com"},
    {"channel": "Referral", "source": "github.com", "referrer_host": "github.com"},
    {"channel": "Referral", "source": XSS_IMG, "referrer_host": "evil.example"},
    {
        "channel": "Email",
        "source": "newsletter",
        "referrer_host": None,
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "spring",
    },
    {
        "channel": "Paid Search",
        "source": "Google",
        "referrer_host": "google.com",
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_campaign": XSS_SCRIPT,
    },
]
DEVICES = [
    ("desktop", "Chrome", "Windows"),
    ("desktop", "Firefox", "Linux"),
    ("mobile", "Safari", "iOS"),
    ("mobile", "Chrome", "Android"),
    ("tablet", "Safari", "iPadOS"),
]
COUNTRIES = ["FR", "US", "DE", "GB", "JP", None]
CUSTOM_EVENTS = ["signup", "outbound", XSS_IMG]


def make_row(created_at: dt.datetime, visitor_id: int, **fields: Any) -> dict[str, Any]:
    """A raw event row with every column the dashboard reads (engagement, props...)."""
    extra: dict[str, Any] = {"screen_width": None, "scroll_depth": None, "props": None}
    return raw_event(created_at, visitor_id, **{**extra, **fields})


def day_events(
    rnd: random.Random, start: dt.datetime, end: dt.datetime, visitors: int
) -> list[dict[str, Any]]:
    """Realistic-looking raw events of ``visitors`` visitors between two UTC times."""
    rows = []
    span = max(1, int((end - start).total_seconds()) - 3 * 3600)
    for _ in range(visitors):
        visitor = rnd.randrange(1, 2**62)
        device, browser, os_name = rnd.choice(DEVICES)
        country = rnd.choice(COUNTRIES)
        moment = start + dt.timedelta(seconds=rnd.randrange(span))
        for _session in range(rnd.choice((1, 1, 1, 2))):
            landing = rnd.choice(SOURCES)
            for view in range(rnd.choice((1, 1, 2, 3, 5, 8))):
                if moment >= end:
                    break
                attribution = landing if view == 0 else {"channel": "Direct"}
                path = rnd.choice(PATHS)
                common = {
                    "device_type": device,
                    "browser": browser,
                    "os": os_name,
                    "country": country,
                    "path": path,
                }
                rows.append(make_row(moment, visitor, **common, **attribution))
                moment += dt.timedelta(seconds=rnd.randrange(5, 240))
                if rnd.random() < 0.4 and moment < end:
                    rows.append(
                        make_row(
                            moment,
                            visitor,
                            name="engagement",
                            engagement_ms=rnd.randrange(500, 90_000),
                            **common,
                        )
                    )
                if rnd.random() < 0.15 and moment < end:
                    name = rnd.choice(CUSTOM_EVENTS)
                    props = {"plan": rnd.choice(["free", "pro", XSS_SCRIPT])}
                    rows.append(make_row(moment, visitor, name=name, props=props, **common))
            moment += dt.timedelta(seconds=TIMEOUT + rnd.randrange(60, 3600))
    return [r for r in rows if r["created_at"] < end]


def insert(analytics: Analytics, rows: Iterable[dict[str, Any]]) -> None:
    """Insert raw rows directly (no pipeline) into the event table."""
    rows = list(rows)
    if rows:
        with analytics.db.engine.begin() as conn:
            conn.execute(sa.insert(analytics.Event.__table__), rows)


@dataclass
class Seeded:
    """A seeded data set: raw events, which days were aggregated, and the clock."""

    events: list[dict[str, Any]]
    today: dt.date
    aggregated: list[dt.date]
    live_past: dt.date
    tz: ZoneInfo
    now: dt.datetime  # naive UTC, when the data was made

    @property
    def days(self) -> list[dt.date]:
        return sorted({self.live_past, *self.aggregated, self.today})


def seed(
    app: Flask,
    analytics: Analytics,
    *,
    visitors: int = 25,
    seed_value: int = 5,
    past_days: int = 4,
) -> Seeded:
    """``past_days`` past days (all aggregated but the oldest) and today (live).

    Daily visitors vary around ``visitors``. Today's events stop ten minutes ago, except
    a few in the last two minutes (realtime), never before today's local midnight: just
    after midnight they are at midnight, so today is never empty.
    """
    rnd = random.Random(seed_value)
    state = current_state(app)
    tz = state.settings.timezone
    now = utcnow().replace(microsecond=0)
    today = state.local_date(now)
    rows: list[dict[str, Any]] = []
    past = [today - dt.timedelta(days=n) for n in range(past_days, 0, -1)]
    for day in past:
        start, end = day_bounds(tz, day)
        weekly = 0.75 if day.weekday() >= 5 else 1.0
        rows += day_events(rnd, start, end, max(1, int(visitors * weekly * rnd.uniform(0.8, 1.2))))
    start, _end = day_bounds(tz, today)
    cutoff = now - dt.timedelta(minutes=10)
    if cutoff > start:
        rows += day_events(rnd, start, cutoff, visitors)
    for i in range(3):
        moment = max(start, now - dt.timedelta(seconds=30 + 20 * i))
        rows.append(make_row(moment, 9_000 + i, path="/live", source="Google", country="FR"))
    rows.append(make_row(max(start, now - dt.timedelta(seconds=45)), 9_000, path="/pricing"))
    with app.app_context():
        insert(analytics, rows)
        for day in past[1:]:
            analytics.aggregate(day)
        with analytics.db.engine.connect() as conn:
            # Read back: the reference orders a visitor's events by (created_at, id).
            table = analytics.Event.__table__
            stored = [dict(r) for r in conn.execute(sa.select(table)).mappings()]
    return Seeded(stored, today, past[1:], past[0], tz, now)


@pytest.fixture
def paris_app(make_app: Any) -> Flask:
    """An app in Europe/Paris (conftest modules import this fixture)."""
    app: Flask = make_app(ANALYTICS_TIMEZONE=TIMEZONE)
    return app


@pytest.fixture
def seeded(paris_app: Flask, frozen_clock: Any) -> Seeded:
    """The seeded data set, with time frozen while the test reads it: the app's "today"
    is the day the data was made for."""
    return seed(paris_app, paris_app.extensions["analytics_test"])


# -- the independent computation ----------------------------------------------------------


def reference_rows(seeded: Seeded, rng: DateRange) -> dict[str, list[dict[str, Any]]]:
    """Reference daily rows of every day of ``rng``, all tables, concatenated."""
    result: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for day in rng.dates():
        for table, rows in reference_daily(seeded.events, day, seeded.tz, TIMEOUT).items():
            result[table] += rows
    return result


def expected_totals(seeded: Seeded, rng: DateRange) -> Totals:
    """The reference's totals over ``rng``."""
    totals = Totals()
    for row in reference_rows(seeded, rng)["DailySummary"]:
        totals += Totals(**{k: v for k, v in row.items() if k != "date"})
    return totals


def expected_breakdown(
    seeded: Seeded, dimension: Breakdown, rng: DateRange, exclude: Sequence[str] = ()
) -> dict[Any, dict[str, int]]:
    """Every key of ``dimension`` with its summed counts (after the dimension's filters);
    a breakdown with a parent column is keyed by (parent value, key)."""
    sums: dict[Any, dict[str, int]] = defaultdict(lambda: dict.fromkeys(dimension.counts, 0))
    for row in reference_rows(seeded, rng)[dimension.table]:
        key = row[dimension.key]
        if dimension.skip_null and key is None:
            continue
        if dimension.parent:
            key = (row[dimension.parent], key)
        for count in dimension.counts:
            sums[key][count] += row[count]
    return {
        key: counts
        for key, counts in sums.items()
        if key not in exclude and (dimension.positive is None or counts[dimension.positive] > 0)
    }
