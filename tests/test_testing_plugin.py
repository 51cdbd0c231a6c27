"""flask_analytics.testing: the ``analytics_events`` fixture sees what an app stores
(browser, track(), server pageviews), not what it drops, without reading the database;
``aggregate`` runs a day. Both databases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, render_template_string

from flask_analytics.testing import TrackedEvents, aggregate

from .conftest import DESKTOP_UA

BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def test_the_fixture_records_stored_events_only(
    make_app: Callable[..., Flask], analytics_events: TrackedEvents, frozen_clock: Any
) -> None:
    app = make_app(ANALYTICS_SERVER_PAGEVIEWS=True, ANALYTICS_RATE_LIMIT=None)
    app.add_url_rule("/", "home", lambda: render_template_string("<p>{{ analytics_script() }}"))
    client = app.test_client()
    client.get("/", headers={"User-Agent": DESKTOP_UA})
    client.get("/", headers={"User-Agent": BOT_UA})
    client.post("/_analytics/collect", json={"name": "signup", "url": "http://localhost/",
                "props": {"plan": "pro", "seats": 3}}, headers={"User-Agent": DESKTOP_UA})  # fmt: skip
    with app.app_context():
        app.extensions["analytics_test"].track("import", url="https://localhost/x")

    assert [e["name"] for e in analytics_events] == ["pageview", "signup", "import"]
    view = analytics_events.assert_tracked("pageview", endpoint="home", status=200, count=1)
    assert view["path"] == "/"
    analytics_events.assert_tracked("signup", props={"plan": "pro"})
    analytics_events.assert_tracked("signup", {"seats": 3}, count=1)
    analytics_events.assert_not_tracked("signup", props={"plan": "free"})
    with pytest.raises(pytest.fail.Exception, match="expected 'signup' with props"):
        analytics_events.assert_tracked("signup", props={"plan": "free"})
    with pytest.raises(pytest.fail.Exception, match="2 time"):
        analytics_events.assert_tracked("signup", count=2)
    with pytest.raises(pytest.fail.Exception, match="no 'import' event"):
        analytics_events.assert_not_tracked("import")

    # The same events are in the database; a day's aggregation counts them.
    analytics = app.extensions["analytics_test"]
    with app.app_context():
        result = aggregate(app)
        stored = analytics.db.session.scalars(sa.select(analytics.Event.event_id)).all()
        pageviews = analytics.db.session.scalars(sa.select(analytics.DailySummary.pageviews)).one()
    assert sorted(stored) == sorted(e["event_id"] for e in analytics_events)
    assert pageviews == len(analytics_events.named("pageview"))
    assert result.rows["DailyEvent"] == 2  # signup, import
    analytics_events.clear()
    assert len(analytics_events) == 0
