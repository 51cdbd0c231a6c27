"""The app the ingest benchmark serves with gunicorn: analytics, a bare endpoint, and the
bare endpoint plus one INSERT (or, buffered, one Redis XADD): the floor of storing a request."""

from __future__ import annotations

import os
import uuid

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from flask_sqlalchemy import SQLAlchemy

from flask_analytics import Analytics


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["BENCH_DATABASE_URL"]
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_size": 4}
    # One load generator is one "visitor": no rate limit, unless BENCH_RATE_LIMIT names
    # one (a huge one: counted, in the buffer's Redis when buffered, but never refusing).
    app.config["ANALYTICS_RATE_LIMIT"] = os.environ.get("BENCH_RATE_LIMIT") or None
    if os.environ.get("BENCH_RATE_LIMIT") and os.environ.get("BENCH_INGEST_BUFFER") != "redis":
        app.config["ANALYTICS_RATE_LIMIT_STORAGE"] = os.environ.get(
            "BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"
        )
    if os.environ.get("BENCH_INGEST_BUFFER") == "redis":
        # Buffered cases: rows go to a stream of the run's own; `flask analytics flush
        # --loop` (started by bench/ingest.py with the same environment) writes them.
        app.config.update(
            ANALYTICS_INGEST_BUFFER="redis",
            ANALYTICS_BUFFER_REDIS_URL=os.environ.get(
                "BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"
            ),
            ANALYTICS_BUFFER_STREAM=os.environ["BENCH_BUFFER_STREAM"],
            ANALYTICS_BUFFER_MAX_LEN=None,
        )
    db = SQLAlchemy(app)
    Analytics(app, db=db)
    buffered = os.environ.get("BENCH_INGEST_BUFFER") == "redis"
    if buffered:
        from redis import Redis

        scratch = Redis.from_url(app.config["ANALYTICS_BUFFER_REDIS_URL"])
        scratch_stream = os.environ["BENCH_BUFFER_STREAM"] + "-floor"

        @app.post("/bare-xadd")
        def bare_xadd() -> ResponseReturnValue:
            # The floor of any endpoint that hands each request to Redis before
            # answering: the bare endpoint plus one XADD of its body (capped stream).
            from flask import request

            body = request.get_data()
            request.get_json(force=True, silent=True)
            scratch.xadd(scratch_stream, {"b": body}, maxlen=10_000, approximate=True)
            return jsonify(stored=1, dropped={}), 202

    @app.post("/bare")
    def bare() -> ResponseReturnValue:
        # What any Flask endpoint costs on this server: parse a small JSON body, answer.
        from flask import request

        request.get_json(force=True, silent=True)
        return jsonify(stored=1, dropped={}), 202

    @app.post("/bare-insert")
    def bare_insert() -> ResponseReturnValue:
        # The floor of any endpoint that stores each request before answering: the bare
        # endpoint plus one autocommitted INSERT of a minimal row (same table, same
        # indexes) on the raw DBAPI connection. No validation, pipeline or SQLAlchemy.
        import datetime as dt

        from flask import request

        request.get_json(force=True, silent=True)
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        row = (
            # Its own ids: the collect cases after it send the same ids as this one.
            str(uuid.uuid4()),
            now if db.engine.dialect.name == "postgresql" else now.isoformat(" "),
            "pageview",
            "127.0.0.1",
            "/",
            1,
        )
        pooled = db.engine.raw_connection()
        try:
            if db.engine.dialect.name == "postgresql":
                conn = pooled.driver_connection
                conn.autocommit = True  # type: ignore[union-attr]
                try:
                    conn.execute(BARE_INSERT_PG, row, prepare=True)  # type: ignore[union-attr]
                finally:
                    conn.autocommit = False  # type: ignore[union-attr]
            else:
                pooled.cursor().execute(BARE_INSERT_SQLITE, row)
                pooled.commit()
        finally:
            pooled.close()
        return jsonify(stored=1, dropped={}), 202

    return app


_BARE_COLUMNS = "event_id, created_at, name, hostname, path, visitor_id"
BARE_INSERT_PG = (
    f"INSERT INTO analytics_event ({_BARE_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)"
    " ON CONFLICT DO NOTHING"
)
BARE_INSERT_SQLITE = (
    f"INSERT INTO analytics_event ({_BARE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT DO NOTHING"
)
