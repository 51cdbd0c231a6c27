"""The extension object and its hooks: extensions entry, per-app state, optional
dashboard, the injected clock and the blinker signals."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_analytics import Analytics, Clock, signals
from flask_analytics.state import AppState, current_state

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


class FixedClock(Clock):
    """A clock that says what it is told."""

    def __init__(self, now: dt.datetime) -> None:
        self.moment = now

    def now(self) -> dt.datetime:
        return self.moment


def sqlite_app(tmp_path, name="site", **config):
    app = Flask(name)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / name}.db", SECRET_KEY="x", **config
    )
    return app


def event(path="/", **fields):
    return {"url": f"http://localhost{path}", "event_id": str(uuid.uuid4()), **fields}


def test_the_extensions_entry_is_the_analytics_object_and_state_hangs_off_it(tmp_path):
    app = sqlite_app(tmp_path)
    db = SQLAlchemy(app)
    ext = Analytics(app, db=db)
    assert app.extensions["analytics"] is ext
    state = ext.state(app)
    assert isinstance(state, AppState)
    assert state.app is app
    assert current_state(app) is state
    with app.app_context():
        assert ext.state() is state
        assert current_state() is state


def test_one_extension_keeps_a_state_per_app(tmp_path):
    db = SQLAlchemy()
    ext = Analytics(db=db)
    apps = []
    for name, tz in (("one", "UTC"), ("two", "Asia/Tokyo")):
        app = sqlite_app(tmp_path, name, ANALYTICS_TIMEZONE=tz)
        db.init_app(app)
        ext.init_app(app)
        apps.append(app)
    one, two = (ext.state(app) for app in apps)
    assert one is not two
    assert (one.settings.timezone.key, two.settings.timezone.key) == ("UTC", "Asia/Tokyo")
    assert all(app.extensions["analytics"] is ext for app in apps)


def test_a_state_is_refused_for_an_app_of_another_extension(tmp_path):
    app = sqlite_app(tmp_path)
    db = SQLAlchemy(app)
    Analytics(app, db=db)
    other = Analytics(db=SQLAlchemy())
    with pytest.raises(RuntimeError, match="another Analytics instance"):
        other.state(app)


@pytest.mark.parametrize("where", ["constructor", "init_app"])
def test_the_dashboard_can_be_left_unmounted(tmp_path, where):
    app = sqlite_app(tmp_path)
    db = SQLAlchemy(app)
    if where == "constructor":
        Analytics(app, db=db, dashboard=False)
    else:
        Analytics(db=db).init_app(app, dashboard=False)
    with app.app_context():
        db.create_all()
    client = app.test_client()
    assert client.get("/analytics/").status_code == 404
    assert "analytics_dashboard" not in app.blueprints
    answer = client.post("/_analytics/collect", json=event(), headers={"User-Agent": BROWSER})
    assert answer.status_code == 202
    assert client.get("/_analytics/script.js").status_code == 200


def test_the_dashboard_is_mounted_by_default(tmp_path):
    app = sqlite_app(tmp_path)
    Analytics(app, db=SQLAlchemy(app))
    assert "analytics_dashboard" in app.blueprints
    assert app.test_client().get("/analytics/").status_code == 403  # closed, but there


def test_every_now_comes_from_the_injected_clock(tmp_path):
    # 23:30 UTC on New Year's Eve is already 00:30 on 1 January in Paris.
    moment = dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.timezone.utc)
    clock = FixedClock(moment)
    app = sqlite_app(tmp_path, ANALYTICS_TIMEZONE="Europe/Paris")
    db = SQLAlchemy(app)
    ext = Analytics(app, db=db, clock=clock)
    with app.app_context():
        db.create_all()
        assert ext.state().today() == dt.date(2027, 1, 1)
        tracked = ext.track("signup", url="https://example.com/", user_agent=BROWSER, ip="1.2.3.4")
        assert tracked is not None
        assert tracked.created_at == moment.replace(tzinfo=None)
    answer = app.test_client().post(
        "/_analytics/collect", json=event("/later"), headers={"User-Agent": BROWSER}
    )
    assert answer.status_code == 202
    with app.app_context():
        times = db.session.scalars(sa.select(ext.Event.created_at)).all()
        assert times == [moment.replace(tzinfo=None)] * 2
        # The day's rollup is the local day of the clock's "now".
        result = ext.aggregate(ext.state().today())
        assert result.source_events == 2
        assert result.started_at == moment.replace(tzinfo=None)


def test_event_signals_name_each_stored_and_dropped_event(app, client, analytics):
    recorded, dropped = [], []

    def on_recorded(sender, event):
        recorded.append((sender, event["path"], event["event_id"]))

    def on_dropped(sender, event, reason):
        dropped.append((sender, reason, None if event is None else event["path"]))

    kept = event("/kept")
    batch = [kept, event("/twice"), event("/twice")]
    batch[2]["event_id"] = batch[1]["event_id"]  # the same event sent twice in one batch
    with (
        signals.event_recorded.connected_to(on_recorded, sender=app),
        signals.event_dropped.connected_to(on_dropped, sender=app),
    ):
        answer = client.post("/_analytics/collect", json=batch, headers={"User-Agent": BROWSER})
        assert answer.status_code == 202
        bot = client.post("/_analytics/collect", json=event("/bot"), headers={"User-Agent": BOT})
        assert bot.status_code == 202
        again = client.post("/_analytics/collect", json=kept, headers={"User-Agent": BROWSER})
        assert again.status_code == 202
    assert sorted(path for _, path, _ in recorded) == ["/kept", "/twice"]
    assert {sender for sender, _, _ in recorded} == {app}
    assert {event_id for _, path, event_id in recorded if path == "/kept"} == {kept["event_id"]}
    assert sorted(dropped, key=str) == sorted(
        [(app, "duplicate", None), (app, "bot", "/bot"), (app, "duplicate", "/kept")], key=str
    )
    with app.app_context():
        stored = analytics.db.session.scalars(sa.select(analytics.Event.path)).all()
    assert sorted(stored) == ["/kept", "/twice"]  # what the signals said


def test_lifecycle_signals_carry_the_results(app, analytics, make_event):
    today = current_state(app).today()
    old = today - dt.timedelta(days=200)
    with app.app_context():
        for hour in (9, 10):
            make_event(created_at=dt.datetime.combine(old, dt.time(hour)))
    aggregated, archived = [], []
    with (
        signals.day_aggregated.connected_to(
            lambda sender, result: aggregated.append((sender, result)), sender=app
        ),
        signals.days_archived.connected_to(
            lambda sender, result: archived.append((sender, result)), sender=app
        ),
        app.app_context(),
    ):
        result = analytics.aggregate(old)
        moved = analytics.archive(older_than_days=90)
    assert aggregated == [(app, result)]
    assert result.date == old
    assert result.source_events == 2
    assert archived == [(app, moved)]
    assert moved.moved == 2
