"""Benchmark of the page-experience report (prints figures; not a test).

Loads ``--days`` days of ``--events`` events each (``bench/aggregate.py``'s traffic:
pageviews, engagement events with time and scroll depth, some custom events; about 40 %
of them also send a ``web_vitals`` event here) into a throwaway database, aggregates
every day, then times the page-experience report of the whole range

  (a) from the daily rollup (``analytics_daily_page_experience``, as the dashboard
      reads it), and
  (b) from raw events (``Stats(raw=True)``: what every request read before the rollup),

and checks both answer the same. Prints the rollup's rows against the events.

    python bench/experience.py --days 30 --events 20000 --db both
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.aggregate import BIG_DAY, COLUMNS, generate, load, make_app
from bench.dashboard import database
from flask_analytics.reports import DateRange, Stats
from flask_analytics.reports.experience import Experience, page_experience


def with_vitals(rows: Iterator[tuple[Any, ...]], seed: int) -> Iterator[tuple[Any, ...]]:
    """``rows`` with a ``props`` column, and a ``web_vitals`` event after 40 % of pageviews
    (LCP, TTFB in whole ms, INP in steps of 8 ms, CLS with three decimals)."""
    rnd = random.Random(seed)
    name_at = COLUMNS.index("name")
    for row in rows:
        yield (*row, None)
        if row[name_at] == "pageview" and rnd.random() < 0.4:
            props = {
                "lcp": int(rnd.lognormvariate(7.6, 0.5)),
                "ttfb": int(rnd.lognormvariate(6.2, 0.6)),
                "cls": round(rnd.expovariate(12), 3),
            }
            if rnd.random() < 0.7:
                props["inp"] = 8 * int(rnd.lognormvariate(3.5, 0.6))
            event_id = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
            yield (event_id, row[1], "web_vitals", *row[3:], json.dumps(props))


def ask(state: Any, engine: sa.Engine, rng: DateRange, now: dt.datetime, raw: bool) -> Any:
    with engine.connect() as conn:
        stats = Stats(state, conn, now=now, raw=raw)
        try:
            began = time.perf_counter()
            found: Experience = page_experience(stats, rng, limit=10)
            return time.perf_counter() - began, found
        finally:
            stats.close()


def bench(url: str, label: str, days: int, events: int, repeat: int) -> None:
    print(f"\n== {label} ==", flush=True)
    app, analytics = make_app(url)
    with app.app_context():
        engine = analytics.db.engine
        analytics.db.create_all()
        dates = [BIG_DAY - dt.timedelta(days=n) for n in range(days - 1, -1, -1)]
        loaded = 0
        for n, day in enumerate(dates):
            rows = with_vitals(generate(events, day, seed=n), seed=10_000 + n)
            loaded += load(engine, "analytics_event", rows, (*COLUMNS, "props"))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
        began = time.perf_counter()
        for day in dates:
            analytics.aggregate(day)
        took = time.perf_counter() - began
        table = analytics.DailyPageExperience.__table__
        with engine.connect() as conn:
            stored = int(conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)
        print(f"{loaded:,} events over {days} days, aggregated in {took:.1f} s")
        print(f"page-experience rows: {stored:,} ({stored / loaded:.2f} per event)")
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                sizes = [
                    int(conn.scalar(sa.select(sa.func.pg_total_relation_size(name))) or 0)
                    for name in (table.name, analytics.Event.__table__.name)
                ]
            print(
                f"on disk with indexes: {sizes[0] / 2**20:.1f} MiB, raw events "
                f"{sizes[1] / 2**20:.1f} MiB ({sizes[0] / sizes[1]:.2f} x)"
            )
        state = analytics.state()
        rng = DateRange(dates[0], dates[-1])
        now = dt.datetime.combine(BIG_DAY + dt.timedelta(days=2), dt.time(12))
        times: dict[bool, list[float]] = {False: [], True: []}
        answers = {}
        for _ in range(repeat):
            for raw in (False, True):
                seconds, answers[raw] = ask(state, engine, rng, now, raw)
                times[raw].append(seconds)
        assert answers[False] == answers[True], "the rollup and raw paths disagree"
        rollup, raw_path = (statistics.median(times[r]) for r in (False, True))
        print(f"report of the {days} days from the rollup: {rollup:.3f} s (median)")
        print(f"the same from raw events: {raw_path:.3f} s ({raw_path / rollup:.2f} x)")
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--events", type=int, default=20_000, help="events per day")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each (median)")
    parser.add_argument(
        "--postgres-admin-url",
        default=os.environ.get(
            "ANALYTICS_TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    kinds = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    for kind in kinds:
        with database(kind, args.postgres_admin_url) as url:
            label = "SQLite" if kind == "sqlite" else "PostgreSQL"
            bench(url, label, args.days, args.events, args.repeat)


if __name__ == "__main__":
    main()
