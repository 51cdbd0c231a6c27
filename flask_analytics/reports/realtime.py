"""Raw-event reports: visitors per hour of one day, and what happens right now.

These read ``analytics_events`` (and, for past hours, the archive) directly, never the
daily tables, so their cost is a short ``created_at`` index range.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa

from ..core.clock import day_bounds, to_local
from ..core.rollups import INTERNAL_EVENTS
from .breakdowns import Row
from .referrers import previous_page_sources

if TYPE_CHECKING:
    from ..models import Models

#: Conditions on an event table's columns that every event read must pass (a scope).
Where = Callable[[Any], list[sa.ColumnElement[bool]]]


def _everything(columns: Any) -> list[sa.ColumnElement[bool]]:
    return []


#: Realtime: visitors active in this window are "current visitors".
REALTIME_WINDOW: Final = dt.timedelta(minutes=5)
#: Realtime lists and the per-minute chart look this far back.
REALTIME_RECENT: Final = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class Hour:
    """One hour (or minute) of raw events: local start time, visitors and pageviews."""

    start: dt.datetime
    visitors: int
    pageviews: int


@dataclass(frozen=True)
class Realtime:
    """What happens right now, read from raw events."""

    now: dt.datetime
    visitors: int
    pageviews: int
    minutes: list[Hour]
    pages: list[Row]
    sources: list[Row]
    recent: list[dict[str, Any]]


def _raw_union(models: Models, start: dt.datetime, end: dt.datetime, columns: Sequence[str]) -> Any:
    parts = []
    for model in (models.Event, models.EventArchive):
        table = model.__table__
        parts.append(
            sa.select(*(table.c[c] for c in columns)).where(
                table.c.created_at >= start, table.c.created_at < end
            )
        )
    return sa.union_all(*parts).subquery()


def _per_slot(
    conn: sa.Connection,
    models: Models,
    starts: list[dt.datetime],
    end: dt.datetime,
    *,
    archived: bool,
    where: Where = _everything,
) -> list[tuple[int, int]]:
    """(visitors, pageviews) of raw events in each ``[starts[i], starts[i+1])`` slot."""
    columns = ("created_at", "visitor_id", "name")
    if archived:
        rows: Any = _raw_union(models, starts[0], end, columns)
    else:
        table = models.Event.__table__
        rows = (
            sa.select(*(table.c[c] for c in columns))
            .where(table.c.created_at >= starts[0], table.c.created_at < end, *where(table.c))
            .subquery()
        )
    # Portable bucketing: compare against the slot bounds computed here with zoneinfo.
    slot = sa.case(
        *((rows.c.created_at < bound, i) for i, bound in enumerate(starts[1:])),
        else_=len(starts) - 1,
    ).label("slot")
    is_view = sa.case((rows.c.name == "pageview", 1), else_=0)
    query = sa.select(
        slot, sa.func.count(sa.distinct(rows.c.visitor_id)), sa.func.sum(is_view)
    ).group_by(slot)
    result = [(0, 0)] * len(starts)
    for index, visitors, pageviews in conn.execute(query):
        result[int(index)] = (int(visitors or 0), int(pageviews or 0))
    return result


def hourly(conn: sa.Connection, models: Models, tz: dt.tzinfo, day: dt.date) -> list[Hour]:
    """Visitors (distinct per hour) and pageviews per local hour of ``day``.

    Reads that day's raw and archived events only (an index range on ``created_at``),
    so its cost is one day's events whatever the size of the tables.
    """
    start, end = day_bounds(tz, day)
    starts = []
    moment = start
    while moment < end:
        starts.append(moment)
        moment += dt.timedelta(hours=1)
    slots = _per_slot(conn, models, starts, end, archived=True)
    return [
        Hour(to_local(s, tz), visitors, pageviews)
        for s, (visitors, pageviews) in zip(starts, slots, strict=True)
    ]


def current_visitors(
    conn: sa.Connection, models: Models, now: dt.datetime, where: Where = _everything
) -> int:
    """Distinct visitors of raw events in the five minutes before ``now`` (naive UTC)."""
    table = models.Event.__table__
    query = sa.select(sa.func.count(sa.distinct(table.c.visitor_id))).where(
        table.c.created_at >= now - REALTIME_WINDOW, *where(table.c)
    )
    return int(conn.execute(query).scalar() or 0)


def realtime(
    conn: sa.Connection,
    models: Models,
    tz: dt.tzinfo,
    now: dt.datetime,
    *,
    limit: int = 10,
    timeout: int = 1800,
    where: Where = _everything,
) -> Realtime:
    """Current visitors (last 5 minutes) and the last 30 minutes of raw events (those
    passing ``where``); sources name the previous page of a visit's later pageviews
    (``timeout``: the session timeout, see :mod:`.referrers`)."""
    table = models.Event.__table__
    since = now - REALTIME_WINDOW
    scoped = where(table.c)
    current = conn.execute(
        sa.select(
            sa.func.count(sa.distinct(table.c.visitor_id)),
            sa.func.sum(sa.case((table.c.name == "pageview", 1), else_=0)),
        ).where(table.c.created_at >= since, *scoped)
    ).one()
    recent_start = (now - REALTIME_RECENT).replace(second=0, microsecond=0) + dt.timedelta(
        minutes=1
    )
    starts = [recent_start + dt.timedelta(minutes=i) for i in range(30)]
    minutes = [
        Hour(to_local(s, tz), v, p)
        for s, (v, p) in zip(
            starts,
            _per_slot(
                conn, models, starts, now + dt.timedelta(days=1), archived=False, where=where
            ),
            strict=True,
        )
    ]
    recent_filter = (table.c.created_at >= starts[0], table.c.name == "pageview", *scoped)
    visitors = sa.func.count(sa.distinct(table.c.visitor_id))
    pages = [
        Row(path, {"visitors": int(v), "pageviews": int(p)})
        for path, v, p in conn.execute(
            sa.select(table.c.path, visitors, sa.func.count())
            .where(*recent_filter)
            .group_by(table.c.path)
            .order_by(visitors.desc(), table.c.path)
            .limit(limit)
        )
    ]
    sources = previous_page_sources(conn, models, starts[0], timeout, limit=limit, where=scoped)
    shown = ("created_at", "name", "path", "source", "country", "device_type", "props")
    recent = [
        {**dict(r), "created_at": to_local(r["created_at"], tz)}
        for r in conn.execute(
            sa.select(*(table.c[c] for c in shown))
            .where(table.c.created_at >= starts[0], table.c.name.not_in(INTERNAL_EVENTS), *scoped)
            .order_by(table.c.created_at.desc(), table.c.id.desc())
            .limit(20)
        ).mappings()
    ]
    return Realtime(
        now=to_local(now, tz),
        visitors=int(current[0] or 0),
        pageviews=int(current[1] or 0),
        minutes=minutes,
        pages=pages,
        sources=sources,
        recent=recent,
    )
