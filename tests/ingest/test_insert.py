"""The direct ingest path's DBAPI insert stores exactly what SQLAlchemy Core would."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from flask_analytics import EventMixin
from flask_analytics.ingest.insert import EventInserter
from flask_analytics.state import current_state


class Tier(enum.Enum):
    FREE = "free"
    PRO = "pro"


def typed_event_model(db: Any) -> Any:
    """Custom columns of several types, one with a constant Python-side default."""

    class TypedEvent(EventMixin, db.Model):  # type: ignore[name-defined, misc]
        tier = db.Column(db.Enum(Tier))
        price = db.Column(db.Numeric(10, 2))
        signed_up = db.Column(db.Date())
        flags = db.Column(db.JSON())
        source_app = db.Column(db.String(16), default="web")

    return TypedEvent


def callable_default_model(db: Any) -> Any:
    class StampedEvent(EventMixin, db.Model):  # type: ignore[name-defined, misc]
        stamp = db.Column(db.String(32), default=lambda: "from-python")

    return StampedEvent


def row(**extra: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "created_at": dt.datetime(2026, 3, 4, 5, 6, 7, 890123),
        "name": "pageview",
        "hostname": "example.com",
        "path": "/caf\u00e9/\U0001f600",
        "screen_width": 1280,
        "engagement_ms": None,
        "scroll_depth": None,
        "props": {"plan": "pro", "n": 3, "nested": ["a", None, 1.5], "uni": "\u00fc\u4e2d"},
        "visitor_id": -(2**63),
        "device_type": "desktop",
        "browser": "Chrome",
        "os": "Linux",
        "country": "DE",
        **extra,
    }


def stored(app: Any, model: Any) -> dict[str, dict[str, Any]]:
    table = model.__table__
    with app.app_context(), current_state(app).engine().connect() as conn:
        rows = conn.execute(sa.select(table)).mappings().all()
    return {r["event_id"]: {k: v for k, v in r.items() if k != "id"} for r in rows}


def core_insert(app: Any, model: Any, rows: list[dict[str, Any]]) -> None:
    with app.app_context(), current_state(app).engine().begin() as conn:
        for one in rows:  # one by one: each row's own keys, Core's defaults for the rest
            conn.execute(sa.insert(model.__table__), one)


def test_rows_read_back_equal_to_core_inserts(make_app):
    app = make_app(event_model=typed_event_model)
    state = current_state(app)
    model = state.models.Event
    extra = {
        "tier": Tier.PRO,
        "price": 12.5,
        "signed_up": dt.date(2026, 1, 2),
        "flags": {"beta": True},
    }
    fast = [row(**extra), row(), row(tier=Tier.FREE, source_app="ios")]
    slow = [{**r, "event_id": str(uuid.uuid4())} for r in fast]
    with app.app_context():
        inserter = state.inserter(state.engine())
        assert inserter.supports(fast)
        inserted = inserter.insert(fast)
    core_insert(app, model, [{**r} for r in slow])
    assert set(inserted) == {r["event_id"] for r in fast}
    got = stored(app, model)
    for a, b in zip(fast, slow, strict=True):
        left, right = dict(got[a["event_id"]]), dict(got[b["event_id"]])
        left.pop("event_id"), right.pop("event_id")
        assert left == right
    # A key no row has gets the column's constant default, as Core gives it.
    assert got[fast[1]["event_id"]]["source_app"] == "web"
    assert got[fast[2]["event_id"]]["source_app"] == "ios"
    assert got[fast[0]["event_id"]]["tier"] is Tier.PRO
    assert got[fast[0]["event_id"]]["props"]["uni"] == "\u00fc\u4e2d"
    assert got[fast[0]["event_id"]]["created_at"] == dt.datetime(2026, 3, 4, 5, 6, 7, 890123)


def test_returns_only_the_rows_it_inserted(app):
    state = current_state(app)
    first = [row() for _ in range(3)]
    with app.app_context():
        inserter = state.inserter(state.engine())
        assert set(inserter.insert(first)) == {r["event_id"] for r in first}
        again = [first[1], row(), first[2], row()]
        inserted = inserter.insert(again)
        # Each shape of statement is built once and reused.
        assert inserter.insert([row() for _ in range(4)])
        assert len(inserter._sql) == 2
    assert set(inserted) == {again[1]["event_id"], again[3]["event_id"]}
    assert len(stored(app, state.models.Event)) == 9
    ids = sorted(inserted.values())
    assert len(set(ids)) == 2
    assert all(isinstance(i, int) for i in ids)


def test_duplicate_event_id_within_one_statement_is_stored_once(app):
    state = current_state(app)
    one = row()
    with app.app_context():
        inserted = state.inserter(state.engine()).insert([one, {**one, "path": "/other"}])
    assert list(inserted) == [one["event_id"]]
    assert [r["path"] for r in stored(app, state.models.Event).values()] == [one["path"]]


def test_callable_defaults_go_through_core(make_app):
    app = make_app(event_model=callable_default_model)
    state = current_state(app)
    one = row()
    with app.app_context():
        assert not state.inserter(state.engine()).supports([one])
        assert set(state.direct_sink.insert([one])) == {one["event_id"]}
    assert stored(app, state.models.Event)[one["event_id"]]["stamp"] == "from-python"


def test_unreachable_database_raises_sqlalchemy_operational_error(database_url):
    if database_url.startswith("sqlite"):
        url = "sqlite:////nonexistent-directory/for/analytics.db"
    else:
        url = sa.engine.make_url(database_url).set(port=1).render_as_string(hide_password=False)
    engine = sa.create_engine(url)
    table = EventMixin.__dict__.get("__table__")
    assert table is None  # the mixin has no table: build one like the default model's
    metadata = sa.MetaData()
    table = sa.Table(
        "analytics_event",
        metadata,
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("event_id", sa.String(36), unique=True),
    )
    inserter = EventInserter(table, engine)
    with pytest.raises(sa.exc.OperationalError):
        inserter.insert([{"event_id": str(uuid.uuid4())}])
    engine.dispose()


def test_a_failed_statement_leaves_the_pooled_connection_usable(app):
    state = current_state(app)
    bad = row(path=None)  # NOT NULL: the database refuses the statement
    good = row()
    with app.app_context():
        engine = state.engine()
        inserter = state.inserter(engine)
        with pytest.raises(sa.exc.IntegrityError):
            inserter.insert([bad])
        assert set(inserter.insert([good])) == {good["event_id"]}
        with engine.connect() as conn:  # no transaction left open on the pooled connection
            assert (
                conn.execute(
                    sa.select(sa.func.count()).select_from(state.models.Event.__table__)
                ).scalar()
                == 1
            )
    assert list(stored(app, state.models.Event)) == [good["event_id"]]
