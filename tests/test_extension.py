"""The extension contract: init_app, config validation, factory pattern, errors."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_analytics import Analytics, ConfigError

from .conftest import DESKTOP_UA, collect_payload


def bare_app(**config):
    app = Flask("bare")
    app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://", **config)
    return app


def test_defaults_are_set_on_the_app():
    app = bare_app()
    db = SQLAlchemy(app)
    Analytics(app, db=db)
    assert app.config["ANALYTICS_TIMEZONE"] == "UTC"
    assert app.config["ANALYTICS_COLLECT_URL"] == "/_analytics/collect"
    assert app.config["ANALYTICS_TRUSTED_PROXIES"] == 0
    assert app.config["ANALYTICS_RESPECT_DNT"] is True


def test_registering_twice_raises():
    app = bare_app()
    db = SQLAlchemy(app)
    ext = Analytics(app, db=db)
    with pytest.raises(RuntimeError, match="already registered"):
        ext.init_app(app)


def test_db_is_required():
    with pytest.raises(TypeError, match="db=db"):
        Analytics()


def test_db_must_be_initialised_on_the_app_first():
    app = bare_app()
    db = SQLAlchemy()
    with pytest.raises(RuntimeError, match=r"db\.init_app"):
        Analytics(app, db=db)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"ANALYTICS_TIMEZONE": "Europe/Pariss"}, "'Europe/Pariss' is not a known time zone"),
        ({"ANALYTICS_EXCLUDED_IPS": ["10.0.0.0/33"]}, "not an IP address or CIDR"),
        ({"ANALYTICS_EXCLUDED_IPS": "not-an-ip"}, "not an IP address or CIDR"),
        ({"ANALYTICS_TRUSTED_PROXIES": -1}, "ANALYTICS_TRUSTED_PROXIES must be an integer >= 0"),
        ({"ANALYTICS_SESSION_TIMEOUT": "30m"}, "ANALYTICS_SESSION_TIMEOUT must be an integer"),
        ({"ANALYTICS_COLLECT_URL": "collect"}, "starting with '/'"),
        ({"ANALYTICS_EXCLUDED_PATHS": [1, 2]}, "list of strings"),
        ({"ANALYTICS_CLIENT_FIELDS": ["plan"]}, "not a custom column"),
        ({"ANALYTICS_CLIENT_FIELDS": ["path"]}, "not a custom column"),
        ({"ANALYTICS_GEOIP_DATABASE": "/nonexistent/file.mmdb"}, "cannot be opened"),
    ],
)
def test_bad_config_fails_early_with_actionable_message(config, message):
    app = bare_app(**config)
    db = SQLAlchemy(app)
    with pytest.raises(ConfigError, match=re.escape(message)):
        Analytics(app, db=db)


def test_using_an_app_without_init_app_says_so():
    db = SQLAlchemy()
    ext = Analytics(db=db)
    app = bare_app()
    db.init_app(app)
    with app.app_context(), pytest.raises(RuntimeError, match="Did you forget to call init_app"):
        ext.track("pageview", url="https://example.com/")


def test_factory_pattern_two_apps_in_one_process(tmp_path):
    db = SQLAlchemy()
    ext = Analytics(db=db)
    apps = []
    for name, tz in [("one", "UTC"), ("two", "Asia/Tokyo")]:
        app = Flask(name)
        app.config.update(
            SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / name}.db",
            ANALYTICS_TIMEZONE=tz,
            ANALYTICS_COLLECT_URL=f"/{name}/collect",
        )
        db.init_app(app)
        ext.init_app(app)
        with app.app_context():
            db.create_all()
        apps.append(app)
    one, two = apps
    assert ext.state(one).settings.timezone.key == "UTC"
    assert ext.state(two).settings.timezone.key == "Asia/Tokyo"
    r1 = one.test_client().post(
        "/one/collect", json=collect_payload(), headers={"User-Agent": DESKTOP_UA}
    )
    assert r1.status_code == 202
    assert two.test_client().post("/one/collect", json=collect_payload()).status_code == 404
    r2 = two.test_client().post(
        "/two/collect",
        json=[collect_payload(), collect_payload()],
        headers={"User-Agent": DESKTOP_UA},
    )
    assert r2.get_json()["stored"] == 2
    for app, expected in [(one, 1), (two, 2)]:
        with app.app_context():
            assert db.session.query(ext.Event).count() == expected
    for app in apps:
        with app.app_context():
            db.engine.dispose()


def test_models_are_exposed_with_fixed_table_names():
    db = SQLAlchemy()
    ext = Analytics(db=db)
    assert ext.Event.__tablename__ == "analytics_event"
    assert ext.EventArchive.__table__.name == "analytics_event_archive"
    names = {t.name for t in db.metadata.sorted_tables}
    assert names == {
        "analytics_event",
        "analytics_event_archive",
        "analytics_salt",
        "analytics_aggregation_run",
        "analytics_daily_summary",
        "analytics_daily_page",
        "analytics_daily_page_referrer",
        "analytics_daily_traffic_source",
        "analytics_daily_country",
        "analytics_daily_device",
        "analytics_daily_utm",
        "analytics_daily_dimension",
        "analytics_daily_page_experience",
        "analytics_daily_session",
        "analytics_daily_event",
        "analytics_daily_browser_version",
        "analytics_daily_os_version",
        "analytics_daily_location",
        "analytics_daily_language",
        "analytics_daily_screen",
        "analytics_daily_hostname",
        "analytics_session",
        "analytics_share_link",
        "analytics_api_token",
        "analytics_annotation",
    }
    assert ext.Event.__table__.c.event_id.unique
    assert any(ix.columns.keys() == ["created_at"] for ix in ext.Event.__table__.indexes)


def test_archive_mirrors_custom_columns():
    from .conftest import custom_event_model

    db = SQLAlchemy()
    ext = Analytics(db=db, event_model=custom_event_model(db))
    assert set(ext.EventArchive.__table__.c.keys()) == set(ext.Event.__table__.c.keys())
    assert "plan" in ext.EventArchive.__table__.c


def test_event_model_must_use_the_mixin():
    db = SQLAlchemy()

    class NotAnEvent(db.Model):
        id = db.Column(db.Integer, primary_key=True)

    with pytest.raises(TypeError, match="EventMixin"):
        Analytics(db=db, event_model=NotAnEvent)
