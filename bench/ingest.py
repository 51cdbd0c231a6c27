"""Collect throughput under gunicorn, driven by wrk, beside a bare Flask endpoint.

    python -m bench.ingest [--duration 10] [--connections 16] [--db sqlite,postgresql]

For each database it starts gunicorn (2 workers; --threads N for gthread) on a fresh
database and measures, in one run: the bare endpoint's requests/s, one-event collect
requests/s, and batches of 20 (events/s, counted from the rows actually stored). It also
measures the pipeline's CPU time per event with a warm user-agent cache, in process.
Needs `wrk` (Debian package) and gunicorn (dev extra).
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
def gunicorn(url: str, workers: int, threads: int) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "BENCH_DATABASE_URL": url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(workers), "--threads", str(threads),
         "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", "bench.ingest_app:create_app()"],
        cwd=ROOT, env=env,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            break
        time.sleep(0.1)
    else:
        proc.kill()
        raise SystemExit("gunicorn did not start")
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
        "ua": UA, "path": path, "template": json.dumps(f"[{events}]"), "args": args,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(
            ["wrk", "-t", "2", "-c", str(connections), "-d", f"{duration}s", "-s", f.name, base],
            capture_output=True, text=True, check=True,
        ).stdout
    finally:
        os.unlink(f.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {
        "rps": rps, "requests": total,
        "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
    }


def pipeline_cpu_per_event(n: int = 20_000) -> float:
    """Microseconds of CPU per event for parse + every pipeline step (warm cache), no write."""
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    from flask_analytics import Analytics
    from flask_analytics.ingest import pipeline
    from flask_analytics.ingest.payload import Limits, parse_batch

    with tempfile.TemporaryDirectory() as tmp:
        app = Flask("cpu")
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp}/cpu.db"
        db = SQLAlchemy(app)
        ext = Analytics(app, db=db)
        with app.app_context():
            db.create_all()
            state = ext.state()
            body = [
                {"name": "pageview", "url": f"https://example.com/p/{i % 300}?utm_source=news",
                 "referrer": ["https://www.google.com/", "https://news.ycombinator.com/item", None][i % 3],
                 "screen_width": 1280, "event_id": str(uuid.uuid4())}
                for i in range(n)
            ]
            info = pipeline.RequestInfo(ip="203.0.113.9", user_agent=UA, request_host="example.com")
            limits = Limits(max_offset_ms=state.settings.max_offset_ms)
            from flask_analytics.extension import utcnow

            def run(events: list[dict[str, object]]) -> None:
                for ev in parse_batch(events, limits, utcnow()):
                    c = pipeline.Candidate(incoming=ev, info=pipeline.RequestInfo(**{
                        k: getattr(info, k) for k in ("ip", "user_agent", "request_host")}))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker (>1: gthread)")
    parser.add_argument("--db", default="sqlite,postgresql")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")

    cpu = pipeline_cpu_per_event()
    print(f"pipeline CPU per event (parse + steps, warm cache): {cpu:.1f} µs  (goal ≤ 100 µs)")
    print()
    header = f"{'database':<11}{'case':<22}{'req/s':>10}{'events/s':>11}{'vs bare':>9}{'non-2xx':>9}"
    print(header)
    print("-" * len(header))
    for kind in args.db.split(","):
        with database(kind) as url:
            create_tables(url)
            with gunicorn(url, args.workers, args.threads) as base:
                bare = wrk(base, "/bare", 1, args.duration, args.connections)
                print(f"{kind:<11}{'bare Flask endpoint':<22}{bare['rps']:>10.0f}{'':>11}{1:>9.2f}{bare['non2xx']:>9.0f}")
                for batch, label in ((1, "collect, 1 event"), (20, "collect, batch of 20")):
                    before = count_events(url)
                    started = time.monotonic()
                    result = wrk(base, "/_analytics/collect", batch, args.duration, args.connections)
                    elapsed = time.monotonic() - started
                    stored = count_events(url) - before
                    eps = stored / elapsed
                    print(
                        f"{kind:<11}{label:<22}{result['rps']:>10.0f}{eps:>11.0f}"
                        f"{result['rps'] / bare['rps']:>9.2f}{result['non2xx']:>9.0f}"
                    )
    print()
    print("events/s counts rows actually stored (dedupe on) over the wrk run's wall time.")
    print(
        f"machine: {os.cpu_count()} cores; gunicorn workers: {args.workers} x {args.threads} "
        f"thread(s); wrk: 2 threads, {args.connections} connections, on the same machine"
    )


if __name__ == "__main__":
    main()
