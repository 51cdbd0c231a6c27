"""Per-day bookkeeping: how many raw and archived events each local day holds, and
what its latest aggregation run read.

A day counts as aggregated when the latest finished ``analytics_aggregation_run`` of
that day read as many events (raw + archived) as the day holds now. Comparing counts
rather than times is deliberate: ``created_at`` is when an event happened, not when it
was written, so a late event (replayed offline queue, ``track()`` with a past
timestamp) can be written after a run while being older than it. A day's event count
only grows until purge (duplicate event ids are rejected at ingest), so an equal count
means the run saw them all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from .clock import day_bounds, local_date

if TYPE_CHECKING:
    from .context import Context


@dataclass(frozen=True)
class DayState:
    """Raw and archived event counts of one local day, against its latest aggregation."""

    day: dt.date
    raw_events: int
    archived_events: int
    #: Events the latest finished aggregation run read; None when never aggregated.
    run_events: int | None
    aggregated_at: dt.datetime | None

    @property
    def events(self) -> int:
        return self.raw_events + self.archived_events

    @property
    def status(self) -> str:
        """``aggregated``, ``never aggregated``, ``stale`` (events arrived since the last
        run) or ``purged`` (fewer events than the last run read: part of it was purged)."""
        if self.run_events is None:
            return "never aggregated"
        if self.run_events == self.events:
            return "aggregated"
        return "stale" if self.events > self.run_events else "purged"

    @property
    def fresh(self) -> bool:
        return self.status == "aggregated"


def _next_day(
    conn: sa.Connection,
    tz: ZoneInfo,
    table: sa.Table,
    after: dt.datetime | None,
    before: dt.datetime | None,
) -> dt.date | None:
    """Local day of the first event of ``table`` at or after ``after`` (and before ``before``)."""
    query = sa.select(sa.func.min(table.c.created_at))
    if after is not None:
        query = query.where(table.c.created_at >= after)
    if before is not None:
        query = query.where(table.c.created_at < before)
    first: dt.datetime | None = conn.scalar(query)
    if first is None:
        return None
    return local_date(first, tz)


def days_with_events(
    conn: sa.Connection, tz: ZoneInfo, table: sa.Table, before: dt.date | None
) -> Iterator[tuple[dt.date, dt.datetime, dt.datetime]]:
    """Local days holding rows of ``table``, oldest first, with their UTC bounds.

    Skips from event to event on the ``created_at`` index, so a table spanning years
    with a few busy days costs a few queries per busy day, not one per calendar day.
    """
    limit = day_bounds(tz, before)[0] if before is not None else None
    after: dt.datetime | None = None
    while (day := _next_day(conn, tz, table, after, limit)) is not None:
        start, end = day_bounds(tz, day)
        yield day, start, end
        after = end


def _as_is(value: Any) -> Any:
    return value


def days_holding_events(
    conn: sa.Connection, tz: ZoneInfo, tables: Sequence[sa.Table], days: Sequence[dt.date]
) -> set[dt.date]:
    """Which local ``days`` hold at least one row of any of ``tables``.

    One statement (per ~16,000 days): a ``VALUES`` list of the days' UTC bounds (DST days
    included), each probed with ``EXISTS`` on the ``created_at`` index of every table. It
    costs a few index lookups per day, however many events a day holds, so five years of
    days take one round trip. The statement is written as text for the driver: compiling
    thousands of bound values through SQLAlchemy Core costs about 0.1 ms per day, more
    than the database takes to answer.
    """
    found: set[dt.date] = set()
    if not tables or not days:
        return found
    dialect = conn.dialect
    quote = dialect.identifier_preparer.quote
    column = quote("created_at")
    created_at = tables[0].c.created_at.type.dialect_impl(dialect)
    process: Callable[[Any], Any] = created_at.bind_processor(dialect) or _as_is
    # The package's drivers: sqlite3 takes "?", psycopg "%s".
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    holds = " OR ".join(
        f"EXISTS (SELECT 1 FROM {dialect.identifier_preparer.format_table(table)} AS t "
        f"WHERE t.{column} >= fa_days.lo AND t.{column} < fa_days.hi)"
        for table in tables
    )
    # Two parameters a day; both drivers take over 30,000 in one statement.
    chunk = max(1, int(getattr(dialect, "insertmanyvalues_max_parameters", 999)) // 2)
    ordered = list(dict.fromkeys(days))
    for first in range(0, len(ordered), chunk):
        part = ordered[first : first + chunk]
        starts: dict[Any, dt.date] = {}
        params: list[Any] = []
        for day in part:
            low, high = day_bounds(tz, day)
            key = process(low)
            starts[key] = day
            params += [key, process(high)]
        values = ", ".join([f"({mark}, {mark})"] * len(part))
        sql = f"WITH fa_days (lo, hi) AS (VALUES {values}) SELECT lo FROM fa_days WHERE {holds}"
        found.update(starts[low] for (low,) in conn.exec_driver_sql(sql, tuple(params)))
    return found


def first_event_day(state: Context) -> dt.date | None:
    """Local day of the oldest raw or archived event (None when both tables are empty):
    where a backfill of everything starts. Two ``min(created_at)`` reads on the index."""
    tz = state.settings.timezone
    models = state.models
    with state.engine().connect() as conn:
        found = [
            day
            for model in (models.Event, models.EventArchive)
            if (day := _next_day(conn, tz, model.__table__, None, None)) is not None
        ]
    return min(found, default=None)


def count_between(
    conn: sa.Connection, table: sa.Table, start: dt.datetime, end: dt.datetime
) -> int:
    query = sa.select(sa.func.count()).where(table.c.created_at >= start, table.c.created_at < end)
    return int(conn.scalar(query) or 0)


def latest_run(
    conn: sa.Connection, runs: sa.Table, day: dt.date
) -> tuple[int | None, dt.datetime] | None:
    """``(source_events, finished_at)`` of the latest finished aggregation run of local
    ``day`` (``runs`` is ``analytics_aggregation_run``), read through ``conn``; None when
    the day was never aggregated."""
    row = conn.execute(
        sa.select(runs.c.source_events, runs.c.finished_at)
        .where(runs.c.date == day, runs.c.finished_at.is_not(None))
        .order_by(runs.c.finished_at.desc(), runs.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    events, finished_at = row
    return (None if events is None else int(events)), finished_at


def _read_day_state(
    state: Context, conn: sa.Connection, day: dt.date, start: dt.datetime, end: dt.datetime
) -> DayState:
    """Counts of local ``day`` (UTC ``[start, end)``) and its latest run, read on ``conn``."""
    models = state.models
    run = latest_run(conn, models.AggregationRun.__table__, day)
    return DayState(
        day=day,
        raw_events=count_between(conn, models.Event.__table__, start, end),
        archived_events=count_between(conn, models.EventArchive.__table__, start, end),
        run_events=None if run is None else run[0],
        aggregated_at=None if run is None else run[1],
    )


def day_states(state: Context, *, before: dt.date | None = None) -> list[DayState]:
    """Every local day that has raw events (before local day ``before``), oldest first."""
    tz = state.settings.timezone
    with state.engine().connect() as conn:
        return [
            _read_day_state(state, conn, day, start, end)
            for day, start, end in days_with_events(conn, tz, state.models.Event.__table__, before)
        ]


def day_state(state: Context, day: dt.date) -> DayState:
    """Counts and latest aggregation of one local day."""
    start, end = day_bounds(state.settings.timezone, day)
    with state.engine().connect() as conn:
        return _read_day_state(state, conn, day, start, end)


def counts(state: Context) -> dict[str, int]:
    """Row counts of the raw and the archive tables."""
    models = state.models
    with state.engine().connect() as conn:
        return {
            "raw": int(
                conn.scalar(sa.select(sa.func.count()).select_from(models.Event.__table__)) or 0
            ),
            "archived": int(
                conn.scalar(sa.select(sa.func.count()).select_from(models.EventArchive.__table__))
                or 0
            ),
        }
