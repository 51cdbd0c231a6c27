"""RQ job entry points, the dispatch layer, the worker and the scheduler.

Jobs
    Top-level functions taking primitives only (ISO date strings, ints), enqueued by
    dotted path with deterministic ids (``flask_analytics-<queue>-aggregate-2026-01-15``),
    so a day is never queued twice at once. Every job is idempotent and finds its app
    through the app context the worker pushes.

Dispatch
    With ``ANALYTICS_REDIS_URL`` set, ``enqueue_*`` put jobs on ``ANALYTICS_QUEUE``;
    otherwise (or with ``--sync``) the CLI calls the same public functions inline.

Worker
    rq 3's default worker class is the forking ``rq.Worker``: the worker process dequeues
    a job and forks a "work horse" that runs it, so a crashing or leaking job never takes
    the worker down. :class:`AppWorker` keeps that model and runs every job inside
    ``app.app_context()``. Database connections never cross the fork: the worker closes
    its idle pooled connections before forking, and the horse calls
    ``engine.dispose(close=False)`` so it opens its own connections and never uses (or
    closes) one the parent holds. ``rq.SpawnWorker`` is not used: its horse is a fresh
    interpreter that would have to rebuild the app. ``--no-fork`` selects
    :class:`AppSimpleWorker` (jobs run in the worker process) for platforms without fork().

Scheduler
    :func:`build_scheduler` returns rq's ``CronScheduler`` loaded with :func:`schedule`.
    Cron expressions are read in the site time zone (``ANALYTICS_TIMEZONE``), not the
    server's, and relative days ("today", "yesterday") are resolved in that zone when
    the job is enqueued, through the same deterministic ids as the CLI.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import socket
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from croniter import croniter
from flask import Flask, has_app_context
from redis import Redis
from redis.exceptions import LockError, RedisError
from rq import Queue, SimpleWorker, Worker, cron_job_registry
from rq.cron import CronJob, CronScheduler
from rq.defaults import DEFAULT_CRON_JOB_HISTORY_LIMIT, DEFAULT_CRON_JOB_HISTORY_TTL
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus

from ..core.clock import parse_day
from ..core.runs import DayState, day_state, day_states
from ..errors import AnalyticsError
from ..lifecycle import aggregate as aggregation
from ..lifecycle.archive import archive, purge
from ..state import AppState, current_state
from .queueing import Enqueued, safe_url, uses_queue
from .status import QueueInfo

if TYPE_CHECKING:
    from rq.executions import Execution


#: Prefix of every job id (and of the scheduler's Redis names).
ID_PREFIX = "flask_analytics"

#: Job timeouts (seconds). Archive and purge commit per batch/day, so a timeout only
#: pauses them: the next run carries on.
AGGREGATE_TIMEOUT = 30 * 60
LONG_TIMEOUT = 6 * 3600
SHORT_TIMEOUT = 10 * 60
#: A flush job stops reading new batches after this long (traffic may never let the
#: buffer run empty); the next job carries on.
FLUSH_SECONDS = 5 * 60

#: Job statuses after which a job id may be used again.
DONE = frozenset({JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED})


class JobsUnavailable(AnalyticsError):
    """Jobs cannot be queued: Redis is not configured or not reachable."""


# -- job entry points (primitives in, primitives out) -------------------------------------


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
    from ..lifecycle import partitions as partitioning

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


# -- dispatch -----------------------------------------------------------------------------


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
            existing = _fetch(connection, jid)
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


def _fetch(connection: Redis, jid: str) -> Job | None:
    try:
        return Job.fetch(jid, connection=connection)
    except NoSuchJobError:
        return None


def enqueue_aggregate(
    state: AppState, day: dt.date, *, force: bool = False, connection: Redis | None = None
) -> Enqueued:
    """Queue the aggregation of local ``day`` (one job per day at a time)."""
    iso = day.isoformat()
    return enqueue(
        state,
        f"{__name__}.aggregate_job",
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
        f"{__name__}.archive_job",
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
        f"{__name__}.purge_job",
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
    """Queue an argument-less job of this module under the id ``name``."""
    return enqueue(
        state,
        f"{__name__}.{func}",
        (),
        key=(name,),
        description=name.replace("-", " "),
        timeout=SHORT_TIMEOUT,
        connection=connection,
    )


# -- worker -------------------------------------------------------------------------------


@contextmanager
def _job_context(app: Flask | None, in_horse: bool) -> Iterator[None]:
    if app is None:
        raise RuntimeError("This worker has no Flask app: create it with app=...")
    with app.app_context():
        if in_horse:
            # Forked from the worker: drop the inherited pool without closing the parent's
            # connections (closing them would end the parent's database sessions).
            for engine in app.extensions["analytics"].db.engines.values():
                engine.dispose(close=False)
        yield


def _close_idle_connections(app: Flask | None) -> None:
    """Close the worker's idle pooled connections so a horse has nothing to inherit."""
    if app is None:
        return
    with app.app_context():
        for engine in app.extensions["analytics"].db.engines.values():
            engine.dispose()


class AppWorker(Worker):
    """rq's forking worker, running each job in its horse inside the Flask app context."""

    def __init__(self, *args: Any, app: Flask | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app = app

    def execute_job(self, job: Job, queue: Queue) -> None:
        _close_idle_connections(self.app)
        super().execute_job(job, queue)

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        with _job_context(self.app, self.is_horse):
            return super().perform_job(job, queue, execution)


class AppSimpleWorker(SimpleWorker):
    """rq's non-forking worker (jobs run in the worker process), inside the app context."""

    def __init__(self, *args: Any, app: Flask | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app = app

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        with _job_context(self.app, False):
            return super().perform_job(job, queue, execution)


def make_worker(
    app: Flask, *, name: str | None = None, fork: bool = True, connection: Redis | None = None
) -> Worker | SimpleWorker:
    """A worker listening on ``ANALYTICS_QUEUE`` whose jobs run in ``app``'s context."""
    state = current_state(app)
    connection = connection or redis_connection(state, QUEUE_ONLY_HINT)
    cls: type[AppWorker] | type[AppSimpleWorker] = AppWorker if fork else AppSimpleWorker
    return cls([state.settings.queue], connection=connection, name=name, app=app)


def run_worker(
    app: Flask,
    *,
    burst: bool = False,
    name: str | None = None,
    fork: bool = True,
    logging_level: str = "INFO",
) -> bool:
    """Work on ``ANALYTICS_QUEUE`` (until empty with ``burst``); True if any job ran."""
    worker = make_worker(app, name=name, fork=fork)
    return bool(worker.work(burst=burst, logging_level=logging_level))


# -- scheduler ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Scheduled:
    """One periodic job: what runs, with which arguments, on which cron (site time zone)."""

    name: str
    func: str
    args: tuple[str, ...]
    cron: str
    description: str


#: The documented periodic jobs. Relative days are resolved when the job is enqueued.
SCHEDULE: tuple[Scheduled, ...] = (
    Scheduled(
        "aggregate-today",
        f"{__name__}.aggregate_job",
        ("today",),
        "*/15 * * * *",
        "today's aggregation, every 15 minutes",
    ),
    Scheduled(
        "aggregate-yesterday",
        f"{__name__}.aggregate_job",
        ("yesterday",),
        "30 0 * * *",
        "yesterday's final aggregation at 00:30, once late events are in",
    ),
    Scheduled(
        "aggregate-stale",
        f"{__name__}.aggregate_stale_job",
        (),
        "0 2 * * *",
        "re-aggregate past days that received events since their last run, at 02:00",
    ),
    Scheduled(
        "expire-salts",
        f"{__name__}.expire_salts_job",
        (),
        "5 0 * * *",
        "delete daily salts older than 48 hours, at 00:05",
    ),
    Scheduled(
        "archive",
        f"{__name__}.archive_job",
        (),
        "0 3 1 * *",
        "archive aggregated raw events past ANALYTICS_RETENTION_DAYS, monthly (1st, 03:00)",
    ),
)

#: Added when ``ANALYTICS_ARCHIVE_RETENTION_DAYS`` is set.
PURGE_SCHEDULE = Scheduled(
    "purge",
    f"{__name__}.purge_job",
    (),
    "0 4 1 * *",
    "purge archived events past ANALYTICS_ARCHIVE_RETENTION_DAYS, monthly (1st, 04:00)",
)


#: Added when ``ANALYTICS_INGEST_BUFFER`` is "redis": a safety net for the buffer, since
#: cron cannot go below a minute (``flask analytics flush --loop`` flushes every few
#: seconds, and the endpoint queues a flush when the buffer passes its threshold).
FLUSH_SCHEDULE = Scheduled(
    "flush",
    f"{__name__}.flush_job",
    (),
    "* * * * *",
    "write the Redis ingest buffer to the database, every minute",
)


#: Added when ``analytics_event`` is partitioned by month (``flask analytics partitions
#: migrate``): partitions exist before their month starts, so the default stays empty.
PARTITIONS_SCHEDULE = Scheduled(
    "add-partitions",
    f"{__name__}.add_partitions_job",
    (),
    "0 1 15 * *",
    "create the monthly partitions 3 months ahead, monthly (15th, 01:00)",
)


def partitions_scheduled(state: AppState) -> bool:
    """Whether the schedule needs :data:`PARTITIONS_SCHEDULE`: the event table is
    partitioned. Read in the app context (``build_scheduler`` pushes one); without one
    the database cannot be reached, and the answer is no."""
    if not has_app_context():
        return False
    from ..lifecycle import partitions as partitioning

    try:
        return partitioning.is_partitioned(state)
    except sa.exc.SQLAlchemyError:
        # Database unreachable when the scheduler starts: on PostgreSQL schedule it anyway,
        # the job does nothing on unpartitioned tables.
        return state.engine().dialect.name == "postgresql"


def schedule(state: AppState) -> list[Scheduled]:
    """The periodic jobs of this app, with their cron expressions (site time zone)."""
    jobs = list(SCHEDULE)
    if state.settings.archive_retention_days is not None:
        jobs.append(PURGE_SCHEDULE)
    if state.settings.ingest_buffer == "redis":
        jobs.append(FLUSH_SCHEDULE)
    if partitions_scheduled(state):
        jobs.append(PARTITIONS_SCHEDULE)
    return jobs


def enqueue_scheduled(
    state: AppState, entry: Scheduled, *, connection: Redis | None = None
) -> Enqueued:
    """Enqueue one scheduled job now, resolving relative days in the site time zone."""
    short = entry.func.rsplit(".", 1)[-1]
    if short == "aggregate_job":
        day = parse_day(entry.args[0], state.today())
        return enqueue_aggregate(state, day, connection=connection)
    if short == "archive_job":
        return enqueue_archive(state, connection=connection)
    if short == "purge_job":
        return enqueue_purge(state, connection=connection)
    return enqueue_simple(state, short, entry.name, connection=connection)


def next_run(cron: str, after: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """First instant (aware UTC) strictly after ``after`` matching ``cron`` in zone ``tz``.

    Wall-clock times repeated when clocks go back match twice (both are real instants);
    times skipped when clocks go forward run at the matching instant after the gap.
    """
    local_after = after.astimezone(tz).replace(tzinfo=None)
    # Start early enough to see wall times of a repeated hour again.
    times = croniter(cron, local_after - dt.timedelta(hours=3))
    best: dt.datetime | None = None
    while True:
        naive: dt.datetime = times.get_next(dt.datetime)
        if best is not None and naive > best.astimezone(tz).replace(tzinfo=None) + dt.timedelta(
            hours=3
        ):
            return best
        for instant in _instants(naive, tz):
            if instant > after and (best is None or instant < best):
                best = instant


def _instants(naive: dt.datetime, tz: ZoneInfo) -> list[dt.datetime]:
    found = []
    for fold in (0, 1):
        instant = naive.replace(tzinfo=tz, fold=fold).astimezone(dt.timezone.utc)
        if instant.astimezone(tz).replace(tzinfo=None) == naive:
            found.append(instant)
    if not found:  # in a gap: fold=0 reads it with the offset before the jump
        found.append(naive.replace(tzinfo=tz, fold=0).astimezone(dt.timezone.utc))
    return found


class SiteCronJob(CronJob):
    """A cron job read in the site time zone, enqueued with flask-analytics' job ids."""

    def __init__(self, state: AppState, entry: Scheduled, connection_name: str) -> None:
        # get_next_enqueue_time() runs inside CronJob.__init__: set what it needs first.
        self.timezone = state.settings.timezone
        self.state = state
        self.entry = entry
        super().__init__(
            queue_name=state.settings.queue,
            func_name=entry.func,
            args=entry.args,
            cron=entry.cron,
            name=f"{connection_name}-{entry.name}",
        )

    def get_next_enqueue_time(self) -> dt.datetime:
        assert self.cron is not None
        base = self.latest_enqueue_time or dt.datetime.now(dt.timezone.utc)
        return next_run(self.cron, base, self.timezone)

    def enqueue(self, connection: Redis) -> Job:
        enqueued = enqueue_scheduled(self.state, self.entry, connection=connection)
        # The job may already be gone (a queued duplicate that finished and expired).
        job = _fetch(connection, enqueued.job_id) or Job(enqueued.job_id, connection=connection)
        stamp = (job.enqueued_at or dt.datetime.now(dt.timezone.utc)).timestamp()
        # The same bookkeeping as CronJob.enqueue, so rq's cron monitoring sees these jobs.
        with connection.pipeline() as pipe:
            pipe.zadd(self.job_history_key, {job.id: stamp})
            pipe.zremrangebyrank(self.job_history_key, 0, -(DEFAULT_CRON_JOB_HISTORY_LIMIT + 1))
            pipe.expire(self.job_history_key, DEFAULT_CRON_JOB_HISTORY_TTL)
            cron_job_registry.add(self.name, pipe, enqueue_timestamp=stamp)
            pipe.execute()
        return job


class SiteCronScheduler(CronScheduler):
    """rq's CronScheduler holding :class:`SiteCronJob` entries."""

    def add(self, job: CronJob) -> CronJob:
        self._cron_jobs.append(job)
        self.log.info("Scheduled %s with cron %r (%s)", job.name, job.cron, job.queue_name)
        return job


def build_scheduler(app: Flask, *, connection: Redis | None = None) -> SiteCronScheduler:
    """rq's CronScheduler with this app's :func:`schedule`, ready to ``start()``."""
    state = current_state(app)
    connection = connection or redis_connection(state, QUEUE_ONLY_HINT)
    prefix = job_id(state, "cron")
    scheduler = SiteCronScheduler(
        connection=connection,
        name=f"{prefix}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}",
    )
    with app.app_context():  # schedule() reads whether the event table is partitioned
        entries = schedule(state)
    for entry in entries:
        scheduler.add(SiteCronJob(state, entry, prefix))
    return scheduler


def run_scheduler(app: Flask) -> None:
    """Run the scheduler until SIGINT/SIGTERM."""
    build_scheduler(app).start()  # type: ignore[no-untyped-call]


# -- status -------------------------------------------------------------------------------


def queue_info(state: AppState, *, connection: Redis | None = None) -> QueueInfo:
    """Queue length, running and failed jobs of ``ANALYTICS_QUEUE``."""
    connection = connection or redis_connection(state)
    queue = Queue(state.settings.queue, connection=connection)
    failed_ids = queue.failed_job_registry.get_job_ids(0, 4, desc=True)
    failures = []
    for jid in failed_ids:
        job = _fetch(connection, jid)
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
