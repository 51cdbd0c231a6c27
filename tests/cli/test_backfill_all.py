"""``flask analytics backfill`` without ``--from``: from the oldest raw or archived event's
local day, with a progress bar, a clean stop on Ctrl-C and a resume command (both
databases; queued on Redis too)."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import signal
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_analytics import Analytics
from flask_analytics.tasks import enqueue

from ..conftest import REDIS_URL, redis_or_skip
from ..support.events import DAY, add_visits, pin_today, summary
from ..support.redis_keys import delete_queue_keys, queue_of

#: What add_visits() makes of one day: (visitors, sessions, pageviews, events).
VISITS = (3, 3, 4, 1)


def invoke(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["analytics", *args])


def run_days(app: Flask) -> list[dt.date]:
    """Days with a finished aggregation run, in order."""
    analytics: Analytics = app.extensions["analytics_test"]
    table = analytics.AggregationRun.__table__
    with app.app_context(), analytics.db.engine.connect() as conn:
        return list(
            conn.scalars(
                sa.select(table.c.date).where(table.c.finished_at.is_not(None)).order_by("date")
            )
        )


def archive_event(app: Flask, created_at: dt.datetime, visitor_id: int = 77) -> None:
    """One pageview straight into ``analytics_event_archive``."""
    analytics: Analytics = app.extensions["analytics_test"]
    with app.app_context(), analytics.db.engine.begin() as conn:
        conn.execute(
            sa.insert(analytics.EventArchive.__table__).values(
                id=10_000_000 + visitor_id,
                event_id=str(uuid.uuid4()),
                created_at=created_at,
                name="pageview",
                hostname="example.com",
                path="/archived",
                visitor_id=visitor_id,
            )
        )


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def test_starts_at_the_oldest_raw_event_day(app, monkeypatch):
    pin_today(monkeypatch, app)
    for back in (5, 2):
        add_visits(app, DAY - dt.timedelta(days=back))
    result = invoke(app, "backfill")
    assert result.exit_code == 0, result.output
    assert "Backfilling from 2026-01-10, the day of the oldest event." in result.output
    assert "Aggregating" in result.output
    assert "Aggregated 5 days: 2026-01-10 to 2026-01-14." in result.output
    assert run_days(app) == days_between(dt.date(2026, 1, 10), dt.date(2026, 1, 14))
    assert summary(app, dt.date(2026, 1, 10)) == VISITS
    assert summary(app, dt.date(2026, 1, 13)) == VISITS
    assert summary(app, dt.date(2026, 1, 11)) is None  # no events, nothing to roll up


def test_starts_at_an_older_archived_event_in_the_site_zone(make_app, monkeypatch):
    app = make_app(ANALYTICS_TIMEZONE="Europe/Paris")
    pin_today(monkeypatch, app)
    add_visits(app, DAY - dt.timedelta(days=1))
    # 23:30 UTC on the 7th is 00:30 on the 8th in Paris: the backfill starts on the 8th.
    archive_event(app, dt.datetime(2026, 1, 7, 23, 30))
    result = invoke(app, "backfill", "--to", "2026-01-09")
    assert result.exit_code == 0, result.output
    assert "Backfilling from 2026-01-08" in result.output
    assert run_days(app) == [dt.date(2026, 1, 8), dt.date(2026, 1, 9)]
    assert summary(app, dt.date(2026, 1, 8)) == (1, 1, 1, 0)


def test_nothing_to_backfill(app, monkeypatch):
    pin_today(monkeypatch, app)
    empty = invoke(app, "backfill")
    assert empty.exit_code == 0, empty.output
    assert "Nothing to backfill: there are no raw or archived events." in empty.output
    add_visits(app, DAY)  # today only: yesterday, the default --to, is before it
    only_today = invoke(app, "backfill")
    assert only_today.exit_code == 0, only_today.output
    assert (
        "Nothing to backfill: the oldest event is on 2026-01-15, after --to 2026-01-14."
        in only_today.output
    )
    assert run_days(app) == []


def test_ctrl_c_stops_between_days_and_says_how_to_resume(app, monkeypatch):
    """A KeyboardInterrupt inside the third day's transaction (after its rows were
    swapped in, before the commit): that day keeps its earlier numbers, the two days
    before it are written, and the printed command finishes the job."""
    pin_today(monkeypatch, app)
    analytics: Analytics = app.extensions["analytics_test"]
    days = days_between(dt.date(2026, 1, 10), dt.date(2026, 1, 14))
    for day in days:
        add_visits(app, day)
    third = days[2]
    assert invoke(app, "aggregate", third.isoformat()).exit_code == 0
    add_visits(app, third)  # the third day doubles: a finished run would show it
    before = summary(app, third)
    assert before == VISITS

    @analytics.daily_aggregation
    def interrupt(conn: sa.Connection, day: dt.date, events: Any) -> None:
        if day == third and not resumed:
            raise KeyboardInterrupt

    resumed = False
    result = invoke(app, "backfill", "--to", days[-1].isoformat())
    assert result.exit_code == 130, result.output
    assert "Traceback" not in result.output
    assert "Interrupted: the last aggregated day is 2026-01-11 (2 of 5 days)." in result.output
    hint = "flask analytics backfill --from 2026-01-12 --to 2026-01-14"
    assert f"Resume with: {hint}" in result.output
    assert run_days(app) == [days[0], days[1], third]  # the third day's earlier run only
    assert [summary(app, d) for d in days] == [VISITS, VISITS, before, None, None]

    resumed = True
    again = invoke(app, *re.sub(r"^flask analytics ", "", hint).split())
    assert again.exit_code == 0, again.output
    assert "Aggregated 3 days: 2026-01-12 to 2026-01-14." in again.output
    # The same visits twice, at the same times: the same sessions, twice the events.
    assert summary(app, third) == (3, 3, 8, 2)
    assert [summary(app, d) for d in (days[3], days[4])] == [VISITS, VISITS]


def test_ctrl_c_before_any_day_finished(app, monkeypatch):
    pin_today(monkeypatch, app)
    analytics: Analytics = app.extensions["analytics_test"]
    add_visits(app, dt.date(2026, 1, 13))

    @analytics.daily_aggregation
    def interrupt(conn: sa.Connection, day: dt.date, events: Any) -> None:
        raise KeyboardInterrupt

    result = invoke(app, "backfill", "--force")
    assert result.exit_code == 130, result.output
    assert "Interrupted before any day was aggregated." in result.output
    assert (
        "Resume with: flask analytics backfill --from 2026-01-13 --to 2026-01-14 --force"
        in result.output
    )
    assert run_days(app) == []


def test_a_ctrl_c_python_drops_still_stops_after_the_day(app, monkeypatch):
    """Python ignores an exception raised in a garbage-collection callback: a real SIGINT
    landing there is lost to the code below it. The backfill still remembers it, lets
    that day finish (whole) and stops before the next one."""
    pin_today(monkeypatch, app)
    analytics: Analytics = app.extensions["analytics_test"]
    days = days_between(dt.date(2026, 1, 11), dt.date(2026, 1, 14))
    for day in days:
        add_visits(app, day)

    @analytics.daily_aggregation
    def lost_interrupt(conn: sa.Connection, day: dt.date, events: Any) -> None:
        if day == days[1]:
            # Swallowed, as Python does with it inside a weakref callback.
            with contextlib.suppress(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    result = invoke(app, "backfill")
    assert result.exit_code == 130, result.output
    assert "the last aggregated day is 2026-01-12 (2 of 4 days)." in result.output
    assert "Resume with: flask analytics backfill --from 2026-01-13 --to 2026-01-14" in (
        result.output
    )
    assert run_days(app) == days[:2]
    assert [summary(app, d) for d in days] == [VISITS, VISITS, None, None]
    assert signal.getsignal(signal.SIGINT) is before  # put back


@pytest.mark.redis
def test_queued_backfill_starts_at_the_oldest_event_and_resumes(make_app, monkeypatch):
    connection = redis_or_skip()
    queue = f"test-{uuid.uuid4().hex[:12]}"
    try:
        app = make_app(ANALYTICS_REDIS_URL=REDIS_URL, ANALYTICS_QUEUE=queue)
        pin_today(monkeypatch, app)
        days = days_between(dt.date(2026, 1, 11), dt.date(2026, 1, 14))
        for day in days:
            add_visits(app, day)
        real = enqueue.enqueue_aggregate
        calls = []

        def interrupted(*args: Any, **kwargs: Any) -> Any:
            calls.append(args[1])
            if len(calls) == 3:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        monkeypatch.setattr(enqueue, "enqueue_aggregate", interrupted)
        stopped = invoke(app, "backfill")
        assert stopped.exit_code == 130, stopped.output
        assert "Queued 2 aggregation jobs." in stopped.output
        assert "the last queued day is 2026-01-12 (2 of 4 days)." in stopped.output
        assert "Resume with: flask analytics backfill --from 2026-01-13 --to 2026-01-14" in (
            stopped.output
        )
        assert queue_of(app).count == 2

        monkeypatch.setattr(enqueue, "enqueue_aggregate", real)
        resumed = invoke(app, "backfill", "--from", "2026-01-13", "--to", "2026-01-14")
        assert "Queued 2 aggregation jobs on queue" in resumed.output
        worker = invoke(app, "worker", "--burst", "--name", f"{queue}-backfill")
        assert worker.exit_code == 0, worker.output
        assert run_days(app) == days
        assert [summary(app, d) for d in days] == [VISITS] * len(days)
    finally:
        delete_queue_keys(connection, queue)
        connection.close()
