"""SIGKILL in the middle of archiving and of aggregating: nothing lost, nothing mixed.

The work runs in a real ``flask analytics ...`` subprocess (tests/scripts/crash_app.py)
on the test's SQLite file or PostgreSQL database. The test polls the database until the
process has committed some work *and* holds an open write transaction, kills it with
SIGKILL, checks the invariants, then re-runs the command to completion.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_analytics.lifecycle.aggregate import aggregate_range
from flask_analytics.lifecycle.archive import archive
from flask_analytics.state import current_state

from ..support.processes import ROOT, wait_while_running

pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_clock("the job being killed runs in another process, on the real clock"),
]


class Subprocess:
    """A ``flask analytics`` command of the crash app, on the test's database."""

    def __init__(self, database_url: str, tmp_path: Path, *args: str, **env: str) -> None:
        self.application_name = f"fa-crash-{uuid.uuid4().hex[:8]}"
        url = sa.engine.make_url(database_url)
        if url.get_backend_name() == "postgresql":
            url = url.update_query_dict({"application_name": self.application_name})
        self.log = tmp_path / f"{self.application_name}.log"
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "flask",
                    "--app",
                    "tests.scripts.crash_app:create_app",
                    "analytics",
                    *args,
                ],
                cwd=ROOT,
                env={
                    **os.environ,
                    "CRASH_DATABASE_URL": url.render_as_string(hide_password=False),
                    **env,
                },
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 180) -> None:
        """Poll ``condition`` until true while the process runs (fail if it ends first)."""
        wait_while_running(self.proc, self.log, condition, what, timeout)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(timeout=60) == -signal.SIGKILL


def writing(app: Flask, database_url: str, application_name: str) -> bool:
    """Whether another process has an open transaction that has written something."""
    url = sa.engine.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(str(url.database), timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                return True
            raise
        else:
            conn.execute("ROLLBACK")
            return False
        finally:
            conn.close()
    analytics = app.extensions["analytics_test"]
    with app.app_context(), analytics.db.engine.connect() as conn:
        # backend_xid is assigned at a transaction's first write and cleared at its end.
        return bool(
            conn.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name = :name AND backend_xid IS NOT NULL"
                ),
                {"name": application_name},
            )
        )


def events(days: list[dt.date], per_day: int, seed: int) -> list[dict[str, Any]]:
    """Realistic-enough raw events spread over each UTC day."""
    rng = random.Random(seed)
    rows = []
    for day in days:
        start = dt.datetime.combine(day, dt.time())
        for _ in range(per_day):
            rows.append(
                {
                    "event_id": str(uuid.uuid4()),
                    "created_at": start + dt.timedelta(seconds=rng.randrange(86_400)),
                    "name": rng.choice(["pageview"] * 8 + ["signup", "engagement"]),
                    "hostname": "example.com",
                    "path": f"/page/{rng.randrange(40)}",
                    "referrer_host": rng.choice([None, "google.com", "news.ycombinator.com"]),
                    "channel": rng.choice(["Direct", "Organic Search", "Referral"]),
                    "country": rng.choice(["FR", "DE", "US", None]),
                    "device_type": rng.choice(["desktop", "mobile"]),
                    "browser": rng.choice(["Chrome", "Firefox", "Safari"]),
                    "os": rng.choice(["Windows", "Linux", "iOS"]),
                    "visitor_id": rng.randrange(400),
                    "engagement_ms": rng.randrange(60_000),
                }
            )
    return rows


def insert(app: Flask, rows: list[dict[str, Any]]) -> None:
    analytics = app.extensions["analytics_test"]
    with app.app_context(), analytics.db.engine.begin() as conn:
        conn.execute(sa.insert(analytics.Event.__table__), rows)


def snapshot(app: Flask, which: str) -> dict[int, tuple[Any, ...]]:
    """Every row of the raw or archive table, by id."""
    analytics = app.extensions["analytics_test"]
    model = analytics.Event if which == "raw" else analytics.EventArchive
    with app.app_context(), analytics.db.engine.connect() as conn:
        return {row.id: tuple(row) for row in conn.execute(sa.select(model.__table__))}


def count(app: Flask, table: sa.Table) -> int:
    analytics = app.extensions["analytics_test"]
    with app.app_context(), analytics.db.engine.connect() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


def test_sigkill_while_archiving_loses_and_duplicates_nothing(make_app, database_url, tmp_path):
    app = make_app(ANALYTICS_RETENTION_DAYS=30)
    analytics = app.extensions["analytics_test"]
    old_days = [dt.date(2025, 6, 1) + dt.timedelta(days=i) for i in range(8)]
    per_day = 2_500
    insert(app, events(old_days, per_day, seed=1))
    recent = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    insert(app, events([recent], 300, seed=2))
    runs = analytics.AggregationRun.__table__
    with app.app_context(), analytics.db.engine.begin() as conn:
        now = dt.datetime(2025, 7, 1)
        conn.execute(
            sa.insert(runs),
            [
                {"date": d, "started_at": now, "finished_at": now, "source_events": per_day}
                for d in old_days
            ],
        )
    original = snapshot(app, "raw")
    table = analytics.Event.__table__
    with app.app_context(), analytics.db.engine.connect() as conn:
        old_ids = set(
            conn.scalars(sa.select(table.c.id).where(table.c.created_at < dt.datetime(2025, 7, 1)))
        )
    assert len(old_ids) == len(old_days) * per_day
    archive_table = analytics.EventArchive.__table__

    job = Subprocess(
        database_url,
        tmp_path,
        "archive",
        "--batch-size",
        "150",
        "--sync",
        CRASH_RETENTION_DAYS="30",
    )
    job.wait_until(
        lambda: count(app, archive_table) > 0 and writing(app, database_url, job.application_name),
        "a batch was committed and the next one is being written",
    )
    job.kill()

    raw, archived = snapshot(app, "raw"), snapshot(app, "archive")
    assert 0 < len(archived) < len(old_ids), "killed before or after the work, not during it"
    assert raw.keys().isdisjoint(archived.keys())
    assert raw | archived == original  # every event once, every column intact
    assert set(archived) <= old_ids

    result = Subprocess(database_url, tmp_path, "archive", "--sync", CRASH_RETENTION_DAYS="30")
    assert result.proc.wait(timeout=300) == 0, result.log.read_text()
    raw, archived = snapshot(app, "raw"), snapshot(app, "archive")
    assert set(archived) == old_ids
    assert raw.keys() == original.keys() - old_ids
    assert raw | archived == original
    with app.app_context():
        assert archive(current_state(app)).moved == 0


def daily_by_day(app: Flask) -> dict[dt.date, dict[str, list[tuple[Any, ...]]]]:
    """Each day's rows of every daily table (ids left out)."""
    analytics = app.extensions["analytics_test"]
    out: dict[dt.date, dict[str, list[tuple[Any, ...]]]] = {}
    with app.app_context(), analytics.db.engine.connect() as conn:
        for name, model in analytics.models.daily.items():
            table: sa.Table = model.__table__
            cols = [c for c in table.c if c.name != "id"]
            for row in conn.execute(sa.select(*cols)).mappings():
                out.setdefault(row["date"], {}).setdefault(name, []).append(tuple(row.values()))
    for tables in out.values():
        for rows in tables.values():
            rows.sort(key=repr)
    return out


def test_sigkill_while_aggregating_leaves_each_day_old_or_new(make_app, database_url, tmp_path):
    app = make_app()
    analytics = app.extensions["analytics_test"]
    state = current_state(app)
    days = [dt.date(2025, 3, 1) + dt.timedelta(days=i) for i in range(7)]
    insert(app, events(days, 1_500, seed=3))
    with app.app_context():
        aggregate_range(state, days[0], days[-1])
    before = daily_by_day(app)
    assert sorted(before) == days
    insert(app, events(days, 1_500, seed=4))  # more data: every day's rows will change
    raw_count = count(app, analytics.Event.__table__)
    runs = analytics.AggregationRun.__table__
    first_runs = count(app, runs)

    job = Subprocess(
        database_url,
        tmp_path,
        "backfill",
        "--from",
        str(days[0]),
        "--to",
        str(days[-1]),
        "--sync",
    )
    # Kill while a day is being written, with at least one day done and two still to do.
    job.wait_until(
        lambda: (
            1 <= count(app, runs) - first_runs <= len(days) - 2
            and writing(app, database_url, job.application_name)
        ),
        "a day was committed and the next one is being aggregated",
    )
    job.kill()

    killed = daily_by_day(app)
    with app.app_context(), analytics.db.engine.connect() as conn:
        redone = set(
            conn.scalars(sa.select(runs.c.date).order_by(runs.c.id).offset(first_runs)).all()
        )
    assert count(app, analytics.Event.__table__) == raw_count
    assert count(app, analytics.EventArchive.__table__) == 0

    # Re-run the same command to the end (a subprocess too, so both runs use the same code).
    rerun = Subprocess(
        database_url,
        tmp_path,
        "backfill",
        "--from",
        str(days[0]),
        "--to",
        str(days[-1]),
        "--sync",
    )
    assert rerun.proc.wait(timeout=300) == 0, rerun.log.read_text()
    after = daily_by_day(app)
    for day in days:
        assert before[day] != after[day]
        assert killed[day] == (after[day] if day in redone else before[day]), day
    assert 1 <= len(redone) <= len(days) - 1
