"""The host's Flask-Migrate picks up the extension's tables, custom columns included."""

from __future__ import annotations

from pathlib import Path

import flask_migrate
import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_analytics import Analytics

from .conftest import DESKTOP_UA, collect_payload, custom_event_model
from .support.collect import answer


@pytest.fixture
def clean_database(database_url: str):
    """The test database, emptied of every table (also Alembic's) before and after."""

    def wipe() -> None:
        engine = sa.create_engine(database_url)
        meta = sa.MetaData()
        meta.reflect(engine)
        meta.drop_all(engine)
        engine.dispose()

    wipe()
    yield database_url
    wipe()


# Flask-Migrate's generated env.py still tries Flask-SQLAlchemy's deprecated get_engine first.
@pytest.mark.filterwarnings("ignore:'get_engine' is deprecated:DeprecationWarning")
def test_migration_generated_and_applied(clean_database: str, tmp_path: Path) -> None:
    app = Flask("migrated")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=clean_database, ANALYTICS_CLIENT_FIELDS=["ab_variant"]
    )
    db = SQLAlchemy()
    db.init_app(app)
    migrate = flask_migrate.Migrate(app, db)
    analytics = Analytics(app, db=db, event_model=custom_event_model(db))
    directory = str(tmp_path / "migrations")
    with app.app_context():
        flask_migrate.init(directory=directory)
        flask_migrate.migrate(directory=directory, message="analytics")
        [script] = (tmp_path / "migrations" / "versions").glob("*.py")
        text = script.read_text()
        for table in (
            "analytics_event",
            "analytics_event_archive",
            "analytics_daily_summary",
            "analytics_salt",
        ):
            assert f"op.create_table('{table}'" in text
        flask_migrate.upgrade(directory=directory)
        inspector = sa.inspect(db.engine)
        assert {"analytics_event", "analytics_event_archive", "alembic_version"} <= set(
            inspector.get_table_names()
        )
        event_columns = {c["name"] for c in inspector.get_columns("analytics_event")}
        archive_columns = {c["name"] for c in inspector.get_columns("analytics_event_archive")}
        assert {"plan", "ab_variant", "visitor_id", "props"} <= event_columns
        assert event_columns == archive_columns
        # Nothing left to migrate: the models and the migrated schema agree.
        flask_migrate.migrate(directory=directory, message="noop")
        assert len(list((tmp_path / "migrations" / "versions").glob("*.py"))) == 1
    assert migrate.db is db

    response = app.test_client().post(
        "/_analytics/collect",
        json=collect_payload(ab_variant="A"),
        headers={"User-Agent": DESKTOP_UA},
    )
    assert response.get_json() == answer(1)
    with app.app_context():
        assert db.session.scalars(sa.select(analytics.Event.ab_variant)).all() == ["A"]
        db.session.remove()
        db.engine.dispose()
