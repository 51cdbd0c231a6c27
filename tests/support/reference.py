"""A deliberately simple pure-Python version of DESIGN.md's definitions.

Independent of ``flask_analytics.aggregate`` (no SQL, no shared code): it is what the
daily tables, and any number the dashboard shows for one day, are checked against. The
choices DESIGN.md leaves open are the ones documented in ``flask_analytics/aggregate.py``.

Usage::

    rows = reference_daily(events, dt.date(2026, 3, 29), "Europe/Berlin", 1800)
    rows["DailySummary"]  # [{"date": ..., "visitors": ..., ...}] (no row without events)

``events`` are plain mappings with at least: id, created_at (naive UTC datetime), name,
path, referrer_host, visitor_id, engagement_ms, channel, source, utm_source, utm_medium,
utm_campaign, utm_term, utm_content, device_type, browser, os, country. Rows are dicts of
a daily table's columns except ``id``; row order is unspecified (compare with
:func:`as_multiset`).
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

DURATION_BUCKETS = (0, 10, 30, 60, 180, 600, 1800, 3600)
PAGES_BUCKETS = (0, 1, 2, 3, 4, 5, 10, 20)
SESSION_ATTRIBUTES = (
    "channel",
    "source",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "country",
    "device_type",
    "browser",
    "os",
    "browser_version",
    "os_version",
    "language",
    "region",
    "city",
    "screen",
)
#: The per-session audience tables and their keys (hostname's counts bounces too).
AUDIENCE = {
    "DailyBrowserVersion": ("browser", "browser_version"),
    "DailyOsVersion": ("os", "os_version"),
    "DailyLocation": ("country", "region", "city"),
    "DailyLanguage": ("language",),
    "DailyScreen": ("screen",),
    "DailyHostname": ("hostname",),
}
UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
#: ANALYTICS_NON_INTERACTIVE_EVENTS's default: event names that do not end a bounce.
NON_INTERACTIVE = ("web_vitals",)

Row = dict[str, Any]


def local_date(created_at: dt.datetime, tz: ZoneInfo) -> dt.date:
    return created_at.replace(tzinfo=dt.timezone.utc).astimezone(tz).date()


def whole_seconds(created_at: dt.datetime) -> int:
    """Seconds since the epoch of a naive UTC time, fraction dropped."""
    return calendar.timegm(created_at.timetuple())


def bucket(value: int, bounds: tuple[int, ...]) -> int:
    return max(b for b in bounds if b <= value)


class Session:
    """One visit: a visitor's events in time order.

    A bounce: exactly one pageview, and every other event named in ``non_interactive``.
    """

    def __init__(
        self, events: list[Mapping[str, Any]], non_interactive: Iterable[str] = NON_INTERACTIVE
    ) -> None:
        self.events = events
        self.visitor = events[0]["visitor_id"]
        self.pageviews = [e for e in events if e["name"] == "pageview"]
        self.landing = self.pageviews[0] if self.pageviews else events[0]
        self.entry = self.pageviews[0]["path"] if self.pageviews else None
        self.exit = self.pageviews[-1]["path"] if self.pageviews else None
        quiet = {"pageview", *non_interactive}
        self.bounce = int(len(self.pageviews) == 1 and all(e["name"] in quiet for e in events))
        times = [whole_seconds(e["created_at"]) for e in events]
        self.duration = max(times) - min(times)


def sessions_of(
    events: list[Mapping[str, Any]], timeout: int, non_interactive: Iterable[str] = NON_INTERACTIVE
) -> list[Session]:
    """Split one day's events into sessions per visitor (gap > timeout starts a new one)."""
    by_visitor: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for event in events:
        by_visitor[event["visitor_id"]].append(event)
    sessions = []
    for visitor_events in by_visitor.values():
        visitor_events.sort(key=lambda e: (e["created_at"], e["id"]))
        current = [visitor_events[0]]
        for prev, event in itertools.pairwise(visitor_events):
            if whole_seconds(event["created_at"]) - whole_seconds(prev["created_at"]) > timeout:
                sessions.append(Session(current, non_interactive))
                current = []
            current.append(event)
        sessions.append(Session(current, non_interactive))
    return sessions


def reference_daily(
    events: Iterable[Mapping[str, Any]],
    day: dt.date,
    tz: ZoneInfo | str,
    session_timeout: int,
    non_interactive: Iterable[str] = NON_INTERACTIVE,
) -> dict[str, list[Row]]:
    """Every daily table's rows for local ``day``, keyed by daily model name."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    todays = [e for e in events if local_date(e["created_at"], zone) == day]
    sessions = sessions_of(todays, session_timeout, non_interactive)
    pageviews = [e for e in todays if e["name"] == "pageview"]
    result: dict[str, list[Row]] = {}

    summary = []
    if todays:
        summary.append(
            {
                "date": day,
                "visitors": len({e["visitor_id"] for e in todays}),
                "sessions": len(sessions),
                "pageviews": len(pageviews),
                "bounces": sum(s.bounce for s in sessions),
                "total_duration_s": sum(s.duration for s in sessions),
                "events": len(todays) - len(pageviews),
            }
        )
    result["DailySummary"] = summary

    paths = {e["path"] for e in todays if e["name"] in ("pageview", "engagement")}
    result["DailyPage"] = [
        {
            "date": day,
            "path": path,
            "visitors": len({e["visitor_id"] for e in pageviews if e["path"] == path}),
            "pageviews": sum(1 for e in pageviews if e["path"] == path),
            "entries": sum(1 for s in sessions if s.entry == path),
            "exits": sum(1 for s in sessions if s.exit == path),
            "total_engagement_ms": sum(
                e["engagement_ms"] or 0
                for e in todays
                if e["name"] == "engagement" and e["path"] == path
            ),
        }
        for path in paths
    ]

    by_referrer: dict[tuple[Any, ...], list[Mapping[str, Any]]] = defaultdict(list)
    for e in pageviews:
        by_referrer[(e["path"], e["referrer_host"])].append(e)
    result["DailyPageReferrer"] = [
        {
            "date": day,
            "path": path,
            "referrer_host": host,
            "visitors": len({e["visitor_id"] for e in group}),
            "pageviews": len(group),
        }
        for (path, host), group in by_referrer.items()
    ]

    def by_session(keys: tuple[str, ...], bounced: bool) -> list[Row]:
        groups: dict[tuple[Any, ...], list[Session]] = defaultdict(list)
        for s in sessions:
            # Events made before a column existed do not carry it: NULL.
            groups[tuple(s.landing.get(k) for k in keys)].append(s)
        rows = []
        for values, group in groups.items():
            row: Row = {"date": day, **dict(zip(keys, values, strict=True))}
            row["visitors"] = len({s.visitor for s in group})
            row["sessions"] = len(group)
            row["pageviews"] = sum(len(s.pageviews) for s in group)
            if bounced:
                row["bounces"] = sum(s.bounce for s in group)
            rows.append(row)
        return rows

    result["DailyTrafficSource"] = by_session(("channel", "source"), bounced=True)
    result["DailyCountry"] = by_session(("country",), bounced=False)
    result["DailyDevice"] = by_session(("device_type", "browser", "os"), bounced=False)
    result["DailyUtm"] = by_session(UTM, bounced=True)
    for table, keys in AUDIENCE.items():
        result[table] = by_session(keys, bounced=table == "DailyHostname")

    histogram: dict[tuple[int, int], list[Session]] = defaultdict(list)
    for s in sessions:
        key = (bucket(s.duration, DURATION_BUCKETS), bucket(len(s.pageviews), PAGES_BUCKETS))
        histogram[key].append(s)
    result["DailySession"] = [
        {
            "date": day,
            "duration_bucket": duration,
            "pages_bucket": pages,
            "sessions": len(group),
            "total_duration_s": sum(s.duration for s in group),
            "pageviews": sum(len(s.pageviews) for s in group),
        }
        for (duration, pages), group in histogram.items()
    ]

    names: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for e in todays:
        if e["name"] != "pageview":
            names[e["name"]].append(e)
    result["DailyEvent"] = [
        {
            "date": day,
            "name": name,
            "visitors": len({e["visitor_id"] for e in group}),
            "events": len(group),
        }
        for name, group in names.items()
    ]
    return result


def as_multiset(rows: Iterable[Mapping[str, Any]]) -> Counter[tuple[tuple[str, Any], ...]]:
    """Rows as an order-free comparable value (ints normalized, ``id`` ignored)."""
    return Counter(
        tuple(sorted((k, int(v) if isinstance(v, int) else v) for k, v in r.items() if k != "id"))
        for r in rows
    )
