"""Archive and purge of raw events, in crash-safe batches.

``archive`` moves the raw events of old local days from ``analytics_event`` to
``analytics_event_archive`` (ids preserved). Each batch is an ``INSERT ... SELECT`` into
the archive plus a ``DELETE`` of exactly the rows now in the archive, in one transaction:
a process killed at any point leaves every event in one table or the other, never both,
never neither, and re-running carries on where it stopped.

Only days already aggregated are archived (``core.runs`` says when a day counts as
aggregated).

``purge`` deletes archived events of local days older than
``ANALYTICS_ARCHIVE_RETENTION_DAYS``, one whole day per transaction, so a day's archive is
either complete or gone: aggregation never recomputes a day from half of its events (and
``aggregate_day`` refuses, unless forced, a day left with fewer events than its latest
run read: status "purged").
Daily rows are never touched: purged days keep their numbers.

Every boundary is a local midnight of ``ANALYTICS_TIMEZONE``, converted to UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa

from .. import signals
from ..core.clock import day_bounds
from ..core.runs import DayState, count_between, day_states, days_with_events
from .partitions import forget_event_ids, is_partitioned
from .retention import archive_retention, cutoff_day

if TYPE_CHECKING:
    from ..core.context import Context


# -- archive ------------------------------------------------------------------------------


@dataclass
class ArchiveResult:
    """What ``archive`` moved (or, with ``dry_run``, would move)."""

    #: First local day kept raw: every archived event is older than its midnight.
    cutoff: dt.date
    dry_run: bool
    #: Old days that are (or would be) archived, with their counts before the move.
    days: list[DayState] = field(default_factory=list)
    #: Old days left raw because they are not aggregated, or aggregated before their
    #: latest events arrived: aggregate them, then archive again.
    skipped: list[DayState] = field(default_factory=list)
    moved: int = 0
    batches: int = 0
    #: Raw events whose id or event_id is already used by a different archived event
    #: (left in place rather than overwrite or lose either one).
    conflicts: int = 0

    @property
    def planned(self) -> int:
        """Raw events of the archivable days when the plan was made."""
        return sum(d.raw_events for d in self.days)


def archive(
    state: Context,
    *,
    older_than_days: int | None = None,
    batch_size: int = 10_000,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ArchiveResult:
    """Move raw events of aggregated local days older than the retention to the archive.

    ``older_than_days`` defaults to ``ANALYTICS_RETENTION_DAYS``. ``progress(n)`` is called
    after each committed batch with the number of raw events it handled.
    """
    if older_than_days is None:
        older_than_days = state.settings.retention_days
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
    cutoff = cutoff_day(state, older_than_days)
    result = ArchiveResult(cutoff=cutoff, dry_run=dry_run)
    for day in day_states(state, before=cutoff):
        (result.days if day.fresh else result.skipped).append(day)
    if dry_run:
        return result
    tz = state.settings.timezone
    for day in result.days:
        start, end = day_bounds(tz, day.day)
        for moved, conflicts in _move_day(state, start, end, batch_size):
            result.moved += moved
            result.conflicts += conflicts
            result.batches += 1
            if progress is not None:
                progress(moved + conflicts)
    signals.days_archived.send(state.app, result=result)
    return result


def _move_day(
    state: Context, start: dt.datetime, end: dt.datetime, batch_size: int
) -> Iterator[tuple[int, int]]:
    """Move one day's raw events in id-ordered batches; yields (moved, conflicts) per batch."""
    event: sa.Table = state.models.Event.__table__
    archived: sa.Table = state.models.EventArchive.__table__
    names = [c.name for c in event.columns]
    in_day = sa.and_(event.c.created_at >= start, event.c.created_at < end)
    engine = state.engine()
    last = None
    while True:
        with engine.begin() as conn:
            ids = sa.select(event.c.id).where(in_day)
            if last is not None:
                ids = ids.where(event.c.id > last)
            page = ids.order_by(event.c.id).limit(batch_size).subquery()
            high = conn.scalar(sa.select(sa.func.max(page.c.id)))
            if high is None:
                return
            batch = sa.and_(in_day, event.c.id <= high)
            if last is not None:
                batch = sa.and_(batch, event.c.id > last)
            rows = int(conn.scalar(sa.select(sa.func.count()).where(batch)) or 0)
            # Copy what the archive does not hold yet: an event already there (same id and
            # event_id) is only deleted below; an id or event_id taken by a *different*
            # archived event is a conflict, left raw so neither event is lost.
            taken_id = sa.exists().where(archived.c.id == event.c.id)
            taken_event_id = sa.exists().where(archived.c.event_id == event.c.event_id)
            conn.execute(
                sa.insert(archived).from_select(
                    names,
                    sa.select(*[event.c[n] for n in names]).where(
                        batch, ~taken_id, ~taken_event_id
                    ),
                )
            )
            # Delete exactly the rows now present in the archive: under READ COMMITTED a
            # row committed by someone else between the two statements is never deleted
            # without having been copied.
            same = sa.exists().where(
                archived.c.id == event.c.id, archived.c.event_id == event.c.event_id
            )
            moved = int(conn.execute(sa.delete(event).where(batch, same)).rowcount or 0)
        last = high
        yield moved, max(rows - moved, 0)


# -- purge --------------------------------------------------------------------------------


@dataclass
class PurgeResult:
    """What ``purge`` deleted (or, with ``dry_run``, would delete)."""

    #: First local day kept in the archive.
    cutoff: dt.date
    dry_run: bool
    #: (local day, archived events) of every purged day.
    days: list[tuple[dt.date, int]] = field(default_factory=list)
    deleted: int = 0

    @property
    def planned(self) -> int:
        return sum(n for _, n in self.days)


def purge(
    state: Context,
    *,
    older_than_days: int | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> PurgeResult:
    """Delete archived events of local days older than ``ANALYTICS_ARCHIVE_RETENTION_DAYS``.

    Raw events and daily rows are never touched. Raises ``ConfigError`` when neither
    ``older_than_days`` nor the setting gives a retention (None keeps the archive forever).
    """
    cutoff = cutoff_day(state, archive_retention(state, older_than_days))
    result = PurgeResult(cutoff=cutoff, dry_run=dry_run)
    tz = state.settings.timezone
    table: sa.Table = state.models.EventArchive.__table__
    engine = state.engine()
    with engine.connect() as conn:
        plan = [
            (day, start, end, count_between(conn, table, start, end))
            for day, start, end in days_with_events(conn, tz, table, cutoff)
        ]
    result.days = [(day, n) for day, _, _, n in plan]
    if dry_run:
        return result
    forget_ids = is_partitioned(state)
    for _, start, end, _ in plan:
        # One transaction per day: a day's archive is complete or gone, never half.
        with engine.begin() as conn:
            deleted = conn.execute(
                sa.delete(table).where(table.c.created_at >= start, table.c.created_at < end)
            ).rowcount
            if forget_ids:
                # Partitioned tables keep event ids in a table of their own: purged
                # events' ids go with them, as the unique index entries do otherwise.
                forget_event_ids(conn, start, end)
        result.deleted += int(deleted or 0)
        if progress is not None:
            progress(int(deleted or 0))
    return result
