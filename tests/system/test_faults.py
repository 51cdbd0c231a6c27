"""Faults: PostgreSQL stopped and restarted under load, Redis down for jobs and collect.

PostgreSQL and Redis here are private servers (tests/support/servers.py, on unix
sockets) that the tests stop and start; the shared servers are never touched. The load is a real
gunicorn server (tests/scripts/load_app.py) and tracker-like clients
(tests/scripts/load_client.py): a 503 or a broken connection is retried with the same
event ids, as the tracker does.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_analytics.core.clock import utcnow
from flask_analytics.state import current_state

from ..conftest import DESKTOP_UA, collect_payload
from ..scripts import load_app
from ..scripts.load_client import Tally, batches, make_events, run_load, served
from ..support.collect import answer
from ..support.processes import wait_for
from ..support.servers import PrivatePostgres, PrivateRedis

FAULT_EVENTS = 6000
THREADS = 6
SEED = 11


def create_tables(url: str, monkeypatch: pytest.MonkeyPatch, **env: str) -> Flask:
    """The load app on ``url`` (as gunicorn will build it), with its tables created."""
    monkeypatch.setenv("LOAD_DATABASE_URL", url)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    app = load_app.create_app()
    with app.app_context():
        db = app.extensions["sqlalchemy"]
        db.create_all()
        db.engine.dispose()  # no connection of ours outlives the server's restarts
    return app


def fetch_all(url: str, sql: str) -> list[Any]:
    """Rows of ``sql`` on a connection of its own (none outlives a server restart)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql)).all())
    finally:
        engine.dispose()


def stored_ids(url: str) -> Counter[str]:
    return Counter(
        event_id for (event_id,) in fetch_all(url, "SELECT event_id FROM analytics_event")
    )


class Load:
    """``run_load`` in a background thread, watchable while it runs."""

    def __init__(self, port: int, work: list[Any]) -> None:
        self.tally = Tally()
        self.progress = [0]
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(port, work), daemon=True)
        self.thread.start()

    def _run(self, port: int, work: list[Any]) -> None:
        try:
            run_load(
                port,
                work,
                threads=THREADS,
                seed=SEED,
                deadline=time.monotonic() + 240,
                resend_rate=0.1,
                progress=self.progress,
                tally=self.tally,
            )
        except BaseException as exc:
            self.error = exc

    def delivered_at_least(self, batches: int) -> Callable[[], bool]:
        def check() -> bool:
            if not self.thread.is_alive():
                pytest.fail(f"the load ended before {batches} batches: {self.error!r}")
            return self.progress[0] >= batches

        return check

    def finish(self) -> Tally:
        self.thread.join(timeout=300)
        assert not self.thread.is_alive(), "the load did not finish"
        if self.error is not None:
            raise self.error
        return self.tally


# -- PostgreSQL stopped and restarted under load ----------------------------------------------


@pytest.mark.slow
@pytest.mark.real_clock("the app is served by gunicorn in other processes, on the real clock")
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgres_down_during_load_answers_503_then_loses_and_duplicates_nothing(
    private_postgres: PrivatePostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """``fast`` is a clean stop; ``immediate`` is a crash (acknowledged events must survive)."""
    pytest.importorskip("gunicorn", reason="gunicorn is not installed (dev extra)")
    url = private_postgres.url
    create_tables(url, monkeypatch)
    rng = random.Random(SEED)
    events = make_events(FAULT_EVENTS, rng)
    work = batches(events, rng, 1, 20)
    with served(url, tmp_path / "gunicorn.log") as server:
        load = Load(server.port, work)
        wait_for(load.delivered_at_least(len(work) // 10), "a tenth of the load", timeout=120)
        private_postgres.stop(mode)
        ok_before_stop = load.tally.statuses[202]
        wait_for(
            lambda: load.tally.statuses[503] >= 30,
            "503 answers while PostgreSQL is down",
            timeout=120,
        )
        ok_while_down = load.tally.statuses[202] - ok_before_stop
        private_postgres.start()
        tally = load.finish()
    print(
        f"PostgreSQL stopped ({mode}) after {ok_before_stop} answers: "
        f"{tally.statuses[503]} answers 503, then {dict(tally.statuses)} in all, "
        f"{tally.connection_errors} broken connections"
    )

    # While it was down clients were told to retry (503 + Retry-After), never a 500.
    assert set(tally.statuses) <= {202, 503}, (tally.statuses, tally.unexpected)
    assert tally.unexpected == []
    assert tally.missing_retry_after == 0
    # Answers in flight when the server went away aside, nothing was accepted meanwhile.
    assert ok_while_down <= THREADS
    assert tally.gave_up == 0
    # After the retries: every event exactly once, acknowledged ones included.
    stored = stored_ids(url)
    assert sorted(stored.values()) == [1] * FAULT_EVENTS
    assert set(stored) == {e["event_id"] for e in events}
    log = (tmp_path / "gunicorn.log").read_text()
    assert "Exception on /_analytics/collect" not in log  # Flask's log line of a 500
    assert "[ERROR]" not in log


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.real_clock("the app is served by gunicorn in other processes, on the real clock")
def test_postgres_down_with_the_redis_buffer_answers_202_and_flushes_everything_later(
    private_postgres: PrivatePostgres,
    private_redis: PrivateRedis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Buffered mode: the database is not on the collect path, so nothing waits for it."""
    pytest.importorskip("gunicorn", reason="gunicorn is not installed (dev extra)")
    from flask_analytics import buffer

    url = private_postgres.url
    app = create_tables(url, monkeypatch, LOAD_BUFFER_REDIS_URL=private_redis.url)
    state = current_state(app)
    rng = random.Random(SEED)
    events = make_events(FAULT_EVENTS, rng)
    work = batches(events, rng, 1, 20)
    consumer = f"faults-{uuid.uuid4().hex[:8]}"
    with served(url, tmp_path / "gunicorn.log", LOAD_BUFFER_REDIS_URL=private_redis.url) as server:
        load = Load(server.port, work)
        wait_for(load.delivered_at_least(len(work) // 10), "a tenth of the load", timeout=120)
        private_postgres.stop("immediate")
        # Collection goes on while the database is down...
        wait_for(
            load.delivered_at_least(len(work) // 2),
            "half of the load while it is down",
            timeout=120,
        )
        # ...and a flush meanwhile fails, leaving what it read pending for the next one.
        with app.app_context(), pytest.raises(sa.exc.OperationalError):
            buffer.flush(state, consumer=consumer)
        private_postgres.start()
        tally = load.finish()
    assert set(tally.statuses) == {202}, (tally.statuses, tally.unexpected)
    assert tally.unexpected == []
    with app.app_context():
        flushed = buffer.flush(state, consumer=consumer)
        assert buffer.get_buffer(state).info().length == 0
        state.db.engine.dispose()
    stored = stored_ids(url)
    assert sorted(stored.values()) == [1] * FAULT_EVENTS
    assert set(stored) == {e["event_id"] for e in events}
    assert flushed.inserted == FAULT_EVENTS


@pytest.mark.redis
def test_buffered_collect_needs_no_database_even_for_the_first_salt_of_a_process(
    private_postgres: PrivatePostgres, private_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_tables(private_postgres.url, monkeypatch, LOAD_BUFFER_REDIS_URL=private_redis.url)
    private_postgres.stop("fast")
    try:
        response = app.test_client().post(
            "/_analytics/collect",
            json={"url": f"https://{load_app.PAGE_HOST}/", "event_id": str(uuid.uuid4())},
            headers={"User-Agent": DESKTOP_UA},
        )
    finally:
        with app.app_context():
            app.extensions["sqlalchemy"].engine.dispose()
    assert response.status_code == 202, response.get_json()


@pytest.mark.redis
def test_salt_made_in_redis_while_the_database_is_down_is_shared_and_copied_to_it(
    private_postgres: PrivatePostgres, private_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    import redis

    from flask_analytics import buffer
    from flask_analytics.ingest import privacy

    monkeypatch.setattr(privacy, "SALT_SYNC_INTERVAL", 0.0)
    env = {"LOAD_BUFFER_REDIS_URL": private_redis.url}
    first = create_tables(private_postgres.url, monkeypatch, **env)  # two "processes"
    second = create_tables(private_postgres.url, monkeypatch, **env)
    states = [current_state(app) for app in (first, second)]
    assert states[0].salts is not states[1].salts

    def post(app: Flask) -> int:
        response = app.test_client().post(
            "/_analytics/collect",
            json={"url": f"https://{load_app.PAGE_HOST}/", "event_id": str(uuid.uuid4())},
            headers={"User-Agent": DESKTOP_UA},
            environ_base={"REMOTE_ADDR": "198.51.100.20"},
        )
        return response.status_code

    def salt_rows() -> list[tuple[dt.date, bytes]]:
        rows = fetch_all(private_postgres.url, "SELECT date, salt FROM analytics_salt")
        return [(day, bytes(salt)) for day, salt in rows]

    private_postgres.stop("fast")
    try:
        assert post(first) == 202  # the salt is made in Redis alone
    finally:
        with first.app_context():
            first.extensions["sqlalchemy"].engine.dispose()
    private_postgres.start()
    today = states[0].today()
    key = f"{states[0].settings.buffer_stream}:salt:{today.isoformat()}"
    client = redis.Redis.from_url(private_redis.url)
    in_redis = client.get(key)
    assert in_redis is not None
    assert len(in_redis) == 32
    # It expires when the database row is deleted: at the end of the next local day.
    end_of_tomorrow = dt.datetime.combine(
        today + dt.timedelta(days=2), dt.time(0), tzinfo=states[0].settings.timezone
    )
    assert client.expiretime(key) == int(end_of_tomorrow.timestamp())
    assert salt_rows() == []

    # Another process, with the database back, takes Redis's salt, not a new one.
    assert post(second) == 202
    assert states[1].salts.salt_for(today) == in_redis
    # The first process copies its salt to the database at its next request.
    before = {t.ident for t in threading.enumerate()}
    assert post(first) == 202
    for thread in threading.enumerate():
        if thread.name == "analytics-salt-sync" and thread.ident not in before:
            thread.join(timeout=60)
    assert salt_rows() == [(today, in_redis)]
    for app in (first, second):
        with app.app_context():
            buffer.flush(current_state(app), consumer=f"c-{app.name}-{id(app)}")
            app.extensions["sqlalchemy"].engine.dispose()
    visitors = [
        v for (v,) in fetch_all(private_postgres.url, "SELECT visitor_id FROM analytics_event")
    ]
    assert len(visitors) == 3
    assert len(set(visitors)) == 1  # same IP /24 + UA on one day: one visitor everywhere
    client.close()


# -- Redis down -------------------------------------------------------------------------------


def yesterday() -> dt.date:
    return utcnow().date() - dt.timedelta(days=1)


@pytest.mark.redis
@pytest.mark.parametrize(
    ("command", "done"),
    [
        (["aggregate", "{day}"], "Aggregated {day}: 4 events."),
        (["backfill", "--from", "{day}", "--to", "{day}"], "Aggregated 1 day: {day} to {day}."),
        (["archive", "--retention-days", "0"], "Archived 4 events of 1 day"),
    ],
)
def test_jobs_fail_clearly_without_redis_and_run_inline_with_sync(
    make_app: Callable[..., Flask], private_redis: PrivateRedis, command: list[str], done: str
) -> None:
    app = make_app(ANALYTICS_REDIS_URL=private_redis.url, ANALYTICS_QUEUE=f"f{uuid.uuid4().hex}")
    analytics = app.extensions["analytics_test"]
    day = yesterday()
    noon = dt.datetime.combine(day, dt.time(12))
    with app.app_context():
        # Three visitors (three /24 networks) and a server-side event of a fourth.
        for i, ip in enumerate(["192.0.2.10", "198.51.100.10", "203.0.113.10"]):
            analytics.track("pageview", url=f"https://example.com/{i}", ip=ip,
                            user_agent=DESKTOP_UA, timestamp=noon)  # fmt: skip
        analytics.track("signup", url="https://example.com/", timestamp=noon)
        if command[0] == "archive":
            analytics.aggregate(day)
    args = ["analytics", *(part.format(day=day) for part in command)]
    runner = app.test_cli_runner()

    # With Redis up, the command queues a job (so Redis is what it depends on).
    queued = runner.invoke(args=args)
    assert queued.exit_code == 0, queued.output
    assert "Queued" in queued.output

    private_redis.stop()
    down = runner.invoke(args=args)
    assert down.exit_code == 1
    assert f"Redis is not reachable at {private_redis.url}" in down.output
    assert "--sync" in down.output
    assert "Traceback" not in down.output

    inline = runner.invoke(args=[*args, "--sync"])
    assert inline.exit_code == 0, inline.output
    assert done.format(day=day) in inline.output
    with app.app_context(), analytics.db.engine.connect() as conn:
        summary = conn.execute(
            sa.select(analytics.DailySummary.__table__).where(
                analytics.DailySummary.__table__.c.date == day
            )
        ).one()
    assert (summary.pageviews, summary.visitors, summary.events) == (3, 4, 1)


@pytest.mark.redis
@pytest.mark.parametrize("command", [["worker", "--burst"], ["scheduler"]])
def test_worker_and_scheduler_stop_with_a_clear_error_without_redis(
    make_app: Callable[..., Flask], private_redis: PrivateRedis, command: list[str]
) -> None:
    app = make_app(ANALYTICS_REDIS_URL=private_redis.url, ANALYTICS_QUEUE=f"f{uuid.uuid4().hex}")
    private_redis.stop()
    result = app.test_cli_runner().invoke(args=["analytics", *command])
    assert result.exit_code == 1
    assert f"Redis is not reachable at {private_redis.url}" in result.output
    assert "unset ANALYTICS_REDIS_URL" in result.output
    assert "--sync" not in result.output  # neither command has that flag
    assert "Traceback" not in result.output


@pytest.mark.redis
def test_status_reports_the_counts_and_then_the_redis_error(
    make_app: Callable[..., Flask], private_redis: PrivateRedis
) -> None:
    app = make_app(ANALYTICS_REDIS_URL=private_redis.url)
    with app.app_context():
        app.extensions["analytics_test"].track("pageview", url="https://example.com/")
    private_redis.stop()
    result = app.test_cli_runner().invoke(args=["analytics", "status"])
    assert result.exit_code == 1
    assert "Events: 1 raw, 0 archived" in result.output
    assert f"Redis is not reachable at {private_redis.url}" in result.output


def post(app: Flask, ua: str) -> Any:
    return app.test_client().post(
        "/_analytics/collect",
        json=collect_payload(),
        headers={"User-Agent": ua},
        environ_base={"REMOTE_ADDR": "198.51.100.20"},
    )


@pytest.mark.redis
def test_collect_goes_on_when_the_rate_limit_redis_goes_down_and_limits_again_after(
    make_app: Callable[..., Flask], private_redis: PrivateRedis
) -> None:
    redis = pytest.importorskip("redis")
    app = make_app(
        ANALYTICS_RATE_LIMIT="5/minute",
        ANALYTICS_RATE_LIMIT_BURST=None,
        ANALYTICS_RATE_LIMIT_STORAGE=private_redis.limits_url,
    )
    first, second = f"{DESKTOP_UA} a/{uuid.uuid4()}", f"{DESKTOP_UA} b/{uuid.uuid4()}"
    for _ in range(3):
        assert post(app, first).get_json() == answer(1)
    counters = redis.Redis.from_url(private_redis.url)
    assert counters.dbsize() >= 1  # the counters do live in that Redis
    counters.close()

    private_redis.stop()
    # Over the limit of 5, but the counter store is down: collection fails open.
    for _ in range(8):
        assert post(app, first).get_json() == answer(1)

    private_redis.start()  # empty: no persistence
    answers = [post(app, second).status_code for _ in range(8)]
    # Counting resumes; at most the first request after the restart may go uncounted
    # (its pooled connection was the dead one), so the 6th or 7th request is refused.
    assert answers[:5] == [202] * 5
    assert 429 in answers[5:7], answers
    with app.app_context(), app.extensions["analytics_test"].db.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT COUNT(*) FROM analytics_event")).scalar_one()
    assert rows == 3 + 8 + answers.count(202)
