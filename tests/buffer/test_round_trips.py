"""A buffered collect request makes one Redis round trip: the rate limit (when its
counters live in the buffer's Redis), the dedupe and the XADD in one script; the salt
cached per process and local day. Counted on the real Redis by instrumenting the client's
connections (every command sent, a pipeline or a script call being one send), and
cross-checked with the server's own command statistics.

Also: the rate limit counted in that round trip is the ``limits`` library's (its keys,
its windows, its answers), and a worker killed in the middle of a request loses and
duplicates nothing once the tracker retries.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask
from redis.connection import AbstractConnection

from flask_analytics import buffer, signals
from flask_analytics.ingest import ratelimit
from flask_analytics.state import current_state

from ..clock import local_midnight
from ..conftest import DESKTOP_UA, REDIS_URL
from ..support.collect import answer
from ..support.processes import ROOT, wait_for

#: The buffer tests' module, like the rate-limit ones, count in Redis the same for either
#: database: once, on SQLite.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
BOT_UA = "Googlebot/2.1 (+http://www.google.com/bot.html)"


@contextlib.contextmanager
def sent_commands() -> Iterator[list[str]]:
    """The name of each command sent to any Redis by this process, one per round trip
    (a pipeline or a script call is one send)."""
    names: list[str] = []
    send = AbstractConnection.send_packed_command

    def counting(conn: Any, command: Any, check_health: bool = True) -> None:
        first = bytes(command[0] if isinstance(command, list) else command)
        names.append(first.split(b"\r\n")[2].decode().upper())
        send(conn, command, check_health)

    AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    try:
        yield names
    finally:
        AbstractConnection.send_packed_command = send  # type: ignore[method-assign]


def network() -> str:
    """A random /24 of this test's own: rate-limit counters live in the shared Redis."""
    return f"10.{random.randrange(256)}.{random.randrange(256)}"


def event(**overrides: Any) -> dict[str, Any]:
    return {"name": "pageview", "url": "http://localhost/", "event_id": str(uuid.uuid4()),
            **overrides}  # fmt: skip


def post(app: Flask, events: Any, ip: str, ua: str = DESKTOP_UA) -> Any:
    return app.test_client().post(
        "/_analytics/collect", json=events, headers={"User-Agent": ua},
        environ_base={"REMOTE_ADDR": ip},
    )  # fmt: skip


def stored_ids(app: Flask) -> list[str]:
    analytics = app.extensions["analytics_test"]
    table = analytics.Event.__table__
    with app.app_context(), analytics.db.engine.connect() as conn:
        return list(conn.scalars(sa.select(table.c.event_id)))


def flush(app: Flask) -> buffer.FlushResult:
    with app.app_context():
        return buffer.flush(current_state(app))


@pytest.fixture
def limited_app(make_app, stream):
    """The buffer on this test's stream, the rate limit in the same Redis (the default
    when both come from one URL)."""

    def factory(**config: Any) -> Flask:
        settings = {
            "ANALYTICS_INGEST_BUFFER": "redis",
            "ANALYTICS_REDIS_URL": REDIS_URL,
            "ANALYTICS_BUFFER_STREAM": stream,
            "ANALYTICS_QUEUE": stream,
            **config,
        }
        return make_app(**settings)

    return factory


@SQLITE_ONLY
@pytest.mark.redis
@pytest.mark.parametrize("dedupe_ttl", [0, 600])
def test_a_buffered_request_makes_one_redis_round_trip(limited_app, dedupe_ttl):
    app = limited_app(ANALYTICS_BUFFER_DEDUPE_TTL=dedupe_ttl)
    state = current_state(app)
    assert state.limiter is not None
    assert state.limiter.burst is not None
    assert state.limit_in_sink
    ip = f"{network()}.9"
    redis = state.buffer.redis
    # The first request of the process looks the day's salt up (Redis, then the database)
    # and loads the script; after that, every request is one round trip.
    warm = event()
    with sent_commands() as first:
        assert post(app, [warm], ip).status_code == 202
    assert first.count("EVALSHA") == 1
    assert len(first) > 1
    before = redis.info("commandstats")
    sent = [[event(url=f"http://localhost/{i}/{j}") for j in range(1 + i % 3)] for i in range(12)]
    with sent_commands() as names:
        for batch in sent:
            assert post(app, batch, ip).get_json() == answer(len(batch))
        # Every event of a request the pipeline drops still counts against the limit:
        # one round trip, nothing appended.
        assert post(app, [event(), event()], ip, ua=BOT_UA).get_json() == answer(0, {"bot": 2})
        # A retry of a buffered request: with early dedupe Redis says duplicate at once.
        retried = post(app, sent[0], ip).get_json()
    assert names == ["EVALSHA"] * 14
    assert retried == (answer(0, {"duplicate": 1}) if dedupe_ttl else answer(1))
    after = redis.info("commandstats")
    # The server agrees: 14 script calls and no other command of ours (other tests may
    # share this Redis, so only a lower bound for the script calls).
    assert after["cmdstat_evalsha"]["calls"] - before["cmdstat_evalsha"]["calls"] >= 14
    # What was buffered is what the flush stores: once each, the dropped bots not at all.
    flush(app)
    expected = sorted([warm["event_id"]] + [e["event_id"] for batch in sent for e in batch])
    assert sorted(stored_ids(app)) == expected


@SQLITE_ONLY
@pytest.mark.redis
def test_the_count_in_the_append_is_the_limits_librarys(limited_app):
    app = limited_app(ANALYTICS_RATE_LIMIT="10/minute", ANALYTICS_RATE_LIMIT_BURST="5/hour")
    state = current_state(app)
    assert state.limit_in_sink
    ip = f"{network()}.7"
    dropped: list[str] = []

    def on_dropped(sender: Any, event: Any, reason: str) -> None:
        dropped.append(reason)

    accepted: list[str] = []
    with signals.event_dropped.connected_to(on_dropped):
        # 4 bot events count (valid events are counted before the pipeline drops them).
        assert post(app, [event() for _ in range(4)], ip, ua=BOT_UA).status_code == 202
        assert dropped == ["bot"] * 4
        for n in (3, 3, 4):  # 4 + 10 = 14: the sustained 10, then the burst
            batch = [event() for _ in range(n)]
            assert post(app, batch, ip).status_code == 202
            accepted += [e["event_id"] for e in batch]
        with sent_commands() as names:
            refused = post(app, [event(), event()], ip)  # 14 + 2 > 10 + 5
        # Refused whole; the bots of a refused request are not signalled either.
        refused_bots = post(app, [event(), event()], ip, ua=BOT_UA)  # 14 + 2 > 15 too
    assert refused.status_code == 429
    assert refused_bots.status_code == 429
    assert dropped == ["bot"] * 4
    assert "10 per 1 minute per network (+ a burst of 5 per 1 hour)" in refused.get_json()["error"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    # The refusal is the script's answer; Retry-After reads the library's window stats
    # (through the library's own client, which connects on its first use: HELLO, CLIENT).
    assert [n for n in names if n not in ("HELLO", "CLIENT")] == ["EVALSHA", "EVALSHA"]
    # Another network of the same deployment has its own room.
    assert post(app, [event()], f"{network()}.7").status_code == 202
    # The counters are the library's own: `limits` sees the windows this script filled.
    limiter = state.limiter
    key = limiter.network_key(ip.rsplit(".", 1)[0] + ".0")
    library = limiter._limiter
    assert library.get_window_stats(limiter.item, ratelimit._SUSTAINED, key).remaining == 0
    assert library.get_window_stats(limiter.burst, ratelimit._BURST, key).remaining == 1
    assert not limiter.hit(key, 2)  # 10 + 4 + 2 > 10 + 5: refused, counting nothing
    assert limiter.hit(key, 1)  # the burst's last one
    flush(app)
    assert len(stored_ids(app)) == len(accepted) + 1
    assert set(accepted) <= set(stored_ids(app))


@SQLITE_ONLY
@pytest.mark.redis
def test_a_limiter_in_another_store_is_checked_first_as_before(limited_app):
    app = limited_app(ANALYTICS_RATE_LIMIT="3/minute", ANALYTICS_RATE_LIMIT_BURST=None,
                      ANALYTICS_RATE_LIMIT_STORAGE="memory://")  # fmt: skip
    assert not current_state(app).limit_in_sink
    ip = f"{network()}.1"
    assert post(app, [event(), event(), event()], ip).status_code == 202
    with sent_commands() as names:
        assert post(app, [event()], ip).status_code == 429
    assert names == []  # refused before the pipeline, nothing sent to Redis


def visitor_ids(app: Flask) -> dict[str, int]:
    analytics = app.extensions["analytics_test"]
    table = analytics.Event.__table__
    with app.app_context(), analytics.db.engine.connect() as conn:
        return dict(conn.execute(sa.select(table.c.event_id, table.c.visitor_id)).all())


@SQLITE_ONLY
@pytest.mark.redis
def test_the_salt_is_looked_up_once_per_local_day_and_after_a_restart(limited_app, frozen_clock):
    paris = ZoneInfo("Europe/Paris")
    midnight = local_midnight("Europe/Paris", frozen_clock.today(paris) + dt.timedelta(days=1))
    frozen_clock.move_to(midnight - dt.timedelta(seconds=30))
    app = limited_app(ANALYTICS_TIMEZONE="Europe/Paris")
    ip = f"{network()}.3"
    sent: dict[str, list[str]] = {"before": [], "after": [], "restarted": []}

    def one(target: Flask, when: str) -> list[str]:
        body = event()
        sent[when].append(body["event_id"])
        with sent_commands() as names:
            assert post(target, [body], ip).status_code == 202
        return names

    assert "GET" in one(app, "before")  # the day's salt, from Redis (then the database)
    assert one(app, "before") == ["EVALSHA"]
    frozen_clock.move_to(midnight + dt.timedelta(seconds=1))
    rotated = one(app, "after")  # a new local day: its salt is looked up once
    assert "GET" in rotated
    assert rotated[-1] == "EVALSHA"
    assert one(app, "after") == ["EVALSHA"]
    # Another process of the deployment (a restart) takes the day's salt from Redis.
    restarted = limited_app(ANALYTICS_TIMEZONE="Europe/Paris")
    assert one(restarted, "restarted")[-1] == "EVALSHA"
    assert one(restarted, "restarted") == ["EVALSHA"]
    flush(app)
    ids = visitor_ids(app)
    before = {ids[i] for i in sent["before"]}
    after = {ids[i] for i in sent["after"] + sent["restarted"]}
    # One visitor per local day, another one after midnight, the same after the restart.
    assert len(before) == 1
    assert len(after) == 1
    assert before != after


def _worker(app: Flask, tmp_path: Any, stall: str, body: list[dict[str, Any]], ip: str,
            dedupe_ttl: int) -> tuple[subprocess.Popen[bytes], Any]:  # fmt: skip
    state = current_state(app)
    marker = tmp_path / f"stalled-{uuid.uuid4().hex[:6]}"
    log = (tmp_path / f"worker-{uuid.uuid4().hex[:6]}.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.scripts.collect_worker"],
        cwd=ROOT,
        env={
            **os.environ,
            "COLLECT_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "COLLECT_REDIS_URL": REDIS_URL,
            "COLLECT_STREAM": state.buffer.stream,
            "COLLECT_DEDUPE_TTL": str(dedupe_ttl),
            "COLLECT_STALL": stall,
            "COLLECT_MARKER": str(marker),
            "COLLECT_BODY": json.dumps(body),
            "COLLECT_UA": DESKTOP_UA,
            "COLLECT_IP": ip,
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    wait_for(lambda: marker.exists() or proc.poll() is not None, f"the worker stalled ({stall})")
    assert marker.exists(), (tmp_path / log.name).read_text()
    return proc, marker


@SQLITE_ONLY
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.real_clock("the worker runs in another process, on the real clock")
@pytest.mark.parametrize(("stall", "dedupe_ttl"), [("before", 600), ("sent", 600), ("sent", 0)])
def test_a_worker_killed_mid_request_loses_and_duplicates_nothing(
    make_app, stream, tmp_path, stall, dedupe_ttl
):
    app = make_app(ANALYTICS_INGEST_BUFFER="redis", ANALYTICS_BUFFER_REDIS_URL=REDIS_URL,
                   ANALYTICS_BUFFER_STREAM=stream, ANALYTICS_BUFFER_DEDUPE_TTL=dedupe_ttl,
                   ANALYTICS_RATE_LIMIT=None)  # fmt: skip
    state = current_state(app)
    body = [event(url=f"http://localhost/k/{i}") for i in range(3)]
    ip = f"{network()}.5"
    proc, _marker = _worker(app, tmp_path, stall, body, ip, dedupe_ttl)
    if stall == "sent":  # Redis ran the whole script: dedupe keys set and the entry added
        wait_for(lambda: state.buffer.redis.xlen(stream) == 1, "the script ran")
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert state.buffer.redis.xlen(stream) == (1 if stall == "sent" else 0)
    # The tracker got no answer: it sends the same events again.
    retried = post(app, body, ip).get_json()
    if stall == "sent" and dedupe_ttl:
        assert retried == answer(0, {"duplicate": 3})  # the keys the killed worker set
    else:
        assert retried == answer(3)
    flush(app)
    assert sorted(stored_ids(app)) == sorted(e["event_id"] for e in body)
    assert state.buffer.redis.xlen(stream) == 0
