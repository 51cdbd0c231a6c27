"""The app the server-pageview benchmark serves with gunicorn: one HTML page with the
tracker's tag, with ``ANALYTICS_SERVER_PAGEVIEWS`` on or off (``BENCH_SERVER_PAGEVIEWS``),
storing directly or through the Redis buffer (``BENCH_INGEST_BUFFER=redis``)."""

from __future__ import annotations

import os

from flask import Flask, render_template_string
from flask_sqlalchemy import SQLAlchemy

from flask_analytics import Analytics

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
{{ analytics_script() }}</head><body><h1>{{ title }}</h1><p>{{ text }}</p></body></html>"""


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=os.environ["BENCH_DATABASE_URL"],
        SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 4},
        ANALYTICS_RATE_LIMIT=None,
        ANALYTICS_SERVER_PAGEVIEWS=os.environ.get("BENCH_SERVER_PAGEVIEWS") == "1",
    )
    if os.environ.get("BENCH_INGEST_BUFFER") == "redis":
        app.config.update(
            ANALYTICS_INGEST_BUFFER="redis",
            ANALYTICS_BUFFER_REDIS_URL=os.environ.get(
                "BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"
            ),
            ANALYTICS_BUFFER_STREAM=os.environ["BENCH_BUFFER_STREAM"],
            ANALYTICS_BUFFER_MAX_LEN=None,
            ANALYTICS_BUFFER_FLUSH_THRESHOLD=10**9,  # no flush job: the stream only grows
        )
    db = SQLAlchemy(app)
    Analytics(app, db=db)

    @app.get("/blog/<slug>")
    def post(slug: str) -> str:
        return render_template_string(PAGE, title=slug, text="A paragraph. " * 40)

    return app
