"""The collect endpoint: protocol, normalization, bad input, duplicates."""

from __future__ import annotations

import io
import json
import threading
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_analytics import Analytics

from ..conftest import DESKTOP_UA, all_rows, collect_payload, custom_event_model
from ..support.collect import answer


def stored(app: Flask, analytics: Analytics) -> list[Any]:
    with app.app_context():
        return list(
            analytics.db.session.scalars(sa.select(analytics.Event).order_by(analytics.Event.id))
        )


def test_pageview_is_stored_normalized(app, analytics, post_event):
    event_id = str(uuid.uuid4())
    response = post_event(
        collect_payload(
            url="http://localhost/blog/post-1?utm_source=newsletter&utm_medium=email&utm_campaign=launch&secret=1&gclid=abc#top",
            referrer="https://www.google.com/search?q=private+query",
            screen_width=1440,
            event_id=event_id,
        )
    )
    assert response.status_code == 202, response.get_json()
    assert response.get_json() == answer(1)
    assert "X-Analytics-Dropped" not in response.headers
    [event] = stored(app, analytics)
    assert event.event_id == event_id
    assert event.name == "pageview"
    assert event.hostname == "localhost"
    assert event.path == "/blog/post-1"
    assert event.utm_source == "newsletter"
    assert event.utm_medium == "email"
    assert event.utm_campaign == "launch"
    assert event.referrer == "https://www.google.com/search"
    assert event.referrer_host == "google.com"
    assert event.screen_width == 1440
    assert event.device_type == "desktop"
    assert event.browser == "Chrome"
    assert event.os == "Windows"
    assert event.country is None
    assert event.visitor_id != 0


def test_no_raw_ip_or_user_agent_in_any_table(app, post_event):
    ip = "198.51.100.77"
    ua = DESKTOP_UA + " UniqueMarker/9.9"
    assert post_event(collect_payload(), ip=ip, ua=ua).status_code == 202
    assert (
        post_event(collect_payload(name="signup", props={"plan": "pro"}), ip=ip, ua=ua).status_code
        == 202
    )
    rows = all_rows(app)
    assert sum(1 for table, _ in rows if table == "analytics_event") == 2
    for table, row in rows:
        for column, value in row.items():
            text = value.hex() if isinstance(value, bytes) else json.dumps(value, default=str)
            assert ip not in text, (table, column)
            assert "UniqueMarker" not in text, (table, column)
            assert "198.51.100" not in text, (table, column)


def test_batch_and_text_plain_beacon(app, analytics, client):
    body = json.dumps([collect_payload(url=f"http://localhost/p{i}") for i in range(3)])
    response = client.post(
        "/_analytics/collect",
        data=body,
        content_type="text/plain;charset=UTF-8",
        headers={"User-Agent": DESKTOP_UA},
    )
    assert response.status_code == 202
    assert response.get_json()["stored"] == 3
    assert sorted(e.path for e in stored(app, analytics)) == ["/p0", "/p1", "/p2"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b"[]", "empty array"),
        (b"\xff\xfe", "UTF-8"),
        (b"42", "must be a JSON object"),
        (b'{"url": "http://localhost/", "screen_width": NaN}', "not valid JSON"),
        (b"[" * 100_00 + b"]" * 100_00, "nested too deeply"),
        (b'{"name": "pageview"}', "url is required"),
        (b'{"url": 5}', "must be a string"),
        (b'{"url": "javascript:alert(1)"}', "absolute http(s) URL"),
        (b'{"url": "data:text/html,hi"}', "absolute http(s) URL"),
        (b'{"url": "/relative/path"}', "absolute http(s) URL"),
        (b'{"url": "http://localhost/", "name": ""}', "must not be empty"),
        (b'{"url": "http://localhost/", "name": ["x"]}', "must be a string"),
        (b'{"url": "http://localhost/", "name": "a\\u0000b"}', "control characters"),
        (b'{"url": "http://localhost/", "screen_width": "wide"}', "must be a number"),
        (b'{"url": "http://localhost/", "screen_width": true}', "must be a number"),
        (b'{"url": "http://localhost/", "screen_width": 1e300}', "between"),
        (b'{"url": "http://localhost/", "scroll_depth": 101}', "between"),
        (b'{"url": "http://localhost/", "offset_ms": -5}', "between"),
        (b'{"url": "http://localhost/", "offset_ms": 999999999999}', "between"),
        (b'{"url": "http://localhost/", "event_id": "not-a-uuid"}', "must be a UUID"),
        (b'{"url": "http://localhost/", "hash_routing": "yes"}', "boolean"),
        (b'{"url": "http://localhost/", "name": "' + b"x" * 500 + b'"}', "longer than"),
        (b'{"url": "http://localhost/' + b"x" * 5000 + b'"}', "longer than"),
        (b'{"url": "http://[::1/"}', "not a valid URL"),
    ],
)
def test_malformed_input_is_rejected_and_nothing_stored(app, client, body, message):
    response = client.post(
        "/_analytics/collect",
        data=body,
        content_type="application/json",
        headers={"User-Agent": DESKTOP_UA},
    )
    assert response.status_code == 400
    assert message in response.get_json()["error"]
    assert not [r for t, r in all_rows(app) if t == "analytics_event"]


def test_batch_with_one_bad_event_stores_the_others(app, analytics, post_event):
    batch = [
        collect_payload(url="http://localhost/a"),
        collect_payload(url="ftp://localhost/"),
        collect_payload(url="http://localhost/c"),
    ]
    response = post_event(batch)
    assert response.status_code == 202
    error = "events[1].url must be an absolute http(s) URL"
    assert response.get_json() == answer(2, rejected=[{"index": 1, "error": error}])
    assert sorted(e.path for e in stored(app, analytics)) == ["/a", "/c"]


def test_too_many_events_in_batch(make_app):
    app = make_app(ANALYTICS_MAX_BATCH=3)
    response = app.test_client().post(
        "/_analytics/collect", json=[collect_payload()] * 4, headers={"User-Agent": DESKTOP_UA}
    )
    assert response.status_code == 400
    assert "too many events" in response.get_json()["error"]


def test_oversize_body_is_413(app, client):
    body = json.dumps([collect_payload(props={f"k{i}": "x" * 1900 for i in range(30)})] * 2)
    assert len(body) > 64 * 1024
    response = client.post("/_analytics/collect", data=body, content_type="application/json")
    assert response.status_code == 413
    assert "larger than" in response.get_json()["error"]
    # Chunked upload without Content-Length is cut off as well.
    response = client.post(
        "/_analytics/collect",
        input_stream=io.BytesIO(body.encode()),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert not [r for t, r in all_rows(app) if t == "analytics_event"]


def test_wrong_method_and_content_type(client):
    response = client.get("/_analytics/collect")
    assert response.status_code == 405
    assert response.get_json()["error"]
    assert "POST" in response.headers["Allow"]
    response = client.post("/_analytics/collect", data=b"<xml/>", content_type="application/xml")
    assert response.status_code == 415


def test_unknown_fields_ignored_and_custom_fields_only_when_declared(make_app):
    app = make_app(event_model=custom_event_model, ANALYTICS_CLIENT_FIELDS=["ab_variant"])
    ext: Analytics = app.extensions["analytics_test"]
    response = app.test_client().post(
        "/_analytics/collect",
        json=collect_payload(ab_variant="B", plan="enterprise", whatever={"x": 1}),
        headers={"User-Agent": DESKTOP_UA},
    )
    assert response.status_code == 202
    [event] = stored(app, ext)
    assert event.ab_variant == "B"
    assert event.plan is None


def test_same_event_id_twice_is_one_row(app, analytics, post_event):
    event = collect_payload(event_id=str(uuid.uuid4()))
    assert post_event(event).get_json()["stored"] == 1
    second = post_event(event)
    assert second.status_code == 202
    assert second.get_json() == answer(0, {"duplicate": 1})
    assert second.headers["X-Analytics-Dropped"] == "duplicate"
    # Also within one batch.
    other = collect_payload(event_id=str(uuid.uuid4()))
    assert post_event([other, other]).get_json() == answer(1, {"duplicate": 1})
    assert len(stored(app, analytics)) == 2


def test_same_event_id_concurrently_is_one_row(app, analytics, live_server):
    import urllib.request

    event_ids = [str(uuid.uuid4()) for _ in range(5)]
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def send() -> None:
        body = json.dumps(
            [collect_payload(url="http://127.0.0.1/", event_id=e) for e in event_ids]
        ).encode()
        req = urllib.request.Request(
            live_server.url + "/_analytics/collect",
            data=body,
            headers={"Content-Type": "application/json", "User-Agent": DESKTOP_UA},
        )
        barrier.wait()
        with urllib.request.urlopen(req, timeout=30) as resp:
            statuses.append(resp.status)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [202] * 8
    assert sorted(e.event_id for e in stored(app, analytics)) == sorted(event_ids)


def test_cors_preflight_and_headers(make_app):
    app = make_app(
        ANALYTICS_CORS_ORIGINS=["https://shop.example.com"],
        ANALYTICS_ALLOWED_HOSTS=["shop.example.com"],
    )
    client = app.test_client()
    pre = client.options(
        "/_analytics/collect",
        headers={"Origin": "https://shop.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert pre.status_code == 204
    assert pre.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    other = client.options("/_analytics/collect", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    response = client.post(
        "/_analytics/collect",
        json=collect_payload(url="https://shop.example.com/cart"),
        headers={"Origin": "https://shop.example.com", "User-Agent": DESKTOP_UA},
    )
    assert response.status_code == 202
    assert response.get_json()["stored"] == 1
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"


def test_other_hosts_are_not_recorded_by_default(app, post_event):
    response = post_event(collect_payload(url="https://someone-else.example/"))
    assert response.status_code == 202
    assert response.headers["X-Analytics-Dropped"] == "host_not_allowed"
    assert not [r for t, r in all_rows(app) if t == "analytics_event"]


def test_allowed_hosts_wildcard(make_app):
    app = make_app(ANALYTICS_ALLOWED_HOSTS=["example.com", "*.example.com"])
    client = app.test_client()
    for url, expected in [
        ("https://example.com/", 1),
        ("https://blog.example.com/", 1),
        ("https://notexample.com/", 0),
        ("http://localhost/", 0),
    ]:
        response = client.post(
            "/_analytics/collect", json=collect_payload(url=url), headers={"User-Agent": DESKTOP_UA}
        )
        assert response.get_json()["stored"] == expected, url


def test_unreachable_database_is_a_retryable_503():
    from flask_sqlalchemy import SQLAlchemy

    app = Flask("down")
    # Nothing listens on port 1: every connection attempt fails like a stopped server.
    app.config["SQLALCHEMY_DATABASE_URI"] = (
        "postgresql+psycopg://root@127.0.0.1:1/none?connect_timeout=2"
    )
    db = SQLAlchemy(app)
    Analytics(app, db=db)
    response = app.test_client().post(
        "/_analytics/collect", json=collect_payload(), headers={"User-Agent": DESKTOP_UA}
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "retry" in response.get_json()["error"]


def test_sqlite_databases_run_in_wal_mode(tmp_path):
    from flask_sqlalchemy import SQLAlchemy

    app = Flask("wal")
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'wal.db'}"
    db = SQLAlchemy(app)
    Analytics(app, db=db)
    with app.app_context():
        db.create_all()
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 15000
        db.engine.dispose()
