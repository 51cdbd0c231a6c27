"""A minimal host app for the SIGKILL tests.

``flask --app tests.scripts.crash_app:create_app analytics archive --sync`` runs the real
command line in a process of its own, on the database named by ``CRASH_DATABASE_URL``
(whose tables the test created), so the test can kill it in the middle of its work.
"""

from __future__ import annotations

import os

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_analytics import Analytics


def create_app() -> Flask:
    app = Flask("crash_app")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=os.environ["CRASH_DATABASE_URL"],
        ANALYTICS_TIMEZONE=os.environ.get("CRASH_TIMEZONE", "UTC"),
        ANALYTICS_RETENTION_DAYS=int(os.environ.get("CRASH_RETENTION_DAYS", "90")),
    )
    db = SQLAlchemy()
    db.init_app(app)
    Analytics(app, db=db)
    return app
