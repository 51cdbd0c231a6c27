"""RQ job entry points: top-level functions taking primitives only (ISO date strings, ints).

The worker finds them by dotted path (``flask_analytics.tasks.jobs.<name>``, see
:data:`.enqueue.JOBS_MODULE`), so they stay in this module. Every job is idempotent and
finds its app through the app context the worker pushes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..core.clock import parse_day
from ..core.runs import DayState, day_state, day_states
from ..lifecycle import aggregate as aggregation
from ..lifecycle import partitions as partitioning
from ..lifecycle.archive import archive, purge
from ..state import AppState, current_state
from .enqueue import enqueue_aggregate
from .queueing import uses_queue

#: A flush job stops reading new batches after this long (traffic may never let the
#: buffer run empty); the next job carries on.
FLUSH_SECONDS = 5 * 60


def aggregate_job(day: str, force: bool = False) -> dict[str, Any]:
    """Aggregate one local day (ISO date, or "today"/"yesterday" in the site time zone).

    A day whose events were purged, wholly or partly, fails the job with
    ``AggregationRefused`` (its message names the counts) unless ``force``.
    """
    state = current_state()
    target = parse_day(day, state.today())
    aggregation.aggregate_day(state, target, force=force)
    return {"date": target.isoformat(), "events": day_state(state, target).events}


def aggregate_stale_job() -> dict[str, Any]:
    """Aggregate every past day whose events changed since its last run (late events)."""
    state = current_state()
    days = stale_days(state)
    for day in days:
        if uses_queue(state, sync=False):
            enqueue_aggregate(state, day.day)
        else:
            aggregation.aggregate_day(state, day.day)
    return {"days": [d.day.isoformat() for d in days]}


def archive_job(older_than_days: int | None = None, batch_size: int = 10_000) -> dict[str, Any]:
    """Archive aggregated raw events older than the retention."""
    result = archive(current_state(), older_than_days=older_than_days, batch_size=batch_size)
    return {
        "cutoff": result.cutoff.isoformat(),
        "moved": result.moved,
        "days": [d.day.isoformat() for d in result.days],
        "skipped": [d.day.isoformat() for d in result.skipped],
        "conflicts": result.conflicts,
    }


def purge_job(older_than_days: int | None = None) -> dict[str, Any]:
    """Delete archived events older than ``ANALYTICS_ARCHIVE_RETENTION_DAYS``."""
    result = purge(current_state(), older_than_days=older_than_days)
    return {"cutoff": result.cutoff.isoformat(), "deleted": result.deleted}


def flush_job() -> dict[str, Any]:
    """Move the rows buffered in Redis (``ANALYTICS_INGEST_BUFFER = "redis"``) to the database."""
    from ..buffer import flush

    result = flush(current_state(), max_seconds=FLUSH_SECONDS)
    return dataclasses.asdict(result)


def add_partitions_job(months_ahead: int | None = None) -> dict[str, Any]:
    """Create monthly partitions ahead; does nothing unless the event table is partitioned."""
    state = current_state()
    if not partitioning.is_partitioned(state):
        return {"partitioned": False, "created": []}
    ahead = partitioning.DEFAULT_MONTHS_AHEAD if months_ahead is None else months_ahead
    result = partitioning.add_partitions(state, months_ahead=ahead)
    return {"partitioned": True, "created": result.created}


def expire_salts_job() -> dict[str, Any]:
    """Delete daily salts older than 48 hours."""
    return {"deleted": current_state().salts.expire()}


def stale_days(state: AppState) -> list[DayState]:
    """Past local days with raw events that were never aggregated or got events since.

    Days where fewer events remain than the last run read (partly purged) are left
    alone: re-aggregating them would replace good numbers with partial ones.
    """
    return [
        d
        for d in day_states(state, before=state.today())
        if d.status in ("never aggregated", "stale")
    ]
