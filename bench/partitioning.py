"""EXPLAIN of the raw-event reads, before and after monthly partitioning (prints; not a test).

    python bench/partitioning.py [--days 90] [--events-per-day 20000]

On a throwaway PostgreSQL database: loads ``--days`` days of traffic up to now
(bench/aggregate.py's generator; days older than 45 go to the archive), then prints
EXPLAIN ANALYZE of what reads raw events: one local day's source rows and session walk
(the aggregation), and the realtime panel's queries (captured as the dashboard runs
them). Then it partitions the tables with the package's own migration
(``flask_analytics.lifecycle.partitions.migrate``, what ``flask analytics partitions migrate``
runs), prints the same plans on the partitioned tables, and checks that the app still
works: same daily numbers, direct and buffered writes deduplicated across partitions, a
month archived by partition (``partitioning.archive_month``). It also times a buffered
flush before and after (the trigger's cost).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa

from bench.aggregate import generate, load
from bench.flush import fill, make_app, stream_name
from bench.ingest import database
from flask_analytics import buffer
from flask_analytics.core.clock import (
    day_bounds,
    utcnow,
)
from flask_analytics.core.rollups import sessions_select, source_events
from flask_analytics.ingest import pipeline
from flask_analytics.lifecycle import partitions as partitioning
from flask_analytics.lifecycle.aggregate import aggregate_day, aggregate_range
from flask_analytics.reports import Stats


def explain(conn: sa.Connection, title: str, statement: str, params: Any) -> None:
    plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, COSTS OFF) {statement}", params).all()
    print(f"\n-- {title}")
    for (line,) in plan:
        print(f"   {line}")


def compiled(conn: sa.Connection, query: Any) -> tuple[str, Any]:
    c = query.compile(dialect=conn.dialect)
    return str(c), c.params


def plans(app: Any, analytics: Any, day: dt.date, label: str) -> None:
    state = analytics.state()
    print(f"\n==== {label} ====")
    engine = state.engine()
    start, end = day_bounds(state.settings.timezone, day)
    src = source_events(state.models, start, end).subquery("src")
    with engine.connect() as conn:
        explain(conn, f"aggregation: one local day's raw + archived events ({day})",
                *compiled(conn, sa.select(sa.func.count()).select_from(src)))  # fmt: skip
        walk = sessions_select(src, state.settings.session_timeout, engine.dialect.name,
                               non_interactive=state.settings.non_interactive_events,
                               models=state.models, bounds=(start, end))  # fmt: skip
        explain(conn, "aggregation: the session walk of that day",
                *compiled(conn, sa.select(sa.func.count()).select_from(walk.subquery())))  # fmt: skip
        captured: list[tuple[str, Any]] = []

        def capture(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
            if statement.lstrip().upper().startswith("SELECT"):
                captured.append((statement, params))

        sa.event.listen(engine, "before_cursor_execute", capture)
        try:
            Stats(state, conn).realtime()
        finally:
            sa.event.remove(engine, "before_cursor_execute", capture)
        for i, (statement, params) in enumerate(captured, 1):
            explain(conn, f"realtime query {i}/{len(captured)}: "
                    + " ".join(statement.split())[:150], statement, params)  # fmt: skip


def summary_of(app: Any, analytics: Any, day: dt.date) -> tuple[Any, ...]:
    with app.app_context():
        aggregate_day(analytics.state(), day)
        table = analytics.DailySummary.__table__
        with analytics.db.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.date == day)).mappings().one()
    return tuple(v for k, v in row.items() if k not in ("id", "date"))


def timed_flush(app: Any, analytics: Any, rows: int, seeds: tuple[int, ...]) -> str:
    """Rows/s of buffered flushes of ``rows`` new events (ten days ago: not in the plans)."""
    rates = []
    with app.app_context():
        state = analytics.state()
        for seed in seeds:
            fill(state, rows, 20, seed=seed, day=utcnow().date() - dt.timedelta(days=10))
            result = buffer.flush(state)
            assert result.inserted == result.rows, result
            rates.append(result.rows / result.seconds)
    return ", ".join(f"{r:,.0f}" for r in rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--events-per-day", type=int, default=20_000)
    parser.add_argument("--flush-rows", type=int, default=50_000)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    with database("postgresql") as url, stream_name() as stream:
        app, analytics = make_app(url, stream, ANALYTICS_TIMEZONE="UTC")
        with app.app_context():
            analytics.db.create_all()
            engine = analytics.db.engine
            today = utcnow().date()
            began = time.perf_counter()
            for i in range(args.days):
                day = today - dt.timedelta(days=args.days - 1 - i)
                load(engine, "analytics_event", generate(args.events_per_day, day, seed=i))
            # Whole months older than ~45 days are archived already (as a monthly
            # `flask analytics archive` would leave them).
            cutoff = dt.datetime.combine((today - dt.timedelta(days=45)).replace(day=1), dt.time())
            with engine.begin() as conn:
                conn.exec_driver_sql(
                    "WITH moved AS (DELETE FROM analytics_event WHERE created_at < %(c)s "
                    "RETURNING *) INSERT INTO analytics_event_archive SELECT * FROM moved",
                    {"c": cutoff},
                )
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
                raw = conn.exec_driver_sql("SELECT count(*) FROM analytics_event").scalar()
                archived = conn.exec_driver_sql(
                    "SELECT count(*) FROM analytics_event_archive"
                ).scalar()
            print(f"loaded {raw:,} raw + {archived:,} archived events over {args.days} days "
                  f"in {time.perf_counter() - began:.0f} s")  # fmt: skip
            recent_day = today - dt.timedelta(days=3)
            old_day = today - dt.timedelta(days=60)
            plans(app, analytics, recent_day, "unpartitioned")
            before = {d: summary_of(app, analytics, d) for d in (recent_day, old_day)}
            plain_rate = timed_flush(app, analytics, args.flush_rows, (1001, 1003))

            began = time.perf_counter()
            migration = partitioning.migrate(analytics.state())  # VACUUM (ANALYZE) included
            print(f"\nmigrated in {time.perf_counter() - began:.1f} s (monthly partitions "
                  f"{migration.first_month:%Y-%m} to {migration.last_month:%Y-%m})")  # fmt: skip
            engine.dispose()
            with engine.connect() as conn:
                parts = conn.exec_driver_sql(
                    "SELECT c.relname, c.reltuples::bigint FROM pg_inherits i "
                    "JOIN pg_class c ON c.oid = i.inhrelid WHERE c.relkind = 'r' ORDER BY 1"
                ).all()
            print("partitions (estimated rows):", ", ".join(f"{n} {r:,}" for n, r in parts))
            plans(app, analytics, recent_day, "partitioned by month")
            after = {d: summary_of(app, analytics, d) for d in (recent_day, old_day)}
            assert after == before, (before, after)
            print("\nsame daily numbers before and after:", before[recent_day])

            # Dedupe across partitions, both paths.
            event_id = str(uuid.uuid4())
            state = analytics.state()
            assert analytics.track("pageview", url="https://example.com/", event_id=event_id)
            assert (
                analytics.track("pageview", url="https://example.com/", event_id=event_id) is None
            )
            assert state.buffer is not None
            state.buffer.append([{**pipeline.base_row(pipeline.IncomingEvent(
                name="pageview", hostname="example.com", path="/", created_at=utcnow(),
                event_id=event_id)), "visitor_id": 1}])  # fmt: skip
            assert buffer.flush(state).duplicates == 1
            print("an event id sent twice directly and once buffered: stored once")
            part_rate = timed_flush(app, analytics, args.flush_rows, (1002, 1004))
            print(f"buffered flushes of {args.flush_rows:,} rows: {plain_rate} rows/s "
                  f"unpartitioned, {part_rate} rows/s partitioned (trigger)")  # fmt: skip

            # The oldest month still in analytics_event moves to the archive whole, once
            # every day of it is aggregated (retention 0: the bench does not wait for it).
            month = (today - dt.timedelta(days=40)).replace(day=1)
            state = analytics.state()
            aggregate_range(state, month, partitioning.add_months(month, 1) - dt.timedelta(days=1))
            with engine.connect() as conn:
                oid = conn.exec_driver_sql(
                    "SELECT to_regclass(%(p)s)::oid", {"p": f"analytics_event_{month:%Y_%m}"}
                ).scalar()
            began = time.perf_counter()
            result = partitioning.archive_month(state, month, older_than_days=0)
            took = time.perf_counter() - began
            moved = result.events
            with engine.connect() as conn:
                now_oid = conn.exec_driver_sql(
                    "SELECT to_regclass(%(p)s)::oid",
                    {"p": f"analytics_event_archive_{month:%Y_%m}"},
                ).scalar()
            assert result.moved_partition
            how = "the partition itself (no row copied)" if oid == now_oid else "rows copied"
            print(f"archived {month:%Y-%m}: {moved:,} events in {took * 1000:.0f} ms, {how}")
            again = summary_of(app, analytics, recent_day)
            assert again == before[recent_day]
            engine.dispose()


if __name__ == "__main__":
    main()
