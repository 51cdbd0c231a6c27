"""A newcomer's first commands: no tables yet, a mistyped time zone, demo data twice, a
long history of runs. Each answers in a line, never with a traceback."""

from __future__ import annotations

import datetime as dt
from importlib.metadata import entry_points
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask import Flask
from flask.cli import FlaskGroup
from flask_sqlalchemy import SQLAlchemy

from flask_analytics import Analytics
from flask_analytics.cli import analytics_cli
from flask_analytics.cli.common import missing_table

from ..support.events import add_events, pin_today

NO_TABLES = (
    "Error: the analytics tables do not exist: run flask db upgrade (Flask-Migrate), "
    "or db.create_all().\n"
)


def invoke(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["analytics", *args])


def bare_app(database_url: str, **config: Any) -> tuple[Flask, SQLAlchemy]:
    """An app with Analytics whose tables were never created."""
    app = Flask("newcomer")
    app.config.update(SQLALCHEMY_DATABASE_URI=database_url, **config)
    db = SQLAlchemy()
    db.init_app(app)
    Analytics(app, db=db)
    return app, db


@pytest.fixture
def bare(database_url: str) -> Any:
    app, db = bare_app(database_url, ANALYTICS_ARCHIVE_RETENTION_DAYS=400)
    yield app, db
    with app.app_context():
        db.drop_all()
        db.engine.dispose()


COMMANDS = [
    ["status"],
    ["aggregate", "yesterday"],
    ["backfill", "--from", "2026-01-01", "--to", "2026-01-03"],
    ["demo-data", "--days", "1"],
    ["archive"],
    ["purge"],
]


def test_every_command_before_the_tables_exist_says_so_in_one_line(bare: Any) -> None:
    app, _db = bare
    for command in COMMANDS:
        result = invoke(app, *command)
        assert (result.exit_code, result.output) == (1, NO_TABLES), command


def test_some_tables_missing_are_named(bare: Any) -> None:
    app, db = bare
    with app.app_context():
        db.create_all()
        session = app.extensions["analytics"].models.Session.__table__
        session.drop(db.engine)
    result = invoke(app, "status")
    assert result.exit_code == 1
    assert result.output == (
        "Error: some analytics tables do not exist (analytics_session): run flask db upgrade "
        "(Flask-Migrate), or db.create_all().\n"
    )


def test_the_database_error_of_a_missing_table_names_it(bare: Any) -> None:
    """What the group catches when a command meets a missing table after its start."""
    app, db = bare
    with app.app_context(), db.engine.connect() as conn:
        with pytest.raises(sa.exc.DBAPIError) as raised:
            conn.execute(sa.text("SELECT count(*) FROM analytics_event"))
        assert missing_table(raised.value) == "analytics_event"
        conn.rollback()
        with pytest.raises(sa.exc.DBAPIError) as other:
            conn.execute(sa.text("SELECT nosuchcolumn FROM (SELECT 1 AS a) AS t"))
        assert missing_table(other.value) is None


def test_a_bad_time_zone_is_one_line(tmp_path: Any) -> None:
    def create_app() -> Flask:
        app, _db = bare_app(f"sqlite:///{tmp_path / 'a.db'}", ANALYTICS_TIMEZONE="Europe/Pariss")
        return app

    # As `flask --app ... analytics status` runs it: the group comes from the entry point
    # (found without loading the app), and the app is loaded inside the group.
    cli = FlaskGroup(create_app=create_app, load_dotenv=False)
    cli.add_command(analytics_cli)
    result = CliRunner().invoke(cli, ["analytics", "status"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: ANALYTICS_TIMEZONE 'Europe/Pariss' is not a known time zone "
        "(use an IANA name such as 'Europe/Paris').\n"
    )
    (entry,) = [e for e in entry_points(group="flask.commands") if e.name == "analytics"]
    assert entry.load() is analytics_cli


def test_demo_data_twice_says_the_events_exist_and_adds_nothing(app: Flask) -> None:
    first = invoke(app, "demo-data", "--days", "2", "--seed", "3", "--sync")
    assert first.exit_code == 0, first.output
    analytics = app.extensions["analytics_test"]
    table = analytics.Event.__table__
    count = sa.select(sa.func.count()).select_from(table)
    with app.app_context(), analytics.db.engine.connect() as conn:
        stored = conn.scalar(count)
    again = invoke(app, "demo-data", "--days", "2", "--seed", "3", "--sync")
    assert again.exit_code == 1
    assert "Error: the demo events of seed 3 already exist" in again.output
    assert again.output.count("\n") <= 2  # the progress label, then the error
    with app.app_context(), analytics.db.engine.connect() as conn:
        assert conn.scalar(count) == stored
    other = invoke(app, "demo-data", "--days", "1", "--seed", "4", "--sync")
    assert other.exit_code == 0, other.output


def add_runs(app: Flask, count: int) -> None:
    """``count`` finished runs, one a day from 2025-01-01, started one after the other."""
    analytics = app.extensions["analytics_test"]
    start = dt.datetime(2026, 1, 1, 3)
    rows = [
        {
            "date": dt.date(2025, 1, 1) + dt.timedelta(days=i),
            "started_at": start + dt.timedelta(minutes=i),
            "finished_at": start + dt.timedelta(minutes=i, seconds=5),
            "source_events": i,
        }
        for i in range(count)
    ]
    with app.app_context(), analytics.db.engine.begin() as conn:
        conn.execute(sa.insert(analytics.AggregationRun.__table__), rows)


def test_status_lists_the_recent_runs_and_counts_the_rest(app: Flask, monkeypatch: Any) -> None:
    pin_today(monkeypatch, app, dt.date(2026, 2, 1))
    add_runs(app, 45)
    # 23 days with events, none aggregated since (runs are of other days).
    add_events(app, [dt.datetime(2026, 1, 1, 12) + dt.timedelta(days=i) for i in range(23)])
    result = invoke(app, "status")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "Aggregation runs: the last 20 of 45 (--runs N lists more):" in lines
    listed = [line for line in lines if line.startswith("  2025-")]
    # Most recent first: the runs of 2025-02-14 (the 45th) back to 2025-01-26 (the 26th).
    assert len(listed) == 20
    assert listed[0].startswith("  2025-02-14  2026-01-01 03:44:05 UTC  44 events")
    assert listed[-1].startswith("  2025-01-26  ")
    assert "Days needing aggregation: 23 days:" in lines
    pending = [line for line in lines if line.startswith("  2026-01-")]
    assert len(pending) == 20
    assert pending[0].startswith("  2026-01-04  never aggregated")
    assert (
        "  and 3 earlier days (2026-01-01 to 2026-01-03): flask analytics backfill aggregates them."
    ) in lines
    every = invoke(app, "status", "--runs", "100")
    assert "Aggregation runs: 45, most recent first:" in every.output.splitlines()
    assert len([line for line in every.output.splitlines() if line.startswith("  2025-")]) == 45
