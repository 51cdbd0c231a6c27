"""Monthly partitioning (PostgreSQL): migration, dedupe across partitions, archive and purge
by whole months, partitions ahead, the CLI, the scheduler, and SQLite's refusal."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_analytics import ConfigError
from flask_analytics.core.runs import counts, day_state
from flask_analytics.lifecycle import partitions as partitioning
from flask_analytics.lifecycle.aggregate import aggregate_day
from flask_analytics.lifecycle.archive import archive, purge
from flask_analytics.state import current_state
from flask_analytics.tasks import jobs
from flask_analytics.tasks import scheduler as scheduling

from ..conftest import DESKTOP_UA, AppFactory, collect_payload, custom_event_model
from ..support.events import add_events, add_visits, daily_rows, pin_today

postgresql_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

#: Visits on both sides of a month edge (UTC site).
DAYS = [dt.date(2026, 1, 30), dt.date(2026, 1, 31), dt.date(2026, 2, 1), dt.date(2026, 2, 2)]
JANUARY = dt.date(2026, 1, 1)
#: Local "today" far enough after January for any retention used here.
TODAY = dt.date(2026, 6, 1)


def invoke_partitions(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["analytics", "partitions", *args])


def sql(app: Flask, statement: str, **params: Any) -> Any:
    with app.app_context(), current_state(app).engine().connect() as conn:
        return conn.exec_driver_sql(statement, params).all()


def relkind(app: Flask, table: str) -> str | None:
    rows = sql(app, "SELECT relkind FROM pg_class WHERE oid = to_regclass(%(t)s)", t=table)
    return rows[0][0] if rows else None


def oid(app: Flask, table: str) -> int | None:
    value: int | None = sql(app, "SELECT to_regclass(%(t)s)::oid", t=table)[0][0]
    return value


def aggregate_all(app: Flask, days: list[dt.date] = DAYS) -> None:
    with app.app_context():
        for day in days:
            aggregate_day(current_state(app), day)


def event_rows(app: Flask) -> dict[str, dict[int, dict[str, Any]]]:
    analytics = app.extensions["analytics_test"]
    out = {}
    with app.app_context(), analytics.db.engine.connect() as conn:
        for model in (analytics.Event, analytics.EventArchive):
            table: sa.Table = model.__table__
            out[table.name] = {r["id"]: dict(r) for r in conn.execute(sa.select(table)).mappings()}
    return out


@pytest.fixture
def pg_app(make_app: AppFactory) -> Iterator[Flask]:
    """A PostgreSQL app with visits on four days around 2026-02-01 (two archived), the
    first two days aggregated. What partitioning adds is dropped afterwards."""
    app = make_app(ANALYTICS_RETENTION_DAYS=30, ANALYTICS_ARCHIVE_RETENTION_DAYS=60)
    yield from _populated(app)


def _populated(app: Flask) -> Iterator[Flask]:
    for day in DAYS:
        add_visits(app, day)
    try:
        yield app
    finally:
        with app.app_context(), current_state(app).engine().begin() as conn:
            conn.exec_driver_sql(
                "DROP TABLE IF EXISTS analytics_event_id, analytics_event_old, "
                "analytics_event_archive_old CASCADE"
            )
            conn.exec_driver_sql("DROP FUNCTION IF EXISTS analytics_event_dedupe() CASCADE")


def migrate(app: Flask, **kwargs: Any) -> partitioning.MigrationResult:
    with app.app_context():
        return partitioning.migrate(current_state(app), **kwargs)


def archive_first_day(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """Row-archive 2026-01-30 (aggregated), as `flask analytics archive` would."""
    aggregate_all(app, DAYS[:1])
    pin_today(monkeypatch, app, DAYS[1] + dt.timedelta(days=30))
    with app.app_context():
        assert archive(current_state(app)).moved == 5


# -- migration -------------------------------------------------------------------------------


@postgresql_only
def test_migration_keeps_every_row_and_every_daily_number(pg_app, monkeypatch):
    archive_first_day(pg_app, monkeypatch)
    aggregate_all(pg_app)
    rows, daily = event_rows(pg_app), daily_rows(pg_app)
    with pg_app.app_context():
        assert not partitioning.is_partitioned(current_state(pg_app))

    result = migrate(pg_app)

    assert result.migrated
    assert not result.dry_run
    assert (result.raw_events, result.archived_events) == (15, 5)
    assert result.first_month == JANUARY
    for table in ("analytics_event", "analytics_event_archive"):
        assert relkind(pg_app, table) == "p"
        assert relkind(pg_app, f"{table}_2026_01") == "r"
        assert relkind(pg_app, f"{table}_2026_02") == "r"
        assert relkind(pg_app, f"{table}_default") == "r"
        assert relkind(pg_app, f"{table}_old") is None  # dropped once the counts matched
    assert sql(pg_app, "SELECT count(*) FROM analytics_event_2026_01") == [(5,)]
    assert sql(pg_app, "SELECT count(*) FROM analytics_event_archive_2026_01") == [(5,)]
    assert event_rows(pg_app) == rows
    assert sql(pg_app, "SELECT count(*) FROM analytics_event_id") == [(20,)]
    with pg_app.app_context():
        assert partitioning.is_partitioned(current_state(pg_app))
        report = partitioning.status(current_state(pg_app))
    assert report.partitioned
    assert report.dedupe_trigger
    assert not any(t.default_has_rows for t in report.tables)

    aggregate_all(pg_app)
    assert daily_rows(pg_app) == daily
    # New ids continue the old sequence.
    (new_id,) = add_events(pg_app, [dt.datetime(2026, 2, 3, 9)])
    assert new_id > max(rows["analytics_event"])


@postgresql_only
def test_migrating_partitioned_tables_again_does_nothing(pg_app):
    migrate(pg_app)
    again = migrate(pg_app)
    assert not again.migrated
    assert again.statements == []


@postgresql_only
def test_dry_run_returns_the_sql_and_changes_nothing(pg_app):
    before = event_rows(pg_app)
    result = migrate(pg_app, dry_run=True, months_ahead=1)
    assert result.dry_run
    text = ";\n".join(result.statements)
    assert "CREATE TABLE analytics_event_id" in text
    assert "PARTITION BY RANGE (created_at)" in text
    assert "analytics_event_2026_01 PARTITION OF analytics_event" in text
    assert "CREATE TRIGGER analytics_event_dedupe BEFORE INSERT ON analytics_event" in text
    assert text.index("INSERT INTO analytics_event ") < text.index("CREATE TRIGGER")
    assert relkind(pg_app, "analytics_event") == "r"
    assert relkind(pg_app, "analytics_event_id") is None
    assert event_rows(pg_app) == before


@postgresql_only
def test_keep_old_leaves_the_old_tables(pg_app):
    migrate(pg_app, keep_old=True)
    assert sql(pg_app, "SELECT count(*) FROM analytics_event_old") == [(20,)]
    assert relkind(pg_app, "analytics_event_archive_old") == "r"


@postgresql_only
def test_custom_columns_survive_the_migration(make_app):
    app = make_app(event_model=custom_event_model)
    for _ in _populated(app):
        add_events(app, [dt.datetime(2026, 1, 20, 8)], plan="pro", ab_variant="b")
        # Host additions the migration reads from the live table, '%' included.
        sql_exec(app, "CREATE INDEX ix_blog ON analytics_event (path) WHERE path LIKE '/blog/%%'")
        sql_exec(app, "ALTER TABLE analytics_event ADD CONSTRAINT plan_known "
                      "CHECK (plan IN ('free', 'pro', 'team'))")  # fmt: skip
        migrate(app)
        assert sql(app, "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_blog'") == [
            ("CREATE INDEX ix_blog ON ONLY public.analytics_event USING btree (path) "
             "WHERE ((path)::text ~~ '/blog/%'::text)",)
        ]  # fmt: skip
        with pytest.raises(sa.exc.IntegrityError, match="plan_known"):
            add_events(app, [dt.datetime(2026, 1, 20, 9)], plan="gold")
        rows = sql(app, "SELECT plan, ab_variant FROM analytics_event WHERE plan IS NOT NULL")
        assert rows == [("pro", "b")]
        analytics = app.extensions["analytics_test"]
        with app.app_context():
            stored = analytics.track(
                "signup", url="https://example.com/", ip="203.0.113.9", user_agent=DESKTOP_UA
            )
            assert stored is not None
            analytics.db.session.execute(
                sa.update(analytics.Event.__table__)
                .where(analytics.Event.__table__.c.event_id == stored.event_id)
                .values(plan="team")
            )
            analytics.db.session.commit()
        assert sql(app, "SELECT count(*) FROM analytics_event WHERE plan = 'team'") == [(1,)]
        columns = {r[0] for r in sql(app, "SELECT attname FROM pg_attribute WHERE attrelid = "
                                          "'analytics_event_archive_2026_01'::regclass")}  # fmt: skip
        assert {"plan", "ab_variant"} <= columns


@postgresql_only
def test_a_unique_constraint_partitioning_cannot_keep_is_refused(pg_app):
    sql_exec(pg_app, "ALTER TABLE analytics_event ADD CONSTRAINT one_path UNIQUE (path, id)")
    with pg_app.app_context(), pytest.raises(partitioning.PartitioningError, match="one_path"):
        partitioning.migrate(current_state(pg_app))
    assert relkind(pg_app, "analytics_event") == "r"


def sql_exec(app: Flask, statement: str) -> None:
    with app.app_context(), current_state(app).engine().begin() as conn:
        conn.exec_driver_sql(statement)


# -- dedupe on the partitioned table -----------------------------------------------------------


@postgresql_only
def test_track_dedupes_by_event_id_across_months(pg_app):
    migrate(pg_app)
    analytics = pg_app.extensions["analytics_test"]
    event_id = str(uuid.uuid4())
    kwargs = {"url": "https://example.com/", "ip": "203.0.113.9", "user_agent": DESKTOP_UA}
    with pg_app.app_context():
        first = analytics.track("pageview", event_id=event_id, **kwargs)
        assert first is not None
        assert analytics.track("pageview", event_id=event_id, **kwargs) is None
        # The same id again, a month earlier: another partition, still a duplicate.
        earlier = dt.datetime(2026, 1, 15, 12)
        assert analytics.track("pageview", event_id=event_id, timestamp=earlier, **kwargs) is None
    assert sql(pg_app, "SELECT count(*) FROM analytics_event WHERE event_id = %(e)s",
               e=event_id) == [(1,)]  # fmt: skip
    # A known id inside a new batch is skipped; the others are stored.
    other = str(uuid.uuid4())
    with pg_app.app_context():
        stmt = sa.text(
            "INSERT INTO analytics_event (event_id, created_at, name, hostname, path, "
            "visitor_id) VALUES (:a, '2026-02-05', 'pageview', 'x', '/', 1), "
            "(:b, '2026-01-05', 'pageview', 'x', '/', 1) ON CONFLICT DO NOTHING "
            "RETURNING event_id"
        )
        with current_state(pg_app).engine().begin() as conn:
            assert conn.execute(stmt, {"a": event_id, "b": other}).scalars().all() == [other]


@postgresql_only
def test_collect_dedupes_on_the_partitioned_table(pg_app):
    migrate(pg_app)
    client = pg_app.test_client()
    event_id = str(uuid.uuid4())

    def post() -> Any:
        return client.post(
            "/_analytics/collect",
            json=[collect_payload(event_id=event_id), collect_payload(event_id=str(uuid.uuid4()))],
            headers={"User-Agent": DESKTOP_UA},
            environ_base={"REMOTE_ADDR": "203.0.113.7"},
        )

    assert post().status_code == 202
    second = post()
    assert second.status_code == 202
    assert "duplicate" in second.headers.get("X-Analytics-Dropped", "")
    assert sql(pg_app, "SELECT count(*) FROM analytics_event WHERE event_id = %(e)s",
               e=event_id) == [(1,)]  # fmt: skip
    assert sql(pg_app, "SELECT count(*) FROM analytics_event WHERE hostname = 'localhost'") == [
        (3,)
    ]


@postgresql_only
def test_copy_into_the_partitioned_table_skips_known_ids(pg_app):
    """The buffer's flush may COPY straight into analytics_event: the trigger fires."""
    migrate(pg_app)
    known = sql(pg_app, "SELECT event_id FROM analytics_event LIMIT 1")[0][0]
    fresh = str(uuid.uuid4())
    with pg_app.app_context():
        raw: Any = current_state(pg_app).engine().raw_connection()
        try:
            with raw.driver_connection.cursor() as cursor:
                columns = "event_id, created_at, name, hostname, path, visitor_id"
                with cursor.copy(f"COPY analytics_event ({columns}) FROM STDIN") as copy:
                    for event_id in (known, fresh, fresh):
                        copy.write_row((event_id, dt.datetime(2026, 2, 9), "pageview", "c", "/", 1))
            raw.driver_connection.commit()
        finally:
            raw.close()
    assert sql(pg_app, "SELECT event_id FROM analytics_event WHERE hostname = 'c'") == [(fresh,)]


# -- partitions ahead ------------------------------------------------------------------------


@pytest.mark.clock
@postgresql_only
def test_add_partitions_is_idempotent_and_empties_the_default(pg_app, frozen_clock):
    migrate(pg_app, months_ahead=1)
    this_month = frozen_clock.utcnow().date().replace(day=1)
    later = partitioning.add_months(this_month, 5)
    add_events(pg_app, [dt.datetime.combine(later, dt.time(12))])  # no partition yet
    assert sql(pg_app, "SELECT count(*) FROM analytics_event_default") == [(1,)]
    with pg_app.app_context():
        created = partitioning.add_partitions(current_state(pg_app), months_ahead=5).created
        again = partitioning.add_partitions(current_state(pg_app), months_ahead=5).created
    expected = [partitioning.add_months(this_month, n) for n in range(2, 6)]
    assert created == [
        partitioning.partition_name(t, m)
        for m in expected
        for t in ("analytics_event", "analytics_event_archive")
    ]
    assert again == []
    assert sql(pg_app, "SELECT count(*) FROM analytics_event_default") == [(0,)]
    name = partitioning.partition_name("analytics_event", later)
    assert sql(pg_app, f"SELECT count(*) FROM {name}") == [(1,)]
    # The moved-in partition dedupes like the others.
    event_id = sql(pg_app, f"SELECT event_id FROM {name}")[0][0]
    assert add_events_ignoring(pg_app, event_id, dt.datetime(2026, 2, 1)) == 0


def add_events_ignoring(app: Flask, event_id: str, when: dt.datetime) -> int:
    with app.app_context(), current_state(app).engine().begin() as conn:
        return int(
            conn.exec_driver_sql(
                "INSERT INTO analytics_event (event_id, created_at, name, hostname, path, "
                "visitor_id) VALUES (%(e)s, %(w)s, 'pageview', 'x', '/', 1) "
                "ON CONFLICT DO NOTHING",
                {"e": event_id, "w": when},
            ).rowcount
        )


# -- archive and purge by month ------------------------------------------------------------------


@postgresql_only
def test_archive_month_moves_the_partition_without_copying(pg_app, monkeypatch):
    migrate(pg_app)
    aggregate_all(pg_app)
    daily = daily_rows(pg_app)
    january = {i: r for i, r in event_rows(pg_app)["analytics_event"].items()
               if r["created_at"] < dt.datetime(2026, 2, 1)}  # fmt: skip
    partition = oid(pg_app, "analytics_event_2026_01")
    pin_today(monkeypatch, pg_app, TODAY)

    with pg_app.app_context():
        result = partitioning.archive_month(current_state(pg_app), JANUARY)

    assert result.moved_partition
    assert result.events == 10
    assert oid(pg_app, "analytics_event_archive_2026_01") == partition  # the same table
    assert sql(pg_app, "SELECT count(*) FROM analytics_event_2026_01") == [(0,)]
    rows = event_rows(pg_app)
    assert {i: rows["analytics_event_archive"][i] for i in january} == january
    assert not set(january) & set(rows["analytics_event"])
    # Its indexes follow the name; no dedupe trigger came along.
    indexes = {r[0] for r in sql(pg_app, "SELECT indexname FROM pg_indexes WHERE tablename = "
                                         "'analytics_event_archive_2026_01'")}  # fmt: skip
    assert indexes
    assert all(i.startswith("analytics_event_archive_2026_01") for i in indexes)
    assert sql(pg_app, "SELECT count(*) FROM pg_trigger WHERE tgrelid = "
                       "'analytics_event_archive_2026_01'::regclass") == [(0,)]  # fmt: skip
    aggregate_all(pg_app)
    assert daily_rows(pg_app) == daily
    with pg_app.app_context():
        assert day_state(current_state(pg_app), DAYS[0]).status == "aggregated"
        # An archived event's id is still a duplicate.
        archived_id = next(iter(january.values()))["event_id"]
    assert add_events_ignoring(pg_app, archived_id, dt.datetime(2026, 1, 30, 3)) == 0
    # A late January event lands in the fresh raw partition.
    add_events(pg_app, [dt.datetime(2026, 1, 31, 23)])
    assert sql(pg_app, "SELECT count(*) FROM analytics_event_2026_01") == [(1,)]


@postgresql_only
def test_archive_month_after_row_archival_copies_the_rest(pg_app, monkeypatch):
    archive_first_day(pg_app, monkeypatch)  # 2026-01-30 archived row by row
    migrate(pg_app)
    aggregate_all(pg_app)
    daily = daily_rows(pg_app)
    pin_today(monkeypatch, pg_app, TODAY)
    with pg_app.app_context():
        result = partitioning.archive_month(current_state(pg_app), JANUARY)
        assert counts(current_state(pg_app)) == {"raw": 10, "archived": 10}
    assert not result.moved_partition
    assert result.events == 5
    aggregate_all(pg_app)
    assert daily_rows(pg_app) == daily


@postgresql_only
def test_archive_month_refuses_days_not_aggregated_or_too_recent(pg_app, monkeypatch):
    migrate(pg_app)
    aggregate_all(pg_app, DAYS[:1])  # 2026-01-31 never aggregated
    state = pin_today(monkeypatch, pg_app, TODAY)
    with pg_app.app_context():
        with pytest.raises(
            partitioning.PartitioningError, match=r"2026-01-31 \(never aggregated\)"
        ):
            partitioning.archive_month(state, JANUARY)
        aggregate_all(pg_app)
        with pytest.raises(partitioning.PartitioningError, match="not older than 200 days"):
            partitioning.archive_month(state, JANUARY, older_than_days=200)
    assert sql(pg_app, "SELECT count(*) FROM analytics_event_2026_01") == [(10,)]


@postgresql_only
def test_archive_month_checks_the_local_days_at_the_month_edges(make_app, monkeypatch):
    # In New York, local 2026-01-31 ends at 05:00 UTC on 2026-02-01, inside February.
    app = make_app(ANALYTICS_TIMEZONE="America/New_York", ANALYTICS_RETENTION_DAYS=30)
    for _ in _populated(app):
        migrate(app)
        state = pin_today(monkeypatch, app, TODAY)
        with app.app_context():
            assert partitioning.touching_days(state, JANUARY)[0] == dt.date(2025, 12, 31)
            assert partitioning.touching_days(state, JANUARY)[-1] == dt.date(2026, 1, 31)
            aggregate_all(app, [dt.date(2026, 1, 29), dt.date(2026, 1, 30)])
            with pytest.raises(partitioning.PartitioningError, match="2026-01-31"):
                partitioning.archive_month(state, JANUARY)


@postgresql_only
def test_purge_month_drops_the_archive_partition(pg_app, monkeypatch):
    migrate(pg_app)
    aggregate_all(pg_app)
    daily = daily_rows(pg_app)
    state = pin_today(monkeypatch, pg_app, TODAY)
    with pg_app.app_context():
        partitioning.archive_month(state, JANUARY)
        result = partitioning.purge_month(state, JANUARY)
        assert counts(state) == {"raw": 10, "archived": 0}
    assert (result.deleted, result.dropped_partition) == (10, True)
    assert relkind(pg_app, "analytics_event_archive_2026_01") is None
    assert daily_rows(pg_app) == daily  # daily rows are never touched
    assert sql(pg_app, "SELECT count(*) FROM analytics_event_id WHERE created_at < '2026-02-01'"
               ) == [(0,)]  # fmt: skip
    assert sql(pg_app, "SELECT count(*) FROM analytics_event_id") == [(10,)]


@postgresql_only
def test_row_purge_forgets_the_purged_events_ids_too(pg_app, monkeypatch):
    migrate(pg_app)
    aggregate_all(pg_app)
    state = pin_today(monkeypatch, pg_app, TODAY)
    with pg_app.app_context():
        moved = archive(state).moved  # row by row, as `flask analytics archive` does
        assert moved == 20
        result = purge(state, older_than_days=(TODAY - DAYS[2]).days)  # Jan 30 and 31
        assert result.deleted == 10
        assert counts(state) == {"raw": 0, "archived": 10}
    assert sql(pg_app, "SELECT count(*) FROM analytics_event_id WHERE created_at < '2026-02-01'"
               ) == [(0,)]  # fmt: skip
    assert sql(pg_app, "SELECT count(*) FROM analytics_event_id") == [(10,)]


@postgresql_only
def test_purge_month_refusals(pg_app, monkeypatch):
    migrate(pg_app)
    state = pin_today(monkeypatch, pg_app, TODAY)
    with pg_app.app_context():
        with pytest.raises(partitioning.PartitioningError, match="still have 10 raw events"):
            partitioning.purge_month(state, JANUARY)
        with pytest.raises(partitioning.PartitioningError, match="not older than 200 days"):
            partitioning.purge_month(state, JANUARY, older_than_days=200)
        monkeypatch.setattr(state, "settings", replace(state.settings, archive_retention_days=None))
        with pytest.raises(ConfigError, match="keeps archived events forever"):
            partitioning.purge_month(state, JANUARY)


# -- SQLite ------------------------------------------------------------------------------------


@sqlite_only
def test_sqlite_says_partitioning_is_a_postgresql_feature(app):
    state = current_state(app)
    with app.app_context():
        assert not partitioning.is_partitioned(state)
        calls = [
            lambda: partitioning.status(state),
            lambda: partitioning.migrate(state),
            lambda: partitioning.migrate(state, dry_run=True),
            lambda: partitioning.add_partitions(state),
            lambda: partitioning.archive_month(state, JANUARY),
            lambda: partitioning.purge_month(state, JANUARY),
        ]
        for call in calls:
            with pytest.raises(partitioning.PartitioningUnsupported, match="PostgreSQL feature"):
                call()
        assert jobs.add_partitions_job() == {"partitioned": False, "created": []}
        assert scheduling.PARTITIONS_SCHEDULE not in scheduling.schedule(state)
    result = invoke_partitions(app, "migrate")
    assert result.exit_code == 1
    assert "Partitioning is a PostgreSQL feature: this app's database is sqlite" in result.output


def test_parse_month():
    assert partitioning.parse_month("2026-02") == dt.date(2026, 2, 1)
    for bad in ("2026-13", "2026-2-01", "feb"):
        with pytest.raises(ValueError, match="is not a month: use YYYY-MM"):
            partitioning.parse_month(bad)
    assert partitioning.add_months(dt.date(2026, 11, 1), 3) == dt.date(2027, 2, 1)


# -- CLI and scheduler --------------------------------------------------------------------------


@postgresql_only
def test_cli(pg_app, monkeypatch):
    result = invoke_partitions(pg_app, "status")
    assert result.exit_code == 0, result.output
    assert "analytics_event: plain, not partitioned." in result.output
    assert "flask analytics partitions migrate" in result.output

    result = invoke_partitions(pg_app, "migrate", "--dry-run", "--months-ahead", "1")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("-- Dry run: the migration (one transaction)")
    assert "CREATE TRIGGER analytics_event_dedupe" in result.output
    assert result.output.rstrip().endswith("COMMIT;")
    assert relkind(pg_app, "analytics_event") == "r"

    result = invoke_partitions(pg_app, "migrate", "--months-ahead", "1")
    assert result.exit_code == 0, result.output
    assert "Partitioned 20 raw events and 0 archived events: monthly partitions 2026-01 to" in (
        result.output
    )
    result = invoke_partitions(pg_app, "migrate")
    assert result.output == "The event tables are partitioned already: nothing to do.\n"

    result = invoke_partitions(pg_app, "status")
    assert "analytics_event: partitioned by month" in result.output
    assert "default partition empty." in result.output
    assert "Dedupe trigger: on." in result.output

    result = invoke_partitions(pg_app, "add", "--months-ahead", "2")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Added 2 partitions")
    assert invoke_partitions(pg_app, "add", "--months-ahead", "2").output.startswith(
        "Every monthly partition from"
    )

    pin_today(monkeypatch, pg_app, TODAY)
    result = invoke_partitions(pg_app, "archive-month", "2026-01")
    assert result.exit_code == 1
    assert "not aggregated since their latest events: 2026-01-30 (never aggregated)" in (
        result.output
    )
    aggregate_all(pg_app)
    result = invoke_partitions(pg_app, "archive-month", "2026-01")
    assert result.exit_code == 0, result.output
    assert result.output == "Archived 2026-01: 10 events (the partition itself, no row copied).\n"
    result = invoke_partitions(pg_app, "purge-month", "2026-01")
    assert result.exit_code == 0, result.output
    assert result.output == "Purged 2026-01: 10 archived events (partition dropped).\n"
    result = invoke_partitions(pg_app, "purge-month", "2026-13")
    assert result.exit_code == 1
    assert "'2026-13' is not a month: use YYYY-MM." in result.output


@postgresql_only
def test_the_scheduler_adds_partitions_only_on_partitioned_tables(pg_app):
    state = current_state(pg_app)
    with pg_app.app_context():
        assert scheduling.PARTITIONS_SCHEDULE not in scheduling.schedule(state)
        assert jobs.add_partitions_job() == {"partitioned": False, "created": []}
    migrate(pg_app, months_ahead=0)
    # No app context: whether the database is partitioned is unknown.
    assert scheduling.PARTITIONS_SCHEDULE not in scheduling.schedule(state)
    with pg_app.app_context():
        assert scheduling.schedule(state)[-1] == scheduling.PARTITIONS_SCHEDULE
        done = jobs.add_partitions_job()
    assert done["partitioned"]
    assert len(done["created"]) == 2 * partitioning.DEFAULT_MONTHS_AHEAD
