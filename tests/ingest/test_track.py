"""analytics.track(): server-side events through the same pipeline."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from flask_analytics import InvalidEvent

from ..conftest import DESKTOP_UA


def test_track_stores_and_returns_the_event(app, analytics):
    when = dt.datetime(2026, 2, 3, 4, 5, 6, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    with app.app_context():
        event = analytics.track(
            "signup",
            url="https://example.com/pricing?utm_campaign=spring",
            ip="203.0.113.5",
            user_agent=DESKTOP_UA,
            timestamp=when,
            props={"plan": "pro", "seats": 3},
        )
        stored = analytics.db.session.scalars(sa.select(analytics.Event)).one()
    assert event is not None
    assert event.id == stored.id
    assert stored.name == "signup"
    assert stored.hostname == "example.com"
    assert stored.path == "/pricing"
    assert stored.utm_campaign == "spring"
    assert stored.created_at == dt.datetime(2026, 2, 3, 2, 5, 6)
    assert stored.props == {"plan": "pro", "seats": 3}
    assert stored.browser == "Chrome"


def test_track_drops_bots_and_duplicates(app, analytics):
    event_id = str(uuid.uuid4())
    with app.app_context():
        assert (
            analytics.track("pageview", url="https://example.com/", user_agent="Googlebot/2.1")
            is None
        )
        assert (
            analytics.track("pageview", url="https://example.com/", event_id=event_id) is not None
        )
        assert analytics.track("pageview", url="https://example.com/", event_id=event_id) is None
        assert analytics.db.session.query(analytics.Event).count() == 1


def test_track_is_not_limited_to_the_request_host(app, analytics):
    with app.app_context():
        event = analytics.track("import", url="https://other-site.example/docs/a?ref=x")
        stored = analytics.db.session.scalars(sa.select(analytics.Event)).one()
    assert event is not None
    assert event.id == stored.id
    assert (stored.name, stored.hostname, stored.path) == (
        "import",
        "other-site.example",
        "/docs/a",
    )


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"url": "not a url"}, InvalidEvent),
        ({"url": "https://example.com/", "timestamp": dt.datetime(2999, 1, 1)}, InvalidEvent),
        ({"url": "https://example.com/", "props": {"x": object()}}, InvalidEvent),
        ({"url": "https://example.com/", "nonsense": 1}, TypeError),
        ({"url": "https://example.com/", "scroll_depth": 500}, InvalidEvent),
    ],
)
def test_track_rejects_invalid_input(app, analytics, kwargs, error):
    with app.app_context():
        with pytest.raises(error):
            analytics.track("pageview", **kwargs)
        assert analytics.db.session.query(analytics.Event).count() == 0


def test_track_does_not_touch_the_host_session(app, analytics):
    """track() writes on its own connection: the host's pending work is not committed."""
    with app.app_context():
        analytics.db.session.add(
            analytics.AggregationRun(date=dt.date(2026, 1, 1), started_at=dt.datetime(2026, 1, 1))
        )
        analytics.db.session.flush()
        analytics.db.session.rollback()
        assert analytics.track("pageview", url="https://example.com/") is not None
        assert analytics.db.session.query(analytics.AggregationRun).count() == 0
