"""Local days as SQL: a UTC second's day index in a range (DST-exact), the UTC
intervals of a set of local days, and the range tests the raw path puts on its scans."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, Final

import sqlalchemy as sa

from ..core.clock import day_bounds
from .ranges import DateRange
from .virtual import epoch

_DAY_SECONDS: Final = 86400


def date_runs(column: Any, days: Sequence[dt.date], unindexed: Callable[[Any, Any], Any]) -> Any:
    """``column`` within ``days``, as one ``BETWEEN`` per run of consecutive days: a
    planner can weigh a range (and take a plain scan for most of a table), not a list.
    ``unindexed(column, runs)`` gives the column to compare (see ``_off_index``)."""
    runs: list[list[dt.date]] = []
    for day in sorted(days):
        if runs and runs[-1][1] + dt.timedelta(days=1) == day:
            runs[-1][1] = day
        else:
            runs.append([day, day])
    if not runs:
        return sa.false()
    column = unindexed(column, [(first, last + dt.timedelta(days=1)) for first, last in runs])
    return sa.or_(*(column.between(first, last) for first, last in runs))


def day_index(ts: Any, tz: dt.tzinfo, rng: DateRange) -> Any:
    """The 0-based local day of ``rng`` holding UTC second ``ts`` (an SQL integer).

    Days of exactly 24 hours in a row share one stretch where the index is a division;
    a DST day (23 or 25 hours) is a stretch of its own. A year has at most five.
    """
    stretches: list[list[int]] = []  # [first index, start second, end second, 24 h]
    for index, day in enumerate(rng.dates()):
        start, end = (epoch(b) for b in day_bounds(tz, day))
        full = int(end - start == _DAY_SECONDS)
        if stretches and full and stretches[-1][3]:
            stretches[-1][2] = end
        else:
            stretches.append([index, start, end, full])
    # A DST stretch divides by its own length: its 25th hour is still its first day.
    whens = [
        (ts < stop, sa.literal(first) + (ts - begin) // (_DAY_SECONDS if full else stop - begin))
        for first, begin, stop, full in stretches[:-1]
    ]
    first, begin, stop, full = stretches[-1]
    last = sa.literal(first) + (ts - begin) // (_DAY_SECONDS if full else stop - begin)
    return sa.case(*whens, else_=last) if whens else last


def intervals(tz: dt.tzinfo, days: Sequence[dt.date]) -> list[tuple[dt.datetime, dt.datetime]]:
    """UTC ``[start, end)`` intervals covering ``days``, consecutive days merged."""
    intervals: list[tuple[dt.datetime, dt.datetime]] = []
    for day in sorted(days):
        start, end = day_bounds(tz, day)
        if intervals and intervals[-1][1] == start:
            intervals[-1] = (intervals[-1][0], end)
        else:
            intervals.append((start, end))
    return intervals


def within(column: Any, intervals: Sequence[tuple[dt.datetime, dt.datetime]]) -> Any:
    if not intervals:
        return sa.false()
    return sa.or_(*(sa.and_(column >= start, column < end) for start, end in intervals))


def share_of_span(
    intervals: Sequence[tuple[dt.datetime, dt.datetime]], low: Any, high: Any
) -> float:
    """The share of ``[low, high]`` (a table's first and last event) that ``intervals``
    cover: 1.0 for an empty table or one whose events share one instant."""
    if low is None or high is None or high <= low:
        return 1.0
    covered = sum(
        max(0.0, (min(end, high) - max(start, low)).total_seconds()) for start, end in intervals
    )
    return float(covered / (high - low).total_seconds())


def as_date(value: Any) -> dt.date:
    # SQLite may hand dates back as ISO strings.
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])
