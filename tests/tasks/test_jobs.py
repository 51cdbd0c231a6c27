"""RQ jobs on the real Redis server: dedup ids, the app-context worker, the scheduler."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from redis import Redis
from rq.job import Job, JobStatus

from flask_analytics import Analytics, Clock
from flask_analytics.state import current_state
from flask_analytics.tasks import enqueue, jobs, queueing, status, worker
from flask_analytics.tasks import scheduler as scheduling

from ..conftest import REDIS_URL, redis_or_skip
from ..support.events import DAY, add_visits, daily_rows, summary
from ..support.redis_keys import delete_queue_keys, queue_of

# -- helpers ----------------------------------------------------------------------------------


def burst(app: Flask, *, fork: bool = True) -> bool:
    """Run a real worker (outside any app context) until the queue is empty."""
    name = f"{app.config['ANALYTICS_QUEUE']}-{uuid.uuid4().hex[:6]}"
    return worker.run_worker(app, burst=True, name=name, fork=fork, logging_level="WARNING")


def fetch(app: Flask, job_id: str) -> Job:
    return Job.fetch(job_id, connection=Redis.from_url(REDIS_URL))


# -- jobs called by tests through the worker ----------------------------------------------


def backend_pid_job() -> int:
    """The PostgreSQL backend the job's database connection talks to."""
    with jobs.current_state().engine().connect() as conn:
        return int(conn.scalar(sa.text("SELECT pg_backend_pid()")))


def config_job() -> str:
    """Something only the app's config knows."""
    return str(jobs.current_state().settings.queue)


def failing_job() -> None:
    raise RuntimeError("boom: a job failure for the status report")


# -- dispatch ------------------------------------------------------------------------------


@pytest.mark.redis
def test_same_day_enqueued_twice_queues_one_job(redis_app):
    state = current_state(redis_app)
    first = enqueue.enqueue_aggregate(state, DAY)
    second = enqueue.enqueue_aggregate(state, DAY)
    other = enqueue.enqueue_aggregate(state, DAY + dt.timedelta(days=1))

    assert first.created
    assert not second.created
    assert second.status == "queued"
    assert first.job_id == second.job_id
    assert first.job_id.endswith("-aggregate-2026-01-15")
    assert other.created
    queue = queue_of(redis_app)
    assert queue.job_ids == [first.job_id, other.job_id]
    job = fetch(redis_app, first.job_id)
    assert job.func_name == "flask_analytics.tasks.jobs.aggregate_job"
    assert job.args == ("2026-01-15",)


@pytest.mark.redis
def test_worker_runs_the_job_in_the_app_context_and_rows_appear(redis_app):
    add_visits(redis_app)
    enqueued = enqueue.enqueue_aggregate(current_state(redis_app), DAY)
    assert summary(redis_app) is None

    assert burst(redis_app) is True

    assert summary(redis_app) == (3, 3, 4, 1)
    job = fetch(redis_app, enqueued.job_id)
    assert job.get_status() == JobStatus.FINISHED
    assert job.return_value() == {"date": "2026-01-15", "events": 5}
    assert queue_of(redis_app).count == 0
    # Finished: the same day can be queued again (and is, once).
    again = enqueue.enqueue_aggregate(current_state(redis_app), DAY)
    assert again.created
    assert queue_of(redis_app).job_ids == [enqueued.job_id]


@pytest.mark.redis
def test_jobs_read_the_app_config_in_both_worker_kinds(redis_app):
    state = current_state(redis_app)
    for fork in (True, False):
        enqueued = enqueue.enqueue(
            state, f"{__name__}.config_job", key=("config",), description="config", timeout=60
        )
        assert burst(redis_app, fork=fork)
        assert (
            fetch(redis_app, enqueued.job_id).return_value() == redis_app.config["ANALYTICS_QUEUE"]
        )


@pytest.mark.redis
def test_the_work_horse_does_not_share_database_connections(redis_app):
    analytics = redis_app.extensions["analytics_test"]
    with redis_app.app_context():
        engine = analytics.db.engine
        if engine.dialect.name != "postgresql":
            pytest.skip("backend pids are a PostgreSQL notion")
        with engine.connect() as conn:  # returned to the pool, ready to be inherited
            parent_pid = conn.scalar(sa.text("SELECT pg_backend_pid()"))
    enqueued = enqueue.enqueue(
        current_state(redis_app),
        f"{__name__}.backend_pid_job",
        key=("pid",),
        description="pid",
        timeout=60,
    )

    assert burst(redis_app)

    job_pid = fetch(redis_app, enqueued.job_id).return_value()
    assert isinstance(job_pid, int)
    assert job_pid != parent_pid
    with redis_app.app_context(), analytics.db.engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT 1")) == 1  # the parent's database still answers


@pytest.mark.redis
def test_failed_jobs_show_in_the_status_and_can_be_queued_again(redis_app):
    state = current_state(redis_app)
    first = enqueue.enqueue(
        state, f"{__name__}.failing_job", key=("fail",), description="fail", timeout=60
    )
    burst(redis_app)

    with redis_app.app_context():
        report = status.status_report(state)
    assert report.queue is not None
    assert (report.queue.queued, report.queue.failed) == (0, 1)
    assert report.queue.failures == [
        (first.job_id, "RuntimeError: boom: a job failure for the status report")
    ]
    again = enqueue.enqueue(
        state, f"{__name__}.failing_job", key=("fail",), description="fail", timeout=60
    )
    assert again.created
    assert queue_of(redis_app).count == 1


def test_jobs_outside_an_app_context_say_how_to_run_them():
    with pytest.raises(RuntimeError, match="flask analytics worker"):
        jobs.aggregate_job("2026-01-15")


def test_stale_job_leaves_partly_purged_days_alone_and_the_day_job_refuses_them(app, monkeypatch):
    """aggregate-stale recomputes late and new days, never one with fewer events than its
    last run read; the aggregate job of that day fails with the refusal unless forced."""
    from flask_analytics.lifecycle.aggregate import AggregationRefused, aggregate_day

    state = current_state(app)
    monkeypatch.setattr(state, "today", lambda: DAY)
    late, purged, new = (DAY - dt.timedelta(days=back) for back in (3, 2, 1))
    for day in (late, purged, new):
        add_visits(app, day)
    table = app.extensions["analytics_test"].Event.__table__
    with app.app_context():
        aggregate_day(state, late)
        aggregate_day(state, purged)
        add_visits(app, late)  # five late events
        with state.engine().begin() as conn:  # visitor 3's pageview of ``purged`` deleted
            start = dt.datetime.combine(purged, dt.time())
            in_day = sa.and_(
                table.c.created_at >= start, table.c.created_at < start + dt.timedelta(1)
            )
            conn.execute(sa.delete(table).where(in_day, table.c.visitor_id == 3))
        assert [(d.day, d.status) for d in jobs.stale_days(state)] == [
            (late, "stale"),
            (new, "never aggregated"),
        ]
        before = daily_rows(app)
        assert jobs.aggregate_stale_job() == {"days": [late.isoformat(), new.isoformat()]}
        assert summary(app, late) == (3, 3, 8, 2)  # same times: same sessions
        assert summary(app, new) == (3, 3, 4, 1)
        assert summary(app, purged) == (3, 3, 4, 1)  # left alone
        with pytest.raises(AggregationRefused, match="read 5 events but only 4"):
            jobs.aggregate_job(purged.isoformat())
        assert [r for r in daily_rows(app)["DailySummary"] if r[0] == purged] == [
            r for r in before["DailySummary"] if r[0] == purged
        ]
        assert jobs.aggregate_job(purged.isoformat(), True) == {
            "date": purged.isoformat(),
            "events": 4,
        }
        assert summary(app, purged) == (2, 2, 3, 1)


def bare_state(**config: Any) -> Any:
    """The analytics state of a throwaway in-memory app (for code that needs no data)."""
    app = Flask(f"bare-{uuid.uuid4().hex[:6]}")
    app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://", **config)
    db = SQLAlchemy(app)
    Analytics(app, db=db)
    return current_state(app)


def test_unreachable_redis_is_a_clear_error():
    state = bare_state(ANALYTICS_REDIS_URL="redis://:secret@127.0.0.1:1/0")
    with pytest.raises(queueing.JobsUnavailable, match="not reachable") as info:
        enqueue.enqueue_aggregate(state, DAY)
    assert "secret" not in str(info.value)
    assert "--sync" in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("today", DAY),
        ("yesterday", DAY - dt.timedelta(days=1)),
        ("2025-12-31", dt.date(2025, 12, 31)),
        (" Yesterday ", DAY - dt.timedelta(days=1)),
    ],
)
def test_parse_day(text, expected):
    assert jobs.parse_day(text, DAY) == expected


@pytest.mark.parametrize("text", ["2026-13-01", "tomorrow", "", "15/01/2026"])
def test_parse_day_rejects_what_is_not_a_date(text):
    with pytest.raises(ValueError, match="is not a date: use YYYY-MM-DD"):
        jobs.parse_day(text, DAY)


# -- scheduler -----------------------------------------------------------------------------


DOCUMENTED = [
    ("aggregate-today", "flask_analytics.tasks.jobs.aggregate_job", ("today",), "*/15 * * * *"),
    (
        "aggregate-yesterday",
        "flask_analytics.tasks.jobs.aggregate_job",
        ("yesterday",),
        "30 0 * * *",
    ),
    ("aggregate-stale", "flask_analytics.tasks.jobs.aggregate_stale_job", (), "0 2 * * *"),
    ("expire-salts", "flask_analytics.tasks.jobs.expire_salts_job", (), "5 0 * * *"),
    ("archive", "flask_analytics.tasks.jobs.archive_job", (), "0 3 1 * *"),
]


def test_schedule_registers_the_documented_jobs():
    listed = [(s.name, s.func, s.args, s.cron) for s in scheduling.schedule(bare_state())]
    assert listed == DOCUMENTED
    with_purge = scheduling.schedule(bare_state(ANALYTICS_ARCHIVE_RETENTION_DAYS=730))
    assert [(s.name, s.func, s.args, s.cron) for s in with_purge] == [
        *DOCUMENTED,
        ("purge", "flask_analytics.tasks.jobs.purge_job", (), "0 4 1 * *"),
    ]


PARIS = ZoneInfo("Europe/Paris")


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(
    ("cron", "after", "expected"),
    [
        # 00:30 in Paris (UTC+1 in winter) is 23:30 UTC the day before.
        ("30 0 * * *", utc(2026, 1, 15, 0, 0), utc(2026, 1, 15, 23, 30)),
        ("30 0 * * *", utc(2026, 7, 15, 0, 0), utc(2026, 7, 15, 22, 30)),  # summer: UTC+2
        ("*/15 * * * *", utc(2026, 1, 15, 10, 7), utc(2026, 1, 15, 10, 15)),
        # Clocks go back at 03:00 CEST on 2026-10-25: 02:00-03:00 happens twice, and both
        # 02:00 CET (01:00 UTC) and 02:15 CEST (00:15 UTC) are real quarter hours.
        ("*/15 * * * *", utc(2026, 10, 25, 0, 50), utc(2026, 10, 25, 1, 0)),
        ("*/15 * * * *", utc(2026, 10, 25, 0, 10), utc(2026, 10, 25, 0, 15)),
        # Clocks jump from 02:00 to 03:00 on 2026-03-29: a 02:30 job runs at 03:30 CEST.
        ("30 2 * * *", utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 1, 30)),
        # Monthly archive: 03:00 on the 1st, local.
        ("0 3 1 * *", utc(2026, 1, 15), utc(2026, 2, 1, 2, 0)),
    ],
)
def test_next_run_reads_cron_in_the_site_zone(cron, after, expected):
    assert scheduling.next_run(cron, after, PARIS) == expected


@pytest.mark.redis
def test_scheduler_times_follow_the_site_zone(make_app):
    connection = redis_or_skip()
    queue = f"test-{uuid.uuid4().hex[:12]}"
    app = make_app(
        ANALYTICS_REDIS_URL=REDIS_URL, ANALYTICS_QUEUE=queue, ANALYTICS_TIMEZONE="Asia/Kolkata"
    )
    try:
        scheduler = scheduling.build_scheduler(app)
        by_name = {job.name.rsplit("-cron-", 1)[1]: job for job in scheduler.get_jobs()}
        assert {name: job.cron for name, job in by_name.items()} == {
            name: cron for name, _, _, cron in DOCUMENTED
        }
        kolkata = ZoneInfo("Asia/Kolkata")  # UTC+05:30, no DST
        yesterday = by_name["aggregate-yesterday"].next_enqueue_time
        assert yesterday is not None
        assert yesterday.astimezone(kolkata).time() == dt.time(0, 30)
        assert yesterday.astimezone(dt.timezone.utc).time() == dt.time(19, 0)
        quarter = by_name["aggregate-today"].next_enqueue_time
        assert quarter is not None
        assert quarter.astimezone(kolkata).minute % 15 == 0
    finally:
        delete_queue_keys(connection, queue)


class FixedClock(Clock):
    def __init__(self, moment: dt.datetime) -> None:
        self.moment = moment

    def now(self) -> dt.datetime:
        return self.moment


@pytest.mark.redis
def test_scheduler_times_count_from_the_apps_clock(make_app):
    connection = redis_or_skip()
    queue = f"test-{uuid.uuid4().hex[:12]}"
    app = make_app(
        ANALYTICS_REDIS_URL=REDIS_URL, ANALYTICS_QUEUE=queue, ANALYTICS_TIMEZONE="Asia/Kolkata"
    )
    # Noon UTC is 17:30 in Kolkata: the next 00:30 there is 19:00 UTC the same day.
    moment = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
    current_state(app).clock = FixedClock(moment)
    try:
        scheduler = scheduling.build_scheduler(app)
        by_name = {job.name.rsplit("-cron-", 1)[1]: job for job in scheduler.get_jobs()}
        yesterday = by_name["aggregate-yesterday"].next_enqueue_time
        assert yesterday == dt.datetime(2030, 6, 1, 19, 0, tzinfo=dt.timezone.utc)
    finally:
        delete_queue_keys(connection, queue)


@pytest.mark.redis
def test_scheduled_jobs_enqueue_with_deterministic_ids_and_run(redis_app, monkeypatch):
    state = current_state(redis_app)
    monkeypatch.setattr(state, "today", lambda: DAY)  # inherited by the forked work horses
    add_visits(redis_app, DAY - dt.timedelta(days=1))
    add_visits(redis_app, DAY - dt.timedelta(days=5))  # never aggregated: the stale sweep's
    scheduler = scheduling.build_scheduler(redis_app)

    def all_due() -> None:
        past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
        for job in scheduler.get_jobs():
            job.next_enqueue_time = past
        assert len(scheduler.enqueue_jobs()) == len(DOCUMENTED)

    all_due()
    all_due()  # a second tick while the first jobs wait adds nothing

    prefix = enqueue.job_id(state)
    assert sorted(queue_of(redis_app).job_ids) == sorted(
        f"{prefix}-{key}"
        for key in (
            "aggregate-2026-01-15",
            "aggregate-2026-01-14",
            "aggregate-stale",
            "expire-salts",
            "archive",
        )
    )
    assert burst(redis_app)
    assert summary(redis_app, DAY - dt.timedelta(days=1)) == (3, 3, 4, 1)
    # The stale sweep queued the never-aggregated day, and the worker ran it too.
    assert summary(redis_app, DAY - dt.timedelta(days=5)) == (3, 3, 4, 1)
    for key in ("aggregate-2026-01-14", "aggregate-stale", "expire-salts", "archive"):
        assert fetch(redis_app, f"{prefix}-{key}").get_status() == JobStatus.FINISHED
    assert fetch(redis_app, f"{prefix}-aggregate-stale").return_value() == {"days": ["2026-01-10"]}
