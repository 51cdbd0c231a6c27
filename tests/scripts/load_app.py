"""The host app the load and fault tests serve with gunicorn.

``python -m gunicorn 'tests.scripts.load_app:create_app()'`` with ``LOAD_DATABASE_URL``
naming the database (whose tables the test created). The rate limit is off (every
client of the test is one "visitor"), and the page host is fixed, so every valid event
is stored and the tests can count rows. With ``LOAD_BUFFER_REDIS_URL`` set, collect
appends to the Redis ingest buffer instead (flushed by the test).
"""

from __future__ import annotations

import os

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_analytics import Analytics

#: Host of the pages the load clients report (events for other hosts are dropped).
PAGE_HOST = "load.test"


def create_app() -> Flask:
    app = Flask("load_app")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=os.environ["LOAD_DATABASE_URL"],
        SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 4},
        ANALYTICS_RATE_LIMIT=None,
        ANALYTICS_ALLOWED_HOSTS=[PAGE_HOST],
        ANALYTICS_MAX_BATCH=50,
    )
    buffer_url = os.environ.get("LOAD_BUFFER_REDIS_URL")
    if buffer_url:
        app.config.update(
            ANALYTICS_INGEST_BUFFER="redis",
            ANALYTICS_BUFFER_REDIS_URL=buffer_url,
            # The test flushes itself; no RQ flush jobs.
            ANALYTICS_BUFFER_FLUSH_THRESHOLD=10**9,
        )
    db = SQLAlchemy()
    db.init_app(app)
    Analytics(app, db=db)
    return app
