"""Collect throughput under gunicorn, driven by wrk, beside a bare Flask endpoint.

    python -m bench.ingest [--duration 10] [--connections 16] [--db sqlite,postgresql]
                           [--buffer direct,redis] [--rate-limit RATE] [--json]

For each database and each ingest mode it starts gunicorn (2 workers; --threads N for
gthread) on a fresh database and measures, in one run: the bare endpoint's requests/s;
the bare endpoint plus one autocommitted INSERT into analytics_event (direct mode) or one
Redis XADD (buffered mode), the floor of any endpoint that stores, or hands over, each
request before answering; one-event collect requests/s; and batches of 20 (events/s,
counted from the rows actually stored). With ``--buffer redis`` (ANALYTICS_INGEST_BUFFER = "redis") a `flask analytics
flush --loop` process runs beside gunicorn, on the same machine, and events/s are end to
end: rows stored in the database over the time from the first request until the buffer
is empty again. It also measures the pipeline's CPU time per event with a warm
user-agent cache, in process. Needs `wrk` (Debian package), gunicorn (dev extra) and,
for the buffered cases, Redis (``BENCH_REDIS_URL``, default the local one).

``--rate-limit 100000000/minute`` counts every request against the rate limit (never
refusing), as a default deployment does: in Redis (the buffer's when buffered, where the
count shares the append's round trip; ``BENCH_REDIS_URL`` in direct mode). 'vs floor'
divides collect's req/s by the floor's (bare + INSERT or bare + XADD) of the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "%(ua)s"
local n = 0
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
request = function()
  n = n + 1
  local body = string.format(%(template)s, %(args)s)
  return wrk.format(nil, "%(path)s", nil, body)
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(proc: subprocess.Popen[bytes], port: int) -> None:
    """Wait (30 s at most) until the server ``proc`` started accepts on ``port``."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("gunicorn did not start")


@contextlib.contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"fa_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.engine.make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def create_tables(url: str) -> None:
    os.environ["BENCH_DATABASE_URL"] = url
    from bench.ingest_app import create_app

    app = create_app()
    with app.app_context():
        app.extensions["sqlalchemy"].create_all()
        app.extensions["sqlalchemy"].engine.dispose()


def count_events(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM analytics_event")).scalar_one()
    engine.dispose()
    return int(n)


@contextlib.contextmanager
def gunicorn(
    url: str, workers: int, threads: int, extra_env: dict[str, str] | None = None
) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "BENCH_DATABASE_URL": url, **(extra_env or {})}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            str(workers),
            "--threads",
            str(threads),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "bench.ingest_app:create_app()",
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    wait_for_port(proc, port)
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def wrk(base: str, path: str, batch: int, duration: int, connections: int) -> dict[str, float]:
    # Each request gets unique event ids so that nothing is dropped as a duplicate.
    one = '{"name":"pageview","url":"http://127.0.0.1/page/%d","event_id":"%s","screen_width":1280}'
    events = ",".join([one] * batch)
    args = ", ".join(
        f"n % 500, string.format('%08x-%04x-4000-8000-%012x', {i}, tid, n)" for i in range(batch)
    )
    script = WRK_SCRIPT % {
        "ua": UA,
        "path": path,
        "template": json.dumps(f"[{events}]"),
        "args": args,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(
            ["wrk", "-t", "2", "-c", str(connections), "-d", f"{duration}s", "-s", f.name, base],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(f.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {
        "rps": rps,
        "requests": total,
        "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
    }


def pipeline_cpu_per_event(n: int = 20_000, **config: Any) -> float:
    """Microseconds of CPU per event for parse + every pipeline step (warm cache), no write.
    Each event has a request of its own, so put_geo looks its country up every time."""
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    from flask_analytics import Analytics
    from flask_analytics.ingest import pipeline
    from flask_analytics.ingest.payload import Limits, parse_batch

    with tempfile.TemporaryDirectory() as tmp:
        app = Flask("cpu")
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp}/cpu.db"
        app.config.update(config)
        db = SQLAlchemy(app)
        ext = Analytics(app, db=db)
        with app.app_context():
            db.create_all()
            state = ext.state()
            body = [
                {
                    "name": "pageview",
                    "url": f"https://example.com/p/{i % 300}?utm_source=news",
                    "referrer": [
                        "https://www.google.com/",
                        "https://news.ycombinator.com/item",
                        None,
                    ][i % 3],
                    "screen_width": 1280,
                    "event_id": str(uuid.uuid4()),
                }
                for i in range(n)
            ]
            info = pipeline.RequestInfo(
                ip="203.0.113.9",
                user_agent=UA,
                request_host="example.com",
                accept_language="en-US,en;q=0.9,de;q=0.8",
            )
            limits = Limits(max_offset_ms=state.settings.max_offset_ms)
            from flask_analytics.core.clock import utcnow

            def run(events: list[dict[str, object]]) -> None:
                for ev in parse_batch(events, limits, utcnow()).events:
                    c = pipeline.Candidate(
                        incoming=ev,
                        info=pipeline.RequestInfo(
                            **{
                                k: getattr(info, k)
                                for k in ("ip", "user_agent", "request_host", "accept_language")
                            }
                        ),
                    )
                    c.row = pipeline.base_row(ev)
                    for step in state.steps:
                        if step(state, c) is not None:
                            raise AssertionError(f"dropped by {step.__name__}")

            run(body[:100])  # warm the user agent cache and today's salt
            start = time.process_time()
            run(body)
            elapsed = time.process_time() - start
            db.engine.dispose()
    return elapsed / n * 1e6


def country_lookup_per_event(n: int = 100_000) -> float:
    """Microseconds of CPU per built-in country lookup (put_geo's cost per event), over
    distinct anonymized addresses: half IPv4 /24s, half IPv6 /48s."""
    import random

    from flask_analytics.ingest.geo import builtin_country

    rng = random.Random(7)
    v4 = [
        f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.0"
        for _ in range(n // 2)
    ]
    v6 = [
        f"2{rng.randrange(4096):03x}:{rng.randrange(65536):x}:{rng.randrange(65536):x}::"
        for _ in range(n // 2)
    ]
    addresses = v4 + v6
    builtin_country(addresses[0])  # import the table
    start = time.process_time()
    found = sum(1 for ip in addresses if builtin_country(ip) is not None)
    elapsed = time.process_time() - start
    assert found, "no address has a country: is iptocc installed?"
    return elapsed / len(addresses) * 1e6


REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


@contextlib.contextmanager
def flusher(url: str, stream: str) -> Iterator[None]:
    """`flask analytics flush --loop` on the bench app's database and stream."""
    env = {**os.environ, "BENCH_DATABASE_URL": url, "BENCH_INGEST_BUFFER": "redis",
           "BENCH_BUFFER_STREAM": stream}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "bench.ingest_app:create_app", "analytics",
         "flush", "--loop"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def wait_drained(stream: str, timeout: float = 600) -> None:
    """Until every buffered entry is written and acknowledged (polled, with a deadline)."""
    from redis import Redis

    connection = Redis.from_url(REDIS_URL)
    deadline = time.monotonic() + timeout
    try:
        while connection.xlen(stream):
            if time.monotonic() > deadline:
                raise SystemExit(f"the flusher did not drain {stream} in {timeout:.0f} s")
            time.sleep(0.02)
    finally:
        connection.close()


def delete_stream(stream: str) -> None:
    from redis import Redis

    connection = Redis.from_url(REDIS_URL)
    keys = list(connection.scan_iter(match=f"{stream}*", count=1000))
    if keys:
        connection.delete(*keys)
    connection.close()


def run(kind: str, mode: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Bare endpoint, one event, batches of 20 on a fresh database; one dict per case."""
    results: list[dict[str, Any]] = []
    stream = f"fa-bench-ingest-{uuid.uuid4().hex[:8]}"
    buffered = mode == "redis"
    env = {"BENCH_INGEST_BUFFER": mode, "BENCH_BUFFER_STREAM": stream} if buffered else {}
    if args.rate_limit:
        env["BENCH_RATE_LIMIT"] = args.rate_limit
    with database(kind) as url:
        create_tables(url)
        try:
            with (
                gunicorn(url, args.workers, args.threads, env) as base,
                flusher(url, stream) if buffered else contextlib.nullcontext(),
            ):
                # The bare endpoint before and after each case: on a machine shared with
                # other work, a ratio to a bare figure measured minutes apart means little.
                bares = [wrk(base, "/bare", 1, args.duration, args.connections)["rps"]]
                cases = []
                # The floor for storing each request: bare endpoint + one INSERT (or,
                # buffered, one XADD to Redis).
                floor_path = "/bare-xadd" if buffered else "/bare-insert"
                floor = wrk(base, floor_path, 1, args.duration, args.connections)
                bares.append(wrk(base, "/bare", 1, args.duration, args.connections)["rps"])
                cases.append({
                    "db": kind, "mode": mode, "case": floor_path[1:], "batch": 1,
                    "rps": floor["rps"], "eps": floor["rps"],
                    "ratio": floor["rps"] / ((bares[-2] + bares[-1]) / 2),
                    "non2xx": floor["non2xx"], "bare_rps": (bares[-2] + bares[-1]) / 2,
                })  # fmt: skip
                for batch in (1, 20):
                    before = count_events(url)
                    started = time.monotonic()
                    result = wrk(
                        base, "/_analytics/collect", batch, args.duration, args.connections
                    )
                    wrk_seconds = time.monotonic() - started
                    if buffered:
                        wait_drained(stream)
                    elapsed = time.monotonic() - started
                    stored = count_events(url) - before
                    bares.append(wrk(base, "/bare", 1, args.duration, args.connections)["rps"])
                    cases.append({
                        "db": kind, "mode": mode, "case": "collect", "batch": batch,
                        "rps": result["rps"], "eps": stored / elapsed,
                        "ratio": result["rps"] / ((bares[-2] + bares[-1]) / 2),
                        "non2xx": result["non2xx"], "stored": stored,
                        "wrk_seconds": wrk_seconds, "drain_seconds": elapsed - wrk_seconds,
                        "bare_rps": (bares[-2] + bares[-1]) / 2,
                        "vs_floor": result["rps"] / floor["rps"] if batch == 1 else None,
                    })  # fmt: skip
                bare_rps = sum(bares) / len(bares)
                results.append({"db": kind, "mode": mode, "case": "bare", "batch": 1,
                                "rps": bare_rps, "eps": bare_rps, "ratio": 1.0, "non2xx": 0.0,
                                "runs": bares})  # fmt: skip
                results.extend(cases)
        finally:
            if buffered:
                delete_stream(stream)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=1, help="gunicorn threads per worker (>1: gthread)"
    )
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--buffer", default="direct,redis", help="ingest modes: direct, redis")
    parser.add_argument(
        "--rate-limit", default=None, help="ANALYTICS_RATE_LIMIT to count (default: none)"
    )
    parser.add_argument(
        "--json", action="store_true", help="also print the results as one JSON line"
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")

    cpu = pipeline_cpu_per_event()
    print(f"pipeline CPU per event (parse + steps, warm cache): {cpu:.1f} µs  (goal ≤ 100 µs)")
    without = pipeline_cpu_per_event(ANALYTICS_BUILTIN_COUNTRIES=False)
    lookup = country_lookup_per_event()
    print(f"  without the built-in country table: {without:.1f} µs; one built-in country "
          f"lookup: {lookup:.2f} µs")  # fmt: skip
    print()
    header = (f"{'database':<11}{'mode':<8}{'case':<22}{'req/s':>10}{'events/s':>11}"
              f"{'vs bare':>9}{'vs floor':>10}{'non-2xx':>9}")  # fmt: skip
    print(header)
    print("-" * len(header))
    everything: list[dict[str, Any]] = []
    for kind in args.db.split(","):
        for mode in args.buffer.split(","):
            for r in run(kind, mode, args):
                everything.append(r)
                label = {
                    "bare": "bare Flask endpoint",
                    "bare-insert": "bare + one INSERT",
                    "bare-xadd": "bare + one XADD",
                }.get(r["case"]) or (
                    "collect, 1 event" if r["batch"] == 1 else "collect, batch of 20"
                )
                events = "" if r["case"] == "bare" else f"{r['eps']:.0f}"
                floor = f"{r['vs_floor']:.2f}" if r.get("vs_floor") else ""
                print(f"{kind:<11}{mode:<8}{label:<22}{r['rps']:>10.0f}{events:>11}"
                      f"{r['ratio']:>9.2f}{floor:>10}{r['non2xx']:>9.0f}", flush=True)  # fmt: skip
    print()
    print("events/s counts rows actually stored (dedupe on): over the wrk run (direct), or from "
          "the first request until the flusher emptied the buffer (redis). The bare endpoint "
          "runs before and after each case; 'vs bare' divides by the mean of those two runs, "
          "the bare row shows the mean of all.")  # fmt: skip
    print(
        f"machine: {os.cpu_count()} cores, load {' '.join(f'{x:.1f}' for x in os.getloadavg())}; "
        f"gunicorn workers: {args.workers} x {args.threads} thread(s); wrk: 2 threads, "
        f"{args.connections} connections; flusher (redis): 1 process; all on the same machine; "
        f"rate limit: {args.rate_limit or 'off'}"
    )
    if args.json:
        print(json.dumps({"pipeline_cpu_us": cpu, "pipeline_cpu_us_without_builtin_countries":
                          without, "country_lookup_us": lookup, "results": everything}))  # fmt: skip


if __name__ == "__main__":
    main()
