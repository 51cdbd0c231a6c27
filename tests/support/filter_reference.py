"""Filtered numbers by DESIGN.md's filter definition (v2), in plain Python.

Independent of ``flask_analytics`` (no SQL, no package code; it imports nothing of the
package): the query engine's raw path (``flask_analytics/reports/filtered.py``) is
checked against it. Sessions are cut by ``reference.py`` (pure Python too); matching is
written here from the filter definition:

- ``is`` / ``is_not``: the value equals one of the alternatives (``is_not``: none of
  them). ``(none)`` stands for the unknown value (NULL): ``is_not`` keeps NULL unless
  ``(none)`` is among its alternatives. Exact and case-sensitive.
- ``contains``: the value holds an alternative as a substring; ``matches``: the value is
  an alternative read as a glob where ``*`` is any characters and nothing else is special.
  NULL neither contains nor matches anything.
- A session filter (landing attributes, entry and exit page) keeps whole sessions; the
  session's value is its landing event's (first pageview, else first event).
- Event filters keep the events passing them all, and the sessions holding at least one.
- Counts: pageviews and events count kept events; visitors are distinct per day (of kept
  sessions in session-grouped tables, of kept events in event-grouped ones); sessions,
  bounces and duration are the kept sessions', whole; a session's histogram buckets are
  its whole duration and its whole pageview count, while its ``pageviews`` there are the
  kept ones. Entries and exits of a page are kept sessions entering / leaving there.

Filters are plain tuples ``(dimension, op, values)``; ``custom`` names the event model's
custom columns that have a daily dimension table. Rows come per local day, like the
stored tables; :func:`summed` adds them over a range.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from .reference import (
    AUDIENCE,
    DURATION_BUCKETS,
    PAGES_BUCKETS,
    SESSION_ATTRIBUTES,
    Session,
    bucket,
    local_date,
    sessions_of,
)

#: The alternative meaning "unknown" (NULL).
NONE = "(none)"
#: Dimensions whose value is the session's (the rest are the events' own).
SESSION_DIMENSIONS = ("entry_page", "exit_page", "hostname", "referrer", *SESSION_ATTRIBUTES)

FilterSpec = tuple[str, str, tuple[str, ...]]
Event = Mapping[str, Any]
Row = dict[str, Any]


# -- matching --------------------------------------------------------------------------------


def glob_matches(pattern: str, text: str) -> bool:
    """Whether ``text`` is ``pattern`` with each ``*`` replaced by any characters."""
    pieces = pattern.split("*")
    if len(pieces) == 1:
        return text == pattern
    head, tail = pieces[0], pieces[-1]
    if len(text) < len(head) + len(tail):
        return False
    if not (text.startswith(head) and text.endswith(tail)):
        return False
    position, stop = len(head), len(text) - len(tail)
    for piece in pieces[1:-1]:
        found = text.find(piece, position, stop)
        if found < 0:
            return False
        position = found + len(piece)
    return True


def value_passes(op: str, values: Sequence[str], value: str | None) -> bool:
    """Whether one value passes a filter's operator and alternatives."""
    known = [v for v in values if v != NONE]
    if op in ("is", "is_not"):
        hit = (value is None and NONE in values) or (value is not None and value in known)
        return hit if op == "is" else not hit
    if value is None:
        return False
    if op == "contains":
        return any(v in value for v in known)
    if op == "matches":
        return any(glob_matches(v, value) for v in known)
    raise ValueError(f"unknown operator {op!r}")


def session_value(session: Session, dimension: str) -> str | None:
    if dimension == "entry_page":
        return session.entry
    if dimension == "exit_page":
        return session.exit
    if dimension == "referrer":
        value: str | None = session.landing["referrer_host"]
        return value
    return session.landing.get(dimension)  # type: ignore[no-any-return]


def event_value(event: Event, dimension: str) -> str | None:
    if dimension == "page":
        return event["path"]  # type: ignore[no-any-return]
    if dimension == "event":
        return event["name"]  # type: ignore[no-any-return]
    if dimension.startswith("prop:"):
        props = event.get("props") or {}
        found = props.get(dimension[len("prop:") :])
        if found is None or isinstance(found, str):
            return found
        return json.dumps(found)
    return event[dimension]  # type: ignore[no-any-return]


def is_session_filter(spec: FilterSpec) -> bool:
    return spec[0] in SESSION_DIMENSIONS


# -- kept sessions and events ------------------------------------------------------------------


def kept_sessions(
    day_events: Sequence[Event], timeout: int, filters: Sequence[FilterSpec]
) -> list[tuple[Session, list[Event]]]:
    """The day's sessions that the filters keep, each with its kept events."""
    session_filters = [f for f in filters if is_session_filter(f)]
    event_filters = [f for f in filters if not is_session_filter(f)]
    kept = []
    for session in sessions_of(list(day_events), timeout) if day_events else []:
        if not all(
            value_passes(op, vs, session_value(session, d)) for d, op, vs in session_filters
        ):
            continue
        events = [
            e
            for e in session.events
            if all(value_passes(op, vs, event_value(e, d)) for d, op, vs in event_filters)
        ]
        if event_filters and not events:
            continue
        kept.append((session, events))
    return kept


def events_of_day(events: Iterable[Event], day: dt.date, tz: ZoneInfo) -> list[Event]:
    return [e for e in events if local_date(e["created_at"], tz) == day]


# -- virtual daily tables -----------------------------------------------------------------------


def filtered_daily(
    events: Iterable[Event],
    day: dt.date,
    tz: ZoneInfo | str,
    timeout: int,
    filters: Sequence[FilterSpec],
    custom: Sequence[str] = (),
) -> dict[str, list[Row]]:
    """Every virtual daily table's rows of local ``day`` under ``filters``."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    kept = kept_sessions(events_of_day(events, day, zone), timeout, filters)
    kept_events = [e for _, evs in kept for e in evs]
    views = [e for e in kept_events if e["name"] == "pageview"]
    others = [e for e in kept_events if e["name"] != "pageview"]

    def kept_views(evs: list[Event]) -> int:
        return sum(1 for e in evs if e["name"] == "pageview")

    result: dict[str, list[Row]] = {}
    result["DailySummary"] = []
    if kept:
        result["DailySummary"].append(
            {
                "date": day,
                "visitors": len({s.visitor for s, _ in kept}),
                "sessions": len(kept),
                "pageviews": len(views),
                "bounces": sum(s.bounce for s, _ in kept),
                "total_duration_s": sum(s.duration for s, _ in kept),
                "events": len(others),
            }
        )

    paths = {e["path"] for e in kept_events if e["name"] in ("pageview", "engagement")}
    paths |= {p for s, _ in kept for p in (s.entry, s.exit) if p is not None}
    result["DailyPage"] = [
        {
            "date": day,
            "path": path,
            "visitors": len({e["visitor_id"] for e in views if e["path"] == path}),
            "pageviews": sum(1 for e in views if e["path"] == path),
            "entries": sum(1 for s, _ in kept if s.entry == path),
            "exits": sum(1 for s, _ in kept if s.exit == path),
            "total_engagement_ms": sum(
                e["engagement_ms"] or 0
                for e in others
                if e["name"] == "engagement" and e["path"] == path
            ),
        }
        for path in paths
    ]

    referred: dict[tuple[Any, Any], list[Event]] = defaultdict(list)
    for e in views:
        referred[(e["path"], e["referrer_host"])].append(e)
    result["DailyPageReferrer"] = [
        {
            "date": day,
            "path": path,
            "referrer_host": host,
            "visitors": len({e["visitor_id"] for e in group}),
            "pageviews": len(group),
        }
        for (path, host), group in referred.items()
    ]

    def by_session(keys: tuple[str, ...], bounced: bool) -> list[Row]:
        groups: dict[tuple[Any, ...], list[tuple[Session, list[Event]]]] = defaultdict(list)
        for session, evs in kept:
            groups[tuple(session.landing.get(k) for k in keys)].append((session, evs))
        rows = []
        for values, group in groups.items():
            row: Row = {"date": day, **dict(zip(keys, values, strict=True))}
            row["visitors"] = len({s.visitor for s, _ in group})
            row["sessions"] = len(group)
            row["pageviews"] = sum(kept_views(evs) for _, evs in group)
            if bounced:
                row["bounces"] = sum(s.bounce for s, _ in group)
            rows.append(row)
        return rows

    result["DailyTrafficSource"] = by_session(("channel", "source"), bounced=True)
    result["DailyCountry"] = by_session(("country",), bounced=False)
    result["DailyDevice"] = by_session(("device_type", "browser", "os"), bounced=False)
    utm = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
    result["DailyUtm"] = by_session(utm, bounced=True)
    for table, keys in AUDIENCE.items():
        result[table] = by_session(keys, bounced=table == "DailyHostname")

    histogram: dict[tuple[int, int], list[tuple[Session, list[Event]]]] = defaultdict(list)
    for session, evs in kept:
        key = (
            bucket(session.duration, DURATION_BUCKETS),
            bucket(len(session.pageviews), PAGES_BUCKETS),
        )
        histogram[key].append((session, evs))
    result["DailySession"] = [
        {
            "date": day,
            "duration_bucket": duration,
            "pages_bucket": pages,
            "sessions": len(group),
            "total_duration_s": sum(s.duration for s, _ in group),
            "pageviews": sum(kept_views(evs) for _, evs in group),
        }
        for (duration, pages), group in histogram.items()
    ]

    names: dict[str, list[Event]] = defaultdict(list)
    for e in others:
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

    result["DailyDimension"] = []
    for column in custom:
        valued: dict[Any, list[Event]] = defaultdict(list)
        for e in kept_events:
            value = e[column]
            valued[None if value is None else str(value)].append(e)
        result["DailyDimension"] += [
            {
                "date": day,
                "dimension": column,
                "value": value,
                "visitors": len({e["visitor_id"] for e in group}),
                "pageviews": kept_views(group),
                "events": len(group) - kept_views(group),
            }
            for value, group in valued.items()
        ]
    return result


def filtered_range(
    events: Iterable[Event],
    days: Iterable[dt.date],
    tz: ZoneInfo | str,
    timeout: int,
    filters: Sequence[FilterSpec],
    custom: Sequence[str] = (),
) -> dict[str, list[Row]]:
    """:func:`filtered_daily` of every day of ``days``, rows concatenated per table."""
    events = list(events)
    result: dict[str, list[Row]] = defaultdict(list)
    for day in days:
        for table, rows in filtered_daily(events, day, tz, timeout, filters, custom).items():
            result[table] += rows
    return dict(result)


def summed(
    rows: Iterable[Row],
    keys: Sequence[str],
    counts: Sequence[str],
    equals: Mapping[str, Any] | None = None,
) -> dict[tuple[Any, ...], dict[str, int]]:
    """Rows whose columns equal ``equals``, their ``counts`` summed per ``keys``."""
    sums: dict[tuple[Any, ...], dict[str, int]] = {}
    for row in rows:
        if any(row[column] != value for column, value in (equals or {}).items()):
            continue
        acc = sums.setdefault(tuple(row[k] for k in keys), dict.fromkeys(counts, 0))
        for count in counts:
            acc[count] += row[count]
    return sums


def filtered_hourly(
    events: Iterable[Event],
    day: dt.date,
    tz: ZoneInfo | str,
    timeout: int,
    filters: Sequence[FilterSpec],
) -> list[tuple[dt.datetime, int, int]]:
    """(local start, visitors, pageviews) of every hour of local ``day`` (23 to 25 of
    them), over kept events: visitors distinct per hour, pageviews the kept ones."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    midnight = dt.datetime.combine(day, dt.time.min, tzinfo=zone).astimezone(dt.timezone.utc)
    next_midnight = dt.datetime.combine(
        day + dt.timedelta(days=1), dt.time.min, tzinfo=zone
    ).astimezone(dt.timezone.utc)
    slots = int((next_midnight - midnight).total_seconds()) // 3600
    first = calendar.timegm(midnight.timetuple())
    visitors: list[set[int]] = [set() for _ in range(slots)]
    pageviews = [0] * slots
    kept = kept_sessions(events_of_day(events, day, zone), timeout, filters)
    for _, evs in kept:
        for e in evs:
            slot = (calendar.timegm(e["created_at"].timetuple()) - first) // 3600
            visitors[slot].add(e["visitor_id"])
            pageviews[slot] += e["name"] == "pageview"
    return [
        ((midnight + dt.timedelta(hours=i)).astimezone(zone), len(visitors[i]), pageviews[i])
        for i in range(slots)
    ]
