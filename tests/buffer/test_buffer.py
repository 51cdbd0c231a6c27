"""Redis-buffered ingestion (flask_analytics/buffer.py) on the real Redis and databases.

Every app gets a stream of its own (``fa-test-buffer-<random>``) on the shared Redis and
deletes only its keys. The "Redis stopped" tests start a private ``redis-server``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import enum
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from flask_analytics import EventMixin, buffer
from flask_analytics.buffer import flusher
from flask_analytics.config import DEFAULTS, load_settings
from flask_analytics.errors import ConfigError
from flask_analytics.state import current_state
from flask_analytics.tasks import enqueue, worker
from flask_analytics.tasks import scheduler as scheduling

from ..conftest import DESKTOP_UA, REDIS_URL
from ..support.collect import answer
from ..support.processes import ROOT, wait_for, wait_while_running
from ..support.redis_keys import delete_queue_keys

# -- helpers ------------------------------------------------------------------------------


@pytest.fixture
def buffered_app(make_app: Callable[..., Flask], stream: str) -> Callable[..., Flask]:
    """``make_app`` with the Redis buffer on this test's stream."""

    def factory(**config: Any) -> Flask:
        settings = {
            "ANALYTICS_INGEST_BUFFER": "redis",
            "ANALYTICS_BUFFER_REDIS_URL": REDIS_URL,
            "ANALYTICS_BUFFER_STREAM": stream,
            "ANALYTICS_RATE_LIMIT": None,
            **config,
        }
        return make_app(**settings)

    return factory


def post(app: Flask, events: Any, *, ua: str = DESKTOP_UA) -> Any:
    return app.test_client().post(
        "/_analytics/collect",
        json=events,
        headers={"User-Agent": ua},
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
    )


def event(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "pageview",
        "url": "http://localhost/",
        "event_id": str(uuid.uuid4()),
    }
    body.update(overrides)
    return body


def count_rows(app: Flask) -> int:
    analytics = app.extensions["analytics_test"]
    with app.app_context(), analytics.db.engine.connect() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).select_from(analytics.Event.__table__)))


def event_ids(app: Flask) -> list[str]:
    analytics = app.extensions["analytics_test"]
    table = analytics.Event.__table__
    with app.app_context(), analytics.db.engine.connect() as conn:
        return list(conn.scalars(sa.select(table.c.event_id)))


def flush(app: Flask, **kwargs: Any) -> buffer.FlushResult:
    with app.app_context():
        return buffer.flush(current_state(app), **kwargs)


def stream_length(app: Flask) -> int:
    state = current_state(app)
    return int(state.buffer.redis.xlen(state.buffer.stream))


def pending(app: Flask) -> int:
    state = current_state(app)
    try:
        return int(state.buffer.redis.xpending(state.buffer.stream, buffer.GROUP)["pending"])
    except RedisError:  # no group yet
        return 0


# -- configuration ----------------------------------------------------------------------------


def settings_with(**config: Any) -> Any:
    return load_settings({**DEFAULTS, **config})


def test_buffer_is_off_by_default_and_redis_needs_a_url():
    assert settings_with().ingest_buffer == "direct"
    with pytest.raises(ConfigError, match="ANALYTICS_BUFFER_REDIS_URL"):
        settings_with(ANALYTICS_INGEST_BUFFER="redis")
    with_jobs_url = settings_with(ANALYTICS_INGEST_BUFFER="redis", ANALYTICS_REDIS_URL="redis://a")
    assert with_jobs_url.buffer_redis_url == "redis://a"
    own = settings_with(
        ANALYTICS_INGEST_BUFFER="redis",
        ANALYTICS_REDIS_URL="redis://a",
        ANALYTICS_BUFFER_REDIS_URL="redis://b",
    )
    assert own.buffer_redis_url == "redis://b"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"ANALYTICS_INGEST_BUFFER": "kafka"}, "must be 'direct' or 'redis'"),
        ({"ANALYTICS_BUFFER_FLUSH_INTERVAL": 0}, "ANALYTICS_BUFFER_FLUSH_INTERVAL must be"),
        ({"ANALYTICS_BUFFER_CLAIM_IDLE": "60"}, "ANALYTICS_BUFFER_CLAIM_IDLE must be"),
        ({"ANALYTICS_BUFFER_BATCH": 0}, "ANALYTICS_BUFFER_BATCH must be an integer >= 1"),
        ({"ANALYTICS_BUFFER_MAX_LEN": -1}, "ANALYTICS_BUFFER_MAX_LEN must be"),
        ({"ANALYTICS_BUFFER_DEDUPE_TTL": 1.5}, "ANALYTICS_BUFFER_DEDUPE_TTL must be"),
        ({"ANALYTICS_BUFFER_STREAM": ""}, "ANALYTICS_BUFFER_STREAM must be"),
        ({"ANALYTICS_BUFFER_REDIS_URL": 6379}, "ANALYTICS_BUFFER_REDIS_URL must be"),
    ],
)
def test_invalid_buffer_settings_fail_with_the_key(config, message):
    with pytest.raises(ConfigError, match=message):
        settings_with(**config)


# -- serialization --------------------------------------------------------------------------


class Color(enum.Enum):
    RED = "r"
    BLUE = "b"


def typed_event_model(db: Any, *, enum_column: bool = True) -> Any:
    """A subclassed event model with a custom column of every common type.

    Without ``enum_column``, every column is of a type PostgreSQL reads from the stored
    COPY text as it is (an enum's values go through SQLAlchemy in Python).
    """

    class TypedEvent(EventMixin, db.Model):  # type: ignore[name-defined, misc]
        plan = db.Column(db.String(32))
        signed_up_at = db.Column(db.DateTime())
        birthday = db.Column(db.Date())
        opens_at = db.Column(db.Time())
        amount = db.Column(db.Numeric(12, 4))
        ratio = db.Column(db.Float())
        paid = db.Column(db.Boolean())
        token = db.Column(db.Uuid())
        blob = db.Column(db.LargeBinary())
        wait = db.Column(db.Interval())
        if enum_column:
            color = db.Column(db.Enum(Color))
        extra = db.Column(db.JSON())
        tier = db.Column(db.String(8), nullable=False, default="free")

    return TypedEvent


#: Strings that break naive formats: COPY's escapes and NULL marker, JSON, our row separator.
NASTY = [
    "tab\there",
    "new\nline",
    "back\\slash",
    "\\N",
    "",
    "quote\"'",
    "\u2028\u2029",
    "é😀",
    "\r\x00x",
]


def typed_rows(n: int, prefix: str) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        text = NASTY[i % len(NASTY)].replace("\x00", "")  # no database stores NUL in text
        row: dict[str, Any] = {
            "event_id": f"{prefix}-{i:04d}-{uuid.uuid4().hex[:8]}",
            "created_at": dt.datetime(2026, 1, 15, 12, 0, 0, 123456 + i),
            "name": "pageview" if i % 3 else "signup",
            "hostname": "example.com",
            "path": f"/p/{i}/{text}",
            "referrer": None if i % 2 else f"https://ref.example/{text}",
            "referrer_host": None,
            "channel": "Direct",
            "visitor_id": -(2**63) + i if i % 2 else 2**63 - 1 - i,
            "screen_width": None if i % 4 == 0 else 1280 + i,
            "props": [None, {}, {"k": text, "n": 1.5, "deep": {"x": [1, None, True]}}][i % 3],
            "plan": [None, text, "pro"][i % 3],
            "signed_up_at": dt.datetime(2025, 12, 31, 23, 59, 59, 999999) if i % 2 else None,
            "birthday": dt.date(1999, 12, 31) if i % 2 else None,
            "opens_at": dt.time(8, 30, 0, 5) if i % 2 else None,
            "amount": decimal.Decimal("12345678.1234") if i % 2 else decimal.Decimal("-0.0001"),
            "ratio": [0.1, 1e-300, -2.5, None][i % 4],
            "paid": [True, False, None][i % 3],
            "token": uuid.UUID(int=i + 1) if i % 2 else None,
            "blob": bytes(range(i % 256)) + b"\n\t\\" if i % 2 else None,
            "wait": dt.timedelta(days=i, seconds=7, microseconds=11) if i % 2 else None,
            "color": [Color.RED, Color.BLUE, None][i % 3],
            "extra": [None, [1, "two", {"3": None}], "just text"][i % 3],
        }
        if i % 5:  # some rows leave the NOT NULL column with a default to the model
            row["tier"] = "gold"
        rows.append(row)
    return rows


def test_codec_round_trips_every_column_type():
    codec = buffer.RowCodec(typed_event_model(_Db()).__table__)
    rows = typed_rows(30, "codec")
    columns, encoded = codec.encode(rows)
    assert all(b"\n" not in line for line in encoded)
    names, decoded = codec.decode(columns, b"\n".join(encoded))
    for row, values in zip(rows, decoded, strict=True):
        back = dict(zip(names, values, strict=True))
        expected = {k: row.get(k, "free" if k == "tier" else None) for k in names}
        assert back == expected
        for key in ("created_at", "birthday", "amount", "token", "blob", "wait", "color"):
            assert type(back[key]) is type(row[key])


def test_codec_refuses_what_it_cannot_represent_and_foreign_entries():
    codec = buffer.RowCodec(typed_event_model(_Db()).__table__)
    with pytest.raises(TypeError, match="plan"):
        codec.encode([{"event_id": "x", "plan": object()}])
    with pytest.raises(TypeError):
        codec.encode([{"event_id": "x", "signed_up_at": "2026-01-01"}])  # a str is not a datetime
    with pytest.raises(ValueError, match="unknown columns"):
        codec.decode(b'["event_id","nope"]', b'["x",1]')
    with pytest.raises(ValueError, match="2 values for 1 columns"):
        codec.decode(b'["event_id"]', b'["x",1]')


def native_event_model(db: Any) -> Any:
    """Custom columns of every type PostgreSQL reads from COPY text as stored."""
    return typed_event_model(db, enum_column=False)


def native_rows(n: int, prefix: str) -> list[dict[str, Any]]:
    rows = typed_rows(n, prefix)
    for row in rows:
        del row["color"]
    return rows


def test_rows_are_copy_text_lines_that_read_back_as_they_went_in():
    codec = buffer.RowCodec(native_event_model(_Db()).__table__)
    rows = native_rows(30, "copy")
    header, lines = codec.encode(rows)
    names = header.decode().split("\t")
    assert names == sorted(names)
    assert "tier" in names  # a column with a scalar default is always written
    assert codec.native(names)
    for row, line in zip(rows, lines, strict=True):
        fields = line.decode().split("\t")
        assert len(fields) == len(names)  # tabs, newlines and CRs of values are escaped
        assert b"\n" not in line
        assert b"\r" not in line
        by_name = dict(zip(names, fields, strict=True))
        assert by_name["screen_width"] == (
            "\\N" if row["screen_width"] is None else str(row["screen_width"])
        )
        assert by_name["props"] == ("\\N" if row["props"] is None else by_name["props"])
    _, decoded = codec.decode(header, b"\n".join(lines))
    for row, values in zip(rows, decoded, strict=True):
        expected = {k: row.get(k, "free" if k == "tier" else None) for k in names}
        assert dict(zip(names, values, strict=True)) == expected
    # The string "\N" is not NULL, a NULL is not the string "None".
    header, lines = codec.encode([{"event_id": "\\N", "plan": None, "path": "None"}])
    assert lines == [b"\\\\N\tNone\t\\N\tfree"]
    names, (back,) = codec.decode(header, lines[0])
    assert back == ["\\N", "None", None, "free"]
    assert names == ("event_id", "path", "plan", "tier")


@pytest.mark.parametrize("model", [typed_event_model, native_event_model])
def test_rows_are_written_alike_row_by_row_and_column_by_column(model):
    codec = buffer.RowCodec(model(_Db()).__table__)
    rows = typed_rows(2 * buffer.COLUMN_WISE_FROM, "ways")
    if model is native_event_model:
        rows = native_rows(2 * buffer.COLUMN_WISE_FROM, "ways")
    rows[3] = {k: v for k, v in rows[3].items() if k not in ("plan", "props")}  # keys lacking
    clean = [{**row, "path": "/plain", "plan": "p", "props": {}, "blob": None} for row in rows]
    for batch in (rows, clean, rows[:4] + clean[4:]):
        column_wise = codec.encode(batch)
        row_wise = [codec.encode(batch[i : i + 1]) for i in range(len(batch))]
        if all(h == column_wise[0] for h, _ in row_wise):
            assert [line for _, (line,) in row_wise] == column_wise[1]
        few = codec.encode(batch[: buffer.COLUMN_WISE_FROM - 1])  # row by row, same columns
        assert few[0] == column_wise[0]
        assert few[1] == column_wise[1][: buffer.COLUMN_WISE_FROM - 1]
        assert codec.decode(column_wise[0], b"\n".join(column_wise[1]))[1] == [
            [
                row.get(k, "free" if k == "tier" else None)
                for k in column_wise[0].decode().split("\t")
            ]
            for row in batch
        ]


def test_codec_writes_directly_what_copy_text_cannot_carry_exactly():
    codec = buffer.RowCodec(native_event_model(_Db()).__table__)
    with pytest.raises(TypeError, match="screen_width"):
        codec.encode([{"event_id": "x", "screen_width": True}])  # a bool is not an int here
    with pytest.raises(TypeError, match="path"):
        codec.encode([{"event_id": "x", "path": 3}])
    with pytest.raises(ValueError, match="nan"):
        codec.encode([{"event_id": "x", "ratio": float("nan")}])
    with pytest.raises(TypeError):
        codec.encode([{"event_id": "x", "amount": 0.1}])  # float -> numeric differs by path
    with pytest.raises(UnicodeEncodeError):
        codec.encode([{"event_id": "x", "path": "\ud800"}])  # no UTF-8 for a lone surrogate
    # Subclasses of str and int are written as their plain values.
    color = enum.StrEnum("Tone", {"DARK": "dark"})
    level = enum.IntEnum("Level", {"HIGH": 3})
    header, lines = codec.encode([{"event_id": color.DARK, "screen_width": level.HIGH}])
    assert lines == [b"dark\t3\tfree"]
    assert header == b"event_id\tscreen_width\ttier"


class _Db:
    """Just enough of Flask-SQLAlchemy's ``db`` to declare a model outside an app."""

    def __init__(self) -> None:
        from sqlalchemy.orm import DeclarativeBase

        class Model(DeclarativeBase):
            pass

        self.Model = Model
        self.Column = sa.Column
        for name in ("String", "DateTime", "Date", "Time", "Numeric", "Float", "Boolean",
                     "Uuid", "LargeBinary", "Interval", "Enum", "JSON"):  # fmt: skip
            setattr(self, name, getattr(sa, name))


# -- buffered rows are the rows the direct path writes ---------------------------------------


def table_rows(app: Flask) -> list[dict[str, Any]]:
    analytics = app.extensions["analytics_test"]
    table = analytics.Event.__table__
    with app.app_context(), analytics.db.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).order_by(table.c.id)).mappings()]


def same_rows_stored(
    app: Flask, direct: list[dict[str, Any]], buffered: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Check that each buffered row was stored as its direct twin; the rows by event id."""
    by_id = {r["event_id"]: r for r in table_rows(app)}
    for d, b in zip(direct, buffered, strict=True):
        stored_direct = dict(by_id[d["event_id"]])
        stored_buffered = dict(by_id[b["event_id"]])
        for stored in (stored_direct, stored_buffered):
            del stored["id"], stored["event_id"]
        assert stored_buffered == stored_direct
    return by_id


@pytest.mark.redis
@pytest.mark.filterwarnings("ignore:Dialect sqlite\\+pysqlite does \\*not\\* support Decimal")
def test_buffered_rows_equal_directly_written_rows(buffered_app):
    app = buffered_app(event_model=typed_event_model)
    state = current_state(app)
    direct = typed_rows(30, "direct")
    buffered = typed_rows(30, "buffered")
    with app.app_context():
        state.direct_sink.insert(direct)
        for start in range(0, 30, 7):  # several entries (requests)
            assert state.buffer.append(buffered[start : start + 7]) is not None
        assert count_rows(app) == 30
        result = buffer.flush(state)
    assert (result.entries, result.rows, result.inserted, result.duplicates) == (5, 30, 30, 0)
    by_id = same_rows_stored(app, direct, buffered)
    # And what was stored is what was sent (the database's own normalization aside).
    sample = by_id[buffered[1]["event_id"]]
    assert sample["created_at"] == buffered[1]["created_at"]
    assert sample["blob"] == buffered[1]["blob"]
    assert sample["wait"] == buffered[1]["wait"]
    assert sample["color"] is Color.BLUE
    assert by_id[buffered[0]["event_id"]]["tier"] == "free"  # the column default
    assert by_id[buffered[2]["event_id"]]["props"] == buffered[2]["props"]


@pytest.mark.redis
@pytest.mark.filterwarnings("ignore:Dialect sqlite\\+pysqlite does \\*not\\* support Decimal")
def test_copy_text_rows_equal_directly_written_rows(buffered_app, monkeypatch):
    """No column needs Python: PostgreSQL reads the stored lines themselves."""
    app = buffered_app(event_model=native_event_model)
    state = current_state(app)
    direct = native_rows(30, "direct")
    buffered = native_rows(30, "buffered")
    decoded = []
    decode = buffer.RowCodec.decode
    monkeypatch.setattr(
        buffer.RowCodec, "decode", lambda self, *a: decoded.append(1) or decode(self, *a)
    )
    with app.app_context():
        state.direct_sink.insert(direct)
        for start in range(0, 30, 7):
            assert state.buffer.append(buffered[start : start + 7]) is not None
        result = buffer.flush(state)
    assert (result.entries, result.rows, result.inserted, result.duplicates) == (5, 30, 30, 0)
    postgres = app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
    assert len(decoded) == (0 if postgres else 5)  # PostgreSQL: the lines as stored
    by_id = same_rows_stored(app, direct, buffered)
    for b in buffered:
        assert by_id[b["event_id"]]["path"] == b["path"]  # tabs, newlines, backslashes, \N
    sample = by_id[buffered[1]["event_id"]]
    assert (sample["blob"], sample["wait"]) == (buffered[1]["blob"], buffered[1]["wait"])
    assert by_id[buffered[2]["event_id"]]["props"] == buffered[2]["props"]


#: analytics_event partitioned by month with the event-id dedupe trigger, as in
#: docs/scaling.md (the columns of the live table; one month and a default partition).
PARTITIONED = """
CREATE TABLE fa_partitioned (LIKE analytics_event INCLUDING DEFAULTS)
    PARTITION BY RANGE (created_at);
ALTER SEQUENCE analytics_event_id_seq OWNED BY fa_partitioned.id;
DROP TABLE analytics_event;
ALTER TABLE fa_partitioned RENAME TO analytics_event;
ALTER TABLE analytics_event ADD PRIMARY KEY (id, created_at);
CREATE INDEX ix_analytics_event_created_at ON analytics_event (created_at);
CREATE TABLE analytics_event_2026_01 PARTITION OF analytics_event
    FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
CREATE TABLE analytics_event_default PARTITION OF analytics_event DEFAULT;
CREATE TABLE analytics_event_id (
    event_id varchar(36) PRIMARY KEY,
    created_at timestamp NOT NULL
);
CREATE FUNCTION analytics_event_dedupe() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO analytics_event_id (event_id, created_at)
    VALUES (NEW.event_id, NEW.created_at)
    ON CONFLICT (event_id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER analytics_event_dedupe BEFORE INSERT ON analytics_event
    FOR EACH ROW EXECUTE FUNCTION analytics_event_dedupe();
"""


@pytest.mark.redis
def test_flush_into_a_partitioned_event_table_with_the_dedupe_trigger(buffered_app):
    app = buffered_app(ANALYTICS_BUFFER_BATCH=4)
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("partitioning is PostgreSQL's")
    analytics = app.extensions["analytics_test"]
    with app.app_context(), analytics.db.engine.begin() as conn:
        conn.exec_driver_sql(PARTITIONED)
    try:
        stored_first = str(uuid.uuid4())
        with app.app_context():
            assert analytics.track("pageview", url="http://localhost/", event_id=stored_first)
        sent = fill(app, 30)  # several batches, written in parallel
        same = str(uuid.uuid4())
        post(app, [event(event_id=stored_first), event(event_id=same, url="http://localhost/a")])
        post(app, event(event_id=same, url="http://localhost/b"))
        result = flush(app)
        assert (result.rows, result.inserted, result.duplicates) == (
            len(sent) + 3, len(sent) + 1, 2)  # fmt: skip
        ids = event_ids(app)
        assert sorted(ids) == sorted([*sent, stored_first, same])
        assert {r["event_id"]: r["path"] for r in table_rows(app)}[same] == "/a"
        with app.app_context(), analytics.db.engine.connect() as conn:
            in_partition = conn.exec_driver_sql("SELECT count(*) FROM analytics_event_default")
            assert in_partition.scalar() == len(ids)  # today's events: the default partition
    finally:
        with app.app_context(), analytics.db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE analytics_event, analytics_event_id")
            conn.exec_driver_sql("DROP FUNCTION analytics_event_dedupe()")


@pytest.mark.redis
def test_copy_text_is_decoded_for_a_client_encoding_other_than_utf8(buffered_app, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("client encodings are PostgreSQL's")
    app = buffered_app(
        SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"options": "-c client_encoding=LATIN1"}}
    )
    post(app, event(name="café-µ"))
    assert flush(app).inserted == 1
    assert [r["name"] for r in table_rows(app)] == ["café-µ"]


@pytest.mark.redis
def test_entries_of_the_json_format_are_still_flushed(buffered_app, stream):
    """Entries appended by the previous version (JSON rows) before an upgrade."""
    app = buffered_app()
    state = current_state(app)
    ids = [str(uuid.uuid4()) for _ in range(3)]
    columns = ["created_at", "event_id", "hostname", "name", "path", "props", "visitor_id"]
    rows = [
        json.dumps(["2026-01-15T12:00:00.000001", i, "example.com", "pageview", "/tab\there",
                    {"k": "é"}, -(2**63)], separators=(",", ":"))
        for i in ids
    ]  # fmt: skip
    state.buffer.redis.xadd(
        stream, {"v": "1", "c": json.dumps(columns), "r": "\n".join(rows)}
    )  # fmt: skip
    post(app, event())  # and one of the current format
    result = flush(app)
    assert (result.entries, result.rows, result.inserted) == (2, 4, 4)
    stored = {r["event_id"]: r for r in table_rows(app)}
    assert stored[ids[0]]["path"] == "/tab\there"
    assert stored[ids[0]]["props"] == {"k": "é"}
    assert stored[ids[0]]["created_at"] == dt.datetime(2026, 1, 15, 12, 0, 0, 1)


# -- the endpoint ------------------------------------------------------------------------------


@pytest.mark.redis
def test_n_events_through_the_buffered_endpoint_are_n_rows_after_the_flush(buffered_app):
    app = buffered_app(ANALYTICS_BUFFER_BATCH=7)
    sent = []
    for i in range(40):
        body = event(url=f"http://localhost/one/{i}")
        sent.append(body["event_id"])
        response = post(app, body)
        assert response.status_code == 202
        assert response.get_json() == answer(1)
        assert "X-Analytics-Dropped" not in response.headers
    for i in range(10):
        batch = [event(url=f"http://localhost/batch/{i}/{j}") for j in range(20)]
        sent.extend(b["event_id"] for b in batch)
        response = post(app, batch)
        assert (response.status_code, response.get_json()) == (202, answer(20))
    assert count_rows(app) == 0  # nothing written yet: all in Redis
    assert stream_length(app) == 50
    result = flush(app)
    assert (result.entries, result.rows, result.inserted, result.batches) == (50, 240, 240, 8)
    assert sorted(event_ids(app)) == sorted(sent)
    assert stream_length(app) == 0
    assert pending(app) == 0
    # The flusher's consumer is gone once it has nothing pending.
    state = current_state(app)
    assert state.buffer.redis.xinfo_consumers(state.buffer.stream, buffer.GROUP) == []


@pytest.mark.redis
def test_server_side_track_writes_directly(buffered_app):
    app = buffered_app()
    analytics = app.extensions["analytics_test"]
    with app.app_context():
        stored = analytics.track("signup", url="https://example.com/")
    assert stored is not None
    assert stored.id is not None
    assert count_rows(app) == 1
    assert stream_length(app) == 0


@pytest.mark.redis
def test_drops_are_answered_at_once_as_without_the_buffer(buffered_app):
    app = buffered_app()
    response = post(app, [event(), event()], ua="Googlebot/2.1 (+http://www.google.com/bot.html)")
    assert response.get_json() == answer(0, {"bot": 2})
    assert response.headers["X-Analytics-Dropped"] == "bot"
    assert stream_length(app) == 0


# -- dedupe ------------------------------------------------------------------------------------


@pytest.mark.redis
def test_same_event_id_through_the_buffer_and_the_direct_path_is_one_row(buffered_app):
    app = buffered_app()
    analytics = app.extensions["analytics_test"]
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    with app.app_context():
        # Direct first, then buffered.
        assert analytics.track("pageview", url="http://localhost/", event_id=first) is not None
    assert post(app, event(event_id=first)).get_json() == answer(1)
    # Buffered first (not flushed yet), then direct.
    assert post(app, event(event_id=second)).get_json() == answer(1)
    with app.app_context():
        assert analytics.track("pageview", url="http://localhost/", event_id=second) is not None
    # The same id twice through the buffer.
    assert post(app, event(event_id=second)).status_code == 202
    result = flush(app)
    assert (result.rows, result.inserted, result.duplicates) == (3, 0, 3)
    assert sorted(event_ids(app)) == sorted([first, second])


@pytest.mark.redis
def test_a_batch_holding_a_stored_event_id_is_written_without_it(buffered_app):
    """PostgreSQL: the COPY fails on the stored id, the batch is written the safe way."""
    app = buffered_app(ANALYTICS_BUFFER_BATCH=100)
    analytics = app.extensions["analytics_test"]
    sent = fill(app, 30)
    stored_first = [sent[5], sent[-1]]  # in the middle and at the very end of the batch
    with app.app_context():
        for event_id in stored_first:
            assert analytics.track("pageview", url="http://localhost/", event_id=event_id)
    result = flush(app)
    assert (result.rows, result.inserted, result.duplicates) == (len(sent), len(sent) - 2, 2)
    ids = event_ids(app)
    assert len(ids) == len(sent)
    assert sorted(ids) == sorted(sent)
    # And the next batch goes straight in again.
    more = fill(app, 5)
    assert flush(app).inserted == len(more)
    assert count_rows(app) == len(sent) + len(more)


@pytest.mark.redis
def test_duplicates_within_one_flush_keep_the_first_row(buffered_app):
    app = buffered_app()
    same = str(uuid.uuid4())
    post(app, event(event_id=same, url="http://localhost/first"))
    post(app, [event(), event(event_id=same, url="http://localhost/second")])
    result = flush(app)
    assert (result.rows, result.inserted, result.duplicates) == (3, 2, 1)
    paths = {r["event_id"]: r["path"] for r in table_rows(app)}
    assert paths[same] == "/first"


@pytest.mark.redis
def test_early_dedupe_reports_buffered_duplicates_in_the_answer(buffered_app, stream):
    app = buffered_app(ANALYTICS_BUFFER_DEDUPE_TTL=60)
    same = str(uuid.uuid4())
    assert post(app, event(event_id=same)).get_json() == answer(1)
    again = post(app, [event(event_id=same), event()])
    assert again.get_json() == answer(1, {"duplicate": 1})
    assert again.headers["X-Analytics-Dropped"] == "duplicate"
    alone = post(app, event(event_id=same))
    assert alone.get_json() == answer(0, {"duplicate": 1})
    assert stream_length(app) == 2  # the request of duplicates only added no entry
    ttl = current_state(app).buffer.redis.ttl(f"{stream}:seen:{same}")
    assert 0 < ttl <= 60
    assert flush(app).inserted == 2
    assert count_rows(app) == 2


# -- reliability -------------------------------------------------------------------------------


@pytest.mark.redis
def test_pending_entries_wait_for_the_claim_idle_time(buffered_app, make_app):
    app = buffered_app(ANALYTICS_BUFFER_CLAIM_IDLE=3600)
    for i in range(5):
        post(app, event(url=f"http://localhost/{i}"))
    ghost = current_state(app).buffer
    ghost.ensure_group()
    assert len(ghost.read_new("ghost", 100)) == 5  # a flusher that read, then died
    result = flush(app)
    assert (result.entries, result.rows) == (0, 0)  # another flusher's batch: not taken
    assert pending(app) == 5
    assert count_rows(app) == 0
    # Same stream, claim idle of 1 ms: the ghost's entries are taken over and written.
    quick = buffered_app(ANALYTICS_BUFFER_CLAIM_IDLE=0.001)
    result = flush(quick)
    assert (result.entries, result.rows, result.reclaimed, result.inserted) == (5, 5, 5, 5)
    assert pending(quick) == 0
    assert count_rows(quick) == 5
    # The dead consumer that owns nothing any more is cleaned up only when long idle.
    consumers = ghost.redis.xinfo_consumers(ghost.stream, buffer.GROUP)
    assert [c["name"] for c in consumers] == [b"ghost"]


@pytest.mark.redis
def test_a_backlog_is_written_by_parallel_writers_on_postgresql(buffered_app, monkeypatch):
    app = buffered_app(ANALYTICS_BUFFER_BATCH=5)
    sent = fill(app, 60)
    threads = set()
    write_entries = flusher.write_batch

    def recording(*args: Any) -> Any:
        threads.add(threading.current_thread().name)
        time.sleep(0.01)  # long enough for the other writer to take a batch
        return write_entries(*args)

    monkeypatch.setattr(flusher, "write_batch", recording)
    seen = []
    result = flush(app, on_batch=seen.append)
    postgres = app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
    assert len(threads) == (buffer.WRITERS if postgres else 1)
    assert (result.entries, result.rows, result.inserted, result.batches) == (
        60, len(sent), len(sent), 12)  # fmt: skip
    assert sum(b.rows for b in seen) == len(sent)
    assert sorted(event_ids(app)) == sorted(sent)
    assert stream_length(app) == 0
    assert pending(app) == 0


@pytest.mark.redis
def test_a_steady_trickle_is_written_in_full_batches_and_the_pass_ends(buffered_app):
    # A request arrives after every batch written. The pass ends at its first short read
    # (the stream was empty then) and leaves the newcomers to the next pass, instead of
    # writing one tiny batch (a commit, an acknowledgement) per newcomer for as long as
    # requests keep coming.
    app = buffered_app(ANALYTICS_BUFFER_BATCH=10)
    sent = fill(app, 25)  # 25 entries: two full batches, then a short one
    seen: list[buffer.FlushResult] = []

    def another_request(batch: buffer.FlushResult) -> None:
        seen.append(batch)
        if len(seen) > 20:
            raise AssertionError("the pass keeps writing the trickle batch by batch")
        sent.extend(fill(app, 1))

    flush(app, on_batch=another_request)
    postgres = app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
    writers = buffer.WRITERS if postgres else 1
    sizes = [b.entries for b in seen]
    short = [n for n in sizes if n < 10]
    assert 1 <= len(short) <= writers, sizes  # each writer stops at its first short read
    assert sizes[0] == 10
    assert sum(sizes) >= 25
    left = stream_length(app)
    assert left == 25 + len(seen) - sum(sizes)  # each batch brought one more request
    assert 1 <= left <= writers
    assert count_rows(app) + left == len(sent)  # one event per newcomer
    flush(app)  # the next pass writes them
    assert sorted(event_ids(app)) == sorted(sent)
    assert stream_length(app) == pending(app) == 0


@pytest.mark.redis
def test_a_failing_parallel_writer_stops_the_pass_and_loses_nothing(buffered_app, monkeypatch):
    app = buffered_app(ANALYTICS_BUFFER_BATCH=5)
    sent = fill(app, 60)
    write_entries = flusher.write_batch
    calls = []

    def failing(*args: Any) -> Any:
        calls.append(threading.current_thread().name)
        if len(calls) == 4:
            raise sa.exc.OperationalError("COPY", {}, Exception("server closed the connection"))
        return write_entries(*args)

    monkeypatch.setattr(flusher, "write_batch", failing)
    consumer = "test-consumer"
    with pytest.raises(sa.exc.OperationalError):
        flush(app, consumer=consumer)
    assert 0 < count_rows(app) < len(sent)
    assert pending(app) > 0  # the failed batch waits for this consumer's next pass
    monkeypatch.setattr(flusher, "write_batch", write_entries)
    flush(app, consumer=consumer)
    ids = event_ids(app)
    assert len(ids) == len(sent)
    assert sorted(ids) == sorted(sent)
    assert (stream_length(app), pending(app)) == (0, 0)


class Flusher:
    """``flask analytics flush`` of tests/scripts/buffer_app.py in a process of its own."""

    def __init__(self, app: Flask, tmp_path: Path, *args: str, **env: str) -> None:
        state = current_state(app)
        self.marker = tmp_path / f"stalled-{uuid.uuid4().hex[:6]}"
        self.log = tmp_path / f"flusher-{uuid.uuid4().hex[:6]}.log"
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "tests.scripts.buffer_app:create_app",
                 "analytics", "flush", *args],
                cwd=ROOT,
                env={
                    **os.environ,
                    "BUFFER_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
                    "BUFFER_REDIS_URL": REDIS_URL,
                    "BUFFER_STREAM": state.buffer.stream,
                    "BUFFER_STALL_MARKER": str(self.marker),
                    **env,
                },
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

    def output(self) -> str:
        return self.log.read_text()

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
        wait_while_running(self.proc, self.log, condition, what, timeout)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(timeout=60) == -signal.SIGKILL

    def finish(self, timeout: float = 300) -> str:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # Kill it, so that a hung flusher fails this test only (not a later one's
            # unraisable-warning check), and show what it printed.
            self.proc.kill()
            self.proc.wait(timeout=60)
            raise AssertionError(
                f"the flusher did not exit within {timeout} s:\n{self.output()}"
            ) from None
        assert code == 0, self.output()
        return self.output()


def fill(app: Flask, n_requests: int) -> list[str]:
    """Buffer ``n_requests`` requests of 1 to 3 events; returns the event ids."""
    sent = []
    for i in range(n_requests):
        batch = [event(url=f"http://localhost/{i}/{j}") for j in range(1 + i % 3)]
        assert post(app, batch).status_code == 202
        sent.extend(b["event_id"] for b in batch)
    return sent


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.real_clock("the flusher runs in another process, on the real clock")
@pytest.mark.parametrize("stall", ["write", "commit"])
def test_flusher_killed_mid_batch_loses_and_duplicates_nothing(buffered_app, tmp_path, stall):
    app = buffered_app()
    sent = fill(app, 60)
    flusher = Flusher(app, tmp_path, "--loop", BUFFER_BATCH="10", BUFFER_STALL=stall)
    flusher.wait_until(flusher.marker.exists, f"the flusher stalled at {stall!r}")
    first_batch = 1 + 2 + 3 + 1 + 2 + 3 + 1 + 2 + 3 + 1  # events of the first 10 requests
    assert pending(app) == 10
    assert count_rows(app) == (0 if stall == "write" else first_batch)
    flusher.kill()
    # Restarted (as a one-off pass; claim idle 1 ms since we know the first one is dead).
    output = Flusher(app, tmp_path, "--sync", BUFFER_CLAIM_IDLE="0.001").finish()
    assert "10 requests taken over from a stopped flusher" in output
    duplicates = 0 if stall == "write" else first_batch
    assert f"{len(sent):,} events from 60 buffered requests: " in output
    assert f"{len(sent) - duplicates:,} stored, {duplicates:,} duplicate" in output
    ids = event_ids(app)
    assert len(ids) == len(sent)
    assert sorted(ids) == sorted(sent)
    assert stream_length(app) == 0
    assert pending(app) == 0


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.real_clock("the flusher runs in another process, on the real clock")
def test_flusher_killed_whenever_it_holds_a_batch_loses_and_duplicates_nothing(
    buffered_app, tmp_path
):
    app = buffered_app()
    sent = fill(app, 300)
    flusher = Flusher(app, tmp_path, "--loop", BUFFER_BATCH="5")
    flusher.wait_until(lambda: pending(app) > 0, "the flusher read a batch")
    flusher.kill()
    assert stream_length(app) > 0  # killed before the end
    Flusher(app, tmp_path, "--sync", BUFFER_CLAIM_IDLE="0.001").finish()
    assert sorted(event_ids(app)) == sorted(sent)
    assert stream_length(app) == 0


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.real_clock("the flusher runs in another process, on the real clock")
def test_flush_loop_writes_as_events_arrive_and_stops_on_sigterm(buffered_app, tmp_path):
    app = buffered_app()
    flusher = Flusher(app, tmp_path, "--loop")
    sent = fill(app, 12)
    flusher.wait_until(lambda: count_rows(app) == len(sent), "the loop flushed everything")
    sent += fill(app, 3)
    flusher.wait_until(lambda: count_rows(app) == len(sent), "the loop flushed the new events")
    flusher.proc.send_signal(signal.SIGTERM)
    output = flusher.finish(timeout=60)
    assert output.rstrip().endswith("Stopped.")
    assert sorted(event_ids(app)) == sorted(sent)


# -- Redis down ---------------------------------------------------------------------------------


@pytest.mark.redis
def test_redis_stopped_events_are_stored_directly(make_app, private_redis):
    app = make_app(
        ANALYTICS_INGEST_BUFFER="redis",
        ANALYTICS_BUFFER_REDIS_URL=private_redis.url,
        ANALYTICS_RATE_LIMIT=None,
    )
    buffered = [event(url=f"http://localhost/b{i}") for i in range(3)]
    assert post(app, buffered).get_json() == answer(3)
    assert count_rows(app) == 0
    private_redis.stop(save=True)

    direct = [event(url=f"http://localhost/d{i}") for i in range(4)]
    for body in direct:  # the same answer as when buffered, and written at once
        assert post(app, body).get_json() == answer(1)
    assert sorted(event_ids(app)) == sorted(b["event_id"] for b in direct)
    result = app.test_cli_runner().invoke(args=["analytics", "flush"])
    assert result.exit_code == 1
    assert "Redis is not reachable" in result.output

    # Back (with what it had saved): requests are buffered again, and the flush brings
    # the events buffered before the outage too.
    private_redis.start()
    later = []

    def buffered_again() -> bool:
        body = event(url=f"http://localhost/l{len(later)}")
        later.append(body["event_id"])
        assert post(app, body).status_code == 202
        return stream_length(app) > 3

    wait_for(buffered_again, "requests buffered again")
    flush(app)
    every = [b["event_id"] for b in buffered + direct] + later
    assert sorted(event_ids(app)) == sorted(every)


@pytest.mark.redis
def test_full_buffer_writes_directly(buffered_app):
    app = buffered_app(ANALYTICS_BUFFER_MAX_LEN=2)
    for i in range(2):
        post(app, event(url=f"http://localhost/{i}"))
    assert count_rows(app) == 0
    assert post(app, event()).get_json() == answer(1)
    assert count_rows(app) == 1
    assert stream_length(app) == 2


# -- rows the database refuses ---------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.filterwarnings("ignore:Dialect sqlite\\+pysqlite does \\*not\\* support Decimal")
def test_refused_rows_go_to_the_dead_letter_stream_and_the_rest_is_stored(buffered_app, stream):
    app = buffered_app(event_model=typed_event_model)
    analytics = app.extensions["analytics_test"]

    @analytics.enrich
    def break_some(row: dict[str, Any], request: Any) -> None:
        if row["path"] == "/null":
            row["tier"] = None  # NOT NULL column
        elif row["path"] == "/long":
            row["tier"] = "much too long"  # String(8): PostgreSQL refuses, SQLite stores

    good = [event(url=f"http://localhost/ok{i}") for i in range(5)]
    post(app, good[:2])
    post(app, [good[2], event(url="http://localhost/null"), good[3]])
    post(app, [event(url="http://localhost/long"), good[4]])
    result = flush(app)
    postgres = app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
    refused = 2 if postgres else 1
    assert (result.rows, result.inserted, result.dead) == (7, 7 - refused, refused)
    assert stream_length(app) == 0
    assert pending(app) == 0
    dead = current_state(app).buffer.redis.xrange(f"{stream}:dead")
    assert len(dead) == refused
    fields = dead[0][1]
    assert b"tier" in fields[b"error"].lower() or b"null" in fields[b"error"].lower()
    assert b"/null" in fields[b"r"]
    paths = {r["path"] for r in table_rows(app)}
    assert {f"/ok{i}" for i in range(5)} <= paths
    assert "/null" not in paths


@contextlib.contextmanager
def refusing_path(app: Flask, path: str) -> Iterator[Callable[[], None]]:
    """A trigger on the event table that refuses rows of ``path`` as a constraint would;
    yields the function that drops it (the fix)."""
    analytics = app.extensions["analytics_test"]
    with app.app_context():
        engine = analytics.db.engine
    name = f"fa_test_refuse_{uuid.uuid4().hex[:8]}"
    table = analytics.Event.__tablename__
    if engine.dialect.name == "postgresql":
        create = [
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.path = '{path}' THEN RAISE EXCEPTION 'refused by {name}' "
            "USING ERRCODE = 'check_violation'; END IF; RETURN NEW; END $$",
            f"CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW "
            f"EXECUTE FUNCTION {name}()",
        ]
        drop = [f"DROP TRIGGER IF EXISTS {name} ON {table}", f"DROP FUNCTION IF EXISTS {name}()"]
    else:
        create = [
            f"CREATE TRIGGER {name} BEFORE INSERT ON {table} WHEN NEW.path = '{path}' "
            f"BEGIN SELECT RAISE(ABORT, 'refused by {name}'); END"
        ]
        drop = [f"DROP TRIGGER IF EXISTS {name}"]

    def fix() -> None:
        with engine.begin() as conn:
            for statement in drop:
                conn.exec_driver_sql(statement)

    with engine.begin() as conn:
        for statement in create:
            conn.exec_driver_sql(statement)
    try:
        yield fix
    finally:
        fix()


@pytest.mark.redis
def test_refused_rows_are_requeued_once_their_cause_is_fixed(buffered_app, stream):
    app = buffered_app()
    runner = app.test_cli_runner()
    good = [event(url=f"http://localhost/ok{i}") for i in range(4)]
    refused = [event(url="http://localhost/refused") for _ in range(2)]
    with refusing_path(app, "/refused") as fix:
        post(app, [good[0], refused[0], good[1]])
        post(app, [refused[1], good[2]])
        post(app, good[3])
        first = flush(app)
        assert (first.rows, first.inserted, first.dead) == (6, 4, 2)
        dead_stream = f"{stream}:dead"
        redis = current_state(app).buffer.redis
        assert redis.xlen(dead_stream) == 2
        status = runner.invoke(args=["analytics", "status"])
        assert "2 rows refused by the database" in status.output
        assert "--requeue-dead" in status.output
        # Requeued while the cause is still there: refused again, nothing lost or stored.
        result = runner.invoke(args=["analytics", "flush", "--requeue-dead", "--sync"])
        assert result.exit_code == 0, result.output
        assert "Moved 2 refused rows back into the buffer." in result.output
        assert "2 refused by the database" in result.output
        assert redis.xlen(dead_stream) == 2
        assert count_rows(app) == 4
        fix()
        result = runner.invoke(args=["analytics", "flush", "--requeue-dead", "--sync"])
        assert result.exit_code == 0, result.output
        assert "Moved 2 refused rows back into the buffer." in result.output
        assert "2 events from 2 buffered requests: 2 stored, 0 duplicate" in result.output
    assert redis.xlen(dead_stream) == 0
    assert stream_length(app) == pending(app) == 0
    ids = event_ids(app)
    assert sorted(ids) == sorted(b["event_id"] for b in good + refused)  # each once
    # Nothing left to move: a second requeue is a no-op.
    result = runner.invoke(args=["analytics", "flush", "--requeue-dead", "--sync"])
    assert "Moved 0 refused rows back into the buffer." in result.output
    assert count_rows(app) == 6


@pytest.mark.redis
def test_requeue_moves_every_readable_dead_row_in_chunks_and_leaves_malformed_ones(
    buffered_app, stream
):
    app = buffered_app()
    buf = current_state(app).buffer
    redis = buf.redis
    redis.xadd(buf.dead_stream, {"c": b"event_id", "error": b"no rows field"})  # malformed
    for i in range(5):
        redis.xadd(buf.dead_stream, {"v": buffer.FORMAT, "c": b"event_id", "r": f"r{i}".encode(),
                                     "entry": b"0-1", "error": b"refused"})  # fmt: skip
    assert buf.requeue_dead(chunk=2) == 5
    assert [f[b"r"] for _, f in redis.xrange(buf.stream)] == [f"r{i}".encode() for i in range(5)]
    assert all(set(f) == {b"v", b"c", b"r"} for _, f in redis.xrange(buf.stream))
    [(_, left)] = redis.xrange(buf.dead_stream)
    assert left[b"error"] == b"no rows field"
    assert buf.requeue_dead(chunk=2) == 0


# -- jobs, scheduler, CLI -------------------------------------------------------------------


@pytest.mark.redis
def test_flush_job_is_scheduled_and_queued_when_the_buffer_passes_its_threshold(buffered_app):
    queue_name = f"test-{uuid.uuid4().hex[:12]}"
    app = buffered_app(
        ANALYTICS_REDIS_URL=REDIS_URL,
        ANALYTICS_QUEUE=queue_name,
        ANALYTICS_BUFFER_FLUSH_THRESHOLD=3,
    )
    connection = Redis.from_url(REDIS_URL)
    try:
        state = current_state(app)
        assert "flush" in [s.name for s in scheduling.schedule(state)]
        queue = Queue(queue_name, connection=connection)
        post(app, event())
        post(app, event())
        assert queue.count == 0
        post(app, [event(), event()])  # the 3rd entry
        assert queue.job_ids == [enqueue.job_id(state, "flush")]
        post(app, event())  # asked already (flag): nothing more queued
        assert queue.count == 1
        assert worker.run_worker(app, burst=True, fork=False)
        assert count_rows(app) == 5
        assert stream_length(app) == 0
    finally:
        delete_queue_keys(connection, queue_name)
        connection.close()


@pytest.mark.redis
def test_no_flush_job_without_the_buffer(make_app):
    app = make_app()
    assert "flush" not in [s.name for s in scheduling.schedule(current_state(app))]
    result = app.test_cli_runner().invoke(args=["analytics", "flush"])
    assert result.exit_code == 1
    assert "ANALYTICS_INGEST_BUFFER is 'direct'" in result.output


@pytest.mark.redis
def test_flush_and_status_commands(buffered_app):
    app = buffered_app()
    post(app, [event(), event()])
    post(app, event())
    runner = app.test_cli_runner()
    status = runner.invoke(args=["analytics", "status"])
    assert status.exit_code == 0, status.output
    assert "2 requests waiting" in status.output
    result = runner.invoke(args=["analytics", "flush"])
    assert result.exit_code == 0, result.output
    assert "Flushed 3 events from 2 buffered requests: 3 stored, 0 duplicate" in result.output
    assert count_rows(app) == 3
