"""Redis ingest buffer: append cost and flush throughput (prints figures; not a test).

    python -m bench.flush [--rows 200000] [--db sqlite,postgresql] [--repeat N]
                          [--worst-case] [--profile]

For each database: fills a stream of its own on the local Redis with ``--rows`` realistic
rows (bench/aggregate.py's generator) through ``RedisBuffer.append`` in requests of 20
rows, then times ``flush()`` into an empty ``analytics_event`` (rows/s; PostgreSQL: the
stored COPY lines straight into the table, SQLite: executemany INSERT OR IGNORE). On
PostgreSQL it then COPYs the same lines into the emptied table without Redis or the flush
code (the ceiling, measured at the same load), and with ``--worst-case`` flushes again
with a stored event id at the end of every batch (each batch's COPY fails there and the
batch goes through a temporary table and INSERT ... ON CONFLICT DO NOTHING).
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

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from bench.aggregate import COLUMNS, generate
from bench.ingest import database
from flask_analytics import Analytics, buffer
from flask_analytics.buffer import flusher

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
    #: PostgreSQL: the same rows COPYed straight into the emptied table right after (the
    #: stored lines, one transaction per flush batch, no Redis): the ceiling, same load.
    copy_rows_per_s: float | None = None
    #: PostgreSQL, ``--worst-case``: every batch's last row is stored already, so every
    #: batch's COPY fails at its end and the batch is written again the safe way.
    worst_rows_per_s: float | None = None


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


def plain_copy_rate(state: Any, n: int, batch: int, seed: int = 1) -> float:
    """Rows/s of a bare COPY of the same rows (as stored) into the emptied event table."""
    table = state.models.Event.__table__
    chunks = []
    requests = list(requests_of(n, 20, seed))
    for start in range(0, len(requests), batch):
        encoded = [state.buffer.codec.encode(rows) for rows in requests[start : start + batch]]
        header = encoded[0][0]
        assert all(h == header for h, _ in encoded)
        chunks.append(b"\n".join(line for _, lines in encoded for line in lines) + b"\n")
    columns = ", ".join(header.decode().split("\t"))
    engine = state.engine()
    with engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {table.name}")
    rows = 0
    start = time.perf_counter()
    for chunk in chunks:
        with engine.begin() as conn:
            cur = conn.connection.driver_connection.cursor()
            with cur.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
                copy.write(chunk)
            rows += cur.rowcount
    seconds = time.perf_counter() - start
    assert rows == sum(map(len, requests))
    return rows / seconds


def worst_case_rate(state: Any, n: int, batch: int) -> float:
    """Rows/s of a flush whose every batch ends with an event id stored already."""
    table = state.models.Event.__table__
    with state.engine().begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {table.name}")
    requests = list(requests_of(n, 20, seed=2))
    for rows in requests:
        if state.buffer.append(rows) is None:
            raise SystemExit("Redis refused the append (is it running?)")
    stored = [
        requests[min(i + batch, len(requests)) - 1][-1] for i in range(0, len(requests), batch)
    ]
    with state.engine().begin() as conn:
        conn.execute(sa.insert(table), stored)
    result = buffer.flush(state)
    if result.inserted != result.rows - len(stored) or result.duplicates != len(stored):
        raise SystemExit(f"worst case: {result}")
    return result.rows / result.seconds


def flush_figures(
    kind: str, url: str, n: int, batch: int, profile: bool, worst: bool = False
) -> FlushFigures:
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
            copy_rate = worst_rate = None
            if kind == "postgresql":
                copy_rate = plain_copy_rate(state, n, batch)
                if worst:
                    worst_rate = worst_case_rate(state, n, batch)
            analytics.db.engine.dispose()
    return FlushFigures(
        kind, result.rows, append_us, result.seconds, result.rows / result.seconds, result.batches,
        copy_rate, worst_rate,
    )  # fmt: skip


@dataclass
class AppendFigures:
    case: str
    us_per_request: float
    redis_bytes_per_row: float


APPEND_CASES = (
    ("one entry per request", 0, False),
    ("one entry per row (pipelined)", 0, True),
    ("one entry per request + dedupe SET NX", 3600, False),
)


def append_figures(
    url: str, requests: int, size: int, cases: tuple[tuple[str, int, bool], ...] = APPEND_CASES
) -> list[AppendFigures]:
    """One entry per request vs one entry per row; early dedupe on (no database writes)."""
    from redis import Redis

    figures = []
    for case, dedupe, per_row in cases:
        with stream_name() as stream:
            app, analytics = make_app(url, stream, ANALYTICS_BUFFER_DEDUPE_TTL=dedupe)
            state = analytics.state(app)
            buf = state.buffer
            assert buf is not None
            batches = list(requests_of(requests * size, size, seed=7))
            append_script = buf.redis.register_script(buffer.APPEND_SCRIPT)
            connection = Redis.from_url(REDIS_URL)
            before = int(connection.info("memory")["used_memory"])
            start = time.perf_counter()
            for rows in batches:
                if per_row:
                    pipe = buf.redis.pipeline(transaction=False)
                    for row in rows:
                        columns, encoded = buf.codec.encode([row])
                        append_script(
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
    parser.add_argument("--repeat", type=int, default=1, help="flushes per database")
    parser.add_argument("--writers", type=int, default=buffer.WRITERS,
                        help="batches written at once on PostgreSQL (buffer.flusher.WRITERS)")  # fmt: skip
    parser.add_argument("--worst-case", action="store_true",
                        help="PostgreSQL: also flush with a stored event id ending every batch")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    flusher.WRITERS = args.writers
    print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; {args.rows:,} rows; "
          f"{args.writers} writer(s) on PostgreSQL")  # fmt: skip
    flushes = []
    for kind in args.db.split(","):
        for _ in range(args.repeat):
            with database(kind) as url:
                f = flush_figures(kind, url, args.rows, args.batch, args.profile, args.worst_case)
            flushes.append(f)
            reference = ""
            if f.copy_rows_per_s is not None:
                reference = (
                    f"; plain COPY of the same rows right after: {f.copy_rows_per_s:,.0f} rows/s"
                )
            if f.worst_rows_per_s is not None:
                reference += (
                    f"; every batch ending with a stored id: {f.worst_rows_per_s:,.0f} rows/s"
                )
            print(
                f"{kind:<11} flush {f.rows:,} rows in {f.flush_seconds:.2f} s = "
                f"{f.rows_per_s:,.0f} rows/s ({f.batches} transactions){reference}; "
                f"append {f.append_us_per_request:.0f} µs per 20-row request; "
                f"load {os.getloadavg()[0]:.1f}", flush=True,
            )  # fmt: skip
    appends = []
    singles = []  # requests of one event, what the tracker mostly sends
    if args.append_requests:
        with database("sqlite") as url:
            appends = append_figures(url, args.append_requests, 20)
            singles = append_figures(
                url, args.append_requests * 5, 1, (APPEND_CASES[0], APPEND_CASES[2])
            )
    for size, figures in ((20, appends), (1, singles)):
        for a in figures:
            print(
                f"append, {size:>2} row{'s' if size > 1 else ' '}: {a.case:<38} "
                f"{a.us_per_request:>7.0f} µs/request  {a.redis_bytes_per_row:>6.0f} Redis bytes/row"
            )
    if args.json:
        print(json.dumps({"flush": [asdict(f) for f in flushes],
                          "append": [asdict(a) for a in appends],
                          "append_one_row": [asdict(a) for a in singles]}))  # fmt: skip


if __name__ == "__main__":
    main()
