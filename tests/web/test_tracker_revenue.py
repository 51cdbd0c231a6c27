"""Tracker in a real browser: ``fa.track(name, props, {revenue: {amount, currency}})``.

The amounts are stored as the exact Decimals the page gave, JSON numbers included; a
bad revenue is left out of its event by the server, which keeps the event.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from .tracker_app import create_app
from .tracker_fixtures import (  # noqa: F401 (fixtures)
    COLUMNS,
    Site,
    chromium_fixture,
    context_fixture,
    named,
    page_fixture,
    serve,
    wait_for_events,
)

pytestmark = pytest.mark.browser


@pytest.fixture(name="site")
def revenue_site(tmp_path: Path) -> Iterator[Site]:
    """The test site (file SQLite), its events read with their revenue columns."""
    app = create_app(f"sqlite:///{tmp_path / 'revenue.db'}")
    yield from serve(app, (*COLUMNS, "revenue_amount", "revenue_currency"))


def test_revenue_from_fa_track_is_stored_exactly(site: Site, page):
    page.goto(site.url + "/page/checkout")
    page.evaluate(
        """() => {
        fa.track("purchase", {plan: "pro"}, {revenue: {amount: "12.50", currency: "EUR"}});
        // JSON numbers: 0.1 is sent as the text 0.1 and read from it, never as a float.
        fa.track("refund", null, {revenue: {amount: -0.1, currency: "USD"}});
        fa.track("big", {}, {revenue: {amount: "999999999999.999999", currency: "JPY"}});
        fa.track("bad", {k: 1}, {revenue: {amount: "12,50", currency: "EUR"}});
        fa.track("plain", {k: 2}, {});
        // Props the tracker no longer checks: the server leaves them out of the event.
        fa.track("long", {s: "x".repeat(2001), n: 2 ** 60, ok: 1});
    }"""
    )
    events = wait_for_events(
        site, page, lambda ev: all(named(ev, n) for n in ("purchase", "long")), "the events"
    )
    revenue = {
        e["name"]: (e["revenue_amount"], e["revenue_currency"], e["props"])
        for e in events
        if e["name"] not in ("pageview", "early")
    }
    assert revenue == {
        "purchase": (Decimal("12.50"), "EUR", {"plan": "pro"}),
        "refund": (Decimal("-0.1"), "USD", None),
        "big": (Decimal("999999999999.999999"), "JPY", None),
        "bad": (None, None, {"k": 1}),
        "plain": (None, None, {"k": 2}),
        "long": (None, None, {"ok": 1}),
    }
    assert all(type(v[0]) is Decimal for v in revenue.values() if v[0] is not None)
    sent = {e["name"]: e for e in site.sent()}
    assert sent["refund"]["revenue"] == {"amount": -0.1, "currency": "USD"}
    assert "revenue" not in sent["plain"]
    assert "revenue" not in sent["long"]
