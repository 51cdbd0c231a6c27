"""The per-request cost of server-side pageviews on an HTML GET, under gunicorn + wrk.

    python -m bench.server_pageviews [--duration 10] [--connections 16] [--rounds 2]
                                     [--db sqlite,postgresql] [--buffer direct,redis]

For each database and ingest mode, one fresh database: gunicorn (2 workers) serves
``bench/pageviews_app.py``'s blog page (a template with the tracker's tag) with
``ANALYTICS_SERVER_PAGEVIEWS`` off, then on, alternating for ``--rounds`` rounds in the
same run; it prints each side's best requests/s and the drop ("on" vs "off"). The goal
(issue 18): at most 10% fewer requests/s with the direct store, 5% with the Redis
buffer. Every request is a pageview of one visitor (127.0.0.1, one user agent) on one of
500 paths. Needs ``wrk`` and gunicorn (dev extra); Redis for ``--buffer redis``
(``BENCH_REDIS_URL``). Figures need a quiet machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator

from bench.ingest import ROOT, UA, count_events, database, free_port, wait_for_port

WRK_SCRIPT = """
wrk.headers["User-Agent"] = "%s"
wrk.headers["Accept"] = "text/html"
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/blog/post-" .. (n %% 500))
end
"""


@contextlib.contextmanager
def serve(env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", "bench.pageviews_app:create_app()"],
        cwd=ROOT, env={**os.environ, **env},
    )  # fmt: skip
    wait_for_port(proc, port)
    base = f"http://127.0.0.1:{port}"
    try:
        # Both workers loaded (imports take a while on a busy machine) before wrk starts.
        for _ in range(4):
            with urllib.request.urlopen(base + "/blog/warm-up", timeout=60) as answer:
                answer.read()
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def wrk(base: str, duration: int, connections: int) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT % UA)
    try:
        out = subprocess.run(
            ["wrk", "-t", "2", "-c", str(connections), "-d", f"{duration}s", "-s", f.name, base],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    finally:
        os.unlink(f.name)
    if re.search(r"Non-2xx or 3xx responses", out):
        raise SystemExit(f"the page answered errors:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def create_tables(url: str) -> None:
    os.environ["BENCH_DATABASE_URL"] = url
    os.environ.setdefault("BENCH_BUFFER_STREAM", "unused")
    from bench.pageviews_app import create_app

    app = create_app()
    with app.app_context():
        app.extensions["sqlalchemy"].create_all()
        app.extensions["sqlalchemy"].engine.dispose()


def measure(kind: str, mode: str, args: argparse.Namespace) -> dict[str, object]:
    stream = f"fa_bench_pv_{uuid.uuid4().hex[:8]}"
    best = {"off": 0.0, "on": 0.0}
    with database(kind) as url:
        create_tables(url)
        env = {"BENCH_DATABASE_URL": url, "BENCH_INGEST_BUFFER": mode,
               "BENCH_BUFFER_STREAM": stream}  # fmt: skip
        for _ in range(args.rounds):
            for side in ("off", "on"):
                with serve({**env, "BENCH_SERVER_PAGEVIEWS": "1" if side == "on" else "0"}) as base:
                    best[side] = max(best[side], wrk(base, args.duration, args.connections))
        stored = count_events(url)
    if mode == "redis":
        from redis import Redis

        redis = Redis.from_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
        stored = int(redis.xlen(stream))
        redis.delete(stream, f"{stream}:dead")
    drop = 1 - best["on"] / best["off"] if best["off"] else None
    return {"db": kind, "buffer": mode, "off_rps": round(best["off"], 1),
            "on_rps": round(best["on"], 1), "drop": drop, "pageviews_stored": stored}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--buffer", default="direct,redis")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = [
        measure(kind, mode, args) for kind in args.db.split(",") for mode in args.buffer.split(",")
    ]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'db':<11}{'buffer':<8}{'off req/s':>11}{'on req/s':>11}{'drop':>8}{'stored':>9}")
    for r in results:
        drop = f"{r['drop']:.1%}" if r["drop"] is not None else "-"
        print(f"{r['db']:<11}{r['buffer']:<8}{r['off_rps']:>11}{r['on_rps']:>11}{drop:>8}"
              f"{r['pageviews_stored']:>9}")  # fmt: skip


if __name__ == "__main__":
    main()
