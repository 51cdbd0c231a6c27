"""Where a buffered one-event collect request spends its time, in process.

    python -m bench.collect_profile [--requests 5000] [--rate-limit] [--profile]

Calls the Flask app's WSGI callable directly (no HTTP server, no load generator), one
one-event POST after another, with the Redis buffer on the local Redis, and reports per
request: the wall time, the Redis round trips (calls of the connection's
``send_packed_command``: a pipeline or a script call is one) and the time spent waiting
for them, beside a bare Flask endpoint and the bare endpoint plus one XADD in the same
process. ``--profile`` adds cProfile's top functions by own time. Used for the profile in
docs/benchmarks.md ("Collect round trips").
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from bench.ingest import delete_stream

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


class RedisMeter:
    """Counts the Redis round trips of this process and the wall time spent in them."""

    def __init__(self) -> None:
        self.round_trips = 0
        self.seconds = 0.0
        self.commands: list[str] = []

    @contextlib.contextmanager
    def installed(self) -> Iterator[RedisMeter]:
        from redis.connection import AbstractConnection

        send = AbstractConnection.send_packed_command
        read = AbstractConnection.read_response
        meter = self

        def timed_send(conn: Any, command: Any, check_health: bool = True) -> None:
            first = bytes(command[0] if isinstance(command, list) else command)
            name = first.split(b"\r\n")[2].decode("latin-1").upper()
            if name not in ("INFO", "HELLO", "CLIENT"):  # the meter's own, a new connection's
                meter.round_trips += 1
                meter.commands.append(name)
            start = time.perf_counter()
            try:
                send(conn, command, check_health)
            finally:
                meter.seconds += time.perf_counter() - start

        def timed_read(conn: Any, *args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return read(conn, *args, **kwargs)
            finally:
                meter.seconds += time.perf_counter() - start

        AbstractConnection.send_packed_command = timed_send  # type: ignore[method-assign]
        AbstractConnection.read_response = timed_read  # type: ignore[method-assign]
        try:
            yield self
        finally:
            AbstractConnection.send_packed_command = send  # type: ignore[method-assign]
            AbstractConnection.read_response = read  # type: ignore[method-assign]


def make_app(db_url: str, stream: str, rate_limit: bool) -> Any:
    from flask import Flask, jsonify, request
    from flask_sqlalchemy import SQLAlchemy
    from redis import Redis

    from flask_analytics import Analytics

    app = Flask("collect_profile")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=db_url,
        ANALYTICS_INGEST_BUFFER="redis",
        ANALYTICS_BUFFER_REDIS_URL=REDIS_URL,
        ANALYTICS_BUFFER_STREAM=stream,
        ANALYTICS_BUFFER_MAX_LEN=None,
        ANALYTICS_ALLOWED_HOSTS=["127.0.0.1"],
    )
    if rate_limit:  # the default limits, counted in the buffer's Redis
        app.config["ANALYTICS_RATE_LIMIT"] = "1000000/minute"
    else:
        app.config["ANALYTICS_RATE_LIMIT"] = None
    db = SQLAlchemy(app)
    Analytics(app, db=db)
    scratch = Redis.from_url(REDIS_URL)

    @app.post("/bare")
    def bare() -> Any:
        request.get_json(force=True, silent=True)
        return jsonify(stored=1, dropped={}), 202

    @app.post("/bare-xadd")
    def bare_xadd() -> Any:
        body = request.get_data()
        request.get_json(force=True, silent=True)
        scratch.xadd(f"{stream}-floor", {"b": body}, maxlen=10_000, approximate=True)
        return jsonify(stored=1, dropped={}), 202

    with app.app_context():
        db.create_all()
    return app


def environ_of(path: str, body: bytes) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.9",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_USER_AGENT": UA,
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


#: Events per request (``--batch``).
BATCH = [1]


def bodies(n: int) -> list[bytes]:
    one = '{"name":"pageview","url":"http://127.0.0.1/page/%d","event_id":"%s","screen_width":1280}'
    return [
        ("[" + ",".join(one % (i % 500, uuid.uuid4()) for _ in range(BATCH[0])) + "]").encode()
        for i in range(n)
    ]


def drive(app: Any, path: str, payloads: list[bytes]) -> tuple[float, float]:
    """Wall and CPU seconds per request of ``path`` over ``payloads``, one after the other."""
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Callable[..., Any]:
        statuses.append(status)
        return lambda data: None

    wsgi = app.wsgi_app
    start, cpu = time.perf_counter(), time.process_time()
    for body in payloads:
        for _ in wsgi(environ_of(path, body), start_response):
            pass
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    bad = [s for s in statuses if not s.startswith("202")]
    if bad:
        raise SystemExit(f"{path}: {len(bad)} answers were not 202 ({bad[0]})")
    return elapsed / len(payloads), cpu / len(payloads)


#: Parts of a request, by the function whose cumulative time measures it (file suffix,
#: function name); nested parts are listed after the part that holds them.
PARTS = (
    ("whole request (WSGI app)", "flask/app.py", "wsgi_app"),
    ("  the collect view", "web/collect.py", "collect"),
    ("    body decoding (JSON)", "ingest/payload.py", "decode_body"),
    ("    validation", "ingest/payload.py", "parse_batch"),
    ("    request info", "web/collect.py", "request_info"),
    ("    rate-limit keys", "web/collect.py", "_rate_limited"),
    ("    pipeline + sink", "ingest/pipeline.py", "process"),
    ("      sink: append (all of it)", "buffer/client.py", "append"),
    ("        rows as COPY text", "buffer/rows.py", "encode"),
    ("        the script call (pack, send, wait, parse)", "redis/commands/core.py", "__call__"),
    ("    the answer's JSON", "json/__init__.py", "dumps"),
    ("  the floor's XADD (pack, send, wait, parse)", "redis/commands/core.py", "xadd"),
)


def breakdown(stats: pstats.Stats, measured: dict[str, Any]) -> list[tuple[str, float]]:
    """µs per request of each part: its share of the profiled time, applied to the CPU
    time measured without the profiler (the profiler's overhead spread evenly)."""
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(
        ct for (file, _line, name), (_cc, _nc, _tt, ct, _callers) in table.items()
        if file.endswith("flask/app.py") and name == "wsgi_app"
    )  # fmt: skip
    rows = []
    for label, suffix, function in PARTS:
        ct = sum(
            c for (file, _line, name), (_cc, _nc, _tt, c, _callers) in table.items()
            if file.endswith(suffix) and name == function
        )  # fmt: skip
        rows.append((label, ct / total * measured["cpu_us_per_request"] if total else 0.0))
    return rows


def server_usec() -> dict[str, float]:
    """Microseconds Redis spent in each command so far (INFO commandstats)."""
    from redis import Redis

    r = Redis.from_url(REDIS_URL)
    try:
        stats = r.info("commandstats")
    finally:
        r.close()
    return {k.removeprefix("cmdstat_"): float(v["usec"]) for k, v in stats.items()}


def measure(requests: int, rate_limit: bool, profile: bool) -> dict[str, Any]:
    stream = f"fa-bench-profile-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(f"sqlite:///{tmp}/p.db", stream, rate_limit)
        try:
            for path in ("/bare", "/bare-xadd", "/_analytics/collect"):
                drive(app, path, bodies(200))  # warm: caches, salt, scripts, connections
            out: dict[str, Any] = {"requests": requests, "rate_limit": rate_limit}
            meter = RedisMeter()
            with meter.installed():
                for path in ("/bare", "/bare-xadd", "/_analytics/collect"):
                    meter.round_trips, meter.seconds, meter.commands = 0, 0.0, []
                    before = server_usec()
                    seconds, cpu = drive(app, path, bodies(requests))
                    after = server_usec()
                    spent = {
                        k: (v - before.get(k, 0.0)) / requests
                        for k, v in after.items()
                        if k in ("evalsha", "eval", "xadd", "get", "set")
                    }
                    out[path] = {
                        "us_per_request": seconds * 1e6,
                        "cpu_us_per_request": cpu * 1e6,
                        "redis_server_us_per_request": sum(spent.values()),
                        "round_trips_per_request": meter.round_trips / requests,
                        "redis_wait_us_per_request": meter.seconds / requests * 1e6,
                        "commands": sorted(set(meter.commands)),
                    }
            if profile:
                for path in ("/bare-xadd", "/_analytics/collect"):
                    profiler = cProfile.Profile(time.process_time)  # CPU, not waiting
                    payloads = bodies(requests)
                    profiler.enable()
                    _ = drive(app, path, payloads)
                    profiler.disable()
                    stats = pstats.Stats(profiler, stream=io.StringIO())
                    out[path]["breakdown"] = breakdown(stats, out[path])
        finally:
            delete_stream(stream)
    return out


def append_cost(calls: int) -> dict[str, float]:
    """CPU and wall µs of the buffer's append alone (one row, the rate limit counted):
    the Redis client's share of a request (packing the call, parsing the reply), which
    hiredis speeds up."""
    import redis.utils

    stream = f"fa-bench-profile-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(f"sqlite:///{tmp}/p.db", stream, rate_limit=True)
        with app.app_context():
            from flask_analytics.state import current_state

            state = current_state(app)
            assert state.buffer is not None
            assert state.limiter is not None
            drive(app, "/_analytics/collect", bodies(1))
            entry = state.buffer.redis.xrange(stream, count=1)[0]
            names, values = state.buffer.codec.decode(entry[1][b"c"], entry[1][b"r"])
            row = dict(zip(names, values[0], strict=True))
            charge = state.limiter.charge("bench", 1)
            for _ in range(200):
                state.buffer.append([{**row, "event_id": str(uuid.uuid4())}], charge)
            rows = [[{**row, "event_id": str(uuid.uuid4())}] for _ in range(calls)]
            start, cpu = time.perf_counter(), time.process_time()
            for one in rows:
                state.buffer.append(one, charge)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        delete_stream(stream)
    return {"hiredis": float(redis.utils.HIREDIS_AVAILABLE), "cpu_us": cpu / calls * 1e6,
            "wall_us": wall / calls * 1e6}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rate-limit", action="store_true", help="count the rate limit in Redis")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    parser.add_argument("--batch", type=int, default=1, help="events per request")
    parser.add_argument("--append-only", action="store_true", help="time the append alone")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    BATCH[0] = args.batch
    if args.append_only:
        cost = append_cost(args.requests)
        print(f"append (hiredis {'on' if cost['hiredis'] else 'off'}): {cost['cpu_us']:.1f} µs "
              f"CPU, {cost['wall_us']:.1f} µs wall per call")  # fmt: skip
        return
    out = measure(args.requests, args.rate_limit, args.profile)
    for path in ("/bare", "/bare-xadd", "/_analytics/collect"):
        r = out[path]
        print(f"{path:<22}{r['us_per_request']:>8.1f} µs/request  "
              f"{r['cpu_us_per_request']:>6.1f} µs CPU  "
              f"{r['redis_server_us_per_request']:>5.1f} µs Redis server  "
              f"{r['round_trips_per_request']:.2f} round trips  "
              f"{r['redis_wait_us_per_request']:>6.1f} µs in Redis  {r['commands']}")  # fmt: skip
    if args.profile:
        print("CPU µs per request, by part (profiled shares of the unprofiled CPU time):")
        floor = dict(out["/bare-xadd"]["breakdown"])
        print(f"  {'':<52}{'collect':>8}{'floor':>8}")
        for label, us in out["/_analytics/collect"]["breakdown"]:
            other = f"{floor[label]:>8.1f}" if floor.get(label) else ""
            print(f"  {label:<52}{us:>8.1f}{other}")
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
