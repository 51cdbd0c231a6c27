"""What the example site tracks, checked with flask-analytics' pytest plugin."""

from __future__ import annotations

import re
from decimal import Decimal

from flask import Flask

from flask_analytics.testing import TrackedEvents, aggregate

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"}


def sign_up(app: Flask, plan: str) -> None:
    client = app.test_client()
    page = client.get("/signup", headers=BROWSER)
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    answer = client.post(
        "/signup",
        data={"csrf": token.group(1), "email": "me@example.com", "plan": plan},
        headers=BROWSER,
    )
    assert answer.status_code == 302


def test_a_pro_signup_is_one_signup_and_one_purchase(
    app: Flask, analytics_events: TrackedEvents
) -> None:
    sign_up(app, "pro")
    # The signup page's server pageview, with its endpoint and status.
    analytics_events.assert_tracked("pageview", path="/signup", endpoint="site.signup", status=200)
    signup = analytics_events.assert_tracked("signup", props={"plan": "pro"}, count=1)
    purchase = analytics_events.assert_tracked("purchase", props={"plan": "pro"}, count=1)
    assert (purchase["revenue_amount"], purchase["revenue_currency"]) == (Decimal("12.00"), "EUR")
    # The same visitor as the page: the purchase counts in that visit.
    assert purchase["visitor_id"] == signup["visitor_id"]
    assert "me@example.com" not in str(analytics_events.events)


def test_a_free_signup_buys_nothing(app: Flask, analytics_events: TrackedEvents) -> None:
    sign_up(app, "free")
    analytics_events.assert_tracked("signup", props={"plan": "free"})
    analytics_events.assert_not_tracked("purchase")


def test_the_day_aggregates_what_was_tracked(app: Flask, analytics_events: TrackedEvents) -> None:
    sign_up(app, "team")
    for path in ("/", "/blog", "/pricing"):
        assert app.test_client().get(path, headers=BROWSER).status_code == 200
    result = aggregate(app)
    # One daily row per custom event name (pageviews have their own tables).
    names = {e["name"] for e in analytics_events} - {"pageview"}
    assert result.rows["DailyEvent"] == len(names) == 2
    pageviews = len(analytics_events.named("pageview"))
    from example_app import analytics

    with app.app_context():
        summary = analytics.db.session.scalars(
            analytics.DailySummary.__table__.select().with_only_columns(
                analytics.DailySummary.pageviews
            )
        ).one()
    # GET /signup and the three pages; the POST and its redirect are no pageviews.
    assert summary == pageviews == 4
