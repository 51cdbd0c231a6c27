"""Hypothesis fuzzing of the collect endpoint and analytics.track (issue: reliability).

Over 10,000 generated inputs per run: hostile JSON shapes, raw bytes, odd unicode, NUL
and control characters, huge strings and numbers, hostile URLs, header abuse. Never a
5xx, a clear JSON message for every rejection, nothing stored for a rejected body and,
for an accepted one, the name, hostname and path of each event sent, every stored row
within the model's constraints, and no raw IP or user agent anywhere afterwards. The
counts are printed.
"""

from __future__ import annotations

import json
import math
import os
import string
import uuid
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import idna
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_analytics import InvalidEvent
from flask_analytics.models import PATH_MAX

from ..conftest import DESKTOP_UA, all_rows

FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: ``ANALYTICS_FUZZ_SCALE`` multiplies every fuzz test's number of inputs (default 1:
#: 2,750 inputs a run, within the suite's time; e.g. 10 for a long run before a release).
FUZZ_SCALE = float(os.environ.get("ANALYTICS_FUZZ_SCALE", "1"))


def scaled(examples: int) -> int:
    return max(1, round(examples * FUZZ_SCALE))


IP = "198.51.100.23"
UA_MARK = "FuzzMarker/1.0"

hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
    st.sampled_from(
        [
            "",
            "\x00",
            "a\x00b",
            "\ud800",
            "\u202e",
            "\ufeff",
            "<script>alert(1)</script>",
            '"><img src=x onerror=alert(1)>',
            "' OR 1=1 --",
            "💥" * 50,
            "x" * 5000,
            "\r\n",
            "%00",
            "../../etc/passwd",
        ]
    ),
)
urls = st.one_of(
    st.sampled_from(
        [
            "http://localhost/",
            "https://localhost/a?b=c&utm_source=x",
            "javascript:alert(1)",
            "data:text/html,<b>",
            "//localhost/x",
            "/relative",
            "http://[::1]:8080/x",
            "http://[::1/",
            "http://bücher.de/",
            "http://xn--bcher-kva.de/",
            "http://localhost:99999/",
            "http://user:pw@localhost/",
            "HTTP://LOCALHOST/UPPER",
            "http://localhost/" + "a" * 3000,
            "http://localhost/%ff%fe",
            "http://localhost/\x00",
            "ftp://localhost/",
            "http:///nohost",
            "http://localhost./dot",
            "http://127.0.0.1/",
            "http://localhost/#/route",
        ]
    ),
    st.builds(lambda p: f"http://localhost/{p}", st.text(max_size=60)),
    hostile_text,
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
)
json_values = st.recursive(
    scalars,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=12,
)
good_urls = st.sampled_from(
    [
        "http://localhost/",
        "http://localhost/blog?utm_source=news&utm_medium=email",
        "http://127.0.0.1/p#x",
        "https://localhost/a/b/c?gclid=1",
        "http://bücher.de/ü",
    ]
)


def mostly(
    valid: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """Valid values three times out of four, so that every field's bad values get tried
    on otherwise acceptable events (and accepted events exercise the storage)."""
    return st.one_of(valid, valid, valid, hostile)


events = st.fixed_dictionaries(
    {"url": mostly(good_urls, st.one_of(urls, json_values))},
    optional={
        "name": mostly(
            st.sampled_from(["pageview", "signup", "outbound", "engagement"]),
            st.one_of(hostile_text, json_values),
        ),
        "referrer": mostly(
            st.one_of(st.none(), good_urls, st.just("https://www.google.com/search?q=x")),
            st.one_of(urls, json_values),
        ),
        "screen_width": mostly(
            st.integers(0, 100_000), st.one_of(st.integers(-10, 10**9), json_values)
        ),
        "event_id": mostly(st.uuids().map(str), hostile_text),
        "props": mostly(
            st.dictionaries(
                st.text(max_size=10),
                st.one_of(st.text(max_size=30), st.integers(-1000, 1000)),
                max_size=5,
            ),
            st.one_of(st.dictionaries(hostile_text, scalars, max_size=35), json_values),
        ),
        "engagement_ms": mostly(st.integers(0, 10**6), st.one_of(st.integers(-5, 10**12), scalars)),
        "scroll_depth": mostly(st.integers(0, 100), st.one_of(st.integers(-5, 200), scalars)),
        "offset_ms": mostly(st.integers(0, 10**6), st.one_of(st.integers(-5, 10**12), scalars)),
        "hash_routing": mostly(st.booleans(), scalars),
        "unknown_field": json_values,
    },
)
bodies = st.one_of(
    events,
    events,
    st.lists(events, min_size=1, max_size=5),
    st.lists(events, max_size=60),
    json_values,
)


def check_response(response: Any, counts: Counter[int]) -> None:
    counts[response.status_code] += 1
    assert response.status_code < 500, response.get_data(as_text=True)
    assert response.status_code in (202, 400, 413, 415), response.status_code
    payload = response.get_json()
    if response.status_code == 202:
        assert set(payload) == {"accepted", "stored", "dropped", "rejected", "warnings"}
        for item in payload["rejected"] + payload["warnings"]:
            assert isinstance(item["index"], int)
            assert item.get("error") or item.get("warning")
    else:
        assert isinstance(payload["error"], str)
        assert payload["error"]


def check_rows(app: Any) -> int:
    """Every stored event satisfies the model's constraints; no raw IP or user agent."""
    ext = app.extensions["analytics_test"]
    table = ext.Event.__table__
    n = 0
    for name, row in all_rows(app):
        text = json.dumps(row, default=str)
        assert IP not in text, name
        assert UA_MARK not in text, name
        if name != "analytics_event":
            continue
        n += 1
        for column in table.c:
            value = row[column.name]
            if isinstance(value, str):
                assert "\x00" not in value
                assert len(value) <= (column.type.length or 10**9), column.name
        assert row["path"].startswith("/") or row["path"] == ""
        assert row["device_type"] in ("desktop", "mobile", "tablet", "other")
        assert row["scroll_depth"] is None or 0 <= row["scroll_depth"] <= 100
        assert row["country"] is None or (len(row["country"]) == 2 and row["country"].isupper())
        if row["props"] is not None:
            assert isinstance(row["props"], dict)
            assert len(row["props"]) <= 30
            for value in row["props"].values():
                assert not isinstance(value, float) or math.isfinite(value)
    return n


ALLOWED_HOSTS = ["localhost", "127.0.0.1", "bücher.de", "xn--bcher-kva.de"]


def expected_row(event: dict[str, Any]) -> tuple[str, str, str]:
    """(name, hostname, path) an accepted event must be stored with, worked out from the
    event that was sent: its name stripped, lone surrogates replaced; the URL's host
    without a trailing dot, in IDNA ASCII form; its path (``/`` when empty) with the
    fragment's route (before any ``?``) only under hash routing, the queries dropped."""
    name = event.get("name", "pageview")
    name = name.encode("utf-16", "surrogatepass").decode("utf-16", "replace").strip()
    parts = urlsplit(event["url"].strip())
    assert parts.hostname is not None
    path = parts.path or "/"
    route = parts.fragment.partition("?")[0]
    if event.get("hash_routing") is True and route and "=" not in route and "&" not in route:
        path = f"{path}#{route}"
    host = parts.hostname.removesuffix(".")
    ip_literal = host[:1].isdigit() or ":" in host
    host = host if ip_literal else idna.encode(host, uts46=True).decode()
    return name, host, path[:PATH_MAX]


def rows_after(app: Any, last_id: int) -> list[dict[str, Any]]:
    """The event rows stored after the row ``last_id``, in id order."""
    ext = app.extensions["analytics_test"]
    table = ext.Event.__table__
    query = (
        sa.select(table.c.id, table.c.event_id, table.c.name, table.c.hostname, table.c.path)
        .where(table.c.id > last_id)
        .order_by(table.c.id)
    )
    with app.app_context(), ext.db.engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def check_stored(app: Any, body: Any, response: Any, last_id: list[int]) -> None:
    """What one request stored: nothing when it was rejected; when accepted, as many rows
    as the answer says, each with the name, hostname and path of an event that was sent
    (matched by ``event_id`` when the client chose it). ``last_id`` holds the id of the
    last row seen, moved past this request's rows before any check (a failed example
    leaves nothing behind for the next one)."""
    rows = rows_after(app, last_id[0])
    if rows:
        last_id[0] = int(rows[-1]["id"])
    if response.status_code != 202:
        assert rows == [], (response.status_code, rows)
        return
    answer = response.get_json()
    sent = body if isinstance(body, list) else [body]
    rejected = {item["index"] for item in answer["rejected"]}
    assert answer["accepted"] + sum(answer["dropped"].values()) + len(rejected) == len(sent)
    assert len(rows) == answer["accepted"], (answer, rows)
    by_id: dict[str, tuple[str, str, str]] = {}
    without_id: Counter[tuple[str, str, str]] = Counter()
    for event in (event for index, event in enumerate(sent) if index not in rejected):
        if event.get("event_id") is None:
            without_id[expected_row(event)] += 1
        else:  # the first of two events with one id is the one stored
            by_id.setdefault(str(uuid.UUID(event["event_id"])), expected_row(event))
    for row in rows:
        got = (row["name"], row["hostname"], row["path"])
        assert row["hostname"] in ALLOWED_HOSTS, got
        if row["event_id"] in by_id:
            assert got == by_id[row["event_id"]], (got, sent)
        else:
            assert without_id[got] > 0, (got, sent)
            without_id[got] -= 1


@pytest.fixture
def fuzz_app(make_app):
    return make_app(
        ANALYTICS_ALLOWED_HOSTS=ALLOWED_HOSTS,
        ANALYTICS_RATE_LIMIT=None,  # thousands of requests from one client, on purpose
    )


def run_json_fuzz(app: Any, examples: int) -> Counter[int]:
    """Post ``examples`` generated bodies; each answer and what each stored is checked."""
    client = app.test_client()
    counts: Counter[int] = Counter()
    last_id = [0]

    @settings(FUZZ, max_examples=examples)
    @given(body=bodies)
    def fuzz(body: Any) -> None:
        response = client.post(
            "/_analytics/collect",
            data=json.dumps(body),
            content_type="application/json",
            headers={"User-Agent": f"{DESKTOP_UA} {UA_MARK}"},
            environ_base={"REMOTE_ADDR": IP},
        )
        check_response(response, counts)
        check_stored(app, body, response, last_id)

    fuzz()
    return counts


def test_fuzz_json_payloads(fuzz_app, database_url):
    # Most of the budget on SQLite; PostgreSQL gets its own share (its types differ).
    examples = scaled(800 if database_url.startswith("sqlite") else 300)
    counts = run_json_fuzz(fuzz_app, examples)
    stored = check_rows(fuzz_app)
    print(f"\njson fuzz: {sum(counts.values())} requests, statuses {dict(counts)}, {stored} rows")
    assert counts[400] > 0
    assert counts[202] > 0


def test_fuzz_raw_bodies_and_headers(fuzz_app, database_url):
    client = fuzz_app.test_client()
    counts: Counter[int] = Counter()
    examples = scaled(800 if database_url.startswith("sqlite") else 300)

    @settings(FUZZ, max_examples=examples)
    @given(
        raw=st.one_of(st.binary(max_size=300), st.text(max_size=200).map(str.encode)),
        content_type=st.sampled_from(
            [
                "application/json",
                "text/plain;charset=UTF-8",
                "",
                "application/xml",
                "text/plain; charset=latin-1",
            ]
        ),
        ua=st.one_of(st.text(alphabet=string.printable, max_size=200), st.just("x" * 20_000)),
        xff=st.one_of(
            st.none(), st.text(alphabet=string.printable, max_size=60), st.just("1.2.3.4, 5.6.7.8")
        ),
        dnt=st.sampled_from([None, "1", "0", "yes"]),
    )
    def fuzz(raw: bytes, content_type: str, ua: str, xff: str | None, dnt: str | None) -> None:
        headers = {"User-Agent": ua.replace("\n", " ").replace("\r", " ") + UA_MARK}
        if xff is not None:
            headers["X-Forwarded-For"] = xff.replace("\n", " ").replace("\r", " ")
        if dnt is not None:
            headers["DNT"] = dnt
        response = client.post(
            "/_analytics/collect",
            data=raw,
            content_type=content_type,
            headers=headers,
            environ_base={"REMOTE_ADDR": IP},
        )
        check_response(response, counts)

    fuzz()
    check_rows(fuzz_app)
    print(f"\nraw fuzz: {sum(counts.values())} requests, statuses {dict(counts)}")


def test_fuzz_track(fuzz_app, database_url):
    ext = fuzz_app.extensions["analytics_test"]
    outcomes: Counter[str] = Counter()
    examples = scaled(400 if database_url.startswith("sqlite") else 150)

    @settings(FUZZ, max_examples=examples)
    @given(
        name=st.one_of(hostile_text, st.just("signup")),
        url=urls,
        referrer=st.one_of(st.none(), urls),
        ip=st.one_of(st.none(), st.just(IP), hostile_text),
        props=st.one_of(st.none(), st.dictionaries(hostile_text, scalars, max_size=5)),
    )
    def fuzz(name: str, url: str, referrer: str | None, ip: str | None, props: Any) -> None:
        with fuzz_app.app_context():
            try:
                event = ext.track(
                    name,
                    url=url,
                    referrer=referrer,
                    ip=ip,
                    props=props,
                    user_agent=f"{DESKTOP_UA} {UA_MARK}",
                )
            except InvalidEvent as exc:
                message = str(exc)
                outcomes["rejected" if message else "rejected without a message"] += 1
            else:
                outcomes["stored" if event is not None else "dropped"] += 1

    fuzz()
    check_rows(fuzz_app)
    print(f"\ntrack fuzz: {dict(outcomes)}")
    assert outcomes["rejected without a message"] == 0
    assert outcomes["rejected"] > 0
    assert outcomes["stored"] > 0


def test_rows_written_by_fuzzing_are_readable(fuzz_app):
    """Regression: what the fuzzers store can be read back through the ORM."""
    run_json_fuzz(fuzz_app, 200)
    ext = fuzz_app.extensions["analytics_test"]
    with fuzz_app.app_context():
        list(ext.db.session.scalars(sa.select(ext.Event)))
