"""Comparisons like for like: a partial period against the same part of the one before.

While a range holds today, its numbers stop at now (or, when today is read from the
scheduler's latest run, at that run's start). Its comparison then stops at the same
point: the comparison's days up to the one matching today (see
:meth:`~.ranges.Comparison.matching`), that day cut at the same local time of day. So
"Today" at 14:30 is compared with yesterday until 14:30, "Last 7 days" with the seven
days before until the same time, "This month" with last month's same days. A range
that ended before today is compared with whole days.

The cut day is read from raw (and archived: archiving keeps events raw) events, every
event at or after the cut left out and sessions cut there (see
:func:`day_until`): unfiltered by the aggregation's own selects, as a live
day is read; filtered through the raw path. When that day's raw events are gone
(purged after ``ANALYTICS_ARCHIVE_RETENTION_DAYS``), the day is compared whole and
:attr:`Compared.until` is None.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from ..core.clock import day_bounds, to_local
from ..core.rollups import in_table_order, sessions_select, source_events, table_selects
from .breakdowns import BREAKDOWNS, Row, row_with_rates
from .filtered import FilteredEvents, RawDataMissing
from .ranges import Comparison, DateRange
from .spans import as_date
from .stats import Stats
from .totals import SUMMARY_COUNTS, Totals


@dataclass(frozen=True)
class Compared:
    """A comparison period's numbers, like for like with the current range."""

    range: DateRange
    #: Where the comparison's numbers stop (naive UTC; None: whole days).
    until: dt.datetime | None
    #: The comparison's last day counted (the one matching today, or its end).
    last: dt.date
    #: False when nothing was recorded before the comparison's end: no delta means
    #: anything then ("no data", not "new").
    has_data: bool
    #: The first day with data (None: no data at all): earlier days have no numbers.
    first_day: dt.date | None = None


def day_until(
    stats: Stats,
    table: str,
    day: dt.date,
    until: dt.datetime,
    keys: Sequence[str],
    counts: Sequence[str],
    equals: Mapping[str, Any] | None = None,
) -> dict[tuple[Any, ...], dict[str, int]] | None:
    """Sums of ``counts`` of (virtual) daily table ``table`` for local ``day`` as it stood
    at ``until`` (naive UTC, within the day: later events left out, sessions cut there),
    grouped by ``keys``, honouring ``stats``' filters. Read from the day's raw and
    archived events (unfiltered like a live day, filtered through the raw path); None
    when they are gone (purged)."""
    rng = DateRange(day, day)
    try:
        stats.check_raw(rng, "Until-now comparisons")
    except RawDataMissing:
        return None
    if not stats.raw:
        result: dict[tuple[Any, ...], dict[str, int]] = {}
        for row in _live_until(stats, table, day, until):
            if any(row[column] != value for column, value in (equals or {}).items()):
                continue
            acc = result.setdefault(tuple(row[k] for k in keys), dict.fromkeys(counts, 0))
            for count in counts:
                acc[count] += int(row[count] or 0)
        return result
    cut = stats.cut_paths.get(until)
    if cut is None:
        cut = FilteredEvents(
            stats.state,
            stats.conn,
            stats.filters,
            stats.columns,
            stats.live,
            goals=stats.goals,
            until=until,
        )
        stats.cut_paths[until] = cut
    return cut.grouped(table, rng, keys, counts, equals or {})


def _live_until(stats: Stats, table: str, day: dt.date, until: dt.datetime) -> list[Any]:
    """Rows of daily table ``table`` for ``day`` from its events before ``until``: the
    aggregation's own select (as a live day is read: no temporary table)."""
    settings = stats.state.settings
    start, _ = day_bounds(stats.tz, day)
    src = source_events(stats.models, start, until).cte("src_until")
    sessions = sessions_select(
        src,
        settings.session_timeout,
        stats.conn.dialect.name,
        non_interactive=settings.non_interactive_events,
        models=stats.models,
        bounds=(start, until),
    ).cte("sessions_until")
    select = in_table_order(stats.models, table_selects(day, src, sessions))[table]
    return list(stats.conn.execute(select).mappings())


def first_day(stats: Stats) -> dt.date | None:
    """The first local day with data: a daily summary row or a raw (or archived) event.
    A comparison period entirely before it has no data."""
    summary = stats.models.daily["DailySummary"].__table__
    stored = stats.conn.execute(sa.select(sa.func.min(summary.c.date))).scalar()
    days = [as_date(stored)] if stored is not None else []
    span = stats.live.raw_span()
    if span is not None:
        days.append(span[0])
    return min(days, default=None)


def cut_at(stats: Stats, day: dt.date) -> dt.datetime:
    """The instant of local ``day`` at the time of day the current numbers stop: now, or
    the start of the run today's numbers come from. Same wall-clock time (on a DST day
    the hour that does not exist moves on), within the day's bounds."""
    moment = stats.live.today_as_of() or stats.now
    local = to_local(moment, stats.tz)
    wall = dt.datetime.combine(day, local.time().replace(tzinfo=None), tzinfo=stats.tz)
    start, end = day_bounds(stats.tz, day)
    instant = wall.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return min(max(instant, start), end)


def compared(stats: Stats, current: DateRange, comparison: Comparison) -> Compared:
    """How ``comparison`` lines up with ``current``: cut at the moment matching now when
    ``current`` holds today, whole otherwise."""
    rng = comparison.range
    first = first_day(stats)
    has_data = first is not None and first <= rng.end
    if stats.today not in current:
        return Compared(rng, None, rng.end, has_data, first)
    last = min(max(comparison.matching(stats.today), rng.start), rng.end)
    return Compared(rng, cut_at(stats, last), last, has_data, first)


def _until_days(compare: Compared) -> DateRange | None:
    """The comparison's whole days before its cut day (None: there are none)."""
    if compare.last <= compare.range.start:
        return None
    return DateRange(compare.range.start, compare.last - dt.timedelta(days=1))


def compared_totals(
    stats: Stats, compare: Compared, daily: Mapping[dt.date, Totals] | None = None
) -> tuple[Totals, Compared]:
    """Totals of the comparison, like for like; ``daily``: its whole days' totals when
    already read. The :class:`Compared` returned has ``until`` None when the cut day's
    raw events are gone (compared whole)."""
    if daily is None:
        daily = stats.daily_totals(compare.range)
    whole = sum((daily[d] for d in compare.range.dates() if d < compare.last), Totals())
    if compare.until is None:
        return whole + daily[compare.last], compare
    found = day_until(stats, "DailySummary", compare.last, compare.until, ("date",), SUMMARY_COUNTS)
    if found is None:
        return whole + daily[compare.last], replace(compare, until=None)
    cut = sum((Totals(**counts) for counts in found.values()), Totals())
    return whole + cut, compare


def compared_page(stats: Stats, compare: Compared, path: str) -> tuple[Row | None, Compared]:
    """One page's row (the ``page`` breakdown's counts and rates) over the comparison,
    like for like."""
    page = BREAKDOWNS["page"]
    sums = dict.fromkeys(page.counts, 0)
    days = _until_days(compare) if compare.until is not None else compare.range
    if days is not None:
        for row in stats.breakdown(page, days, limit=1, path=path):
            for name in page.counts:
                sums[name] += row.counts[name]
    if compare.until is not None:
        found = day_until(
            stats, "DailyPage", compare.last, compare.until, ("path",), page.counts, {"path": path}
        )
        if found is None:
            compare = replace(compare, until=None)
            for row in stats.breakdown(page, DateRange(compare.last, compare.last), path=path):
                for name in page.counts:
                    sums[name] += row.counts[name]
        else:
            for counts in found.values():
                for name in page.counts:
                    sums[name] += counts[name]
    if not any(sums.values()):
        return None, compare
    return row_with_rates(path, sums, page.rates), compare
