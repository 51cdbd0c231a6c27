"""Event properties in the API and on the events page: ``/analytics/api/breakdown/prop:KEY``
and ``/analytics/api/props`` (JSON and CSV, filters, bad keys, access) against the
plain-Python reference of ``tests/support/props.py``; the Properties panel of the events
page, rendered and in chromium (clicks, escaping, 1440 and 390 px screenshots)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
from flask import Flask

from ..conftest import LiveServer
from ..support.props import DAYS, DENY, XSS, expected_keys, expected_values, props_app

__all__ = ["props_app"]

RANGE = {"start": DAYS[0].isoformat(), "end": DAYS[-1].isoformat()}
SIGNUP = "event:is:signup"
GOOGLE = "source:is:Google"


def url(path: str, *filters: str, **params: str) -> str:
    pairs = [*RANGE.items(), *params.items(), *(("filter", f) for f in filters)]
    return f"/analytics{path}?{urlencode(pairs)}"


def spec(text: str) -> tuple[str, str, tuple[str, ...]]:
    dimension, op, value = text.split(":")
    return (dimension, op, (value,))


def expected_rows(app: Flask, key: str, *filters: str) -> dict[Any, dict[str, int]]:
    events = app.config["PROPS_EVENTS"]
    return expected_values(events, key, DAYS, [spec(f) for f in filters])


@pytest.mark.parametrize(
    ("key", "filters"),
    [("plan", (SIGNUP,)), ("label", (SIGNUP, GOOGLE)), ("ключ", ()), ("a/b", ()), ('q"k', ())],
)
def test_breakdown_json_and_csv(props_app: Flask, key: str, filters: tuple[str, ...]) -> None:
    client = props_app.test_client()
    path = f"/breakdown/prop:{quote(key)}"
    body = client.get(url(f"/api{path}", *filters)).get_json()
    dimension = f"prop:{key}"
    assert body["dimension"] == dimension
    assert body["filters"] == list(filters)
    expected = expected_rows(props_app, key, *filters)
    assert len(expected) >= 2
    got = {
        row[dimension]: {c: row[c] for c in ("visitors", "pageviews", "events")}
        for row in body["rows"]
    }
    assert got == expected
    assert body["total"] == len(expected)
    visitors = [row["visitors"] for row in body["rows"]]
    assert visitors == sorted(visitors, reverse=True)

    response = client.get(url(f"/api{path}", *filters, format="csv"))
    assert response.mimetype == "text/csv"
    assert response.headers["X-Total-Count"] == str(len(expected))
    table = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert table[0] == [dimension, "visitors", "pageviews", "events", "events_per_visitor"]
    by_value = {row[0] or None: [int(v) for v in row[1:4]] for row in table[1:]}
    assert by_value == {
        value: [c["visitors"], c["pageviews"], c["events"]] for value, c in expected.items()
    }


def test_breakdown_pages_and_order(props_app: Flask) -> None:
    client = props_app.test_client()
    whole = client.get(url("/api/breakdown/prop:plan", SIGNUP)).get_json()
    page = client.get(url("/api/breakdown/prop:plan", SIGNUP, limit="1", page="2")).get_json()
    assert page["rows"] == whole["rows"][1:2]
    assert page["total"] == whole["total"]
    by_events = client.get(url("/api/breakdown/prop:plan", SIGNUP, order="events")).get_json()
    events = [row["events"] for row in by_events["rows"]]
    assert events == sorted(events, reverse=True)


@pytest.mark.parametrize("key", ["", "a:b", "k" * 65, "tab%09x"])
def test_bad_keys_answer_400(props_app: Flask, key: str) -> None:
    response = props_app.test_client().get(url(f"/api/breakdown/prop:{key}"))
    assert response.status_code == 400
    assert "property key" in response.get_json()["error"]


def test_props_keys_json_and_csv(props_app: Flask) -> None:
    client = props_app.test_client()
    events = props_app.config["PROPS_EVENTS"]
    body = client.get(url("/api/props", GOOGLE, event="signup")).get_json()
    wanted = expected_keys(events, DAYS, [spec(GOOGLE)], "signup")
    assert len(wanted) >= 4
    ordered = sorted(wanted.items(), key=lambda i: (-i[1], i[0]))
    assert [(k["key"], k["events"]) for k in body["keys"]] == ordered
    assert body["total"] == len(wanted)
    assert body["event"] == "signup"
    top = client.get(url("/api/props", limit="2")).get_json()
    every = sorted(expected_keys(events, DAYS).items(), key=lambda i: (-i[1], i[0]))
    assert [(k["key"], k["events"]) for k in top["keys"]] == every[:2]
    assert top["total"] == len(every)
    response = client.get(url("/api/props", event="signup", format="csv"))
    table = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert table[0] == ["key", "events"]
    signup = sorted(expected_keys(events, DAYS, (), "signup").items(), key=lambda i: (-i[1], i[0]))
    assert [(k, int(n)) for k, n in table[1:]] == signup
    assert client.get(url("/api/props", event="a\x01")).status_code == 400


def test_access_is_checked(props_app: Flask) -> None:
    client = props_app.test_client()
    for path in ("/api/breakdown/prop:plan", "/api/breakdown/prop:a/b", "/api/props", "/events"):
        assert client.get(url(path), headers={DENY: "1"}).status_code == 403, path
        assert client.get(url(path)).status_code == 200, path


def test_events_page_panel(props_app: Flask) -> None:
    client = props_app.test_client()
    plain = client.get(url("/events")).get_data(as_text=True)
    assert "data-properties" not in plain
    page = client.get(url("/events", SIGNUP)).get_data(as_text=True)
    assert 'data-event="signup"' in page
    events = props_app.config["PROPS_EVENTS"]
    keys = sorted(expected_keys(events, DAYS, (), "signup").items(), key=lambda i: (-i[1], i[0]))
    assert f'data-prop-key="{keys[0][0]}" title' in page
    labels = client.get(url("/events", SIGNUP, prop="label")).get_data(as_text=True)
    assert 'data-dimension="prop"' in labels
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in labels
    assert XSS not in labels
    # The page's links keep the chosen key.
    hrefs = re.findall(r'href="([^"]*)"', labels)
    period_links = [h for h in hrefs if "period=7d" in h]
    assert period_links
    assert all("prop=label" in h for h in period_links)
    assert client.get(url("/events", SIGNUP, prop="a:b")).status_code == 400


# -- in chromium -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_server(props_app: Flask) -> Iterator[LiveServer]:
    server = LiveServer(props_app).start()
    yield server
    server.stop()


def query_of(address: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(address).query)


@pytest.mark.browser
def test_the_panel_in_chromium(
    browser: Any, live_server: LiveServer, props_app: Flask, artifacts_dir: Path
) -> None:
    db = (
        "sqlite"
        if props_app.config["ANALYTICS_TEST_DATABASE"].startswith("sqlite")
        else "postgresql"
    )
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    dialogs: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    try:
        page.goto(f"{live_server.url}{url('/events')}")
        page.locator(
            'section[data-dimension="event"] tr[data-key="signup"] a[data-filter-link]'
        ).click()
        page.wait_for_url(lambda a: query_of(a).get("filter") == [SIGNUP])
        panel = page.locator("section[data-properties]")
        assert panel.get_attribute("data-event") == "signup"
        panel.locator('a[data-prop-key="label"]').click()
        page.wait_for_url(lambda a: query_of(a).get("prop") == ["label"])
        values = page.locator('section[data-dimension="prop"] tr[data-key]')
        shown = {values.nth(i).get_attribute("data-key") for i in range(values.count())}
        expected = expected_rows(props_app, "label", SIGNUP)
        assert shown == {k if k is not None else "" for k in expected}
        assert XSS in shown
        assert (
            page.locator('section[data-dimension="prop"]').get_by_text(XSS, exact=True).count() == 1
        )
        for width, height in ((1440, 900), (390, 844)):
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=str(artifacts_dir / f"props-{db}-{width}.png"), full_page=True)
            assert page.evaluate("document.documentElement.scrollWidth") <= width
        # A value's row adds its filter; the chosen key stays.
        page.locator(
            'section[data-dimension="prop"] tr[data-key="a|b"] a[data-filter-link]'
        ).click()
        page.wait_for_url(lambda a: len(query_of(a).get("filter", [])) == 2)
        assert query_of(page.url)["filter"] == [SIGNUP, "prop:label:is:a\\|b"]
        assert query_of(page.url)["prop"] == ["label"]
        assert "Property label is a|b" in page.locator(".fa-chip__label").all_inner_texts()
        assert page.locator("img").count() == 0
        assert dialogs == []
        assert errors == []
    finally:
        context.close()
