"""Putting jobs on ``ANALYTICS_QUEUE``: the Redis connection, deterministic job ids and
one ``enqueue_*`` per job.

Jobs are enqueued by dotted path (:data:`JOBS_MODULE`) with deterministic ids
(``flask_analytics-<queue>-aggregate-2026-01-15``), so a day is never queued twice at
once. This module needs the ``redis`` extra (rq and redis).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis import Redis
from redis.exceptions import LockError, RedisError
from rq import Queue
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus

from .queueing import Enqueued, JobsUnavailable, safe_url

if TYPE_CHECKING:
    from ..state import AppState

log = logging.getLogger(__name__)

#: Where the job entry points live. Queued jobs name their function by this path, so it
#: must not move: a job waiting in Redis would no longer be found by the worker.
JOBS_MODULE = "flask_analytics.tasks.jobs"

#: Prefix of every job id (and of the scheduler's Redis names).
ID_PREFIX = "flask_analytics"

#: Job timeouts (seconds). Archive and purge commit per batch/day, so a timeout only
#: pauses them: the next run carries on.
AGGREGATE_TIMEOUT = 30 * 60
LONG_TIMEOUT = 6 * 3600
SHORT_TIMEOUT = 10 * 60

#: Job statuses after which a job id may be used again.
DONE = frozenset({JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED})

#: What to do without Redis, for commands that can run their work inline.
INLINE_HINT = "or run the work inline with --sync"
#: ... and for the worker and scheduler, which only exist to serve the queue.
QUEUE_ONLY_HINT = (
    "or unset ANALYTICS_REDIS_URL: without it commands run their work inline and no "
    "worker or scheduler is needed"
)


def redis_connection(state: AppState, hint: str = INLINE_HINT) -> Redis:
    """A connection to ``ANALYTICS_REDIS_URL``, checked with a PING; ``hint`` ends the
    error message when it is unreachable."""
    url = state.settings.redis_url
    if url is None:
        raise JobsUnavailable(
            "ANALYTICS_REDIS_URL is not set: jobs run inline in the command that starts them."
        )
    try:
        connection = Redis.from_url(url, socket_connect_timeout=5)
        connection.ping()
    except (RedisError, ValueError) as exc:
        raise JobsUnavailable(
            f"Redis is not reachable at {safe_url(url)} ({exc}). Start Redis or fix "
            f"ANALYTICS_REDIS_URL, {hint}."
        ) from exc
    return connection


def job_id(state: AppState, *parts: str) -> str:
    """Deterministic job id, scoped by queue (rq allows letters, digits, ``_`` and ``-``)."""
    queue = re.sub(r"[^A-Za-z0-9_-]", "-", state.settings.queue)
    return "-".join((ID_PREFIX, queue, *parts))


def fetch_job(connection: Redis, jid: str) -> Job | None:
    """The job with id ``jid``, or None when Redis holds no such job (any more)."""
    try:
        return Job.fetch(jid, connection=connection)
    except NoSuchJobError:
        return None


def enqueue(
    state: AppState,
    func: str,
    args: Sequence[Any] = (),
    *,
    key: Sequence[str],
    description: str,
    timeout: int,
    connection: Redis | None = None,
) -> Enqueued:
    """Enqueue ``func`` (dotted path) unless a job with the same id is queued or running.

    A finished, failed or stopped job with that id is replaced. The check and the enqueue
    hold a Redis lock, so two processes enqueueing the same day queue one job.
    """
    connection = connection or redis_connection(state)
    queue = Queue(state.settings.queue, connection=connection)
    jid = job_id(state, *key)
    try:
        with connection.lock(f"{ID_PREFIX}-lock-{jid}", timeout=30, blocking_timeout=10):
            existing = fetch_job(connection, jid)
            if existing is not None:
                status = existing.get_status(refresh=False)
                if status not in DONE:
                    return Enqueued(jid, description, queue.name, False, str(status.value))
                existing.delete()
            try:
                job = queue.enqueue_call(
                    func,
                    args=tuple(args),
                    job_id=jid,
                    description=description,
                    timeout=timeout,
                    unique=True,
                )
            except DuplicateJobError:
                # Someone bypassing the lock got there first: theirs is the queued job.
                return Enqueued(jid, description, queue.name, False, "queued")
    except LockError as exc:
        raise JobsUnavailable(f"Could not lock job {jid} on Redis: {exc}") from exc
    except RedisError as exc:
        raise JobsUnavailable(f"Redis failed while queueing {jid}: {exc}") from exc
    return Enqueued(jid, description, queue.name, True, str(job.get_status(refresh=False).value))


def enqueue_aggregate(
    state: AppState, day: dt.date, *, force: bool = False, connection: Redis | None = None
) -> Enqueued:
    """Queue the aggregation of local ``day`` (one job per day at a time)."""
    iso = day.isoformat()
    return enqueue(
        state,
        f"{JOBS_MODULE}.aggregate_job",
        (iso, force) if force else (iso,),
        key=("aggregate", iso),
        description=f"aggregate {iso}",
        timeout=AGGREGATE_TIMEOUT,
        connection=connection,
    )


def enqueue_archive(
    state: AppState,
    *,
    older_than_days: int | None = None,
    batch_size: int = 10_000,
    connection: Redis | None = None,
) -> Enqueued:
    """Queue an archive run (one at a time)."""
    return enqueue(
        state,
        f"{JOBS_MODULE}.archive_job",
        (older_than_days, batch_size),
        key=("archive",),
        description="archive raw events",
        timeout=LONG_TIMEOUT,
        connection=connection,
    )


def enqueue_purge(
    state: AppState, *, older_than_days: int | None = None, connection: Redis | None = None
) -> Enqueued:
    """Queue a purge of the archive (one at a time)."""
    return enqueue(
        state,
        f"{JOBS_MODULE}.purge_job",
        (older_than_days,),
        key=("purge",),
        description="purge archived events",
        timeout=LONG_TIMEOUT,
        connection=connection,
    )


def enqueue_flush(state: AppState, *, connection: Redis | None = None) -> Enqueued:
    """Queue a flush of the ingest buffer (one at a time)."""
    return enqueue_simple(state, "flush_job", "flush", connection=connection)


def enqueue_simple(
    state: AppState, func: str, name: str, *, connection: Redis | None = None
) -> Enqueued:
    """Queue an argument-less job of :data:`JOBS_MODULE` under the id ``name``."""
    return enqueue(
        state,
        f"{JOBS_MODULE}.{func}",
        (),
        key=(name,),
        description=name.replace("-", " "),
        timeout=SHORT_TIMEOUT,
        connection=connection,
    )


def request_flush(state: AppState) -> None:
    """Queue a flush job now (the buffer passed ``ANALYTICS_BUFFER_FLUSH_THRESHOLD``);
    when jobs cannot be queued, the next scheduled or looping flush writes the rows."""
    try:
        enqueue_flush(state)
    except JobsUnavailable as exc:
        log.warning("analytics buffer: could not queue a flush: %s", exc)
