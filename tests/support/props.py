"""Event properties: generated traffic with props, stored the way the tests of
``prop:KEY`` breakdowns and property keys need it, and their numbers in plain Python.

Six local days of Europe/Paris ending "today" (:data:`NOW`): the first aggregated then
moved to the archive, three more aggregated (their sessions read from
``analytics_session``), one past day left live, and today. Events carry several keys:
strings (with ``|``, ``:``, unicode and markup), whole and decimal numbers, booleans,
a unicode key, a key with a double quote, one with a slash; some events have no props.

The reference (:func:`expected_values`, :func:`expected_keys`) uses
``filter_reference.kept_sessions`` for the filters and groups the kept events itself: a
value is the property as text (a string as is, anything else as its JSON text), NULL
when the event lacks the key; visitors are distinct per day, summed over days.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine
from flask import Flask, request

from flask_analytics import Analytics

from ..conftest import build_app, release_app
from .events import raw_event
from .filter_reference import FilterSpec, events_of_day, kept_sessions
from .schema import SchemaKeeper

TIMEZONE = "Europe/Paris"
TIMEOUT = 1800
#: "Today" of the data set: 14:00 in Paris (naive UTC), before the real today.
NOW = dt.datetime(2026, 11, 20, 13, 0)
TODAY = dt.date(2026, 11, 20)
DAYS = tuple(TODAY - dt.timedelta(days=n) for n in range(5, -1, -1))
#: Aggregated days (the first one then moved to the archive); the day after is live.
AGGREGATED = DAYS[:4]
LIVE_PAST = DAYS[4]
XSS = '<script>alert("x")</script>'
#: Keys the tests break down (the last one no event carries).
KEYS = ("plan", "step", "price", "trial", "label", "ключ", 'q"k', "a/b", "absent")
EVENTS = ("signup", "purchase", "outbound")
SOURCES = (
    {"channel": "Direct", "source": None, "referrer_host": None},
    {"channel": "Organic Search", "source": "Google", "referrer_host": "google.com"},
    {"channel": "Organic Search", "source": "Bing", "referrer_host": "bing.com"},
)
#: A header that makes the dashboard's access callback refuse the request.
DENY = "X-Test-Deny"


def props_for(rnd: random.Random) -> dict[str, Any] | None:
    """Props of a custom event: each key present or not, some events without any."""
    if rnd.random() < 0.12:
        return None
    props: dict[str, Any] = {}
    if rnd.random() < 0.75:
        props["plan"] = rnd.choice(("free", "pro", "team"))
    if rnd.random() < 0.5:
        props["step"] = rnd.randint(1, 4)
    if rnd.random() < 0.3:
        props["price"] = rnd.choice((19.99, 1.5, 0.25, 100))
    if rnd.random() < 0.3:
        props["trial"] = rnd.choice((True, False))
    if rnd.random() < 0.4:
        props["label"] = rnd.choice(("a|b", "x:y", "café ☕", XSS, "a\\|b"))
    if rnd.random() < 0.3:
        props["ключ"] = rnd.choice(("значение", "ü"))
    if rnd.random() < 0.1:
        props['q"k'] = "quoted"
    if rnd.random() < 0.1:
        props["a/b"] = "slash"
    return props or None


def event_row(created_at: dt.datetime, visitor: int, **fields: Any) -> dict[str, Any]:
    return raw_event(created_at, visitor, **{"country": "FR", "props": None, **fields})


def local_midnight(day: dt.date) -> dt.datetime:
    aware = dt.datetime.combine(day, dt.time.min, tzinfo=ZoneInfo(TIMEZONE))
    return aware.astimezone(dt.timezone.utc).replace(tzinfo=None)


def generate(seed: int = 7, visits: int = 24) -> list[dict[str, Any]]:
    """``visits`` visits a day: pageviews (a few with props, as server pageviews have),
    custom events with props, from one source per visit; none after :data:`NOW`."""
    rnd = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for day in DAYS:
        start = local_midnight(day)
        for _ in range(visits):
            visitor = rnd.randrange(1, 60)
            moment = start + dt.timedelta(seconds=rnd.randrange(0, 22 * 3600))
            landing = rnd.choice(SOURCES)
            for view in range(rnd.choice((1, 2, 3, 5))):
                props = {"plan": rnd.choice(("free", "pro"))} if rnd.random() < 0.05 else None
                path = rnd.choice(("/", "/pricing", "/docs"))
                fields = landing if view == 0 else {"channel": "Direct"}
                rows.append(event_row(moment, visitor, path=path, props=props, **fields))
                if rnd.random() < 0.45:
                    moment += dt.timedelta(seconds=rnd.randrange(1, 30))
                    name = rnd.choice(EVENTS)
                    rows.append(event_row(moment, visitor, name=name, props=props_for(rnd)))
                moment += dt.timedelta(seconds=rnd.choice((rnd.randrange(5, 300), TIMEOUT + 60)))
    return [r for r in rows if r["created_at"] < NOW]


def seed(app: Flask, analytics: Analytics) -> list[dict[str, Any]]:
    """Insert, aggregate and archive at :data:`NOW`; the stored events read back."""
    event: sa.Table = analytics.Event.__table__
    archive: sa.Table = analytics.EventArchive.__table__
    travel = time_machine.travel(NOW.replace(tzinfo=dt.timezone.utc), tick=False)
    with travel, app.app_context():
        with analytics.db.engine.begin() as conn:
            conn.execute(sa.insert(event), generate())
        for day in AGGREGATED:
            analytics.aggregate(day)
        moved = event.c.created_at < local_midnight(AGGREGATED[1])
        with analytics.db.engine.begin() as conn:
            names = list(event.c.keys())
            conn.execute(sa.insert(archive).from_select(names, sa.select(event).where(moved)))
            conn.execute(sa.delete(event).where(moved))
        with analytics.db.engine.connect() as conn:
            return [
                dict(r) for t in (event, archive) for r in conn.execute(sa.select(t)).mappings()
            ]


@pytest.fixture(scope="module")
def props_app(module_database_url: str, schemas: SchemaKeeper) -> Iterator[Flask]:
    """One app per database for a module's tests (they only read it), its dashboard open
    unless a request carries :data:`DENY`; ``app.config["PROPS_EVENTS"]``: the events."""
    app, db = build_app(module_database_url, schemas, "props", ANALYTICS_TIMEZONE=TIMEZONE)
    analytics: Analytics = app.extensions["analytics_test"]
    analytics.dashboard_access(lambda: DENY not in request.headers)
    app.config["PROPS_EVENTS"] = seed(app, analytics)
    yield app
    release_app(app, db, schemas)


# -- the reference ---------------------------------------------------------------------------


def prop_text(event: dict[str, Any], key: str) -> str | None:
    """Property ``key`` of an event as text: a string as is, else its JSON text."""
    value = (event["props"] or {}).get(key)
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def kept_events(
    events: Sequence[dict[str, Any]], day: dt.date, filters: Sequence[FilterSpec]
) -> list[dict[str, Any]]:
    day_events = events_of_day(events, day, ZoneInfo(TIMEZONE))
    return [e for _, evs in kept_sessions(day_events, TIMEOUT, filters) for e in evs]


def expected_values(
    events: Sequence[dict[str, Any]],
    key: str,
    days: Sequence[dt.date],
    filters: Sequence[FilterSpec] = (),
) -> dict[str | None, dict[str, int]]:
    """Property ``key``'s values over ``days``: visitors (distinct per day, summed),
    pageviews and other events of the kept events."""
    result: dict[str | None, dict[str, int]] = defaultdict(
        lambda: {"visitors": 0, "pageviews": 0, "events": 0}
    )
    for day in days:
        visitors: dict[str | None, set[int]] = defaultdict(set)
        for e in kept_events(events, day, filters):
            value = prop_text(e, key)
            visitors[value].add(e["visitor_id"])
            result[value]["pageviews" if e["name"] == "pageview" else "events"] += 1
        for value, seen in visitors.items():
            result[value]["visitors"] += len(seen)
    return dict(result)


def expected_keys(
    events: Sequence[dict[str, Any]],
    days: Sequence[dt.date],
    filters: Sequence[FilterSpec] = (),
    event: str | None = None,
) -> dict[str, int]:
    """How many kept events of ``days`` (named ``event``, when given) carry each key."""
    counted: dict[str, int] = defaultdict(int)
    for day in days:
        for e in kept_events(events, day, filters):
            if event is None or e["name"] == event:
                for key in e["props"] or {}:
                    counted[key] += 1
    return dict(counted)
