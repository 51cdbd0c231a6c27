"""What ``flask analytics status`` reports: row counts, aggregation runs, days needing
aggregation and, with Redis, the queue (rq is imported only then, so the rest works
without the ``redis`` extra)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ..core.runs import DayState, counts, day_states
from .queueing import JobsUnavailable

if TYPE_CHECKING:
    from redis import Redis

    from ..state import AppState


@dataclass(frozen=True)
class RunInfo:
    """One aggregation run."""

    date: dt.date
    started_at: dt.datetime
    finished_at: dt.datetime | None
    source_events: int | None


@dataclass(frozen=True)
class QueueInfo:
    """Jobs of ``ANALYTICS_QUEUE`` on Redis."""

    name: str
    queued: int
    started: int
    failed: int
    #: (job id, last line of the error) of the most recent failures.
    failures: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class StatusReport:
    """What ``flask analytics status`` shows."""

    raw_events: int
    archived_events: int
    runs: list[RunInfo]
    #: Days with raw events that are not aggregated, or changed since their last run.
    pending: list[DayState]
    #: None when jobs run inline (no ANALYTICS_REDIS_URL) or Redis is unreachable.
    queue: QueueInfo | None
    redis_error: str | None = None
    #: Aggregation runs ever recorded (``runs`` holds the most recent of them).
    run_count: int = 0


def last_runs(state: AppState, limit: int = 20) -> tuple[list[RunInfo], int]:
    """The ``limit`` most recently started aggregation runs, and how many there are."""
    runs: sa.Table = state.models.AggregationRun.__table__
    with state.engine().connect() as conn:
        rows = conn.execute(
            sa.select(runs.c.date, runs.c.started_at, runs.c.finished_at, runs.c.source_events)
            .order_by(runs.c.started_at.desc(), runs.c.id.desc())
            .limit(limit)
        ).all()
        total = conn.scalar(sa.select(sa.func.count()).select_from(runs)) or 0
    return [RunInfo(*row) for row in rows], total


def status_report(state: AppState, *, runs: int = 20) -> StatusReport:
    """Row counts, recent runs, days needing aggregation and (with Redis) the queue."""
    queue = None
    error = None
    if state.settings.redis_url is not None:
        try:
            queue = queue_info(state)
        except JobsUnavailable as exc:
            error = str(exc)
    rows = counts(state)
    recent, total = last_runs(state, runs)
    return StatusReport(
        raw_events=rows["raw"],
        archived_events=rows["archived"],
        runs=recent,
        run_count=total,
        pending=[d for d in day_states(state) if not d.fresh],
        queue=queue,
        redis_error=error,
    )


def queue_info(state: AppState, *, connection: Redis | None = None) -> QueueInfo:
    """Queue length, running and failed jobs of ``ANALYTICS_QUEUE`` (needs the redis extra)."""
    from rq import Queue

    from .enqueue import fetch_job, redis_connection

    connection = connection or redis_connection(state)
    queue = Queue(state.settings.queue, connection=connection)
    failed_ids = queue.failed_job_registry.get_job_ids(0, 4, desc=True)
    failures = []
    for jid in failed_ids:
        job = fetch_job(connection, jid)
        error = ""
        result = job.latest_result() if job is not None else None
        if result is not None and result.exc_string:
            error = result.exc_string.strip().splitlines()[-1]
        failures.append((jid, error))
    return QueueInfo(
        name=queue.name,
        queued=queue.count,
        started=queue.started_job_registry.count,
        failed=queue.failed_job_registry.count,
        failures=failures,
    )
