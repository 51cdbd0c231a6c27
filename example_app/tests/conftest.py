"""The example site's own tests, as a host app writes them: the app on a throwaway
SQLite database and flask-analytics' pytest plugin (``analytics_events``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

pytest_plugins = ["flask_analytics.testing"]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    from example_app import create_app, db

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'example.db'}",
            "EXAMPLE_DEMO_DAYS": 0,
            "TESTING": True,
            "SECRET_KEY": "test",
        }
    )
    yield app
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()
