"""Tracker options in a real browser: batch size and timeout, debug, manual pageviews.

Batching runs on the page's clock (Playwright's ``page.clock``), so "not sent before the
timeout" is a statement about the tracker's timers, not about how long the test waited:
what was queued and not sent shows up in the next request, next to what caused it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import render_template

from .tracker_app import create_app
from .tracker_fixtures import (  # noqa: F401 (fixtures)
    Site,
    chromium_fixture,
    context_fixture,
    named,
    page_fixture,
    pump_until,
    sentinel,
    serve,
    site_fixture,
    wait_for_events,
)

pytestmark = pytest.mark.browser

#: Page clock at the start of the batching test (ms since the epoch).
START = 1_800_000_000_000
DEBUG_PREFIX = "flask-analytics debug, not sent to "


@pytest.fixture(name="manual_site")
def manual_site_fixture(tmp_path: Path) -> Iterator[Site]:
    """The test site plus ``/manual/<name>``: a page whose stub also queues fa.pageview."""
    app = create_app(f"sqlite:///{tmp_path / 'manual.db'}")

    @app.route("/manual/<path:name>")
    def manual(name: str) -> str:
        return render_template(
            "tracker/manual.html", name=name, options=app.config["TRACKER_OPTIONS"]
        )

    yield from serve(app)


def requests(site: Site, start: int = 0) -> list[list[str]]:
    """Event names of each collect request the server received, from the ``start``-th."""
    return [[event["name"] for event in body] for _, body in site.recorder.bodies[start:]]


def wait_for_requests(site: Site, page: Any, count: int) -> list[list[str]]:
    pump_until(page, lambda: len(site.recorder.bodies) >= count, f"{count} collect requests")
    return requests(site)


def test_batches_follow_batch_size_and_batch_timeout(site: Site, page):
    site.options(batch_size=3, batch_timeout_ms=5000)
    page.clock.install(time=START)
    page.clock.pause_at(START + 1)  # the page's timers run only when told
    page.goto(site.url + "/page/one")  # queues its pageview and the stub's "early"
    page.clock.run_for(4900)  # past the default 1 s, before this page's 5 s
    page.evaluate("fa.track('third')")  # the third event sends the batch at once
    assert wait_for_requests(site, page, 1) == [["pageview", "early", "third"]]

    page.evaluate("fa.track('fourth')")
    page.clock.run_for(4999)
    page.evaluate("fa.track('fifth'); fa.track('sixth')")
    assert wait_for_requests(site, page, 2)[1] == ["fourth", "fifth", "sixth"]

    page.evaluate("fa.track('seventh')")
    page.clock.run_for(5000)  # alone, after the timeout
    assert wait_for_requests(site, page, 3)[2] == ["seventh"]
    events = wait_for_events(site, page, lambda ev: named(ev, "seventh"), "the last batch")
    # Each stored once. The order of the rows is the order the server's threads stored
    # the batches in, which need not be the order they were sent in (checked above).
    assert sorted(e["name"] for e in events) == sorted(
        ["pageview", "early", "third", "fourth", "fifth", "sixth", "seventh"]
    )


def test_debug_logs_each_batch_and_sends_nothing(site: Site, page):
    site.options(debug=True, batch_size=2)
    logged: list[str] = []
    page.on(
        "console",
        lambda message: message.text.startswith(DEBUG_PREFIX) and logged.append(message.text),
    )
    sent: list[str] = []
    page.on("request", lambda request: "/_analytics/collect" in request.url and sent.append(1))
    page.goto(site.url + "/page/debug")
    page.evaluate("fa.track('clicked', {n: 1})")
    pump_until(page, lambda: len(logged) >= 2, "two logged batches")
    batches = [json.loads(text.split(": ", 1)[1]) for text in logged]
    assert [[event["name"] for event in batch] for batch in batches] == [
        ["pageview", "early"],
        ["clicked"],
    ]
    assert logged[0].startswith(DEBUG_PREFIX + "/_analytics/collect: ")
    assert batches[0][0]["url"] == site.url + "/page/debug"
    assert batches[1][0]["props"] == {"n": 1}
    # Leaving the page logs its last events instead of handing them to sendBeacon.
    page.evaluate("dispatchEvent(new Event('pagehide'))")
    pump_until(page, lambda: any('"web_vitals"' in text for text in logged), "the vitals")
    assert not sent
    sentinel(site, page)
    assert {e["path"] for e in site.events()} == {"/page/sentinel"}
    assert "/page/debug" not in json.dumps(site.sent())


def test_manual_pageviews_wait_for_fa_pageview(site: Site, page):
    site.options(auto_pageviews=False)
    page.goto(site.url + "/page/one")
    page.evaluate("history.pushState({}, '', '/spa/two')")  # no pageview: the app decides
    page.evaluate("fa.track('marker', {n: 1})")
    events = wait_for_events(site, page, lambda ev: named(ev, "marker"), "the first marker")
    assert not named(events, "pageview")

    page.evaluate("fa.pageview()")  # the current location
    page.evaluate("fa.pageview('/virtual/three?tab=1')")  # a URL the app names
    page.evaluate("fa.pageview('/virtual/three?tab=2')")  # the same page: counted once
    page.evaluate("fa.pageview('https://[bad')")  # never throws into the page
    page.evaluate("fa.track('marker', {n: 2})")
    events = wait_for_events(site, page, lambda ev: len(named(ev, "marker")) == 2, "marker 2")
    assert [e["path"] for e in named(events, "pageview")] == ["/spa/two", "/virtual/three"]
    sent = [e for e in site.sent() if e["name"] == "pageview"]
    assert sent[0]["url"] == site.url + "/spa/two"
    assert sent[1]["url"] == site.url + "/virtual/three?tab=1"
    assert sent[1]["referrer"] == site.url + "/spa/two"

    events = sentinel(site, page)
    assert [e["path"] for e in named(events, "pageview")] == [
        "/spa/two", "/virtual/three", "/page/sentinel",
    ]  # fmt: skip


def test_manual_pageviews_queued_by_the_stub_are_replayed(manual_site: Site, page):
    manual_site.options(auto_pageviews=False)
    page.goto(manual_site.url + "/manual/one")
    events = wait_for_events(
        manual_site, page, lambda ev: named(ev, "pageview"), "the queued pageview"
    )
    assert [(e["name"], e["path"]) for e in events] == [
        ("early", "/manual/one"),
        ("pageview", "/virtual/early"),
    ]


def test_fa_pageview_is_a_no_op_on_pages_that_are_not_tracked(site: Site, page):
    site.options(auto_pageviews=False, allow_automation=False)  # WebDriver: not tracked
    page.goto(site.url + "/page/untracked")
    assert page.evaluate("fa.pageview('/x'), typeof fa.pageview") == "function"
    events = sentinel(site, page)
    assert {e["path"] for e in events} == {"/page/sentinel"}
