"""Whole-month maintenance of partitioned tables: partitions ahead, archive a month as a
partition, purge a month by dropping its partition."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ...core.clock import day_bounds
from ...core.runs import DayState, day_state
from ..retention import archive_retention, cutoff_day
from .months import (
    add_months,
    check_months_ahead,
    current_utc_month,
    month_bounds,
    partition_name,
    touching_days,
)
from .schema import (
    ARCHIVE,
    DEFAULT_MONTHS_AHEAD,
    EVENT,
    LOCK_TIMEOUT,
    PartitioningError,
    count_rows,
    create_partition_sql,
    database_errors,
    forget_event_ids,
    live_columns,
    partition_bounds_sql,
    quote_identifier,
    require_partitioned,
    require_postgresql,
    table_exists,
)

if TYPE_CHECKING:
    from ...core.context import Context


# -- adding partitions ---------------------------------------------------------------------


def _ensure_partition(conn: sa.Connection, parent: str, month: dt.date) -> bool:
    """Create ``parent``'s partition of ``month`` unless it exists; True if created.

    Rows of that month waiting in the default partition (an import of old data) are
    moved into it: PostgreSQL refuses to create a partition whose rows sit in the default.
    """
    name = partition_name(parent, month)
    if table_exists(conn, name):
        return False
    start, end = month_bounds(month)
    default = f"{parent}_default"
    params = {"s": start, "e": end}
    quoted_name = quote_identifier(conn, name)
    quoted_parent = quote_identifier(conn, parent)
    quoted_default = quote_identifier(conn, default)
    waiting = (
        table_exists(conn, default)
        and conn.exec_driver_sql(
            f"SELECT EXISTS (SELECT 1 FROM {quoted_default} "
            "WHERE created_at >= %(s)s AND created_at < %(e)s)",
            params,
        ).scalar()
    )
    if not waiting:
        conn.exec_driver_sql(create_partition_sql(conn, parent, month))
        return True
    # A standalone table has no trigger: these rows' ids are stored already.
    conn.exec_driver_sql(
        f"CREATE TABLE {quoted_name} "
        f"(LIKE {quoted_parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    )
    conn.exec_driver_sql(
        f"WITH moved AS (DELETE FROM {quoted_default} "
        "WHERE created_at >= %(s)s AND created_at < %(e)s "
        f"RETURNING *) INSERT INTO {quoted_name} SELECT * FROM moved",
        params,
    )
    conn.exec_driver_sql(
        f"ALTER TABLE {quoted_parent} ATTACH PARTITION {quoted_name} {partition_bounds_sql(month)}"
    )
    return True


@dataclass
class AddResult:
    """What :func:`add_partitions` created (nothing when every month existed)."""

    first_month: dt.date
    last_month: dt.date
    created: list[str] = field(default_factory=list)


def add_partitions(
    state: Context,
    *,
    months_ahead: int = DEFAULT_MONTHS_AHEAD,
    first_month: dt.date | None = None,
) -> AddResult:
    """Create the monthly partitions of both tables from this UTC month (or
    ``first_month``) to ``months_ahead`` months ahead; existing ones are left alone."""
    check_months_ahead(months_ahead)
    engine = require_postgresql(state)
    this_month = current_utc_month(state)
    first = (first_month or this_month).replace(day=1)
    last = add_months(this_month, months_ahead)
    result = AddResult(first, last)
    with database_errors("Adding partitions"), engine.begin() as conn:
        require_partitioned(conn)
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        month = first
        while month <= last:
            for parent in (EVENT, ARCHIVE):
                if _ensure_partition(conn, parent, month):
                    result.created.append(partition_name(parent, month))
            month = add_months(month, 1)
    return result


# -- archive and purge by month ------------------------------------------------------------


def _refuse_unless_past_retention(
    state: Context, days: Sequence[dt.date], older_than_days: int, what: str, setting: str
) -> None:
    """Raise :class:`PartitioningError` unless every local day of ``days`` is older than
    ``older_than_days``."""
    cutoff = cutoff_day(state, older_than_days)
    if days[-1] >= cutoff:
        raise PartitioningError(
            f"{what}: its local day {days[-1].isoformat()} ({state.settings.timezone.key}) is "
            f"not older than {older_than_days} days ({setting}); the first day kept is "
            f"{cutoff.isoformat()}."
        )


@dataclass
class MonthArchiveResult:
    """What :func:`archive_month` did."""

    month: dt.date
    #: Raw events of the month when it was checked.
    events: int
    #: True when the partition itself changed tables (no row copied); False when the rows
    #: were copied into an archive partition that already held part of the month.
    moved_partition: bool
    days: list[DayState] = field(default_factory=list)


def _move_partition_to_archive(conn: sa.Connection, month: dt.date) -> None:
    """Detach the event partition of ``month``, rename it and its indexes, attach it to
    the archive in place of the (empty) archive partition, and give the event table an
    empty partition of the month again."""
    event_part, archive_part = partition_name(EVENT, month), partition_name(ARCHIVE, month)
    quoted_event = quote_identifier(conn, event_part)
    quoted_archive = quote_identifier(conn, archive_part)
    # Archive before raw, as `flask analytics archive` takes them: no deadlock.
    conn.exec_driver_sql(f"LOCK TABLE {ARCHIVE}, {EVENT} IN ACCESS EXCLUSIVE MODE")
    conn.exec_driver_sql(f"DROP TABLE {quoted_archive}")
    conn.exec_driver_sql(f"ALTER TABLE {EVENT} DETACH PARTITION {quoted_event}")
    conn.exec_driver_sql(f"ALTER TABLE {quoted_event} ALTER COLUMN id DROP DEFAULT")
    for (index,) in conn.exec_driver_sql(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = to_regclass(%(t)s)",
        {"t": event_part},
    ).all():
        if index.startswith(event_part):
            renamed = (archive_part + index[len(event_part) :])[:63]
            conn.exec_driver_sql(
                f"ALTER INDEX {quote_identifier(conn, index)} "
                f"RENAME TO {quote_identifier(conn, renamed)}"
            )
    conn.exec_driver_sql(f"ALTER TABLE {quoted_event} RENAME TO {quoted_archive}")
    conn.exec_driver_sql(
        f"ALTER TABLE {ARCHIVE} ATTACH PARTITION {quoted_archive} {partition_bounds_sql(month)}"
    )
    conn.exec_driver_sql(create_partition_sql(conn, EVENT, month))


def archive_month(
    state: Context, month: dt.date, *, older_than_days: int | None = None
) -> MonthArchiveResult:
    """Move the raw events of a whole UTC month to the archive, as a partition.

    Refused (:class:`PartitioningError`) unless every local day touching that month is
    older than the retention (``older_than_days``, default ``ANALYTICS_RETENTION_DAYS``)
    and, if it has raw events, aggregated since its latest events (as
    ``flask analytics archive`` decides). The event partition is detached, renamed and
    attached to the archive in one transaction; an empty one takes its place, so late
    events of the month still have a partition (``flask analytics archive`` moves them).
    If part of the month was archived row by row before, the remaining rows are copied.
    """
    engine = require_postgresql(state)
    month = month.replace(day=1)
    if older_than_days is None:
        older_than_days = state.settings.retention_days
    days = touching_days(state, month)
    what = f"{month:%Y-%m} cannot be archived as a whole month"
    _refuse_unless_past_retention(state, days, older_than_days, what, "ANALYTICS_RETENTION_DAYS")
    with engine.connect() as conn:
        require_partitioned(conn)
    states = [day_state(state, d) for d in days]
    pending = [d for d in states if d.raw_events and not d.fresh]
    if pending:
        listed = ", ".join(f"{d.day.isoformat()} ({d.status})" for d in pending)
        raise PartitioningError(
            f"{what}: local days not aggregated since their latest events: {listed}. "
            "Aggregate them (flask analytics backfill), then archive the month again."
        )
    event_part, archive_part = partition_name(EVENT, month), partition_name(ARCHIVE, month)
    with database_errors(f"Archiving {month:%Y-%m}"), engine.begin() as conn:
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        _ensure_partition(conn, EVENT, month)
        _ensure_partition(conn, ARCHIVE, month)
        events = count_rows(conn, event_part)
        result = MonthArchiveResult(month, events, moved_partition=False, days=states)
        if events == 0:
            return result
        if count_rows(conn, archive_part):
            quoted_event = quote_identifier(conn, event_part)
            quoted_archive = quote_identifier(conn, archive_part)
            cols = ", ".join(quote_identifier(conn, c) for c, _, _ in live_columns(conn, EVENT))
            conn.exec_driver_sql(
                f"INSERT INTO {quoted_archive} ({cols}) SELECT {cols} FROM {quoted_event}"
            )
            conn.exec_driver_sql(f"TRUNCATE {quoted_event}")
            return result
        _move_partition_to_archive(conn, month)
        result.moved_partition = True
    return result


@dataclass
class MonthPurgeResult:
    """What :func:`purge_month` deleted."""

    month: dt.date
    #: Archived events deleted: the month's partition, plus the hours of its edge local
    #: days that lie in the neighbouring months (so no local day is left half purged).
    deleted: int
    dropped_partition: bool


def purge_month(
    state: Context, month: dt.date, *, older_than_days: int | None = None
) -> MonthPurgeResult:
    """Drop the archive partition of a whole UTC month; daily rows are never touched.

    Refused (:class:`PartitioningError`) unless every local day touching the month is
    older than ``older_than_days`` (default ``ANALYTICS_ARCHIVE_RETENTION_DAYS``; None
    keeps the archive forever: ``ConfigError``) and has no raw events left (archive them
    first). The archived rows of those local days that lie in the neighbouring months
    are deleted too, in the same transaction; then the month's ids leave
    ``analytics_event_id``.
    """
    engine = require_postgresql(state)
    month = month.replace(day=1)
    older_than_days = archive_retention(state, older_than_days)
    days = touching_days(state, month)
    what = f"{month:%Y-%m} cannot be purged"
    _refuse_unless_past_retention(
        state, days, older_than_days, what, "ANALYTICS_ARCHIVE_RETENTION_DAYS"
    )
    tz = state.settings.timezone
    low, high = day_bounds(tz, days[0])[0], day_bounds(tz, days[-1])[1]
    with engine.connect() as conn:
        require_partitioned(conn)
        raw = int(
            conn.exec_driver_sql(
                f"SELECT count(*) FROM {EVENT} WHERE created_at >= %(l)s AND created_at < %(h)s",
                {"l": low, "h": high},
            ).scalar()
            or 0
        )
    if raw:
        raise PartitioningError(
            f"{what}: its local days {days[0].isoformat()} to {days[-1].isoformat()} still have "
            f"{raw:,} raw events; archive them first (flask analytics partitions archive-month "
            f"{month:%Y-%m}, or flask analytics archive)."
        )
    part = partition_name(ARCHIVE, month)
    with database_errors(f"Purging {month:%Y-%m}"), engine.begin() as conn:
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        conn.exec_driver_sql(f"LOCK TABLE {ARCHIVE} IN ACCESS EXCLUSIVE MODE")
        deleted = count_rows(conn, part)
        dropped = table_exists(conn, part)
        if dropped:
            conn.exec_driver_sql(f"DROP TABLE {quote_identifier(conn, part)}")
        # The edge days' hours in the neighbouring months (and any row of the month left
        # in the default partition).
        edges = conn.exec_driver_sql(
            f"DELETE FROM {ARCHIVE} WHERE created_at >= %(l)s AND created_at < %(h)s",
            {"l": low, "h": high},
        )
        deleted += int(edges.rowcount or 0)
    # The month's ids leave analytics_event_id (a transaction of its own: the archive's
    # lock is not held for it, and ids left behind only keep deduplicating). Ids of
    # events that arrived raw meanwhile stay: a retry of those must remain a duplicate.
    with engine.begin() as conn:
        forget_event_ids(conn, low, high)
    return MonthPurgeResult(month, deleted, dropped)
