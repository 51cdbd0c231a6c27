"""The same events through the collect endpoint, buffered and direct: identical rows."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_analytics import buffer
from flask_analytics.state import current_state

from ..conftest import DESKTOP_UA, MOBILE_UA, REDIS_URL


def batch(tag: str) -> list[dict[str, Any]]:
    """Events covering every field the endpoint takes, some absent (props above all)."""
    return [
        {"url": "http://localhost/", "event_id": f"{tag}-0"},
        {
            "url": "http://localhost/pricing?utm_source=news&utm_medium=email&gclid=x",
            "referrer": "https://www.google.com/search?q=x",
            "screen_width": 390,
            "event_id": f"{tag}-1",
        },
        {
            "name": "signup",
            "url": "http://localhost/signup",
            "props": {"plan": "pro", "seats": 3, "trial": True, "ratio": 0.5},
            "event_id": f"{tag}-2",
        },
        {"name": "engagement", "url": "http://localhost/", "engagement_ms": 5300,
         "scroll_depth": 80, "event_id": f"{tag}-3"},
        {"name": "outbound", "url": "http://localhost/", "props": {}, "event_id": f"{tag}-4"},
        {"url": "http://localhost/blog/é?utm_campaign=tab%09line", "offset_ms": 1500,
         "event_id": f"{tag}-5"},
        {"url": "http://localhost/blog/gone", "status": 404, "event_id": f"{tag}-6"},
    ]  # fmt: skip


def ids(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events with UUIDs derived from their readable ids."""
    return [{**e, "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, e["event_id"]))} for e in events]


def post(app: Flask, events: list[dict[str, Any]], ua: str, language: str) -> None:
    answer = app.test_client().post(
        "/_analytics/collect",
        json=events,
        headers={"User-Agent": ua, "Accept-Language": language},
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
    )
    assert answer.status_code == 202, answer.get_data(as_text=True)


def stored(app: Flask) -> dict[str, dict[str, Any]]:
    """Every row by event id, as the database returns it, with props as SQL sees it."""
    analytics = app.extensions["analytics_test"]
    table = analytics.Event.__table__
    with app.app_context(), analytics.db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(table, table.c.props.is_(None).label("props_is_sql_null"))
        ).mappings()
        return {r["event_id"]: dict(r) for r in rows}


@pytest.mark.redis
def test_events_through_the_buffer_are_stored_as_the_direct_path_stores_them(
    make_app: Callable[..., Flask], stream: str, frozen_clock: Any
) -> None:
    common = {"ANALYTICS_RATE_LIMIT": None}
    direct = make_app(**common)
    buffered = make_app(
        ANALYTICS_INGEST_BUFFER="redis",
        ANALYTICS_BUFFER_REDIS_URL=REDIS_URL,
        ANALYTICS_BUFFER_STREAM=stream,
        **common,
    )
    for app in (direct, buffered):  # the endpoint of a page comes from the app's routes
        app.add_url_rule("/pricing", "pricing", lambda: "")
        app.add_url_rule("/blog/<slug>", "blog.post", lambda slug: slug)
    sent = {"direct": ids(batch("d")), "buffered": ids(batch("b"))}
    for app, tag in ((direct, "direct"), (buffered, "buffered")):
        post(app, sent[tag][:3], DESKTOP_UA, "de-DE,de;q=0.9")
        post(app, sent[tag][3:], MOBILE_UA, "*")
    with buffered.app_context():
        result = buffer.flush(current_state(buffered))
    assert result.inserted == len(sent["buffered"])
    rows = {**stored(direct), **stored(buffered)}
    for d, b in zip(sent["direct"], sent["buffered"], strict=True):
        one, two = dict(rows[d["event_id"]]), dict(rows[b["event_id"]])
        for row in (one, two):
            del row["id"], row["event_id"]
        assert two == one
    # The audience columns went through the buffer with values (and NULLs) too.
    audience = [
        tuple(rows[e["event_id"]][k] for k in ("browser_version", "os_version", "language"))
        for e in sent["buffered"]
    ]
    assert audience == [("124", "10", "de")] * 3 + [("17", "17", None)] * 4
    assert [rows[e["event_id"]]["screen"] for e in sent["buffered"]][:2] == [None, "mobile"]
    # No props (absent or {}) is SQL NULL on both paths, not JSON null.
    nulls = [rows[e["event_id"]]["props_is_sql_null"] for e in sent["buffered"]]
    assert nulls == [True, True, False, True, True, True, True]
    found = [
        (rows[e["event_id"]]["endpoint"], rows[e["event_id"]]["status"]) for e in sent["buffered"]
    ]
    assert found == [(None, None), ("pricing", None), (None, None), (None, None), (None, None),
                     ("blog.post", None), ("blog.post", 404)]  # fmt: skip
    assert rows[sent["buffered"][2]["event_id"]]["props"] == sent["buffered"][2]["props"]
