"""One buffered collect request in a process of its own, for the SIGKILL tests of
tests/buffer/test_round_trips.py: a worker killed in the middle of a request.

``python -m tests.scripts.collect_worker`` builds a host app on ``COLLECT_DATABASE_URL``
(whose tables the test created) with the Redis buffer on ``COLLECT_STREAM`` of
``COLLECT_REDIS_URL`` and posts the JSON body ``COLLECT_BODY`` to the collect endpoint.
``COLLECT_STALL`` stops it for good at one point, writing the file ``COLLECT_MARKER``
when there, so the test can SIGKILL it exactly then:

- ``before``: the request validated and through the pipeline, nothing sent to Redis;
- ``sent``: the append script (rate limit, dedupe and XADD) sent to Redis, its reply
  not read: Redis runs it whole, the worker never answers.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from redis.connection import AbstractConnection

from flask_analytics import Analytics, buffer


def _stall(marker: str) -> None:
    Path(marker).write_text(str(os.getpid()))
    threading.Event().wait()  # until SIGKILL


def _install_stall(point: str, marker: str) -> None:
    if point == "before":
        append = buffer.RedisBuffer.append

        def stalled_append(self: buffer.RedisBuffer, *args: Any, **kwargs: Any) -> Any:
            _stall(marker)
            return append(self, *args, **kwargs)

        buffer.RedisBuffer.append = stalled_append  # type: ignore[method-assign]
    elif point == "sent":
        send = AbstractConnection.send_packed_command

        def stalled_send(conn: Any, command: Any, check_health: bool = True) -> None:
            send(conn, command, check_health)
            first = bytes(command[0] if isinstance(command, list) else command)
            if b"EVALSHA" in first[:32].upper():
                _stall(marker)

        AbstractConnection.send_packed_command = stalled_send  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown COLLECT_STALL {point!r}")


def main() -> None:
    env = os.environ
    app = Flask("collect_worker")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=env["COLLECT_DATABASE_URL"],
        ANALYTICS_INGEST_BUFFER="redis",
        ANALYTICS_BUFFER_REDIS_URL=env["COLLECT_REDIS_URL"],
        ANALYTICS_BUFFER_STREAM=env["COLLECT_STREAM"],
        ANALYTICS_BUFFER_DEDUPE_TTL=int(env["COLLECT_DEDUPE_TTL"]),
        ANALYTICS_BUFFER_DURABILITY="off",
    )
    db = SQLAlchemy()
    db.init_app(app)
    Analytics(app, db=db)
    with app.app_context():
        # The salt first (as any earlier request of the day would), then the stall.
        app.extensions["analytics"].state(app).salts.salt_for(
            app.extensions["analytics"].state(app).today()
        )
    _install_stall(env["COLLECT_STALL"], env["COLLECT_MARKER"])
    app.test_client().post(
        "/_analytics/collect",
        data=env["COLLECT_BODY"],
        content_type="application/json",
        headers={"User-Agent": env["COLLECT_UA"]},
        environ_base={"REMOTE_ADDR": env["COLLECT_IP"]},
    )
    raise SystemExit("the worker answered: it should have stalled")


if __name__ == "__main__":
    json.loads(os.environ["COLLECT_BODY"])
    main()
