"""Virtual daily tables: the rows of ``analytics_daily_*`` computed from kept sessions
and kept events (see :mod:`.filtered`), one row per local day and key, with the stored
tables' column names (``day`` is the day's index in the range).

Counts follow DESIGN.md's filter definition: pageviews and events count kept events;
visitors are distinct visitors of kept sessions per day, summed over days; sessions,
bounces and duration are the kept sessions'. A session's bounce, duration and pages
bucket are properties of the whole session.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any, Final

import sqlalchemy as sa

from ..core.clock import day_bounds
from ..core.rollups import (
    AUDIENCE_KEYS,
    DURATION_BUCKETS,
    ENGAGEMENT,
    PAGES_BUCKETS,
    PAGEVIEW,
    audience_tables,
    bucket_lower_bound,
    total,
)
from ..models import UTM_MAX
from .ranges import DateRange

#: Virtual tables the raw path computes, beyond the daily tables: visitors and
#: pageviews per UTC hour slot of one local day (the chart of a one-day range).
HOURLY: Final = "Hourly"


def epoch(moment: dt.datetime) -> int:
    """``moment`` (naive UTC) as Unix seconds."""
    return calendar.timegm(moment.timetuple())


def _distinct_visitors(
    e: Any, keys: list[Any], where: Any, wanted: Any = None, **sums: Any
) -> sa.Select[Any]:
    """Rows of ``keys`` with the distinct visitors of the events of ``e`` that pass
    ``where`` (counting only those passing ``wanted``) and ``sums``, in two hashed
    steps: per key and visitor, then per key. One ``count(DISTINCT ...)`` per key sorts
    every row instead (at 1M kept events on
    PostgreSQL, an external sort that spilled 101 MiB)."""
    flag = sa.literal_column("1") if wanted is None else sa.case((wanted, 1), else_=0)
    inner = (
        sa.select(
            *keys,
            sa.func.max(flag).label("fa_seen"),
            *(total(v).label(k) for k, v in sums.items()),
        )
        .where(where)
        .group_by(*keys, e.visitor_id)
        .subquery("fa_by_visitor")
    )
    i = inner.c
    outer_keys = [i[k.name] for k in keys]
    return sa.select(
        *outer_keys,
        total(i.fa_seen).label("visitors"),
        *(total(i[k]).label(k) for k in sums),
    ).group_by(*outer_keys)


def table_select(
    sessions: Any, events: Any, table: str, rng: DateRange, tz: dt.tzinfo
) -> sa.Select[Any]:
    """Rows of virtual daily table ``table`` over ``rng`` from ``sessions`` (kept
    sessions with ``kpv``/``kev``, their kept pageviews and other events) and ``events``
    (kept events)."""
    s, e = sessions.c, events.c
    visitors = sa.func.count(sa.distinct(s.visitor_id)).label("visitors")
    sessions_n = sa.func.count().label("sessions")
    pageviews = total(s.kpv).label("pageviews")
    bounces = total(s.bounce).label("bounces")
    is_pv = e.name == PAGEVIEW

    def by_session(*keys: str, bounced: bool = False) -> sa.Select[Any]:
        columns = [s.day, *(s[k] for k in keys), visitors, sessions_n, pageviews]
        if bounced:
            columns.append(bounces)
        return sa.select(*columns).group_by(s.day, *(s[k] for k in keys))

    if table == "DailySummary":
        return sa.select(
            s.day,
            visitors,
            sessions_n,
            pageviews,
            bounces,
            total(s.duration_s).label("total_duration_s"),
            total(s.kev).label("events"),
        ).group_by(s.day)
    if table == "DailyPage":
        zero: Any = sa.literal_column("0", sa.BigInteger())
        views = _distinct_visitors(
            e,
            [e.day, e.path.label("path")],
            e.name.in_((PAGEVIEW, ENGAGEMENT)),
            is_pv,
            pageviews=sa.case((is_pv, 1), else_=0),
            entries=zero,
            exits=zero,
            total_engagement_ms=sa.case(
                (e.name == ENGAGEMENT, sa.func.coalesce(e.engagement_ms, 0)), else_=0
            ),
        )
        entries = (
            sa.select(s.day, s.entry_path, zero, zero, sa.func.count(), zero, zero)
            .where(s.entry_path.is_not(None))
            .group_by(s.day, s.entry_path)
        )
        exits = (
            sa.select(s.day, s.exit_path, zero, zero, zero, sa.func.count(), zero)
            .where(s.exit_path.is_not(None))
            .group_by(s.day, s.exit_path)
        )
        parts = sa.union_all(views, entries, exits).subquery("fa_page_parts")
        p = parts.c
        return sa.select(
            p.day,
            p.path,
            total(p.visitors).label("visitors"),
            total(p.pageviews).label("pageviews"),
            total(p.entries).label("entries"),
            total(p.exits).label("exits"),
            total(p.total_engagement_ms).label("total_engagement_ms"),
        ).group_by(p.day, p.path)
    if table == "DailyPageReferrer":
        return _distinct_visitors(
            e, [e.day, e.path.label("path"), e.referrer_host.label("referrer_host")], is_pv,
            pageviews=sa.literal_column("1"),
        )  # fmt: skip
    if table == "DailyTrafficSource":
        return by_session("channel", "source", bounced=True)
    if table == "DailyCountry":
        return by_session("country")
    if table == "DailyDevice":
        return by_session("device_type", "browser", "os")
    if table == "DailyUtm":
        return by_session(
            "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", bounced=True
        )
    if table in AUDIENCE_KEYS:
        return audience_tables(by_session)[table]
    if table == "DailySession":
        duration = bucket_lower_bound(s.duration_s, DURATION_BUCKETS).label("duration_bucket")
        pages = bucket_lower_bound(s.pageviews, PAGES_BUCKETS).label("pages_bucket")
        return sa.select(
            s.day,
            duration,
            pages,
            sessions_n,
            total(s.duration_s).label("total_duration_s"),
            pageviews,
        ).group_by(s.day, duration, pages)
    if table == "DailyEvent":
        return _distinct_visitors(
            e, [e.day, e.name.label("name")], e.name != PAGEVIEW, events=sa.literal_column("1")
        )
    if table == HOURLY:
        start, _ = day_bounds(tz, rng.start)
        hour = ((e.ts - epoch(start)) // 3600).label("hour")
        return _distinct_visitors(
            e, [e.day, hour], sa.true(), pageviews=sa.case((is_pv, 1), else_=0)
        )
    raise KeyError(f"no virtual table {table!r}")


def dimension_select(events: Any, name: str) -> sa.Select[Any]:
    """Rows of custom dimension ``name`` (``analytics_daily_dimension``'s columns)."""
    e = events.c
    pageview = sa.case((e.name == PAGEVIEW, 1), else_=0)
    value = sa.cast(e[name], sa.String(UTM_MAX)).label("value")
    return sa.select(
        e.day,
        sa.literal(name, sa.String()).label("dimension"),
        value,
        sa.func.count(sa.distinct(e.visitor_id)).label("visitors"),
        total(pageview).label("pageviews"),
        total(1 - pageview).label("events"),
    ).group_by(e.day, value)
