"""analytics.track() raises InvalidEvent for every invalid input (never a raw
AttributeError or DataError), on SQLite and PostgreSQL, with a subclassed event model."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_analytics import EventMixin, InvalidEvent
from flask_analytics.ingest.track import EARLIEST_TIMESTAMP, FUTURE_SKEW

from ..conftest import build_app, release_app

NOW = dt.datetime(2026, 6, 10, 12, 0)


def typed_model(db: Any) -> Any:
    class TypedEvent(EventMixin, db.Model):  # type: ignore[name-defined, misc]
        plan = db.Column(db.String(8))
        seats = db.Column(db.SmallInteger)
        amount = db.Column(db.Numeric(6, 2))
        renewal = db.Column(db.Date)
        tier = db.Column(db.Enum("free", "pro", name="tier_kind"))

    return TypedEvent


@pytest.fixture(scope="module")
def site(module_database_url, schemas) -> Iterator[Flask]:
    app, db = build_app(module_database_url, schemas, "track_invalid", event_model=typed_model)
    yield app
    release_app(app, db, schemas)


URL = "https://example.com/"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timestamp": "2026-01-01"}, "timestamp must be a datetime.datetime, not str"),
        ({"timestamp": dt.date(2026, 1, 1)}, "must be a datetime.datetime, not date"),
        ({"timestamp": dt.datetime(1, 1, 1)}, "timestamp is before 2000-01-01"),
        ({"timestamp": EARLIEST_TIMESTAMP - dt.timedelta(seconds=1)}, "before 2000"),
        (
            {"timestamp": dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))},
            "timestamp is out of range",
        ),
        ({"timestamp": NOW + FUTURE_SKEW + dt.timedelta(seconds=1)}, "in the future"),
        ({"name": 5}, "name must be a string"),
        ({"name": "\ud800"}, "invalid unicode"),
        ({"url": None}, "url must be a string"),
        ({"referrer": 7}, "referrer must be a string"),
        ({"ip": 1234}, "ip must be a string or None"),
        ({"ip": "not-an-ip"}, "is not an IP address"),
        ({"user_agent": b"Mozilla"}, "user_agent must be a string or None"),
        ({"props": ["a"]}, "props must be an object"),
        ({"props": {f"k{i}": i for i in range(31)}}, "more than 30 keys"),
        ({"props": {"a": 2**60}}, "within ±2**53"),
        ({"props": {"a": "x\x00"}}, "NUL"),
        ({"event_id": 12}, "event_id must be a string"),
        ({"screen_width": "wide"}, "screen_width must be a number"),
        ({"plan": "x" * 9}, "plan is longer than 8 characters"),
        ({"plan": 3}, "plan must be a string"),
        ({"seats": 40_000}, "seats must be between -32768 and 32767"),
        ({"seats": "3"}, "seats must be a number"),
        ({"amount": 12345.5}, "amount must have at most 4 digits before the point"),
        ({"amount": float("nan")}, "amount must be a finite number"),
        ({"renewal": dt.datetime(2026, 1, 1)}, "renewal must be a date"),
        ({"renewal": "2026-01-01"}, "renewal must be a date"),
        ({"tier": "enterprise"}, "tier must be one of free, pro"),
    ],
)
def test_invalid_input_raises_invalid_event(site, time_machine, kwargs, message):
    time_machine.move_to(NOW.replace(tzinfo=dt.timezone.utc), tick=False)
    ext = site.extensions["analytics_test"]
    args = {"name": "signup", "url": URL, **kwargs}
    with site.app_context():
        before = ext.db.session.query(ext.Event).count()
        with pytest.raises(InvalidEvent) as raised:
            ext.track(args.pop("name"), **args)
        assert ext.db.session.query(ext.Event).count() == before
    assert message in str(raised.value)


def test_values_that_fit_are_stored_as_given(site, time_machine):
    time_machine.move_to(NOW.replace(tzinfo=dt.timezone.utc), tick=False)
    ext = site.extensions["analytics_test"]
    with site.app_context():
        event = ext.track(
            "signup",
            url=URL,
            ip="203.0.113.5",
            timestamp=NOW + FUTURE_SKEW,
            plan="x" * 8,
            seats=-32768,
            amount=9999.99,
            renewal=dt.date(2027, 1, 1),
            tier="pro",
        )
        assert event is not None
        table = ext.Event.__table__
        with ext.db.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.id == event.id)).mappings().one()
    assert row["created_at"] == NOW + FUTURE_SKEW
    assert (row["plan"], row["seats"], row["renewal"], row["tier"]) == (
        "x" * 8,
        -32768,
        dt.date(2027, 1, 1),
        "pro",
    )
    assert float(row["amount"]) == 9999.99
