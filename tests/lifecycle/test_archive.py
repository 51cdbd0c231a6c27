"""archive() and purge(): local-day retention, aggregated days only, batches, dry runs."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_analytics import Analytics, ConfigError
from flask_analytics.core.clock import day_bounds
from flask_analytics.core.runs import day_state, day_states
from flask_analytics.lifecycle.archive import archive, purge
from flask_analytics.state import current_state

from ..conftest import all_rows
from ..support.events import add_events, mark_aggregated, pin_today

NEW_YORK = ZoneInfo("America/New_York")


def utc(local: dt.datetime, tz: ZoneInfo = NEW_YORK) -> dt.datetime:
    """Naive UTC of a naive local time in ``tz``."""
    return local.replace(tzinfo=tz).astimezone(dt.timezone.utc).replace(tzinfo=None)


def table_rows(app: Flask, which: str) -> dict[int, dict[str, Any]]:
    analytics: Analytics = app.extensions["analytics_test"]
    model = analytics.Event if which == "raw" else analytics.EventArchive
    with app.app_context(), analytics.db.engine.connect() as conn:
        return {row["id"]: dict(row) for row in conn.execute(sa.select(model.__table__)).mappings()}


TODAY = dt.date(2026, 3, 20)


@pytest.fixture
def ny_app(make_app: Any) -> Flask:
    app: Flask = make_app(ANALYTICS_TIMEZONE="America/New_York", ANALYTICS_RETENTION_DAYS=30)
    return app


def test_only_aggregated_days_before_the_local_cutoff_move(ny_app, monkeypatch):
    state = pin_today(monkeypatch, ny_app, TODAY)
    # Retention 30 days from 2026-03-20: local days before 2026-02-18 are archived.
    old = add_events(ny_app, [utc(dt.datetime(2026, 2, 10, h)) for h in (0, 6, 12, 18, 23)])
    mark_aggregated(ny_app, dt.date(2026, 2, 10), 5)
    never = add_events(ny_app, [utc(dt.datetime(2026, 2, 11, 9))] * 3)
    stale = add_events(ny_app, [utc(dt.datetime(2026, 2, 12, 9))] * 4)
    mark_aggregated(ny_app, dt.date(2026, 2, 12), 3)
    # 22:00 on 02-17 in New York is 03:00 UTC on 02-18: archived (its local day is old)...
    evening = add_events(ny_app, [dt.datetime(2026, 2, 18, 3, 0)])
    mark_aggregated(ny_app, dt.date(2026, 2, 17), 1)
    # ...while 00:30 on 02-18 in New York (05:30 UTC) is on the cutoff day: kept.
    kept = add_events(ny_app, [utc(dt.datetime(2026, 2, 18, 0, 30))])
    mark_aggregated(ny_app, dt.date(2026, 2, 18), 1)
    before = table_rows(ny_app, "raw")

    with ny_app.app_context():
        result = archive(state)

    assert result.cutoff == dt.date(2026, 2, 18)
    assert [d.day for d in result.days] == [dt.date(2026, 2, 10), dt.date(2026, 2, 17)]
    assert [(d.day, d.status) for d in result.skipped] == [
        (dt.date(2026, 2, 11), "never aggregated"),
        (dt.date(2026, 2, 12), "stale"),
    ]
    assert result.moved == 6
    archived = table_rows(ny_app, "archive")
    raw = table_rows(ny_app, "raw")
    assert sorted(archived) == sorted(old + evening)
    assert sorted(raw) == sorted(never + stale + kept)
    # Ids and every column survive the move.
    for event_id, row in archived.items():
        assert row == before[event_id]


def test_analytics_archive_uses_the_configured_retention(ny_app, monkeypatch):
    pin_today(monkeypatch, ny_app, TODAY)
    ids = add_events(ny_app, [utc(dt.datetime(2026, 2, 17, 12))] * 2)
    mark_aggregated(ny_app, dt.date(2026, 2, 17), 2)
    analytics = ny_app.extensions["analytics_test"]
    with ny_app.app_context():
        assert analytics.archive(older_than_days=40).moved == 0  # cutoff 2026-02-08
        assert analytics.archive().moved == 2  # ANALYTICS_RETENTION_DAYS = 30
    assert sorted(table_rows(ny_app, "archive")) == ids


def test_dry_run_changes_nothing_and_reports_the_plan(ny_app, monkeypatch):
    state = pin_today(monkeypatch, ny_app, TODAY)
    add_events(ny_app, [utc(dt.datetime(2026, 1, 5, 10))] * 4)
    mark_aggregated(ny_app, dt.date(2026, 1, 5), 4)
    add_events(ny_app, [utc(dt.datetime(2026, 1, 6, 10))] * 2)
    before = all_rows(ny_app)

    with ny_app.app_context():
        plan = archive(state, dry_run=True)

    assert all_rows(ny_app) == before
    assert plan.dry_run
    assert (plan.moved, plan.batches) == (0, 0)
    assert [(d.day, d.raw_events) for d in plan.days] == [(dt.date(2026, 1, 5), 4)]
    assert plan.planned == 4
    assert [d.day for d in plan.skipped] == [dt.date(2026, 1, 6)]


def test_batches_are_keyed_by_id_and_report_progress(ny_app, monkeypatch):
    state = pin_today(monkeypatch, ny_app, TODAY)
    ids = add_events(ny_app, [utc(dt.datetime(2026, 1, 5, h)) for h in range(7)])
    mark_aggregated(ny_app, dt.date(2026, 1, 5), 7)
    calls: list[int] = []

    with ny_app.app_context():
        result = archive(state, batch_size=2, progress=calls.append)

    assert calls == [2, 2, 2, 1]
    assert (result.batches, result.moved) == (4, 7)
    assert sorted(table_rows(ny_app, "archive")) == ids
    assert table_rows(ny_app, "raw") == {}


def test_rerun_moves_nothing_more_and_late_events_wait_for_reaggregation(ny_app, monkeypatch):
    state = pin_today(monkeypatch, ny_app, TODAY)
    day = dt.date(2026, 1, 5)
    first = add_events(ny_app, [utc(dt.datetime(2026, 1, 5, 8))] * 3)
    mark_aggregated(ny_app, day, 3)
    # A recent event keeps the highest id raw, as a live site always has (see the SQLite
    # id reuse test below for what happens otherwise).
    recent = add_events(ny_app, [utc(dt.datetime(2026, 3, 19, 8))])
    with ny_app.app_context():
        assert archive(state).moved == 3
        assert archive(state).moved == 0

    # A late event (e.g. a replayed offline queue) lands in the archived day.
    late = add_events(ny_app, [utc(dt.datetime(2026, 1, 5, 9))])
    with ny_app.app_context():
        assert day_state(state, day).status == "stale"
        result = archive(state)
    assert result.moved == 0
    assert [d.day for d in result.skipped] == [day]
    assert sorted(table_rows(ny_app, "raw")) == sorted(recent + late)

    mark_aggregated(ny_app, day, 4)  # re-aggregated: read 3 archived + 1 raw
    with ny_app.app_context():
        assert archive(state).moved == 1
    assert sorted(table_rows(ny_app, "archive")) == sorted(first + late)


def test_ids_of_archived_events_are_not_given_to_new_events(ny_app, monkeypatch):
    state = pin_today(monkeypatch, ny_app, TODAY)
    first = add_events(ny_app, [utc(dt.datetime(2026, 1, 5, 8))] * 3)
    mark_aggregated(ny_app, dt.date(2026, 1, 5), 3)
    with ny_app.app_context():
        assert archive(state).moved == 3
    later = add_events(ny_app, [utc(dt.datetime(2026, 3, 19, 8))])
    assert later[0] > max(first)


def test_an_id_taken_by_another_archived_event_is_left_raw(ny_app, monkeypatch):
    state = pin_today(monkeypatch, ny_app, TODAY)
    analytics = ny_app.extensions["analytics_test"]
    (raw_id,) = add_events(ny_app, [utc(dt.datetime(2026, 1, 5, 8))])
    mark_aggregated(ny_app, dt.date(2026, 1, 5), 1)
    stranger = {
        "id": raw_id,
        "event_id": str(uuid.uuid4()),
        "created_at": dt.datetime(2025, 12, 1),
        "name": "pageview",
        "hostname": "example.com",
        "path": "/old",
        "visitor_id": 9,
    }
    with ny_app.app_context(), analytics.db.engine.begin() as conn:
        conn.execute(sa.insert(analytics.EventArchive.__table__).values(**stranger))
    raw_before = table_rows(ny_app, "raw")

    with ny_app.app_context():
        result = archive(state)

    assert (result.moved, result.conflicts) == (0, 1)
    assert table_rows(ny_app, "raw") == raw_before
    assert table_rows(ny_app, "archive")[raw_id]["event_id"] == stranger["event_id"]


def test_day_states_compare_counts_with_the_last_finished_run(ny_app, monkeypatch):
    state = pin_today(monkeypatch, ny_app, TODAY)
    add_events(ny_app, [utc(dt.datetime(2026, 1, 1, 12))] * 2)
    mark_aggregated(ny_app, dt.date(2026, 1, 1), 2)
    add_events(ny_app, [utc(dt.datetime(2026, 1, 2, 12))] * 2)
    mark_aggregated(ny_app, dt.date(2026, 1, 2), 1)
    add_events(ny_app, [utc(dt.datetime(2026, 1, 3, 12))])
    mark_aggregated(ny_app, dt.date(2026, 1, 3), 5)
    add_events(ny_app, [utc(dt.datetime(2026, 1, 4, 12))])
    with ny_app.app_context():
        states = day_states(state)
    assert [(s.day, s.status, s.raw_events, s.run_events) for s in states] == [
        (dt.date(2026, 1, 1), "aggregated", 2, 2),
        (dt.date(2026, 1, 2), "stale", 2, 1),
        (dt.date(2026, 1, 3), "purged", 1, 5),
        (dt.date(2026, 1, 4), "never aggregated", 1, None),
    ]


def test_day_bounds_follow_dst():
    start, end = day_bounds(NEW_YORK, dt.date(2026, 3, 8))  # clocks jump forward
    assert (start, end) == (dt.datetime(2026, 3, 8, 5), dt.datetime(2026, 3, 9, 4))
    start, end = day_bounds(NEW_YORK, dt.date(2026, 11, 1))  # clocks go back
    assert end - start == dt.timedelta(hours=25)


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"older_than_days": -1}])
def test_bad_arguments_are_refused(ny_app, kwargs):
    with ny_app.app_context(), pytest.raises(ValueError, match=r">= 0|positive"):
        archive(current_state(ny_app), **kwargs)


# -- purge --------------------------------------------------------------------------------


def archived(app: Flask, times: Iterable[dt.datetime], first_id: int) -> list[int]:
    """Put events straight into the archive table (ids from ``first_id``); returns the ids."""
    analytics: Analytics = app.extensions["analytics_test"]
    rows = [
        {
            "id": first_id + i,
            "event_id": str(uuid.uuid4()),
            "created_at": when,
            "name": "pageview",
            "hostname": "example.com",
            "path": "/",
            "visitor_id": 1,
        }
        for i, when in enumerate(times)
    ]
    with app.app_context(), analytics.db.engine.begin() as conn:
        conn.execute(sa.insert(analytics.EventArchive.__table__), rows)
    return [r["id"] for r in rows]


def test_purge_without_archive_retention_refuses(ny_app):
    with ny_app.app_context(), pytest.raises(ConfigError, match="keeps archived events forever"):
        purge(current_state(ny_app))


def test_purge_deletes_archived_local_days_only(make_app, monkeypatch):
    app = make_app(ANALYTICS_TIMEZONE="America/New_York", ANALYTICS_ARCHIVE_RETENTION_DAYS=365)
    state = pin_today(monkeypatch, app, TODAY)
    # Cutoff: 2025-03-20 local. 23:00 on 03-19 New York is 03:00 UTC on 03-20: purged.
    gone = archived(
        app, [utc(dt.datetime(2025, 3, 1, 12)), utc(dt.datetime(2025, 3, 19, 23))], 1000
    )
    (kept,) = archived(app, [utc(dt.datetime(2025, 3, 20, 0, 30))], 2000)
    raw = add_events(app, [utc(dt.datetime(2025, 1, 1, 12))])  # raw events are never purged
    analytics = app.extensions["analytics_test"]
    summary = analytics.DailySummary.__table__
    with app.app_context(), analytics.db.engine.begin() as conn:
        conn.execute(sa.insert(summary).values(date=dt.date(2025, 3, 1), pageviews=1))

    before = all_rows(app)
    with app.app_context():
        plan = purge(state, dry_run=True)
    assert all_rows(app) == before
    assert plan.days == [(dt.date(2025, 3, 1), 1), (dt.date(2025, 3, 19), 1)]
    assert plan.cutoff == dt.date(2025, 3, 20)

    progress: list[int] = []
    with app.app_context():
        result = purge(state, progress=progress.append)
    assert result.deleted == 2
    assert progress == [1, 1]
    assert sorted(table_rows(app, "archive")) == [kept]
    assert sorted(table_rows(app, "raw")) == raw
    assert set(gone).isdisjoint(table_rows(app, "archive"))
    with app.app_context(), analytics.db.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(summary)) == 1
