"""Revenue on events: stored exactly (Decimal, never float) by every write path.

Collect (JSON numbers read from their text, decimal strings), ``track()`` (strict),
the Redis buffer's flush, and the archive, on SQLite and PostgreSQL. A bad revenue
from the browser leaves the revenue out of its event with a warning; from ``track()``
it raises.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_analytics import Analytics, InvalidEvent, buffer
from flask_analytics.ingest.revenue import currencies
from flask_analytics.lifecycle.archive import archive
from flask_analytics.state import current_state

from .conftest import DESKTOP_UA, REDIS_URL, build_app, redis_or_skip, release_app
from .support.redis_keys import delete_keys

#: (amount as the body's JSON text, the Decimal it is): numbers and strings.
GOOD = [
    ('"12.50"', Decimal("12.50")),
    ("12.50", Decimal("12.50")),
    ("0.1", Decimal("0.1")),
    ("1e2", Decimal("100")),
    ("7", Decimal("7")),
    ("-4.99", Decimal("-4.99")),  # a refund
    ("0", Decimal("0")),
    # 18 significant digits: beyond a binary float (it would read back ...12346).
    ("999999999999.999999", Decimal("999999999999.999999")),
    ('"-123456789012.123456"', Decimal("-123456789012.123456")),
    ("0.000001", Decimal("0.000001")),
    ("1.2345600000", Decimal("1.23456")),  # trailing zeros past the scale are no digits
]

#: (revenue object as JSON text, words of the warning).
BAD = [
    ('{"amount": "12.50", "currency": "eur"}', "must be in upper case: 'EUR'"),
    ('{"amount": "12.50", "currency": "EURO"}', "not an active ISO 4217 currency code"),
    ('{"amount": "12.50", "currency": "XXX"}', "not an active ISO 4217 currency code"),
    ('{"amount": "12.50", "currency": 978}', "must be a string"),
    ('{"amount": "12.50"}', "revenue.currency is required"),
    ('{"currency": "EUR"}', "revenue.amount is required"),
    ('{"amount": "12,50", "currency": "EUR"}', "must be a decimal number"),
    ('{"amount": "NaN", "currency": "EUR"}', "must be a decimal number"),
    ('{"amount": "Infinity", "currency": "EUR"}', "must be a decimal number"),
    ('{"amount": 1e400, "currency": "EUR"}', "must be below 1,000,000,000,000"),
    ('{"amount": 1000000000000, "currency": "EUR"}', "must be below"),
    ('{"amount": "-1e12", "currency": "EUR"}', "must be below"),
    ('{"amount": 0.0000001, "currency": "EUR"}', "at most 6 decimal places"),
    ('{"amount": true, "currency": "EUR"}', "must be a decimal number or string, not bool"),
    ('{"amount": [1], "currency": "EUR"}', "must be a decimal number or string, not list"),
    ('"12.50 EUR"', "must be an object with amount and currency"),
    ('[12.5, "EUR"]', "must be an object with amount and currency"),
]


def revenue_rows(app: Flask, table: str = "event") -> dict[str, dict[str, Any]]:
    """event_id -> (name, amount, currency, props) as the database returns them."""
    analytics: Analytics = app.extensions["analytics_test"]
    model = analytics.Event if table == "event" else analytics.EventArchive
    t = model.__table__
    with app.app_context(), analytics.db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.c.event_id, t.c.name, t.c.revenue_amount, t.c.revenue_currency, t.c.props)
        ).mappings()
        return {r["event_id"]: dict(r) for r in rows}


def post(app: Flask, body: str) -> dict[str, Any]:
    response = app.test_client().post(
        "/_analytics/collect",
        data=body,
        content_type="application/json",
        headers={"User-Agent": DESKTOP_UA},
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    answer: dict[str, Any] = response.get_json()
    return answer


def event_json(event_id: str, revenue: str | None, name: str = "purchase", **more: Any) -> str:
    """One event's JSON text, the revenue object written as given (number texts intact)."""
    fields = {"name": name, "url": "http://localhost/checkout", "event_id": event_id, **more}
    text = json.dumps(fields)
    return text if revenue is None else text[:-1] + f', "revenue": {revenue}}}'


@pytest.fixture(scope="module")
def app(module_database_url: str, schemas: Any) -> Iterator[Flask]:
    """One app per database for the module (no rate limit: many posts from one network)."""
    built, db = build_app(module_database_url, schemas, "revenue", ANALYTICS_RATE_LIMIT=None)
    yield built
    release_app(built, db, schemas)


def test_collect_stores_revenue_amounts_exactly_as_decimals(app: Flask) -> None:
    ids = [str(uuid.uuid4()) for _ in GOOD]
    body = "[" + ",".join(
        event_json(i, f'{{"amount": {text}, "currency": "EUR"}}')
        for i, (text, _) in zip(ids, GOOD, strict=True)
    ) + "]"  # fmt: skip
    answer = post(app, body)
    assert (answer["accepted"], answer["warnings"], answer["rejected"]) == (len(GOOD), [], [])
    rows = revenue_rows(app)
    for event_id, (text, expected) in zip(ids, GOOD, strict=True):
        row = rows[event_id]
        assert type(row["revenue_amount"]) is Decimal, text
        assert row["revenue_amount"] == expected, text
        assert row["revenue_currency"] == "EUR"
    # The exact sum, per currency, in SQL (typed: Decimal on both databases).
    analytics: Analytics = app.extensions["analytics_test"]
    t = analytics.Event.__table__
    with app.app_context(), analytics.db.engine.connect() as conn:
        total = conn.scalar(sa.select(sa.func.sum(t.c.revenue_amount)).where(t.c.event_id.in_(ids)))
    assert type(total) is Decimal
    assert total == sum(expected for _, expected in GOOD)


def test_a_bad_revenue_is_left_out_of_its_event_with_a_warning(app: Flask) -> None:
    ids = [str(uuid.uuid4()) for _ in BAD]
    body = "[" + ",".join(
        event_json(i, revenue, props={"k": i})
        for i, (revenue, _) in zip(ids, BAD, strict=True)
    ) + "]"  # fmt: skip
    answer = post(app, body)
    assert answer["accepted"] == len(BAD)
    assert answer["rejected"] == []
    warnings = {w["index"]: w["warning"] for w in answer["warnings"]}
    assert sorted(warnings) == list(range(len(BAD)))
    rows = revenue_rows(app)
    for index, (event_id, (revenue, words)) in enumerate(zip(ids, BAD, strict=True)):
        assert f"events[{index}].revenue" in warnings[index], revenue
        assert words in warnings[index], (revenue, warnings[index])
        assert warnings[index].endswith(": left out"), warnings[index]
        # The event is stored, without revenue (both columns NULL), the rest intact.
        row = rows[event_id]
        assert (row["revenue_amount"], row["revenue_currency"]) == (None, None), revenue
        assert (row["name"], row["props"]) == ("purchase", {"k": event_id})


def test_events_without_revenue_and_floats_in_props_are_as_before(app: Flask) -> None:
    plain, nulled = str(uuid.uuid4()), str(uuid.uuid4())
    body = "[" + event_json(plain, None, props={"ratio": 0.1, "big": 1.5e10}) + ","
    body += event_json(nulled, "null") + "]"
    answer = post(app, body)
    assert (answer["accepted"], answer["warnings"]) == (2, [])
    rows = revenue_rows(app)
    assert rows[plain]["props"] == {"ratio": 0.1, "big": 1.5e10}
    assert type(rows[plain]["props"]["ratio"]) is float
    for event_id in (plain, nulled):
        assert (rows[event_id]["revenue_amount"], rows[event_id]["revenue_currency"]) == (
            None,
            None,
        )


def test_track_stores_revenue_and_refuses_what_it_cannot_store(app: Flask) -> None:
    analytics: Analytics = app.extensions["analytics_test"]
    cases = [
        (Decimal("12.50"), Decimal("12.50")),
        (-3, Decimal("-3")),
        ("0.000001", Decimal("0.000001")),
        (Decimal("999999999999.999999"), Decimal("999999999999.999999")),
    ]
    with app.app_context():
        ids = []
        for amount, expected in cases:
            stored = analytics.track(
                "purchase", url="https://shop.example/", revenue=(amount, "JPY")
            )
            assert stored is not None
            assert (stored.revenue_amount, stored.revenue_currency) == (expected, "JPY")
            ids.append(stored.event_id)
        plain = analytics.track("signup", url="https://shop.example/")
        assert plain is not None
        assert plain.revenue_amount is None
        bad = [
            ((12.5, "EUR"), "must not be a float"),
            ((Decimal("NaN"), "EUR"), "must be a finite number"),
            ((Decimal("1E12"), "EUR"), "must be below"),
            ((Decimal("0.0000001"), "EUR"), "at most 6 decimal places"),
            (("1 000", "EUR"), "must be a decimal number"),
            ((True, "EUR"), "not bool"),
            ((Decimal(1), "usd"), "must be in upper case: 'USD'"),
            ((Decimal(1), "ABC"), "not an active ISO 4217"),
            ((Decimal(1), None), "must be a string"),
            ((Decimal(1),), "of two items"),
            ({"amount": "1", "currency": "EUR"}, "must be a tuple"),
            ("12.50 EUR", "must be a tuple"),
        ]
        for revenue, words in bad:
            with pytest.raises(InvalidEvent, match=words):
                analytics.track("purchase", url="https://shop.example/", revenue=revenue)
        # The columns are not track() fields: revenue= is the one way in.
        with pytest.raises(TypeError, match="unexpected field 'revenue_amount'"):
            analytics.track("purchase", url="https://shop.example/", revenue_amount=Decimal(1))
    rows = revenue_rows(app)
    assert [rows[i]["revenue_amount"] for i in ids] == [expected for _, expected in cases]
    assert all(type(rows[i]["revenue_amount"]) is Decimal for i in ids)
    assert {rows[i]["revenue_currency"] for i in ids} == {"JPY"}
    assert len([r for r in rows.values() if r["name"] == "purchase"]) >= len(cases)


def test_archived_events_keep_their_revenue(app: Flask, frozen_clock: Any) -> None:
    analytics: Analytics = app.extensions["analytics_test"]
    state = current_state(app)
    day = state.today() - dt.timedelta(days=3)
    when = dt.datetime.combine(day, dt.time(12)).replace(tzinfo=state.settings.timezone)
    amounts = [Decimal("0.1"), Decimal("0.2"), Decimal("-123456789012.123456")]
    with app.app_context():
        ids = [
            analytics.track(
                "purchase", url="https://shop.example/", timestamp=when, revenue=(a, "EUR")
            ).event_id
            for a in amounts
        ]
        analytics.aggregate(day)
        result = archive(state, older_than_days=1)
    assert result.moved >= len(ids)
    archived = revenue_rows(app, "archive")
    assert [archived[i]["revenue_amount"] for i in ids] == amounts
    assert all(type(archived[i]["revenue_amount"]) is Decimal for i in ids)
    assert not set(ids) & set(revenue_rows(app))


def test_currencies_are_the_active_iso_4217_codes() -> None:
    codes = currencies()
    assert {"EUR", "USD", "JPY", "GBP", "CHF", "KWD", "XAU", "XCG"} <= codes
    assert not {"XXX", "DEM", "FRF", "eur", "EURO"} & codes  # none, replaced, not codes
    assert all(len(c) == 3 and c.isascii() and c.isupper() for c in codes)


@pytest.mark.redis
def test_buffered_revenue_is_stored_exactly_after_the_flush(
    make_app: Any, frozen_clock: Any
) -> None:
    connection = redis_or_skip()
    stream = f"fa-test-revenue-{uuid.uuid4().hex[:12]}"
    try:
        buffered = make_app(
            ANALYTICS_INGEST_BUFFER="redis",
            ANALYTICS_BUFFER_REDIS_URL=REDIS_URL,
            ANALYTICS_BUFFER_STREAM=stream,
            ANALYTICS_RATE_LIMIT=None,
        )
        ids = [str(uuid.uuid4()) for _ in GOOD]
        events = [
            event_json(i, f'{{"amount": {text}, "currency": "CHF"}}')
            for i, (text, _) in zip(ids, GOOD, strict=True)
        ]
        plain = str(uuid.uuid4())
        # One request with a revenue-less event among them, one with a revenue alone.
        answer = post(buffered, "[" + ",".join([*events[:-1], event_json(plain, None)]) + "]")
        assert answer["accepted"] == len(GOOD)
        assert post(buffered, events[-1])["accepted"] == 1
        assert revenue_rows(buffered) == {}  # still in Redis
        with buffered.app_context():
            assert buffer.flush(current_state(buffered)).inserted == len(GOOD) + 1
        rows = revenue_rows(buffered)
        for event_id, (text, expected) in zip(ids, GOOD, strict=True):
            assert type(rows[event_id]["revenue_amount"]) is Decimal, text
            assert rows[event_id]["revenue_amount"] == expected, text
            assert rows[event_id]["revenue_currency"] == "CHF"
        assert (rows[plain]["revenue_amount"], rows[plain]["revenue_currency"]) == (None, None)
    finally:
        delete_keys(connection, stream)
        connection.close()


def test_migrations_import_the_revenue_type_and_the_hosts_render_item_still_runs() -> None:
    from types import SimpleNamespace

    from flask_analytics.migrate import install, render_item
    from flask_analytics.models import RevenueAmount

    seen: list[str] = []

    def host(type_: str, obj: Any, autogen_context: Any) -> Any:
        seen.append(type_)
        return "host" if type_ == "server_default" else False

    args: dict[str, Any] = {"render_item": host}
    install(args)
    install(args)  # twice (an app built again): wrapped once
    context = SimpleNamespace(imports=set())
    assert args["render_item"]("type", RevenueAmount(), context) is False
    assert args["render_item"]("type", sa.Integer(), context) is False
    assert args["render_item"]("server_default", None, context) == "host"
    assert context.imports == {"import flask_analytics.models"}
    assert seen == ["type", "type", "server_default"]
    alone: dict[str, Any] = {}
    install(alone)
    install(alone)
    assert alone == {"render_item": render_item}
