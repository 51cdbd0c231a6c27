"""Page-experience traffic and its numbers computed in plain Python.

:func:`experience_rows` generates pageviews, ``engagement`` events (time and scroll,
sometimes two per page view, sometimes without a value) and ``web_vitals`` events (props
at and around the web.dev thresholds, CLS floats, missing, text and negative props) over
a few days. :func:`reference` computes what the page-experience report must answer from
the raw rows read back, written from the definitions alone (nearest-rank percentiles,
thresholds, visitors per day), with no package code; filters go through
``filter_reference.py``'s kept sessions.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import time_machine
from flask import Flask

from flask_analytics import Analytics
from flask_analytics.reports import DateRange, Stats
from flask_analytics.reports.experience import Experience, PageExperience, page_experience
from flask_analytics.reports.filters import parse_filters
from flask_analytics.state import current_state

from .filter_reference import FilterSpec, events_of_day, kept_sessions
from .reference import local_date
from .seeded_stats import XSS_SCRIPT, insert, make_row

#: web.dev's thresholds, written out again: (good at or below, poor above).
THRESHOLDS: dict[str, tuple[float, float]] = {
    "lcp": (2500, 4000),
    "inp": (200, 500),
    "cls": (0.1, 0.25),
    "ttfb": (800, 1800),
}
PATHS = ["/", "/pricing", "/blog/launch", "/blog/vitals", "/docs", f"/q/{XSS_SCRIPT}"]
#: A page with exactly one page view and one sample of everything.
ONE = "/one"
ONE_VITALS = {"lcp": 1234, "inp": 56, "cls": 0.042, "ttfb": 789}
#: A page whose vitals sit exactly at, and just past, each threshold.
EDGE = "/edge"
SOURCES = [
    {"channel": "Direct", "source": None, "referrer_host": None},
    {"channel": "Organic Search", "source": "Google", "referrer_host": "google.com"},
    {"channel": "Referral", "source": "github.com", "referrer_host": "github.com"},
]


def _vital_value(rnd: random.Random, name: str) -> Any:
    good, poor = THRESHOLDS[name]
    roll = rnd.random()
    if roll < 0.15:
        return rnd.choice((good, poor))  # exactly at a threshold
    if roll < 0.2:
        return rnd.choice(("slow", True, -1))  # not a usable number
    if name == "cls":
        return round(rnd.uniform(0, 0.5), rnd.choice((2, 3, 4)))
    return rnd.randrange(0, int(poor * 2))


def _vitals(rnd: random.Random) -> dict[str, Any]:
    props = {name: _vital_value(rnd, name) for name in THRESHOLDS}
    for name in THRESHOLDS:
        if rnd.random() < 0.15:
            del props[name]  # no interaction (INP), no LCP yet...
    return props


def experience_rows(tz: ZoneInfo, days: Sequence[dt.date], seed: int = 16) -> list[dict[str, Any]]:
    """Raw event rows of ``days``: visitors browsing :data:`PATHS` with engagement and
    web-vitals events, visitor 1 every day (visitors are counted per day)."""
    rnd = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for day in days:
        midnight = dt.datetime.combine(day, dt.time(), tzinfo=tz)
        for number in range(24):
            visitor = 1 if number == 0 else rnd.randrange(2, 2**40)
            landing = rnd.choice(SOURCES)
            local = midnight + dt.timedelta(minutes=rnd.randrange(20, 22 * 60))
            moment = local.astimezone(dt.timezone.utc).replace(tzinfo=None)
            for view in range(rnd.choice((1, 2, 3, 5))):
                path = rnd.choice(PATHS)
                common = {"path": path, **(landing if view == 0 else {"channel": "Direct"})}
                rows.append(make_row(moment, visitor, **common))
                for _hidden in range(rnd.choice((0, 1, 1, 1, 2))):
                    moment += dt.timedelta(seconds=rnd.randrange(3, 200))
                    engaged = rnd.randrange(3000, 240_000) if rnd.random() > 0.1 else None
                    depth = rnd.randrange(0, 101) if rnd.random() > 0.1 else None
                    rows.append(
                        make_row(
                            moment,
                            visitor,
                            name="engagement",
                            engagement_ms=engaged,
                            scroll_depth=depth,
                            path=path,
                        )
                    )
                if rnd.random() < 0.85:
                    moment += dt.timedelta(seconds=1)
                    rows.append(
                        make_row(moment, visitor, name="web_vitals", props=_vitals(rnd), path=path)
                    )
                moment += dt.timedelta(seconds=rnd.randrange(5, 300))
    noon = dt.datetime.combine(days[0], dt.time(12), tzinfo=tz)
    at = noon.astimezone(dt.timezone.utc).replace(tzinfo=None)
    rows.append(make_row(at, 7, path=ONE))
    rows.append(make_row(at, 7, name="engagement", engagement_ms=4321, scroll_depth=37, path=ONE))
    rows.append(make_row(at, 7, name="web_vitals", props=ONE_VITALS, path=ONE))
    for offset, (name, (good, poor)) in enumerate(THRESHOLDS.items()):
        above = poor + (0.01 if name == "cls" else 1)
        for value in (good, poor, above):
            when = at + dt.timedelta(minutes=offset + 1)
            rows.append(make_row(when, 8, name="web_vitals", props={name: value}, path=EDGE))
    return rows


def seed_site(
    app: Flask, days: Sequence[dt.date], aggregated: Sequence[dt.date], purged: dt.date, seed: int
) -> list[dict[str, Any]]:
    """Store :func:`experience_rows` of ``days``, aggregate ``aggregated``, give ``purged``
    a summary row without raw events (as if purged); returns the raw rows read back."""
    analytics: Analytics = app.extensions["analytics_test"]
    state = current_state(app)
    with app.app_context():
        insert(analytics, experience_rows(state.settings.timezone, days, seed))
        for day in aggregated:
            analytics.aggregate(day)
        summary = state.models.daily["DailySummary"].__table__
        with analytics.db.engine.begin() as conn:
            conn.execute(sa.insert(summary).values(date=purged, visitors=1, sessions=1))
            table = analytics.Event.__table__
            return [dict(r) for r in conn.execute(sa.select(table)).mappings()]


# -- the reference ------------------------------------------------------------------------------


def nearest_rank(values: Sequence[float], percent: int) -> float | None:
    """The smallest value v with at least ``percent``% of ``values`` <= v."""
    if not values:
        return None
    ordered = sorted(values)
    for value in ordered:
        if sum(1 for v in ordered if v <= value) * 100 >= percent * len(ordered):
            return value
    raise AssertionError("unreachable")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return None
    return value


def _kept(
    events: Iterable[Mapping[str, Any]],
    days: Sequence[dt.date],
    tz: ZoneInfo,
    timeout: int,
    filters: Sequence[FilterSpec],
) -> list[tuple[dt.date, Mapping[str, Any]]]:
    """(local day, event) of the events the filters keep on ``days``."""
    every = list(events)
    kept = []
    for day in days:
        todays = events_of_day(every, day, tz)
        if not filters:
            kept += [(day, e) for e in todays]
            continue
        for _session, session_events in kept_sessions(todays, timeout, filters):
            kept += [(day, e) for e in session_events]
    return kept


def _numbers(
    visitors: set[Any], visits: Mapping[Any, list[Mapping[str, Any]]], vitals: Mapping[str, list]
) -> dict[str, Any]:
    times = [
        sum(e["engagement_ms"] for e in group if e["engagement_ms"] is not None)
        for group in visits.values()
        if any(e["engagement_ms"] is not None for e in group)
    ]
    depths = [
        max(e["scroll_depth"] for e in group if e["scroll_depth"] is not None)
        for group in visits.values()
        if any(e["scroll_depth"] is not None for e in group)
    ]
    result: dict[str, Any] = {"visitors": len(visitors)}
    for name, values in (("time_on_page_ms", times), ("scroll_depth", depths)):
        result[name] = {
            "samples": len(values),
            "median": nearest_rank(values, 50),
            "average": sum(values) / len(values) if values else None,
        }
    for name, (good, poor) in THRESHOLDS.items():
        values = vitals.get(name, [])
        result[name] = {
            "samples": len(values),
            "p75": nearest_rank(values, 75),
            "good": sum(1 for v in values if v <= good),
            "needs_improvement": sum(1 for v in values if good < v <= poor),
            "poor": sum(1 for v in values if v > poor),
        }
    return result


def reference(
    events: Iterable[Mapping[str, Any]],
    days: Sequence[dt.date],
    tz: ZoneInfo,
    timeout: int,
    filters: Sequence[FilterSpec] = (),
) -> dict[str | None, dict[str, Any]]:
    """Every page's numbers (key: path) and the site's (key: None) over ``days``."""
    page_visitors: dict[Any, set[Any]] = defaultdict(set)
    site_visitors: set[Any] = set()
    visits: dict[Any, dict[Any, list[Mapping[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    vitals: dict[Any, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for day, event in _kept(events, days, tz, timeout, filters):
        assert local_date(event["created_at"], tz) == day
        path = event["path"]
        if event["name"] == "pageview":
            page_visitors[path].add((day, event["visitor_id"]))
            site_visitors.add((day, event["visitor_id"]))
        elif event["name"] == "engagement":
            visits[path][(day, event["visitor_id"])].append(event)
        elif event["name"] == "web_vitals":
            for name in THRESHOLDS:
                value = _number((event["props"] or {}).get(name))
                if value is not None:
                    vitals[path][name].append(value)
    pages = {*page_visitors, *visits, *vitals}
    result: dict[str | None, dict[str, Any]] = {}
    for path in pages:
        numbers = _numbers(page_visitors[path], visits[path], vitals[path])
        sampled = any(
            numbers[k]["samples"] for k in ("time_on_page_ms", "scroll_depth", *THRESHOLDS)
        )
        if numbers["visitors"] or sampled:
            result[path] = numbers
    every_visit = {
        (path, key): group for path, groups in visits.items() for key, group in groups.items()
    }
    every_vital: dict[str, list[float]] = defaultdict(list)
    for per_page in vitals.values():
        for name, values in per_page.items():
            every_vital[name] += values
    result[None] = _numbers(site_visitors, every_visit, every_vital)
    return result


def reference_rows(
    events: Iterable[Mapping[str, Any]], day: dt.date, tz: ZoneInfo
) -> Counter[tuple[str | None, str, float | None, int]]:
    """``analytics_daily_page_experience``'s rows of ``day`` as (path, metric, value,
    samples): every distinct sample value of a page and metric with its count; the
    visitors with a pageview of each page and of any page (path None, value None)."""
    todays = [e for e in events if local_date(e["created_at"], tz) == day]
    if not todays:
        return Counter()
    page_visitors: dict[str, set[Any]] = defaultdict(set)
    visits: dict[tuple[Any, str], list[Mapping[str, Any]]] = defaultdict(list)
    values: dict[tuple[str, str], Counter[float]] = defaultdict(Counter)
    for event in todays:
        path = event["path"]
        if event["name"] == "pageview":
            page_visitors[path].add(event["visitor_id"])
        elif event["name"] == "engagement":
            visits[(event["visitor_id"], path)].append(event)
        elif event["name"] == "web_vitals":
            for name in THRESHOLDS:
                value = _number((event["props"] or {}).get(name))
                if value is not None:
                    values[(path, name)][float(value)] += 1
    for (_visitor, path), group in visits.items():
        times = [e["engagement_ms"] for e in group if e["engagement_ms"] is not None]
        depths = [e["scroll_depth"] for e in group if e["scroll_depth"] is not None]
        if times:
            values[(path, "time_on_page_ms")][float(sum(times))] += 1
        if depths:
            values[(path, "scroll_depth")][float(max(depths))] += 1
    rows: Counter[tuple[str | None, str, float | None, int]] = Counter()
    for (path, metric), counted in values.items():
        for value, samples in counted.items():
            rows[(path, metric, value, samples)] += 1
    for path, visitors in page_visitors.items():
        rows[(path, "visitors", None, len(visitors))] += 1
    site = set().union(*page_visitors.values())
    rows[(None, "visitors", None, len(site))] += 1
    return rows


def stored_rows(app: Flask, day: dt.date) -> Counter[tuple[str | None, str, float | None, int]]:
    """``analytics_daily_page_experience``'s rows of ``day``, as :func:`reference_rows`."""
    table = current_state(app).models.DailyPageExperience.__table__
    c = table.c
    with app.app_context(), current_state(app).engine().connect() as conn:
        found = conn.execute(sa.select(c.path, c.metric, c.value, c.samples).where(c.date == day))
        return Counter((p, m, None if v is None else float(v), int(n)) for p, m, v, n in found)


def ordered_pages(expected: Mapping[str | None, dict[str, Any]]) -> list[str]:
    """Pages as the report lists them: most visitors first, then by path."""
    pages = [p for p in expected if p is not None]
    return sorted(pages, key=lambda p: (-expected[p]["visitors"], p))


# -- asking the report ------------------------------------------------------------------------


def ask(
    app: Flask, now: dt.datetime, rng: DateRange, filters: tuple[str, ...] = (), **options: Any
) -> Experience:
    """:func:`page_experience` of ``rng`` at ``now`` (``raw=True``: the raw path)."""
    state = current_state(app)
    raw = options.pop("raw", False)
    with (
        time_machine.travel(now, tick=False),
        app.app_context(),
        state.engine().connect() as conn,
    ):
        stats = Stats(state, conn, filters=parse_filters(filters), raw=raw)
        try:
            return page_experience(stats, rng, **options)
        finally:
            stats.close()


def as_dict(page: PageExperience) -> dict[str, Any]:
    """A row in the reference's shape."""
    result: dict[str, Any] = {"visitors": page.visitors}
    for name in ("time_on_page_ms", "scroll_depth"):
        summary = getattr(page, name)
        result[name] = {
            "samples": summary.samples,
            "median": summary.median,
            "average": summary.average,
        }
    for name, vital in page.vitals.items():
        result[name] = {
            "samples": vital.samples,
            "p75": vital.p75,
            "good": vital.good,
            "needs_improvement": vital.needs_improvement,
            "poor": vital.poor,
        }
    return result


def check(answer: Experience, expected: dict[str | None, dict[str, Any]]) -> None:
    """``answer`` holds every page of ``expected`` in order, and the same numbers."""
    assert [r.path for r in answer.rows] == ordered_pages(expected)
    assert answer.total == len(expected) - 1
    for row in [*answer.rows, answer.site]:
        assert as_dict(row) == expected[row.path], row.path
