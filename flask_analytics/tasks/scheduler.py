"""The scheduler: rq's ``CronScheduler`` loaded with this app's periodic jobs.

:func:`build_scheduler` returns it loaded with :func:`schedule`. Cron expressions are
read in the site time zone (``ANALYTICS_TIMEZONE``), not the server's, and relative days
("today", "yesterday") are resolved in that zone when the job is enqueued, through the
same deterministic ids as the CLI.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from croniter import croniter
from flask import Flask, has_app_context
from redis import Redis
from rq import cron_job_registry
from rq.cron import CronJob, CronScheduler
from rq.defaults import DEFAULT_CRON_JOB_HISTORY_LIMIT, DEFAULT_CRON_JOB_HISTORY_TTL
from rq.job import Job

from ..core.clock import parse_day
from ..lifecycle import partitions as partitioning
from ..state import AppState, current_state
from .enqueue import (
    JOBS_MODULE,
    QUEUE_ONLY_HINT,
    enqueue_aggregate,
    enqueue_archive,
    enqueue_purge,
    enqueue_simple,
    fetch_job,
    job_id,
    redis_connection,
)
from .queueing import Enqueued


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
        f"{JOBS_MODULE}.aggregate_job",
        ("today",),
        "*/15 * * * *",
        "today's aggregation, every 15 minutes",
    ),
    Scheduled(
        "aggregate-yesterday",
        f"{JOBS_MODULE}.aggregate_job",
        ("yesterday",),
        "30 0 * * *",
        "yesterday's final aggregation at 00:30, once late events are in",
    ),
    Scheduled(
        "aggregate-stale",
        f"{JOBS_MODULE}.aggregate_stale_job",
        (),
        "0 2 * * *",
        "re-aggregate past days that received events since their last run, at 02:00",
    ),
    Scheduled(
        "expire-salts",
        f"{JOBS_MODULE}.expire_salts_job",
        (),
        "5 0 * * *",
        "delete daily salts older than 48 hours, at 00:05",
    ),
    Scheduled(
        "archive",
        f"{JOBS_MODULE}.archive_job",
        (),
        "0 3 1 * *",
        "archive aggregated raw events past ANALYTICS_RETENTION_DAYS, monthly (1st, 03:00)",
    ),
)

#: Added when ``ANALYTICS_ARCHIVE_RETENTION_DAYS`` is set.
PURGE_SCHEDULE = Scheduled(
    "purge",
    f"{JOBS_MODULE}.purge_job",
    (),
    "0 4 1 * *",
    "purge archived events past ANALYTICS_ARCHIVE_RETENTION_DAYS, monthly (1st, 04:00)",
)


#: Added when ``ANALYTICS_INGEST_BUFFER`` is "redis": a safety net for the buffer, since
#: cron cannot go below a minute (``flask analytics flush --loop`` flushes every few
#: seconds, and the endpoint queues a flush when the buffer passes its threshold).
FLUSH_SCHEDULE = Scheduled(
    "flush",
    f"{JOBS_MODULE}.flush_job",
    (),
    "* * * * *",
    "write the Redis ingest buffer to the database, every minute",
)


#: Added when ``analytics_event`` is partitioned by month (``flask analytics partitions
#: migrate``): partitions exist before their month starts, so the default stays empty.
PARTITIONS_SCHEDULE = Scheduled(
    "add-partitions",
    f"{JOBS_MODULE}.add_partitions_job",
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
        for instant in _utc_instants(naive, tz):
            if instant > after and (best is None or instant < best):
                best = instant


def _utc_instants(naive: dt.datetime, tz: ZoneInfo) -> list[dt.datetime]:
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
        base = self.latest_enqueue_time or self.state.clock.now()
        return next_run(self.cron, base, self.timezone)

    def enqueue(self, connection: Redis) -> Job:
        enqueued = enqueue_scheduled(self.state, self.entry, connection=connection)
        # The job may already be gone (a queued duplicate that finished and expired).
        job = fetch_job(connection, enqueued.job_id) or Job(enqueued.job_id, connection=connection)
        stamp = (job.enqueued_at or self.state.clock.now()).timestamp()
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
