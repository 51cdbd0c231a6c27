"""Server-side conversions: ``track(name, request=request)`` takes the visitor from the
request and lands in the visitor's visit (its source, channel, UTM and entry page in
goal breakdowns); ``track_model`` tracks committed rows once, never rolled-back ones.
Both databases."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, abort, request
from flask_sqlalchemy import SQLAlchemy

from flask_analytics import Analytics, InvalidEvent
from flask_analytics.committed import row_event_id

from .conftest import DESKTOP_UA, MOBILE_UA

SAFARI_UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Safari/605.1.15"
)
#: (ip, user agent, landing URL, referrer, purchases: amounts in EUR).
VISITS = [
    ("203.0.113.1", DESKTOP_UA, "http://localhost/pricing", "https://www.google.com/", ["10.00"]),
    ("198.51.100.2", MOBILE_UA, "http://localhost/blog/x?utm_source=news&utm_medium=email",
     None, ["5.50", "4.50"]),
    ("192.0.2.3", SAFARI_UA, "http://localhost/", "https://duckduckgo.com/", ["20.00"]),
    ("203.0.113.4", MOBILE_UA, "http://localhost/", "https://www.google.com/", []),
]  # fmt: skip
BOT_UA = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"


@pytest.fixture
def shop(make_app: Callable[..., Flask], frozen_clock: Any) -> Iterator[Flask]:
    app = make_app(
        ANALYTICS_RATE_LIMIT=None, ANALYTICS_GOALS=[{"name": "Purchase", "event": "purchase"}]
    )
    analytics: Analytics = app.extensions["analytics_test"]
    analytics.dashboard_access(lambda: True)
    db = analytics.db

    class Order(db.Model):  # type: ignore[name-defined, misc]
        __tablename__ = "shop_order"
        id = db.Column(db.Integer, primary_key=True)
        total = db.Column(db.Numeric(10, 2), nullable=False)
        currency = db.Column(db.String(3), nullable=False)
        plan = db.Column(db.String(16))

    analytics.track_model(
        Order, name="order", revenue=lambda o: (o.total, o.currency),
        props=lambda o: {"plan": o.plan} if o.plan else None,
    )  # fmt: skip

    @app.post("/checkout")
    def checkout() -> str:
        analytics.track("purchase", request=request,
                        revenue=(Decimal(request.form["amount"]), "EUR"))  # fmt: skip
        return "thanks"

    @app.post("/order")
    def order() -> str:
        row = Order(total=Decimal(request.form["total"]), currency="EUR",
                    plan=request.form.get("plan"))  # fmt: skip
        db.session.add(row)
        db.session.flush()
        if request.form.get("fail"):
            db.session.rollback()
            abort(409)
        db.session.commit()
        return str(row.id)

    app.config["ORDER_MODEL"] = Order
    with app.app_context():
        Order.__table__.create(db.engine, checkfirst=True)
    yield app
    with app.app_context():
        db.session.remove()
        Order.__table__.drop(db.engine, checkfirst=True)


def events(app: Flask, name: str | None = None) -> list[dict[str, Any]]:
    analytics = app.extensions["analytics_test"]
    table = analytics.Event.__table__
    query = sa.select(table).order_by(table.c.id)
    if name is not None:
        query = query.where(table.c.name == name)
    with app.app_context(), analytics.db.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def land(app: Flask, ip: str, ua: str, url: str, referrer: str | None) -> None:
    body = {"url": url, "referrer": referrer or ""}
    answer = app.test_client().post("/_analytics/collect", json=body,
                                    headers={"User-Agent": ua}, environ_base={"REMOTE_ADDR": ip})  # fmt: skip
    assert answer.get_json()["accepted"] == 1


def post(app: Flask, path: str, ip: str, ua: str, **form: str) -> Any:
    return app.test_client().post(path, data=form, headers={"User-Agent": ua},
                                  environ_base={"REMOTE_ADDR": ip})  # fmt: skip


def test_server_conversions_are_attributed_to_the_visit_that_made_them(shop: Flask) -> None:
    for ip, ua, url, referrer, _ in VISITS:
        land(shop, ip, ua, url, referrer)
    for ip, ua, _, _, amounts in VISITS:
        for amount in amounts:
            assert post(shop, "/checkout", ip, ua, amount=amount).status_code == 200
    # Bots and Do Not Track: no conversion.
    post(shop, "/checkout", "203.0.113.1", BOT_UA, amount="1")
    shop.test_client().post("/checkout", data={"amount": "1"}, environ_base={"REMOTE_ADDR": "203.0.113.1"},
                            headers={"User-Agent": DESKTOP_UA, "DNT": "1"})  # fmt: skip

    # The reference: each purchase belongs to the visitor of the request, whose visit's
    # attributes are those of their landing pageview.
    stored = events(shop)
    landing = {e["visitor_id"]: e for e in stored if e["name"] == "pageview"}
    purchases = [e for e in stored if e["name"] == "purchase"]
    assert len(purchases) == sum(len(v[4]) for v in VISITS)
    assert {p["visitor_id"] for p in purchases} <= set(landing)  # the same daily hash
    assert all(p["path"] == "/checkout" and p["referrer"] is None for p in purchases)

    day = dt.date.fromisoformat(str(stored[0]["created_at"])[:10])
    span = f"start={day}&end={day}"
    client = shop.test_client()
    for dimension, column in (("source", "source"), ("channel", "channel"),
                              ("utm_source", "utm_source"), ("entry_page", "path")):  # fmt: skip
        events_by = Counter(landing[p["visitor_id"]][column] for p in purchases)
        buyers_by = Counter(landing[v][column] for v in {p["visitor_id"] for p in purchases})
        body = client.get(f"/analytics/api/breakdown/{dimension}?{span}&goal=Purchase").get_json()
        got = {r[dimension]: (r["conversions"], r["events"]) for r in body["rows"] if r["events"]}
        want = {key: (buyers_by[key], n) for key, n in events_by.items()}
        assert got == want, dimension

    # Revenue per source, summed exactly.
    body = client.get(f"/analytics/api/breakdown/source?{span}&goal=Purchase").get_json()
    revenue: dict[Any, Decimal] = Counter()
    for p in purchases:
        revenue[landing[p["visitor_id"]]["source"]] += p["revenue_amount"]
    got_revenue = {
        r["source"]: Decimal(r["revenue"][0]["amount"]) for r in body["rows"] if r.get("revenue")
    }
    assert got_revenue == {k: v for k, v in revenue.items() if v}


def test_track_needs_a_url_or_a_request(shop: Flask) -> None:
    with shop.app_context(), pytest.raises(InvalidEvent, match="url must be a string"):
        shop.extensions["analytics_test"].track("purchase")


def test_committed_rows_are_tracked_once_and_rolled_back_ones_never(shop: Flask) -> None:
    land(shop, "198.51.100.2", MOBILE_UA, "http://localhost/pricing", "https://www.google.com/")
    answer = post(shop, "/order", "198.51.100.2", MOBILE_UA, total="12.50", plan="pro")
    order_id = int(answer.get_data(as_text=True))
    assert post(shop, "/order", "198.51.100.2", MOBILE_UA, total="99", fail="1").status_code == 409

    [tracked] = events(shop, "order")
    [view] = events(shop, "pageview")
    assert tracked["event_id"] == row_event_id("shop_order", (order_id,))
    assert tracked["revenue_amount"] == Decimal("12.50")
    assert tracked["revenue_currency"] == "EUR"
    assert tracked["props"] == {"plan": "pro"}
    assert tracked["visitor_id"] == view["visitor_id"]  # the committing request's visitor
    assert tracked["path"] == "/order"

    analytics = shop.extensions["analytics_test"]
    Order = shop.config["ORDER_MODEL"]
    db: SQLAlchemy = analytics.db
    with shop.app_context():
        # Re-committing the row (changed, then saved again) adds nothing; a row committed
        # outside a request is tracked on the default URL with no visitor of a request.
        row = db.session.get(Order, order_id)
        row.total = Decimal("13.00")
        db.session.commit()
        db.session.merge(Order(id=order_id, total=Decimal("13.00"), currency="EUR"))
        db.session.commit()
        other = Order(total=Decimal("7"), currency="EUR")
        db.session.add(other)
        db.session.commit()
        other_id = other.id
        # A transaction rolled back after its flush: nothing.
        db.session.add(Order(total=Decimal("1"), currency="EUR"))
        db.session.flush()
        db.session.rollback()
    found = {e["event_id"]: (e["path"], e["revenue_amount"]) for e in events(shop, "order")}
    assert found == {
        row_event_id("shop_order", (order_id,)): ("/order", Decimal("12.50")),
        row_event_id("shop_order", (other_id,)): ("/", Decimal("7")),
    }
    with shop.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 2
