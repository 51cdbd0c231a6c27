"""Per-day SQL rollups: every daily table of one local day, recomputed in one transaction.

``aggregate_day`` takes the day's lock, deletes the day's rows from every daily table and
rebuilds them (and the day's ``analytics_session`` rows, the sessions filtered questions
read, and its page-experience distribution, ``analytics_daily_page_experience``) with
``INSERT ... SELECT`` statements over the day's raw events, read as
``analytics_event UNION ALL analytics_event_archive`` (so archiving a day changes nothing).
The database does all the work; Python never sees an event. The same statement builders
give :func:`daily_selects`, the live version the dashboard runs for days not aggregated yet.

Purged days are refused (:class:`AggregationRefused`) unless ``force``: a day that has
daily rows but no raw or archived events left (recomputing would erase its numbers), or
only part of them, i.e. fewer than its latest finished run (``analytics_aggregation_run``
``source_events``) read (``DayState.status`` "purged": recomputing would silently lower
its numbers). With ``force`` the first is wiped and the second recomputed from the events
left. More events than the last run read (late events) is no purge: recomputed as usual.
The check runs in the swap transaction, under the day's lock (see Locking below).

Locking: one aggregation of a date writes at a time, and a run's rows are computed from
one consistent view of the day's events. The rows are first computed into temporary
tables, then swapped in (delete the day's rows, insert the computed ones) in one
transaction. PostgreSQL does both in one REPEATABLE READ transaction (one snapshot for
every statement), begun once the run holds an advisory lock keyed by the date. SQLite
computes in a read transaction (WAL: one snapshot, no lock that stops
other writers: the collect endpoint keeps writing while a big day is computed; temporary
tables live outside the database file) and takes the database's write lock only for the
swap, whose first statement is a ``DELETE``. Concurrent runs of a date on SQLite each
swap in a complete computation, one after the other: never interleaved, never double
counted; the last swap stands. (Its snapshot may hold fewer events than one that swapped
in meanwhile: the purge check counts the day's events again under the write lock, so
only a real purge is refused.)
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from .. import signals
from ..core import dialects, dimensions
from ..core.clock import day_bounds
from ..core.experience import day_events, experience_select
from ..core.rollups import (
    in_table_order,
    session_rows_select,
    sessions_select,
    sessions_table,
    source_events,
    table_selects,
    total,
)
from ..core.runs import latest_run
from ..errors import AnalyticsError

if TYPE_CHECKING:
    from ..core.context import Context
    from ..models import Models

#: Memory PostgreSQL may use per sort or hash during a run (raised for the transaction).
WORK_MEM_MB = 64
#: How long a run waits for SQLite's write lock held by another run (milliseconds).
SQLITE_LOCK_WAIT_MS = 10 * 60 * 1000

#: First key of the PostgreSQL advisory lock (signed int4), the second is the date.
_LOCK_NAMESPACE = zlib.crc32(b"analytics_daily") - 2**31


class AggregationRefused(AnalyticsError):
    """A day has daily rows but its events were purged: none left (recomputing would erase
    its numbers) or fewer than its latest run read (recomputing would lower them)."""


@dataclass(frozen=True)
class AggregationResult:
    """What one ``aggregate_day`` run did."""

    date: dt.date
    #: Raw + archived events of the day the run read.
    source_events: int
    #: Rows written per daily table, keyed like ``state.models.daily`` ("DailySummary"...).
    rows: Mapping[str, int]
    #: When the run's reads began (the snapshot its rows are computed from; on
    #: PostgreSQL once it held the day's lock) and when it had written everything (its
    #: commit follows); both naive UTC, as recorded in the run row.
    started_at: dt.datetime
    finished_at: dt.datetime


def _staging_table(table: sa.Table) -> sa.Table:
    """A temporary table with ``table``'s columns but ``id``, for a run's computed rows."""
    return sa.Table(
        f"analytics_tmp_{table.name}",
        sa.MetaData(),
        *(sa.Column(c.name, c.type) for c in table.c if c.name != "id"),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )


def _copy_rows(conn: sa.Connection, source: sa.Table, target: sa.Table) -> int:
    """Insert every row of ``source`` into ``target`` (same columns); rows inserted."""
    names = [c.name for c in source.c]
    insert = sa.insert(target).from_select(names, sa.select(*source.c))
    # Without preserve_rowcount, INSERT rowcounts are not kept on every driver.
    return int(conn.execute(insert.execution_options(preserve_rowcount=True)).rowcount)


# -- runs ------------------------------------------------------------------------------


def lock_day(conn: sa.Connection, day: dt.date) -> None:
    """Take the aggregation lock of ``day`` for the rest of ``conn``'s transaction.

    PostgreSQL: an advisory lock keyed by the date. SQLite: nothing here; there the lock
    is the database's write lock, which the transaction's first write takes, so write
    before reading (``aggregate_day`` deletes first).
    """
    dialects.lock_for_transaction(conn, _LOCK_NAMESPACE, day.toordinal())


def _refuse_purged(
    conn: sa.Connection, models: Models, day: dt.date, src: sa.FromClause, source: int
) -> None:
    """Raise :class:`AggregationRefused` when the day's events were purged, wholly or in
    part: none left (``source`` is 0), or fewer than its latest finished run read.

    Runs in the swap transaction, after its deletes: on PostgreSQL in the run's snapshot
    (taken under the day's lock), on SQLite under the write lock, so no other run of the
    day can commit in between and the run row read is the latest one.
    """
    iso = day.isoformat()
    if not source:
        raise AggregationRefused(
            f"Refusing to re-aggregate {iso}: it has daily rows but no raw or archived "
            "events are left (purged?), so recomputing would erase its numbers. "
            "Pass force=True to wipe them anyway."
        )
    run = latest_run(conn, models.AggregationRun.__table__, day)
    read = None if run is None else run[0]
    if read is None or read <= source:
        return  # never aggregated, or the same events plus late ones
    # What the day holds now. On PostgreSQL that is ``source`` (one snapshot). SQLite
    # computed in an earlier read transaction, and a concurrent run of the day that read
    # newer events may have swapped in since: that is no purge, so this run's rows are
    # swapped in (the last swap stands) and the next run counts the newer events.
    left = int(conn.scalar(sa.select(sa.func.count()).select_from(src)) or 0)
    if left >= read:
        return
    raise AggregationRefused(
        f"Refusing to re-aggregate {iso}: its last aggregation read {read:,} events but "
        f"only {left:,} raw or archived events are left (partly purged?), so recomputing "
        "would lower its numbers. Pass force=True to recompute it from the events left."
    )


def aggregate_day(state: Context, day: dt.date, *, force: bool = False) -> AggregationResult:
    """Recompute every daily table of local ``day`` (idempotent): computed from one
    snapshot of its events, swapped in by one transaction (see the module docstring).

    Raises :class:`AggregationRefused`, unless ``force``, when the day has daily rows but
    its events were purged: none are left (``force`` wipes its rows), or fewer than its
    latest finished run read (partly purged: ``force`` recomputes it from those left).
    A day never aggregated, or with more events than its last run read (late events), is
    recomputed as usual.
    """
    start, end = day_bounds(state.settings.timezone, day)
    models = state.models
    engine = state.engine()
    dialect = engine.dialect.name
    # A subquery, not a CTE: sqlite3 reports no rowcount for a statement starting "WITH".
    src = source_events(models, start, end).subquery("src")
    tmp = sessions_table(models.Event.__table__)
    staged = {
        name: _staging_table(model.__table__)
        for name, model in {
            **models.daily,
            "DailyDimension": models.DailyDimension,
            "DailyPageExperience": models.DailyPageExperience,
            "Session": models.Session,
        }.items()
    }
    with (
        engine.connect() as conn,
        dialects.held_lock(conn, _LOCK_NAMESPACE, day.toordinal()),
    ):
        previous_timeout = dialects.sqlite_busy_timeout(conn, SQLITE_LOCK_WAIT_MS)
        # SQLite: compute in a read transaction, swap in a write transaction (see the
        # module docstring); PostgreSQL: both in one REPEATABLE READ transaction, begun
        # once the day's lock is held, so every statement reads the same events.
        dialects.snapshot_isolation(conn)
        compute = conn.begin()
        try:
            dialects.tune_bulk_transaction(conn, WORK_MEM_MB)
            started_at = state.clock.utcnow()
            tmp.create(conn)
            session_rows = sessions_select(
                src,
                state.settings.session_timeout,
                dialect,
                non_interactive=state.settings.non_interactive_events,
                models=models,
                bounds=(start, end),
            )
            conn.execute(
                sa.insert(tmp).from_select(
                    [col.name for col in session_rows.selected_columns], session_rows
                )
            )
            source = int(conn.scalar(sa.select(total(tmp.c.events))) or 0)
            batches = {
                name: [select]
                for name, select in in_table_order(
                    models, table_selects(day, src, tmp, models.keyed)
                ).items()
            }
            batches["DailyDimension"] = dimensions.selects(state, day)
            batches["Session"] = [session_rows_select(day, tmp)]
            # A day without events has no rows, as in the other daily tables.
            experience_events = day_events(models, start, end).subquery("fa_xp_day")
            batches["DailyPageExperience"] = (
                [experience_select(experience_events, dialect, day=day)] if source else []
            )
            for name, table in staged.items():
                table.create(conn)
                for select in batches[name]:
                    columns = [col.name for col in select.selected_columns]
                    conn.execute(sa.insert(table).from_select(columns, select))
            tmp.drop(conn)
            compute = dialects.begin_swap(conn, compute)
            # The swap. On SQLite this first write is what takes the lock: keep it first.
            existing = 0
            for model in models.daily.values():
                table = model.__table__
                existing += conn.execute(sa.delete(table).where(table.c.date == day)).rowcount
            if existing and not force:
                _refuse_purged(conn, models, day, src, source)
            rows: dict[str, int] = {}
            for name, model in models.daily.items():
                rows[name] = _copy_rows(conn, staged[name], model.__table__)
            dimension_table = models.DailyDimension.__table__
            conn.execute(sa.delete(dimension_table).where(dimension_table.c.date == day))
            copied = _copy_rows(conn, staged["DailyDimension"], dimension_table)
            session_table = models.Session.__table__
            conn.execute(sa.delete(session_table).where(session_table.c.date == day))
            _copy_rows(conn, staged["Session"], session_table)
            experience_table = models.DailyPageExperience.__table__
            conn.execute(sa.delete(experience_table).where(experience_table.c.date == day))
            _copy_rows(conn, staged["DailyPageExperience"], experience_table)
            dimensions.run_hooks(conn, state, day)
            if state.hooks.dimensions:
                rows["DailyDimension"] = copied
            for table in staged.values():
                table.drop(conn)
            finished_at = state.clock.utcnow()
            conn.execute(
                sa.insert(models.AggregationRun.__table__).values(
                    date=day,
                    started_at=started_at,
                    finished_at=finished_at,
                    source_events=source,
                )
            )
            compute.commit()
        except BaseException:
            compute.rollback()
            if not dialects.TEMP_TABLES_END_WITH_TRANSACTION.get(dialect, False):
                for table in (tmp, *staged.values()):
                    table.drop(conn, checkfirst=True)
            raise
        finally:
            dialects.sqlite_busy_timeout(conn, previous_timeout)
    result = AggregationResult(
        date=day,
        source_events=source,
        rows=rows,
        started_at=started_at,
        finished_at=finished_at,
    )
    signals.day_aggregated.send(state.app, result=result)
    return result


def aggregate_range(
    state: Context,
    start: dt.date,
    end: dt.date,
    *,
    force: bool = False,
    progress: Callable[[dt.date], None] | None = None,
) -> list[AggregationResult]:
    """Aggregate every local day from ``start`` to ``end`` inclusive, one transaction each.

    ``progress(day)`` is called after each day. Stops at the first refused day.
    """
    if end < start:
        raise ValueError(f"aggregate_range: start {start} is after end {end}.")
    results = []
    day = start
    while day <= end:
        results.append(aggregate_day(state, day, force=force))
        if progress is not None:
            progress(day)
        day += dt.timedelta(days=1)
    return results
