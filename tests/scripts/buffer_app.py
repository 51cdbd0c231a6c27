"""A host app for the flusher crash tests (tests/buffer/test_buffer.py).

``flask --app tests.scripts.buffer_app:create_app analytics flush --loop`` runs the real
command line in a process of its own, on the database of ``BUFFER_DATABASE_URL`` (whose
tables the test created) and the stream ``BUFFER_STREAM`` of ``BUFFER_REDIS_URL``.

``BUFFER_STALL`` stops the flusher for good at one point of its first batch, so the test
can SIGKILL it exactly there (it polls for the file ``BUFFER_STALL_MARKER``, written
when the point is reached):

- ``write``: rows inserted, transaction not committed;
- ``commit``: transaction committed, entries not acknowledged in Redis.

Without it the flusher runs normally (the test kills it whenever it has a batch in hand).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_analytics import Analytics, buffer
from flask_analytics.buffer import writers


def _stall(marker: str) -> None:
    Path(marker).write_text(str(os.getpid()))
    threading.Event().wait()  # until SIGKILL


def _install_stall(point: str, marker: str) -> None:
    if point == "write":
        write_group = writers.write_group

        def stalled_write(*args: Any, **kwargs: Any) -> int:
            inserted = write_group(*args, **kwargs)
            _stall(marker)
            return inserted

        writers.write_group = stalled_write  # type: ignore[assignment]
    elif point == "commit":

        def stalled_ack(self: buffer.RedisBuffer, *args: Any, **kwargs: Any) -> None:
            _stall(marker)

        buffer.RedisBuffer.ack = stalled_ack  # type: ignore[method-assign]
    elif point:
        raise SystemExit(f"unknown BUFFER_STALL {point!r}")


def create_app() -> Flask:
    env = os.environ
    app = Flask("buffer_app")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=env["BUFFER_DATABASE_URL"],
        ANALYTICS_INGEST_BUFFER="redis",
        ANALYTICS_BUFFER_REDIS_URL=env["BUFFER_REDIS_URL"],
        ANALYTICS_BUFFER_STREAM=env["BUFFER_STREAM"],
        ANALYTICS_BUFFER_BATCH=int(env.get("BUFFER_BATCH", "1000")),
        ANALYTICS_BUFFER_CLAIM_IDLE=float(env.get("BUFFER_CLAIM_IDLE", "60")),
        ANALYTICS_BUFFER_FLUSH_INTERVAL=0.05,
    )
    db = SQLAlchemy()
    db.init_app(app)
    Analytics(app, db=db)
    _install_stall(env.get("BUFFER_STALL", ""), env.get("BUFFER_STALL_MARKER", ""))
    return app
