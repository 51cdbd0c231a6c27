"""Server-side pageviews (ANALYTICS_SERVER_PAGEVIEWS): every HTML GET answered 2xx or
404 is one pageview with its endpoint, status and response time; the tracker's first
pageview of the same page load is the same event; bots, DNT and exclusions as for the
tracker; the endpoint of every event from the app's URL map."""

from __future__ import annotations

import html
import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Blueprint, Flask, abort, jsonify, redirect, render_template_string
from werkzeug.routing import Map, Rule

from flask_analytics.ingest.endpoints import EndpointMatcher

from ..conftest import DESKTOP_UA, MOBILE_UA
from .tracker_app import create_app
from .tracker_fixtures import (  # noqa: F401 (fixtures)
    COLUMNS,
    chromium_fixture,
    named,
    sentinel,
    serve,
    wait_for_events,
)

PAGE = "<!doctype html><title>{{ title }}</title>{{ analytics_script() }}"
BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def add_site(app: Flask) -> None:
    """The host's pages: a blog blueprint (one endpoint, many slugs), a JSON API, a form,
    a redirect."""
    blog = Blueprint("blog", __name__)

    @blog.route("/blog/<slug>")
    def post(slug: str) -> str:
        if slug == "missing":
            abort(404)
        return render_template_string(PAGE, title=slug)

    app.register_blueprint(blog)
    app.add_url_rule("/", "index", lambda: render_template_string(PAGE, title="home"))
    app.add_url_rule("/api/data", "data", lambda: jsonify(ok=True))
    app.add_url_rule("/form", "form", lambda: render_template_string(PAGE, title="sent"),
                     methods=["POST"])  # fmt: skip
    app.add_url_rule("/old", "old", lambda: redirect("/"))

    @app.errorhandler(404)
    def not_found(_exc: Any) -> tuple[str, int]:
        return render_template_string(PAGE, title="not found"), 404


@pytest.fixture
def site(make_app: Callable[..., Flask], frozen_clock: Any) -> Flask:
    app = make_app(
        ANALYTICS_SERVER_PAGEVIEWS=True,
        ANALYTICS_EXCLUDED_PATHS=["/blog/private-*"],
        ANALYTICS_RATE_LIMIT=None,
    )
    add_site(app)
    return app


def rows(app: Flask) -> list[dict[str, Any]]:
    analytics = app.extensions["analytics_test"]
    table = analytics.Event.__table__
    with app.app_context(), analytics.db.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).order_by(table.c.id)).mappings()]


def get(app: Flask, path: str, *, ip: str = "203.0.113.7", ua: str = DESKTOP_UA,
        **headers: str) -> Any:  # fmt: skip
    return app.test_client().get(
        path, headers={"User-Agent": ua, **headers}, environ_base={"REMOTE_ADDR": ip}
    )


def page_fields(body: str) -> dict[str, Any]:
    """The ``data-page`` JSON of the page's tracker tag ({} without one)."""
    found = re.search(r'data-page="([^"]*)"', body)
    return json.loads(html.unescape(found.group(1))) if found else {}


def tracker_pageview(app: Flask, url: str, page: dict[str, Any], *, ip: str = "203.0.113.7",
                     ua: str = DESKTOP_UA) -> Any:  # fmt: skip
    """The tracker's first pageview of a page, as tracker.js builds it (a random event
    id, the page's data-page fields)."""
    event = {"name": "pageview", "url": url, "event_id": str(uuid.uuid4()),
             "screen_width": 1280, "referrer": "", **page}  # fmt: skip
    return app.test_client().post(
        "/_analytics/collect", json=[event], headers={"User-Agent": ua},
        environ_base={"REMOTE_ADDR": ip},
    )  # fmt: skip


def test_a_page_counts_once_with_or_without_javascript_and_bots_not_at_all(site: Flask) -> None:
    # Without JS: the server's pageview only.
    answer = get(site, "/blog/first-post?utm_source=news", Referer="https://news.example/x?y=1")
    assert answer.status_code == 200
    [first] = rows(site)
    assert (first["name"], first["path"], first["endpoint"], first["status"]) == (
        "pageview", "/blog/first-post", "blog.post", 200
    )  # fmt: skip
    assert (first["utm_source"], first["referrer_host"]) == ("news", "news.example")
    assert isinstance(first["duration_ms"], int)
    assert first["duration_ms"] >= 0

    # With JS: the tracker sends the page id the page carries; still one pageview, whose
    # event id is derived from the page id and the visitor.
    answer = get(site, "/blog/second-post")
    page = page_fields(answer.get_data(as_text=True))
    assert set(page) == {"page_id"}
    [server] = [r for r in rows(site) if r["path"] == "/blog/second-post"]
    expected_id = str(uuid.uuid5(uuid.UUID(page["page_id"]), str(server["visitor_id"])))
    assert server["event_id"] == expected_id
    sent = tracker_pageview(site, "http://localhost/blog/second-post", page)
    assert sent.status_code == 202
    assert sent.get_json()["dropped"] == {"duplicate": 1}
    assert [r["event_id"] for r in rows(site) if r["path"] == "/blog/second-post"] == [expected_id]

    # The same page id from another visitor (a cached copy of the page) is their own view.
    assert tracker_pageview(site, "http://localhost/blog/second-post", page,
                            ip="198.51.100.9", ua=MOBILE_UA).get_json()["accepted"] == 1  # fmt: skip
    viewers = {r["visitor_id"] for r in rows(site) if r["path"] == "/blog/second-post"}
    assert len(viewers) == 2

    # Bots, DNT and excluded paths: nothing, as for the tracker.
    before = len(rows(site))
    assert get(site, "/blog/third", ua=BOT_UA).status_code == 200
    assert get(site, "/blog/third", DNT="1").status_code == 200
    assert get(site, "/blog/private-notes").status_code == 200
    assert len(rows(site)) == before


def test_a_page_cached_inside_the_app_keeps_the_page_id_it_carries(site: Flask) -> None:
    cache: dict[str, str] = {}

    def cached() -> str:  # what a view cache (Flask-Caching...) does
        if "page" not in cache:
            cache["page"] = render_template_string(PAGE, title="cached")
        return cache["page"]

    site.add_url_rule("/cached", "cached", cached)
    first = page_fields(get(site, "/cached").get_data(as_text=True))
    again = page_fields(get(site, "/cached", ip="198.51.100.9").get_data(as_text=True))
    assert first == again  # the second visitor got the cached copy's page id
    for ip in ("203.0.113.7", "198.51.100.9"):
        sent = tracker_pageview(site, "http://localhost/cached", again, ip=ip)
        assert sent.get_json()["dropped"] == {"duplicate": 1}
    assert len(rows(site)) == 2  # one pageview per visitor


def test_only_html_gets_answered_2xx_or_404_are_pageviews(site: Flask) -> None:
    client = site.test_client()
    headers = {"User-Agent": DESKTOP_UA}
    assert client.get("/api/data", headers=headers).status_code == 200  # JSON
    assert client.post("/form", headers=headers).status_code == 200  # POST
    assert client.get("/old", headers=headers).status_code == 302  # redirect
    assert client.head("/", headers=headers).status_code == 200  # HEAD
    assert client.get("/analytics/", headers=headers).status_code == 403  # the dashboard
    # What the browser says is no page: a favicon's 404, an iframe, a prefetch.
    assert get(site, "/favicon.ico", **{"Sec-Fetch-Dest": "image"}).status_code == 404
    assert get(site, "/blog/x", **{"Sec-Fetch-Dest": "iframe"}).status_code == 200
    assert get(site, "/blog/x", **{"Sec-Purpose": "prefetch;prerender"}).status_code == 200
    assert rows(site) == []
    # A page answered to a POST carries no page id (it has no server pageview).
    assert "page_id" not in page_fields(client.post("/form", headers=headers).get_data(True))


def test_a_404_is_recorded_with_its_referrer(site: Flask) -> None:
    answer = get(site, "/no/such/page", Referer="https://links.example/broken?ref=1")
    assert answer.status_code == 404
    answer = get(site, "/blog/missing", Referer="https://other.example/")
    assert answer.status_code == 404
    found = [(r["path"], r["status"], r["endpoint"], r["referrer"]) for r in rows(site)]
    assert found == [
        ("/no/such/page", 404, None, "https://links.example/broken"),
        ("/blog/missing", 404, "blog.post", "https://other.example/"),
    ]


def test_tracker_pageviews_may_report_their_status(make_app: Callable[..., Flask]) -> None:
    # A site without server pageviews: its 404 template calls analytics_script(status=404).
    app = make_app(ANALYTICS_RATE_LIMIT=None)
    app.add_url_rule("/gone", "gone", lambda: (render_template_string(
        "{{ analytics_script(status=404) }}"), 404))  # fmt: skip
    page = page_fields(app.test_client().get("/gone").get_data(as_text=True))
    assert page == {"status": 404}  # no page id: no server pageview
    assert rows(app) == []  # nothing by the server
    assert tracker_pageview(app, "http://localhost/gone", page).status_code == 202
    # The second pageview of the page (SPA navigation) would carry no status.
    tracker_pageview(app, "http://localhost/gone", {})
    assert [(r["status"], r["endpoint"]) for r in rows(app)] == [(404, "gone"), (None, "gone")]
    with app.test_request_context(), pytest.raises(ValueError, match="status"):
        render_template_string("{{ analytics_script(status=99) }}")
    bad = tracker_pageview(app, "http://localhost/gone", {"status": "404"})
    assert bad.status_code == 400


def test_tracker_and_track_events_get_the_endpoint_of_their_page(site: Flask) -> None:
    events = [
        {"url": "http://localhost/blog/a%20b?x=1"},
        {"url": "http://localhost/"},
        {"url": "http://localhost/nowhere/at/all"},
        {"url": "http://localhost/form"},  # POST only: no page there
        {"url": "http://localhost/api/data", "name": "click"},
        {"url": "http://localhost/long"},
    ]
    long_name = "views." + "x" * 250  # longer than the column: stored cut to its length
    site.add_url_rule("/long", long_name, lambda: "")
    client = site.test_client()
    answer = client.post("/_analytics/collect", json=events, headers={"User-Agent": DESKTOP_UA})
    assert answer.get_json()["accepted"] == 6
    with site.app_context():
        site.extensions["analytics_test"].track("signup", url="https://localhost/blog/x")
    found = [(r["path"], r["endpoint"], r["status"]) for r in rows(site)]
    assert found == [
        ("/blog/a%20b", "blog.post", None),
        ("/", "index", None),
        ("/nowhere/at/all", None, None),
        ("/form", None, None),
        ("/api/data", "data", None),
        ("/long", long_name[:200], None),
        ("/blog/x", "blog.post", None),
    ]


def test_endpoint_matcher_follows_rules_added_later() -> None:
    url_map = Map([Rule("/a/<int:n>", endpoint="a")])
    match = EndpointMatcher(url_map)
    assert match("example.com", "/a/7") == "a"
    assert match("example.com", "/b/%C3%A9") is None
    url_map.add(Rule("/b/<name>", endpoint="b"))
    assert match("example.com", "/b/%C3%A9") == "b"
    assert match("example.com", "/a/x") is None
    assert match("example.com", "/a/7#/route") == "a"


@pytest.mark.browser
def test_in_chromium_a_page_counts_once_with_and_without_javascript(
    chromium: Any, tmp_path: Path
) -> None:
    """The real tracker sends the page id of the server's pageview: one pageview of the
    page; a browser without JavaScript gets the server's only; SPA navigation still
    comes from the tracker. (What is stored does not depend on the database: SQLite.)"""
    app = create_app(f"sqlite:///{tmp_path / 'site.db'}", ANALYTICS_SERVER_PAGEVIEWS=True)
    for site in serve(app, (*COLUMNS, "endpoint", "status", "duration_ms")):
        context = chromium.new_context(user_agent=DESKTOP_UA)
        page = context.new_page()
        page.goto(site.url + "/page/one")
        # The tracker's batch (its pageview and the queued "early" event) has arrived.
        wait_for_events(site, page, lambda ev: named(ev, "early"), "the tracker's batch")
        [sent] = [e for e in site.sent() if e["name"] == "pageview"]
        assert "page_id" in sent
        page.evaluate("history.pushState({}, '', '/page/spa')")
        sentinel(site, page)
        context.close()

        no_js = chromium.new_context(user_agent=DESKTOP_UA, java_script_enabled=False)
        no_js.new_page().goto(site.url + "/page/plain")
        no_js.close()

        views = [(e["path"], e["status"]) for e in site.events("pageview")]
        assert sorted(views) == sorted([
            ("/page/one", 200), ("/page/spa", None), ("/page/sentinel", 200), ("/page/plain", 200)
        ])  # fmt: skip
        # The stored pageview of /page/one is the server's (its id derived from the page id).
        [one] = [e for e in site.events("pageview") if e["path"] == "/page/one"]
        assert one["event_id"] != sent["event_id"]
        assert one["duration_ms"] is not None
