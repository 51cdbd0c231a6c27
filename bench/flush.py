"""Redis ingest buffer: append cost and flush throughput (prints figures; not a test).

    python -m bench.flush [--rows 200000] [--db sqlite,postgresql] [--profile]

For each database: fills a stream of its own on the local Redis with ``--rows`` realistic
rows (bench/aggregate.py's generator) through ``RedisBuffer.append`` in requests of 20
rows, then times ``flush()`` into an empty ``analytics_event`` (rows/s; PostgreSQL: COPY
into a temporary table + INSERT ... ON CONFLICT; SQLite: executemany INSERT OR IGNORE).
It also measures, per request, the append of one entry vs one entry per row (pipelined),
and the optional early dedupe (SET NX per event id), with Redis memory per buffered row.
``--profile`` prints where the flush spends its time (cProfile, top functions).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import io
import json
import os
import pstats
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from flask import Flask  # noqa: E402
from flask_sqlalchemy import SQLAlchemy  # noqa: E402

from bench.aggregate import COLUMNS, generate  # noqa: E402
from bench.ingest import database  # noqa: E402
from flask_analytics import Analytics, buffer  # noqa: E402

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
DAY = dt.date(2026, 1, 15)


@dataclass
class FlushFigures:
    database: str
    rows: int
    append_us_per_request: float
    flush_seconds: float
    rows_per_s: float
    batches: int


def make_app(url: str, stream: str, **config: Any) -> tuple[Flask, Analytics]:
    app = Flask("bench_flush")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=url,
        ANALYTICS_INGEST_BUFFER="redis",
        ANALYTICS_BUFFER_REDIS_URL=REDIS_URL,
        ANALYTICS_BUFFER_STREAM=stream,
        ANALYTICS_BUFFER_MAX_LEN=None,
        **config,
    )
    db = SQLAlchemy()
    db.init_app(app)
    return app, Analytics(app, db=db)


def rows_of(n: int, seed: int = 1, day: dt.date = DAY) -> Iterator[dict[str, Any]]:
    for values in generate(n, day, seed):
        row = dict(zip(COLUMNS, values, strict=True))
        row["props"] = None
        yield row


def requests_of(
    n: int, size: int, seed: int = 1, day: dt.date = DAY
) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows_of(n, seed, day):
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@contextlib.contextmanager
def stream_name() -> Iterator[str]:
    from redis import Redis

    name = f"fa-bench-flush-{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        connection = Redis.from_url(REDIS_URL)
        keys = list(connection.scan_iter(match=f"{name}*", count=10_000))
        for i in range(0, len(keys), 10_000):
            connection.delete(*keys[i : i + 10_000])
        connection.close()


def fill(state: Any, n: int, size: int, seed: int = 1, day: dt.date = DAY) -> float:
    """Append about ``n`` rows (of ``day``) in requests of ``size``; µs per request."""
    requests = list(requests_of(n, size, seed, day))
    start = time.perf_counter()
    for rows in requests:
        if state.buffer.append(rows) is None:
            raise SystemExit("Redis refused the append (is it running?)")
    return (time.perf_counter() - start) / len(requests) * 1e6


def flush_figures(kind: str, url: str, n: int, batch: int, profile: bool) -> FlushFigures:
    with stream_name() as stream:
        app, analytics = make_app(url, stream, ANALYTICS_BUFFER_BATCH=batch)
        with app.app_context():
            analytics.db.create_all()
            state = analytics.state()
            append_us = fill(state, n, 20)
            profiler = cProfile.Profile() if profile else None
            if profiler is not None:
                profiler.enable()
            result = buffer.flush(state)
            if profiler is not None:
                profiler.disable()
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(18)
                print(f"-- {kind} flush profile (own time) --\n{out.getvalue()}")
            stored = analytics.db.session.scalar(
                sa.select(sa.func.count()).select_from(analytics.Event.__table__)
            )
            if stored != result.rows or result.inserted != result.rows:
                raise SystemExit(f"flush stored {stored} of {result.rows} rows")
            analytics.db.session.remove()
            analytics.db.engine.dispose()
    return FlushFigures(
        kind, result.rows, append_us, result.seconds, result.rows / result.seconds, result.batches
    )


@dataclass
class AppendFigures:
    case: str
    us_per_request: float
    redis_bytes_per_row: float


def append_figures(url: str, requests: int, size: int) -> list[AppendFigures]:
    """One entry per request vs one entry per row; early dedupe on (no database writes)."""
    from redis import Redis

    figures = []
    for case, dedupe, per_row in (
        ("one entry per request", 0, False),
        ("one entry per row (pipelined)", 0, True),
        ("one entry per request + dedupe SET NX", 3600, False),
    ):
        with stream_name() as stream:
            app, analytics = make_app(url, stream, ANALYTICS_BUFFER_DEDUPE_TTL=dedupe)
            state = analytics.state(app)
            buf = state.buffer
            assert buf is not None
            batches = list(requests_of(requests * size, size, seed=7))
            connection = Redis.from_url(REDIS_URL)
            before = int(connection.info("memory")["used_memory"])
            start = time.perf_counter()
            for rows in batches:
                if per_row:
                    pipe = buf.redis.pipeline(transaction=False)
                    for row in rows:
                        columns, encoded = buf.codec.encode([row])
                        buf._append(
                            keys=[buf.stream, buf.flag_key], args=[0, 0, 0, 1, columns, *encoded],
                            client=pipe,
                        )  # fmt: skip
                    pipe.execute()
                else:
                    buf.append(rows)
            elapsed = time.perf_counter() - start
            used = int(connection.info("memory")["used_memory"]) - before
            connection.close()
            figures.append(
                AppendFigures(case, elapsed / len(batches) * 1e6, used / (requests * size))
            )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000, help="entries per flush transaction")
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--append-requests", type=int, default=2_000,
                        help="requests per append case (0: skip them)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; {args.rows:,} rows")
    flushes = []
    for kind in args.db.split(","):
        with database(kind) as url:
            f = flush_figures(kind, url, args.rows, args.batch, args.profile)
        flushes.append(f)
        print(
            f"{kind:<11} flush {f.rows:,} rows in {f.flush_seconds:.2f} s = "
            f"{f.rows_per_s:,.0f} rows/s ({f.batches} transactions); "
            f"append {f.append_us_per_request:.0f} µs per 20-row request", flush=True,
        )  # fmt: skip
    appends = []
    if args.append_requests:
        with database("sqlite") as url:
            appends = append_figures(url, args.append_requests, 20)
    for a in appends:
        print(
            f"append, 20 rows: {a.case:<38} {a.us_per_request:>7.0f} µs/request  "
            f"{a.redis_bytes_per_row:>6.0f} Redis bytes/row"
        )
    if args.json:
        print(json.dumps({"flush": [asdict(f) for f in flushes],
                          "append": [asdict(a) for a in appends]}))  # fmt: skip


if __name__ == "__main__":
    main()
