"""Partial acceptance (collect protocol v2): one bad event never costs the good ones.

Each case of the issue is posted as the real tracker sends it (tests/support/collect.py;
tests/web/test_collect_tracker.py checks those payloads against chromium's), on SQLite
and PostgreSQL, written directly and through the Redis buffer: the control event of the
batch is stored, the bad one is rejected with its index and reason or stored without
what broke a limit, with a warning.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_analytics import buffer
from flask_analytics.state import current_state

from ..conftest import (
    DESKTOP_UA,
    REDIS_URL,
    build_app,
    custom_event_model,
    redis_or_skip,
    release_app,
)
from ..support.collect import TRACKER_CASES, TrackerCase, answer
from ..support.redis_keys import delete_keys


@pytest.fixture(scope="module", params=["direct", "buffered"])
def site(request, module_database_url, schemas) -> Iterator[Flask]:
    """One app per database and write path, with a String(16) client field."""
    config: dict[str, Any] = {
        "ANALYTICS_CLIENT_FIELDS": ["ab_variant"],
        "ANALYTICS_RATE_LIMIT": None,
    }
    stream = None
    if request.param == "buffered":
        connection = redis_or_skip()
        stream = f"fa-test-partial-{uuid.uuid4().hex[:12]}"
        config.update(
            ANALYTICS_INGEST_BUFFER="redis",
            ANALYTICS_BUFFER_REDIS_URL=REDIS_URL,
            ANALYTICS_BUFFER_STREAM=stream,
        )
    app, db = build_app(
        module_database_url, schemas, "partial", event_model=custom_event_model, **config
    )
    yield app
    release_app(app, db, schemas)
    if stream is not None:
        delete_keys(connection, stream)
        connection.close()


def post(app: Flask, body: Any) -> Any:
    """POST ``body`` as the tracker does: JSON in its own key order (the test client's
    ``json=`` would sort the keys)."""
    return app.test_client().post(
        "/_analytics/collect",
        data=json.dumps(body),
        content_type="application/json",
        headers={"User-Agent": DESKTOP_UA},
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
    )


def rows(app: Flask, event_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The stored rows of ``event_ids`` (after a flush of the buffer, when there is one)."""
    state = current_state(app)
    with app.app_context():
        if state.buffer is not None:
            buffer.flush(state)
        table = app.extensions["analytics_test"].Event.__table__
        with state.engine().connect() as conn:
            found = conn.execute(sa.select(table).where(table.c.event_id.in_(event_ids)))
            return {row["event_id"]: dict(row) for row in found.mappings()}


def tracker_event(**fields: Any) -> dict[str, Any]:
    """An event object as the tracker builds it (custom fields first, as it does)."""
    return {
        "name": "pageview",
        "url": "http://localhost/pricing",
        "event_id": str(uuid.uuid4()),
        "hash_routing": False,
        "screen_width": 1280,
        **fields,
    }


@pytest.mark.parametrize("case", TRACKER_CASES, ids=lambda case: case.id)
def test_one_bad_event_never_costs_the_good_one(site, case: TrackerCase):
    control = tracker_event(name="control", **case.fields)
    bad = tracker_event(**case.event)
    response = post(site, [control, bad])
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    stored = rows(site, [control["event_id"], bad["event_id"]])
    assert stored[control["event_id"]]["name"] == "control"
    if case.stored is None:
        assert body == answer(1, rejected=[{"index": 1, "error": body["rejected"][0]["error"]}])
        assert case.message in body["rejected"][0]["error"]
        assert bad["event_id"] not in stored
        return
    warned = [w for w in body["warnings"] if w["index"] == 1]
    assert body["accepted"] == 2
    assert body["rejected"] == []
    assert warned
    assert all(case.message in w["warning"] for w in warned), warned
    assert [w["index"] for w in body["warnings"]] == [0] * case.control_warned + [1] * len(warned)
    row = stored[bad["event_id"]]
    assert {key: row[key] for key in case.stored} == case.stored


def test_every_event_invalid_is_a_400_naming_each(site):
    batch = [tracker_event(name=" "), tracker_event(url="ftp://localhost/"), 7]
    response = post(site, batch)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"].startswith("no event of the batch is valid (events[0].name")
    assert [(r["index"], r["error"]) for r in body["rejected"]] == [
        (0, "events[0].name must not be empty"),
        (1, "events[1].url must be an absolute http(s) URL"),
        (2, "events[2] must be a JSON object"),
    ]
    assert rows(site, [e["event_id"] for e in batch[:2]]) == {}


def test_a_retried_batch_stores_each_good_event_once(site):
    """Exactly-once holds with rejections: the retry stores nothing again."""
    good = [tracker_event(name="control"), tracker_event(name="signup", props={"n": 2**60})]
    batch = [good[0], tracker_event(name=""), good[1]]
    first = post(site, batch).get_json()
    assert first["accepted"] == 2
    assert [r["index"] for r in first["rejected"]] == [1]
    assert first["warnings"] == [
        {"index": 2, "warning": "events[2].props.n must be a finite number within ±2**53: left out"}
    ]
    stored = rows(site, [e["event_id"] for e in batch])
    assert set(stored) == {good[0]["event_id"], good[1]["event_id"]}
    assert stored[good[1]["event_id"]]["props"] is None
    again = post(site, batch).get_json()
    assert again["rejected"] == first["rejected"]
    assert again["accepted"] + again["dropped"].get("duplicate", 0) == 2
    assert rows(site, [e["event_id"] for e in batch]).keys() == stored.keys()


@pytest.mark.parametrize(
    ("props", "kept", "warning"),
    [
        ({"a": 1, "b": None}, {"a": 1}, "props.b must be a string, number or boolean"),
        ({"a": [1], "b": "x"}, {"b": "x"}, "props.a must be a string, number or boolean"),
        ({"a": {"b": 1}}, None, "props.a must be a string, number or boolean"),
        ({"a": 1e300, "b": -(2**53)}, {"b": -(2**53)}, "props.a must be a finite number"),
        ({"a": "y" * 2001, "b": "y" * 2000}, {"b": "y" * 2000}, "longer than 2000 characters"),
        ({"k\u0007": 1, "ok": True}, {"ok": True}, "contains control characters"),
        ({"\udc00": "\ud800x"}, {"\ufffd": "\ufffdx"}, "lone surrogates"),
        ([1, 2], None, "props must be an object: left out"),
        ("text", None, "props must be an object: left out"),
    ],
)
def test_each_prop_that_breaks_a_limit_is_left_out_with_a_warning(site, props, kept, warning):
    event = tracker_event(name="signup", props=props)
    body = post(site, event).get_json()
    assert body["accepted"] == 1
    assert body["warnings"], body
    assert all(w["index"] == 0 for w in body["warnings"])
    assert warning in body["warnings"][0]["warning"]
    assert rows(site, [event["event_id"]])[event["event_id"]]["props"] == kept
