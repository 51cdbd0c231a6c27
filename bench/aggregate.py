"""Benchmark of the daily aggregation (prints figures; not a test).

Loads N events of one local day (~N/5 visitors, ~500 paths, referrers, UTM, custom and
engagement events) into a throwaway database, then times

  (a) ``aggregate_day`` of that day (the nine daily tables, ``analytics_session`` and
      the page-experience distribution; the events carry no web vitals), and
  (b) one ``SELECT COUNT(*), COUNT(DISTINCT visitor_id)`` over the same day,

and prints both and their ratio (goals: <= 3 on PostgreSQL, <= 4 on SQLite). It also
aggregates a 10k-event day and the N-event day each in a fresh process and prints their
peak memory (RSS and Python heap): the database does the work, so they should match.

    python bench/aggregate.py --events 1000000 --db both
    python bench/aggregate.py --events 100000 --db sqlite --visitor-index

PostgreSQL: a database of its own is created on the server of ``--postgres-admin-url``
(default: the local ``test`` database's server) and dropped at the end. SQLite: a
temporary file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_analytics import Analytics
from flask_analytics.core.clock import day_bounds
from flask_analytics.lifecycle.aggregate import aggregate_day

BIG_DAY = dt.date(2026, 1, 15)
SMALL_DAY = dt.date(2026, 1, 14)
SMALL_EVENTS = 10_000
COLUMNS = (
    "event_id", "created_at", "name", "hostname", "path", "referrer", "referrer_host",
    "channel", "source", "utm_source", "utm_medium", "utm_campaign", "utm_term",
    "utm_content", "device_type", "browser", "os", "country", "visitor_id", "screen_width",
    "engagement_ms", "scroll_depth",
)  # fmt: skip
SOURCES = [
    (None, None, "Direct", None),
    ("https://www.google.com/", "www.google.com", "Organic Search", "Google"),
    ("https://www.bing.com/", "www.bing.com", "Organic Search", "Bing"),
    ("https://news.ycombinator.com/", "news.ycombinator.com", "Referral", "Hacker News"),
    ("https://t.co/", "t.co", "Organic Social", "Twitter"),
    ("https://www.reddit.com/", "www.reddit.com", "Organic Social", "Reddit"),
    ("https://blog.example.org/post", "blog.example.org", "Referral", "blog.example.org"),
]
UTMS = [
    (None, None, None, None, None),
    ("newsletter", "email", "spring-sale", None, None),
    ("google", "cpc", "brand", "analytics", "ad-1"),
    ("twitter", "social", "launch", None, "thread"),
]
DEVICES = [
    ("desktop", "Chrome", "Windows", 1920),
    ("desktop", "Firefox", "Linux", 1440),
    ("desktop", "Safari", "macOS", 1680),
    ("mobile", "Chrome", "Android", 412),
    ("mobile", "Safari", "iOS", 390),
    ("tablet", "Safari", "iPadOS", 820),
]
COUNTRIES = ["US", "DE", "FR", "GB", "IN", "BR", "JP", "CA", "NL", None]


def generate(n: int, day: dt.date, seed: int) -> Iterator[tuple[Any, ...]]:
    """About ``n`` realistic events of ``day`` (UTC): visitors with 1-3 visits of 1-8 pages."""
    rnd = random.Random(seed)
    paths = [f"/docs/{i}" for i in range(400)] + [f"/blog/post-{i}" for i in range(99)] + ["/"]
    weights = [1 / (i + 1) for i in range(len(paths))]  # a few popular pages, a long tail
    midnight = dt.datetime.combine(day, dt.time(0))
    made = 0
    while made < n:
        visitor = rnd.getrandbits(63) - 2**62
        device, browser, os_name, width = rnd.choice(DEVICES)
        country = rnd.choice(COUNTRIES)
        t = midnight + dt.timedelta(seconds=rnd.uniform(0, 86_000))
        for _ in range(rnd.choice((1, 1, 1, 2, 2))):
            referrer, host, channel, source = rnd.choice(SOURCES)
            utm = rnd.choice(UTMS) if rnd.random() < 0.2 else UTMS[0]
            for page in range(rnd.choice((1, 1, 2, 2, 3, 4, 6))):
                path = rnd.choices(paths, weights)[0]
                row_ref = (referrer, host) if page == 0 else (None, None)
                yield (
                    str(uuid.UUID(int=rnd.getrandbits(128), version=4)), t, "pageview",
                    "example.com", path, *row_ref, channel, source, *utm, device, browser,
                    os_name, country, visitor, width, None, None,
                )  # fmt: skip
                made += 1
                t += dt.timedelta(seconds=rnd.uniform(5, 240))
                if rnd.random() < 0.35:
                    yield (
                        str(uuid.UUID(int=rnd.getrandbits(128), version=4)), t, "engagement",
                        "example.com", path, None, None, channel, source, *utm, device,
                        browser, os_name, country, visitor, width,
                        rnd.randint(3_000, 200_000), rnd.randint(10, 100),
                    )  # fmt: skip
                    made += 1
                if rnd.random() < 0.05:
                    yield (
                        str(uuid.UUID(int=rnd.getrandbits(128), version=4)), t,
                        rnd.choice(("signup", "outbound", "download", "form_submit")),
                        "example.com", path, None, None, channel, source, *utm, device,
                        browser, os_name, country, visitor, width, None, None,
                    )  # fmt: skip
                    made += 1
            t += dt.timedelta(seconds=rnd.uniform(1_900, 7_200))  # next visit
            if t.date() != day:
                break


def make_app(url: str) -> tuple[Flask, Analytics]:
    app = Flask("bench_aggregate")
    app.config.update(SQLALCHEMY_DATABASE_URI=url, ANALYTICS_TIMEZONE="UTC")
    if url.startswith("postgresql"):
        # One pooled connection: the scan and the aggregation run in the same server
        # process, whose CPU time is read from /proc; no parallel workers, whose CPU
        # time could not be.
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            "pool_size": 1,
            "max_overflow": 0,
            "connect_args": {"options": "-c max_parallel_workers_per_gather=0"},
        }
    db = SQLAlchemy()
    db.init_app(app)
    return app, Analytics(app, db=db)


class CpuClock:
    """CPU seconds used so far by this process plus, on PostgreSQL, its server process."""

    def __init__(self, engine: sa.Engine) -> None:
        self.stat: Path | None = None
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                pid = conn.scalar(sa.text("SELECT pg_backend_pid()"))
            self.stat = Path(f"/proc/{pid}/stat")
            if not self.stat.exists():
                self.stat = None  # server on another machine: own CPU time only

    def __call__(self) -> float:
        used = time.process_time()
        if self.stat is not None:
            fields = self.stat.read_text().rsplit(")", 1)[1].split()
            used += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return used


def load(
    engine: sa.Engine,
    table: str,
    rows: Iterator[tuple[Any, ...]],
    columns: Sequence[str] = COLUMNS,
) -> int:
    """Bulk-load ``columns`` (created_at second): COPY on PostgreSQL, big executemany
    transactions on SQLite."""
    count = 0
    if engine.dialect.name == "postgresql":
        raw: Any = engine.raw_connection()
        try:
            with (
                raw.cursor() as cur,
                cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
                    count += 1
            raw.commit()
        finally:
            raw.close()
        return count
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    raw = engine.raw_connection()
    try:
        batch: list[tuple[Any, ...]] = []
        for row in rows:
            # SQLAlchemy's SQLite DateTime text format, so created_at compares as stored.
            batch.append((row[0], row[1].strftime("%Y-%m-%d %H:%M:%S.%f"), *row[2:]))
            if len(batch) == 100_000:
                raw.cursor().executemany(sql, batch)
                raw.commit()
                count += len(batch)
                batch = []
        raw.cursor().executemany(sql, batch)
        raw.commit()
        count += len(batch)
    finally:
        raw.close()
    return count


def timed(func: Any) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def scan(engine: sa.Engine, table: sa.Table, day: dt.date) -> tuple[int, int]:
    start, end = day_bounds(ZoneInfo("UTC"), day)
    query = sa.select(sa.func.count(), sa.func.count(sa.distinct(table.c.visitor_id))).where(
        table.c.created_at >= start, table.c.created_at < end
    )
    with engine.connect() as conn:
        row = conn.execute(query).one()
    return int(row[0]), int(row[1])


def per_page_visitors(engine: sa.Engine, table: sa.Table, day: dt.date) -> int:
    """One statement any exact aggregation needs: distinct visitors of each page (the
    page table's ``visitors``), over the day's pageviews. Returns the number of pages."""
    start, end = day_bounds(ZoneInfo("UTC"), day)
    query = (
        sa.select(table.c.path, sa.func.count(sa.distinct(table.c.visitor_id)))
        .where(table.c.created_at >= start, table.c.created_at < end, table.c.name == "pageview")
        .group_by(table.c.path)
    )
    with engine.connect() as conn:
        return len(conn.execute(query).all())


def statement_times(engine: sa.Engine, run: Any) -> list[tuple[float, str]]:
    """Seconds of each statement ``run()`` executes on ``engine``, longest first, each
    labelled by the table it inserts into (else its first words)."""
    times: list[tuple[float, str]] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info["bench_began"] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        took = time.perf_counter() - conn.info.pop("bench_began")
        words = statement.split()
        # SQLite puts an INSERT's CTEs first ("WITH ... INSERT INTO table ...").
        into = next(
            (i for i in range(len(words) - 2) if words[i : i + 2] == ["INSERT", "INTO"]), None
        )
        label = words[into + 2] if into is not None else " ".join(words[:3])
        times.append((took, label))

    sa.event.listen(engine, "before_cursor_execute", before)
    sa.event.listen(engine, "after_cursor_execute", after)
    try:
        run()
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)
        sa.event.remove(engine, "after_cursor_execute", after)
    return sorted(times, reverse=True)


def writes_beside(
    engine: sa.Engine, table: sa.Table, run: Any, every: float = 0.02
) -> tuple[list[float], float]:
    """What a collect-style writer waits while ``run()`` aggregates: one event inserted
    and committed every ``every`` seconds on a connection of its own (the app's busy
    timeout on SQLite), on another day. Returns each insert's seconds and run()'s."""
    waits: list[float] = []
    done = threading.Event()
    rows = generate(10**9, SMALL_DAY - dt.timedelta(days=1), seed=3)

    # An engine of its own (the benchmark's has one pooled connection), with the busy
    # timeout the extension gives SQLite connections.
    writer_engine = sa.create_engine(engine.url, poolclass=sa.pool.NullPool)
    if writer_engine.dialect.name == "sqlite":
        sa.event.listen(
            writer_engine,
            "connect",
            lambda dbapi_conn, _: dbapi_conn.execute("PRAGMA busy_timeout = 15000"),
        )

    def write() -> None:
        with writer_engine.connect() as conn:
            while not done.is_set():
                row = dict(zip(COLUMNS, next(rows), strict=True))
                began = time.perf_counter()
                conn.execute(sa.insert(table), row)
                conn.commit()
                waits.append(time.perf_counter() - began)
                done.wait(every)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        began = time.perf_counter()
        run()
        took = time.perf_counter() - began
    finally:
        done.set()
        writer.join()
        writer_engine.dispose()
    return waits, took


def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def memory_child(url: str, day: str) -> None:
    """In a fresh process: aggregate one day, print its peak RSS and Python heap as JSON.

    RSS is sampled every 5 ms during the run (SQLite works inside this process, so its
    caches and sorter count too); the Python heap peak comes from tracemalloc.
    """
    app, analytics = make_app(url)
    with app.app_context():
        analytics.db.engine.connect().close()  # pool + dialect set up before measuring
        before = _rss_kib()
        peak = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.005):
                peak[0] = max(peak[0], _rss_kib())

        sampler = threading.Thread(target=sample)
        sampler.start()
        tracemalloc.start()
        result = aggregate_day(analytics.state(), dt.date.fromisoformat(day))
        _, heap_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        done.set()
        sampler.join()
        peak[0] = max(peak[0], _rss_kib())
    print(
        json.dumps(
            {
                "events": result.source_events,
                "rss_before_kib": before,
                "rss_peak_kib": peak[0],
                "heap_peak_kib": heap_peak // 1024,
            }
        )
    )


def peak_memory(url: str, day: dt.date) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", url, day.isoformat()],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    parsed: dict[str, int] = json.loads(out.strip().splitlines()[-1])
    return parsed


def bench(url: str, label: str, events: int, repeat: int, visitor_index: bool) -> None:
    print(f"\n== {label} ==", flush=True)
    app, analytics = make_app(url)
    with app.app_context():
        engine = analytics.db.engine
        analytics.db.create_all()
        table: sa.Table = analytics.Event.__table__
        if visitor_index:
            with engine.begin() as conn:
                conn.exec_driver_sql(
                    "CREATE INDEX ix_bench_visitor_time ON analytics_event (visitor_id, created_at)"
                )
        t0 = time.perf_counter()
        big = load(engine, table.name, generate(events, BIG_DAY, seed=1))
        small = load(engine, table.name, generate(SMALL_EVENTS, SMALL_DAY, seed=2))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
        print(f"loaded {big:,} + {small:,} events in {time.perf_counter() - t0:.1f} s")
        state = analytics.state()
        count, visitors = scan(engine, table, BIG_DAY)
        print(f"day {BIG_DAY}: {count:,} events, {visitors:,} visitors")

        clock = CpuClock(engine)
        scans, aggs, scans_cpu, aggs_cpu = [], [], [], []
        results: list[Any] = []
        for _ in range(repeat):
            wall, cpu = time.perf_counter(), clock()
            scan(engine, table, BIG_DAY)
            scans.append(time.perf_counter() - wall)
            scans_cpu.append(clock() - cpu)
            wall, cpu = time.perf_counter(), clock()
            results.append(aggregate_day(state, BIG_DAY))
            aggs.append(time.perf_counter() - wall)
            aggs_cpu.append(clock() - cpu)
        result = results[-1]
        print(f"rows written: {dict(result.rows)}")
        print(f"load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        for label, values in (
            ("scan COUNT(*), COUNT(DISTINCT visitor_id), wall", scans),
            ("aggregate_day (9 tables), wall               ", aggs),
            ("scan COUNT(*), COUNT(DISTINCT visitor_id), CPU ", scans_cpu),
            ("aggregate_day (9 tables), CPU                ", aggs_cpu),
        ):
            print(f"{label}: " + ", ".join(f"{v:.2f}" for v in values) + " s")
        wall_ratio = statistics.median(aggs) / statistics.median(scans)
        cpu_ratio = statistics.median(aggs_cpu) / statistics.median(scans_cpu)
        print(f"ratio aggregate/scan (medians): wall {wall_ratio:.2f}, CPU {cpu_ratio:.2f}")
        scan_median = statistics.median(scans)
        pages = [timed(lambda: per_page_visitors(engine, table, BIG_DAY)) for _ in range(repeat)]
        print(
            "one GROUP BY path, COUNT(DISTINCT visitor_id) over the day's pageviews (a "
            f"statement any exact aggregation needs): {statistics.median(pages):.2f} s, "
            f"{statistics.median(pages) / scan_median:.2f} x the scan"
        )
        print("where aggregate_day's time goes (one run; seconds, x the scan):")
        for took, label in statement_times(engine, lambda: aggregate_day(state, BIG_DAY))[:8]:
            print(f"  {took:7.3f} s {took / scan_median:6.2f} x  {label}")
        waits, took = writes_beside(engine, table, lambda: aggregate_day(state, BIG_DAY))
        print(
            f"writer beside aggregate_day ({took:.2f} s): {len(waits)} single-event inserts, "
            f"longest {max(waits) * 1000:.0f} ms, median {statistics.median(waits) * 1000:.1f} ms"
        )
        engine.dispose()

    for day in (SMALL_DAY, BIG_DAY):
        mem = peak_memory(url, day)
        print(
            f"aggregating {mem['events']:>9,} events in a fresh process: RSS "
            f"{mem['rss_before_kib'] / 1024:.0f} MiB before, peak "
            f"{mem['rss_peak_kib'] / 1024:.0f} MiB during the run "
            f"(+{(mem['rss_peak_kib'] - mem['rss_before_kib']) / 1024:.1f} MiB); "
            f"Python heap peak {mem['heap_peak_kib'] / 1024:.1f} MiB"
        )
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each (median)")
    parser.add_argument(
        "--visitor-index",
        action="store_true",
        help="also index analytics_event (visitor_id, created_at) before loading",
    )
    parser.add_argument(
        "--postgres-admin-url",
        default=os.environ.get(
            "ANALYTICS_TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--memory-child", nargs=2, metavar=("URL", "DAY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(*args.memory_child)
        return
    print(f"{args.events:,} events, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            bench(f"sqlite:///{tmp}/bench.db", "SQLite", args.events, args.repeat,
                  args.visitor_index)  # fmt: skip
    if args.db in ("postgresql", "both"):
        admin = sa.create_engine(args.postgres_admin_url, isolation_level="AUTOCOMMIT")
        name = f"fa_bench_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            url = sa.make_url(args.postgres_admin_url).set(database=name)
            bench(url.render_as_string(hide_password=False), "PostgreSQL", args.events,
                  args.repeat, args.visitor_index)  # fmt: skip
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()


if __name__ == "__main__":
    main()
