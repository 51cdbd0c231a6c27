"""Archive and purge of raw events, in crash-safe batches.

``archive`` moves the raw events of old local days from ``analytics_event`` to
``analytics_event_archive`` (ids preserved). Each batch is an ``INSERT ... SELECT`` into
the archive plus a ``DELETE`` of exactly the rows now in the archive, in one transaction:
a process killed at any point leaves every event in one table or the other, never both,
never neither, and re-running carries on where it stopped.

Only days already aggregated are archived. A day counts as aggregated when the latest
finished ``analytics_aggregation_run`` of that day read as many events (raw + archived)
as the day holds now. Comparing counts rather than times is deliberate: ``created_at`` is
when an event happened, not when it was written, so a late event (replayed offline
queue, ``track()`` with a past timestamp) can be written after a run while being older
than it. A day's event count only grows (events are never deleted before purge, and
duplicate event ids are rejected at ingest), so an equal count means the run saw them all.

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
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from .errors import ConfigError

if TYPE_CHECKING:
    from .extension import AnalyticsState


def day_bounds(tz: ZoneInfo, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """Naive UTC ``[start, end)`` of local ``day`` (23 or 25 hours long on DST days)."""

    def midnight(d: dt.date) -> dt.datetime:
        local = dt.datetime.combine(d, dt.time.min, tzinfo=tz)
        return local.astimezone(dt.timezone.utc).replace(tzinfo=None)

    return midnight(day), midnight(day + dt.timedelta(days=1))


def cutoff_day(state: AnalyticsState, older_than_days: int) -> dt.date:
    """First local day kept: days strictly before it are older than ``older_than_days``."""
    if isinstance(older_than_days, bool) or not isinstance(older_than_days, int):
        raise TypeError(f"older_than_days must be an integer, not {older_than_days!r}")
    if older_than_days < 0:
        raise ValueError(f"older_than_days must be >= 0, not {older_than_days}")
    return state.today() - dt.timedelta(days=older_than_days)


# -- per-day bookkeeping -------------------------------------------------------------------


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
    return first.replace(tzinfo=dt.timezone.utc).astimezone(tz).date()


def _days_with_events(
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


def _count(conn: sa.Connection, table: sa.Table, start: dt.datetime, end: dt.datetime) -> int:
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


def _day_state(
    state: AnalyticsState, conn: sa.Connection, day: dt.date, start: dt.datetime, end: dt.datetime
) -> DayState:
    models = state.models
    run = latest_run(conn, models.AggregationRun.__table__, day)
    return DayState(
        day=day,
        raw_events=_count(conn, models.Event.__table__, start, end),
        archived_events=_count(conn, models.EventArchive.__table__, start, end),
        run_events=None if run is None else run[0],
        aggregated_at=None if run is None else run[1],
    )


def day_states(state: AnalyticsState, *, before: dt.date | None = None) -> list[DayState]:
    """Every local day that has raw events (before local day ``before``), oldest first."""
    tz = state.settings.timezone
    with state.engine().connect() as conn:
        return [
            _day_state(state, conn, day, start, end)
            for day, start, end in _days_with_events(conn, tz, state.models.Event.__table__, before)
        ]


def day_state(state: AnalyticsState, day: dt.date) -> DayState:
    """Counts and latest aggregation of one local day."""
    start, end = day_bounds(state.settings.timezone, day)
    with state.engine().connect() as conn:
        return _day_state(state, conn, day, start, end)


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
    state: AnalyticsState,
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
    return result


def _move_day(
    state: AnalyticsState, start: dt.datetime, end: dt.datetime, batch_size: int
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


def archive_retention(state: AnalyticsState, older_than_days: int | None) -> int:
    """Days archived events are kept: ``older_than_days``, else the setting; ``ConfigError``
    when neither gives one (None keeps the archive forever)."""
    if older_than_days is None:
        older_than_days = state.settings.archive_retention_days
    if older_than_days is None:
        raise ConfigError(
            "ANALYTICS_ARCHIVE_RETENTION_DAYS is None, which keeps archived events forever: "
            "set it to a number of days (or pass older_than_days) to purge."
        )
    return older_than_days


def purge(
    state: AnalyticsState,
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
            (day, start, end, _count(conn, table, start, end))
            for day, start, end in _days_with_events(conn, tz, table, cutoff)
        ]
    result.days = [(day, n) for day, _, _, n in plan]
    if dry_run:
        return result
    from . import partitioning

    forget_ids = partitioning.is_partitioned(state)
    for _, start, end, _ in plan:
        # One transaction per day: a day's archive is complete or gone, never half.
        with engine.begin() as conn:
            deleted = conn.execute(
                sa.delete(table).where(table.c.created_at >= start, table.c.created_at < end)
            ).rowcount
            if forget_ids:
                # Partitioned tables keep event ids in a table of their own: purged
                # events' ids go with them, as the unique index entries do otherwise.
                partitioning.forget_event_ids(conn, start, end)
        result.deleted += int(deleted or 0)
        if progress is not None:
            progress(int(deleted or 0))
    return result


def counts(state: AnalyticsState) -> dict[str, int]:
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
