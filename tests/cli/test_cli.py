"""``flask analytics ...``: inline without Redis, queued with it, clear errors."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_analytics.core.clock import day_bounds
from flask_analytics.state import current_state
from flask_analytics.tasks.scheduler import SiteCronScheduler

from ..conftest import REDIS_URL, all_rows, redis_or_skip
from ..support.events import (
    DAY,
    add_events,
    add_visits,
    daily_rows,
    mark_aggregated,
    pin_today,
    summary,
)
from ..support.redis_keys import delete_queue_keys, queue_of


def invoke(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["analytics", *args])


def runs(app: Flask) -> list[tuple[dt.date, int]]:
    analytics = app.extensions["analytics_test"]
    table = analytics.AggregationRun.__table__
    with app.app_context(), analytics.db.engine.connect() as conn:
        return [
            tuple(r)  # type: ignore[misc]
            for r in conn.execute(
                sa.select(table.c.date, table.c.source_events).order_by(table.c.date)
            )
        ]


# -- inline (no ANALYTICS_REDIS_URL) ----------------------------------------------------------


def test_aggregate_runs_inline_without_redis(app):
    add_visits(app)
    result = invoke(app, "aggregate", "2026-01-15")
    assert result.exit_code == 0, result.output
    assert "Aggregated 2026-01-15: 5 events." in result.output
    assert summary(app) == (3, 3, 4, 1)
    assert runs(app) == [(DAY, 5)]


def test_aggregate_defaults_to_yesterday_in_the_site_zone(app, monkeypatch):
    pin_today(monkeypatch, app)
    add_visits(app, DAY - dt.timedelta(days=1))
    assert invoke(app, "aggregate").exit_code == 0
    assert invoke(app, "aggregate", "today").exit_code == 0
    assert runs(app) == [(DAY - dt.timedelta(days=1), 5), (DAY, 0)]
    assert summary(app, DAY - dt.timedelta(days=1)) == (3, 3, 4, 1)


def test_backfill_aggregates_each_day_inline(app, monkeypatch):
    pin_today(monkeypatch, app)
    for back in (1, 2, 4):
        add_visits(app, DAY - dt.timedelta(days=back))
    result = invoke(app, "backfill", "--from", "2026-01-11", "--to", "2026-01-14")
    assert result.exit_code == 0, result.output
    assert "Aggregated 4 days: 2026-01-11 to 2026-01-14." in result.output
    assert runs(app) == [
        (dt.date(2026, 1, 11), 5),
        (dt.date(2026, 1, 12), 0),
        (dt.date(2026, 1, 13), 5),
        (dt.date(2026, 1, 14), 5),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["aggregate", "2026-13-01"], "'2026-13-01' is not a date: use YYYY-MM-DD"),
        (["aggregate", "2999-01-01"], "DATE 2999-01-01 is in the future"),
        (
            ["backfill", "--from", "2026-01-10", "--to", "2026-01-01"],
            "--to 2026-01-01 is before --from 2026-01-10.",
        ),
        (["backfill", "--from", "yesterdy"], "'yesterdy' is not a date"),
        (["archive", "--batch-size", "0"], "Invalid value for '--batch-size'"),
        (["archive", "--retention-days", "-1"], "Invalid value for '--retention-days'"),
        (["purge"], "ANALYTICS_ARCHIVE_RETENTION_DAYS is None"),
        (["worker", "--burst"], "ANALYTICS_REDIS_URL is not set"),
        (["scheduler"], "ANALYTICS_REDIS_URL is not set"),
    ],
)
def test_bad_arguments_fail_clearly_and_change_nothing(app, monkeypatch, args, message):
    pin_today(monkeypatch, app)
    add_visits(app)
    before = all_rows(app)
    result = invoke(app, *args)
    assert result.exit_code != 0
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert all_rows(app) == before


def test_unreachable_redis_fails_unless_sync(make_app):
    app = make_app(ANALYTICS_REDIS_URL="redis://127.0.0.1:1/0")
    add_visits(app)
    result = invoke(app, "aggregate", "2026-01-15")
    assert result.exit_code == 1
    assert "Redis is not reachable at redis://127.0.0.1:1/0" in result.output
    assert summary(app) is None
    result = invoke(app, "aggregate", "2026-01-15", "--sync")
    assert result.exit_code == 0, result.output
    assert summary(app) == (3, 3, 4, 1)


def test_archive_dry_run_then_archive(make_app, monkeypatch):
    app = make_app(ANALYTICS_TIMEZONE="Pacific/Auckland", ANALYTICS_RETENTION_DAYS=10)
    pin_today(monkeypatch, app)  # cutoff: 2026-01-05 in Auckland (UTC+13 in January)
    # 2026-01-04 11:30 UTC is 2026-01-05 00:30 in Auckland: on the cutoff day, kept.
    kept = add_events(app, [dt.datetime(2026, 1, 4, 11, 30)])
    # 2026-01-04 10:30 UTC is 23:30 on 2026-01-04 there: archived.
    moved = add_events(app, [dt.datetime(2026, 1, 4, 10, 30)] * 3)
    mark_aggregated(app, dt.date(2026, 1, 4), 3)
    mark_aggregated(app, dt.date(2026, 1, 5), 1)
    add_events(app, [dt.datetime(2026, 1, 1, 12)])  # 2026-01-02 there: never aggregated
    before = all_rows(app)

    dry = invoke(app, "archive", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert all_rows(app) == before
    assert "Dry run: would archive 3 events of 1 day before 2026-01-05 (Pacific/Auckland)." in (
        dry.output
    )
    assert "2026-01-02  never aggregated  1 raw event" in dry.output

    done = invoke(app, "archive", "--batch-size", "2")
    assert done.exit_code == 0, done.output
    assert "Archived 3 events of 1 day before 2026-01-05 (Pacific/Auckland) in 2 batches." in (
        done.output
    )
    analytics = app.extensions["analytics_test"]
    with app.app_context(), analytics.db.engine.connect() as conn:
        archived = conn.scalars(sa.select(analytics.EventArchive.__table__.c.id)).all()
        raw = conn.scalars(sa.select(analytics.Event.__table__.c.id)).all()
    assert sorted(archived) == moved
    assert kept[0] in raw
    assert len(raw) == 2


def test_purge_dry_run_then_purge(make_app, monkeypatch):
    app = make_app(ANALYTICS_ARCHIVE_RETENTION_DAYS=30)
    pin_today(monkeypatch, app)
    analytics = app.extensions["analytics_test"]
    rows = [
        {
            "id": i + 1,
            "event_id": str(uuid.uuid4()),
            "created_at": when,
            "name": "pageview",
            "hostname": "example.com",
            "path": "/",
            "visitor_id": 1,
        }
        for i, when in enumerate([dt.datetime(2025, 12, 1), dt.datetime(2025, 12, 16)])
    ]
    with app.app_context(), analytics.db.engine.begin() as conn:
        conn.execute(sa.insert(analytics.EventArchive.__table__), rows)
    before = all_rows(app)
    dry = invoke(app, "purge", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert all_rows(app) == before
    assert "would purge 1 archived event of 1 day before 2025-12-16 (UTC)" in dry.output
    done = invoke(app, "purge")
    assert done.exit_code == 0, done.output
    assert "Purged 1 archived event of 1 day before 2025-12-16 (UTC)." in done.output
    with app.app_context(), analytics.db.engine.connect() as conn:
        left = conn.scalars(sa.select(analytics.EventArchive.__table__.c.id)).all()
    assert left == [2]


def test_status_shows_counts_runs_and_days_to_aggregate(app, monkeypatch):
    pin_today(monkeypatch, app)
    add_visits(app, dt.date(2026, 1, 10))
    add_visits(app, dt.date(2026, 1, 11))
    assert invoke(app, "aggregate", "2026-01-11").exit_code == 0
    add_events(app, [dt.datetime(2026, 1, 11, 20)])  # a late event: 01-11 is stale now

    result = invoke(app, "status")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "Events: 11 raw, 0 archived (time zone UTC)." in lines
    assert "Jobs: inline (ANALYTICS_REDIS_URL is not set)." in lines
    assert any(line.startswith("  2026-01-11  ") and line.endswith("5 events") for line in lines)
    assert "  2026-01-10  never aggregated: 5 events" in lines
    assert "  2026-01-11  stale: 6 events now, 5 when aggregated" in lines


# -- queued (real Redis, real worker) ----------------------------------------------------------


@pytest.mark.redis
def test_aggregate_enqueues_once_and_the_worker_command_runs_it(redis_app):
    add_visits(redis_app)
    first = invoke(redis_app, "aggregate", "2026-01-15")
    second = invoke(redis_app, "aggregate", "2026-01-15")
    assert first.exit_code == 0, first.output
    assert "Queued aggregate 2026-01-15 on queue" in first.output
    assert "Already queued: aggregate 2026-01-15" in second.output
    assert queue_of(redis_app).count == 1
    assert summary(redis_app) is None

    status = invoke(redis_app, "status")
    queue = redis_app.config["ANALYTICS_QUEUE"]
    assert f"Queue '{queue}': 1 queued, 0 running, 0 failed." in status.output

    worker = invoke(redis_app, "worker", "--burst", "--name", f"{queue}-cli")
    assert worker.exit_code == 0, worker.output
    assert "Queue empty: ran jobs." in worker.output
    assert summary(redis_app) == (3, 3, 4, 1)
    assert queue_of(redis_app).count == 0


@pytest.mark.redis
def test_queued_and_inline_commands_give_the_same_rows(make_app, monkeypatch):
    connection = redis_or_skip()
    queue = f"test-{uuid.uuid4().hex[:12]}"
    days = [DAY - dt.timedelta(days=back) for back in (1, 2, 3)]
    try:
        queued = make_app(ANALYTICS_REDIS_URL=REDIS_URL, ANALYTICS_QUEUE=queue)
        pin_today(monkeypatch, queued)
        for day in days:
            add_visits(queued, day)
        result = invoke(queued, "backfill", "--from", "2026-01-12", "--to", "2026-01-14")
        assert "Queued 3 aggregation jobs on queue" in result.output
        again = invoke(queued, "backfill", "--from", "2026-01-13", "--to", "2026-01-14")
        assert "Queued 0 aggregation jobs" in again.output
        assert "(2 already queued or running)" in again.output
        worker = invoke(queued, "worker", "--burst", "--name", f"{queue}-cli")
        assert worker.exit_code == 0, worker.output
        via_worker = daily_rows(queued)
    finally:
        delete_queue_keys(connection, queue)
        connection.close()

    inline = make_app()  # same database, fresh tables, no Redis
    pin_today(monkeypatch, inline)
    for day in days:
        add_visits(inline, day)
    assert invoke(inline, "backfill", "--from", "2026-01-12", "--to", "2026-01-14").exit_code == 0
    assert daily_rows(inline) == via_worker
    assert [summary(inline, day) for day in days] == [(3, 3, 4, 1)] * 3


@pytest.mark.redis
def test_archive_and_purge_enqueue_with_redis(make_app):
    connection = redis_or_skip()
    queue = f"test-{uuid.uuid4().hex[:12]}"
    try:
        app = make_app(ANALYTICS_REDIS_URL=REDIS_URL, ANALYTICS_QUEUE=queue)
        assert "Queued archive raw events" in invoke(app, "archive").output
        assert "Already queued: archive raw events" in invoke(app, "archive").output
        # Purge without a retention is refused here and now, not in a failed job.
        refused = invoke(app, "purge")
        assert refused.exit_code == 1
        assert "ANALYTICS_ARCHIVE_RETENTION_DAYS is None" in refused.output
        assert (
            "Queued purge archived events" in invoke(app, "purge", "--retention-days", "400").output
        )
        assert queue_of(app).count == 2
    finally:
        delete_queue_keys(connection, queue)
        connection.close()


@pytest.mark.usefixtures("frozen_clock")  # midnight cannot pass before "today" is read
def test_demo_data_records_and_aggregates_the_days(app):
    result = invoke(app, "demo-data", "--days", "2", "--seed", "7", "--sync")
    assert result.exit_code == 0, result.output
    assert "Aggregated 2 days" in result.output
    state = current_state(app)
    analytics = app.extensions["analytics_test"]
    event = analytics.Event.__table__
    yesterday = state.today() - dt.timedelta(days=1)
    start, end = day_bounds(state.settings.timezone, yesterday)
    with app.app_context(), analytics.db.engine.connect() as conn:
        pageviews = conn.scalar(
            sa.select(sa.func.count()).where(
                event.c.name == "pageview", event.c.created_at >= start, event.c.created_at < end
            )
        )
    assert pageviews > 0
    assert summary(app, yesterday)[2] == pageviews  # type: ignore[index]
    assert {day for day, _ in runs(app)} == {yesterday, state.today()}


def test_demo_data_aggregates_every_recorded_day_when_midnight_passes_meanwhile(app, monkeypatch):
    """A long recording can end on the next local day: the oldest day recorded is
    aggregated all the same (the days come from what was recorded, not from "today")."""
    from flask_analytics.ingest import demo

    recorded: list[demo.DemoResult] = []
    real_generate = demo.generate

    def generate_until_midnight(*args: Any, **kwargs: Any) -> demo.DemoResult:
        result = real_generate(*args, **kwargs)
        recorded.append(result)
        pin_today(monkeypatch, app, result.last_day + dt.timedelta(days=1))
        return result

    monkeypatch.setattr(demo, "generate", generate_until_midnight)
    result = invoke(app, "demo-data", "--days", "2", "--seed", "7", "--sync")
    assert result.exit_code == 0, result.output
    (done,) = recorded
    assert done.last_day - done.first_day == dt.timedelta(days=1)
    aggregated = {day for day, _ in runs(app)}
    assert {done.first_day, done.last_day} <= aggregated
    assert summary(app, done.first_day)[2] > 0  # type: ignore[index]


@pytest.mark.redis
def test_scheduler_command_lists_the_jobs_and_starts_rq_cron(redis_app, monkeypatch):
    started: list[Any] = []
    monkeypatch.setattr(SiteCronScheduler, "start", lambda self: started.append(self))
    result = invoke(redis_app, "scheduler")
    assert result.exit_code == 0, result.output
    assert "*/15 * * * *   aggregate-today" in result.output
    assert "30 0 * * *     aggregate-yesterday" in result.output
    (scheduler,) = started
    assert len(scheduler.get_jobs()) == 5


def test_status_reports_the_database_then_fails_when_redis_is_unreachable(make_app):
    app = make_app(ANALYTICS_REDIS_URL="redis://127.0.0.1:1/0")
    add_visits(app)
    result = invoke(app, "status")
    assert result.exit_code == 1
    assert "Events: 5 raw, 0 archived" in result.output
    assert "2026-01-15  never aggregated: 5 events" in result.output
    assert "Redis is not reachable at redis://127.0.0.1:1/0" in result.output


def test_refused_purged_day_names_the_force_flag(app, analytics, make_event):
    """A day with daily rows but no events left is refused; --force wipes it."""
    import datetime as dt

    make_event(created_at=dt.datetime(2026, 1, 15, 12))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["analytics", "aggregate", "2026-01-15"]).exit_code == 0
    with app.app_context():
        analytics.db.session.query(analytics.Event).delete()
        analytics.db.session.commit()
    refused = runner.invoke(args=["analytics", "aggregate", "2026-01-15"])
    assert refused.exit_code != 0
    assert "--force" in refused.output
    assert "force=True" not in refused.output
    forced = runner.invoke(args=["analytics", "aggregate", "2026-01-15", "--force"])
    assert forced.exit_code == 0, forced.output
    with app.app_context():
        assert analytics.db.session.query(analytics.DailySummary).count() == 0


def delete_visitor(app: Flask, day: dt.date, visitor_id: int) -> None:
    """Delete one visitor's raw events of ``day`` (UTC) directly, as a partial purge."""
    analytics = app.extensions["analytics_test"]
    table = analytics.Event.__table__
    start = dt.datetime.combine(day, dt.time())
    with app.app_context(), analytics.db.engine.begin() as conn:
        conn.execute(
            sa.delete(table).where(
                table.c.visitor_id == visitor_id,
                table.c.created_at >= start,
                table.c.created_at < start + dt.timedelta(days=1),
            )
        )


def refusal(result: Any) -> str:
    """The output of a refused command, white space folded, after checking that it is a
    clean error naming --force (no traceback, no Python spelling)."""
    output = " ".join(result.output.split())
    assert result.exit_code == 1
    assert "Pass --force" in output
    assert "force=True" not in output
    assert "Traceback" not in output
    return output


def test_refused_partly_purged_day_names_the_force_flag(app):
    """Fewer events left than the last run read: refused, rows kept; --force recomputes."""
    add_visits(app)
    assert invoke(app, "aggregate", "2026-01-15").exit_code == 0
    before = daily_rows(app)
    delete_visitor(app, DAY, 3)  # one pageview of five events
    output = refusal(invoke(app, "aggregate", "2026-01-15"))
    assert "Refusing to re-aggregate 2026-01-15" in output
    assert "read 5 events but only 4 raw or archived events are left" in output
    assert daily_rows(app) == before
    assert runs(app) == [(DAY, 5)]
    forced = invoke(app, "aggregate", "2026-01-15", "--force")
    assert forced.exit_code == 0, forced.output
    assert "Aggregated 2026-01-15: 4 events." in forced.output
    assert summary(app) == (2, 2, 3, 1)
    assert runs(app) == [(DAY, 5), (DAY, 4)]


def test_backfill_stops_clearly_at_a_partly_purged_day(app, monkeypatch):
    """backfill aggregates up to the refused day, then fails with a message, no traceback."""
    pin_today(monkeypatch, app)
    days = [DAY - dt.timedelta(days=back) for back in (3, 2, 1)]
    for day in days:
        add_visits(app, day)
    assert invoke(app, "backfill", "--from", "2026-01-12", "--to", "2026-01-14").exit_code == 0
    delete_visitor(app, days[1], 3)
    add_visits(app, DAY - dt.timedelta(days=4))  # a day before it, never aggregated
    output = refusal(invoke(app, "backfill", "--from", "2026-01-11", "--to", "2026-01-14"))
    assert "Refusing to re-aggregate 2026-01-13" in output
    assert "Stopped at 2026-01-13: 2 days before it aggregated, 1 day after it not." in output
    assert summary(app, days[1]) == (3, 3, 4, 1)  # kept
    forced = invoke(app, "backfill", "--from", "2026-01-11", "--to", "2026-01-14", "--force")
    assert forced.exit_code == 0, forced.output
    assert summary(app, days[1]) == (2, 2, 3, 1)
    assert [n for day, n in runs(app) if day == days[1]] == [5, 4]
