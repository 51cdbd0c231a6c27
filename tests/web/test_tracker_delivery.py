"""Tracker in a real browser: batching, retries with backoff, exactly-once, offline queue."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from .tracker_fixtures import (  # noqa: F401 (fixtures)
    Site,
    chromium_fixture,
    context_fixture,
    named,
    page_fixture,
    pump_until,
    sentinel,
    site_fixture,
    wait_for_events,
)

pytestmark = pytest.mark.browser

COLLECT = "**/_analytics/collect"


class Attempts:
    """Route handler answering the first ``failures`` collect requests itself."""

    def __init__(self, *failures: int | str) -> None:
        self.failures = list(failures)
        self.log: list[tuple[float, list[str], int | str]] = []

    def __call__(self, route) -> None:
        ids = [event["event_id"] for event in json.loads(route.request.post_data or "[]")]
        outcome = self.failures.pop(0) if self.failures else "continue"
        self.log.append((time.monotonic(), ids, outcome))
        if outcome == "abort":
            route.abort()
        elif outcome == "continue":
            route.continue_()
        else:
            assert isinstance(outcome, int)
            route.fulfill(status=outcome, json={"error": "test"})

    def tries(self, event_id: str) -> list[float]:
        return [at for at, ids, _ in self.log if event_id in ids]


def stored_once(events) -> None:
    counts = Counter(e["event_id"] for e in events)
    assert counts
    assert set(counts.values()) == {1}, counts


@pytest.mark.parametrize("failures", [(503, 503), ("abort", 429)], ids=["5xx", "network-429"])
def test_failed_sends_are_retried_with_backoff_and_stored_once(site: Site, page, failures):
    attempts = Attempts(*failures)
    page.route(COLLECT, attempts)
    page.goto(site.url + "/page/one")
    events = wait_for_events(site, page, lambda ev: named(ev, "pageview"), "the pageview")
    [pageview] = named(events, "pageview")
    tries = attempts.tries(pageview["event_id"])
    assert len(tries) == 3  # two failures, then delivered
    # Exponential backoff with jitter: ~1 s (0.5-1.5) then ~2 s (1-3).
    first_gap, second_gap = tries[1] - tries[0], tries[2] - tries[1]
    assert 0.4 < first_gap < 2.5
    assert 0.9 < second_gap < 4
    stored_once(sentinel(site, page))


def test_a_lost_answer_is_retried_and_the_server_drops_the_duplicate(site: Site, page):
    delivered: list[str] = []

    def store_then_fail(route) -> None:
        # The request reaches the server (stored), but the browser sees a 503.
        response = route.fetch()
        delivered.append(response.text())
        if len(delivered) == 1:
            route.fulfill(status=503, body="")
        else:
            route.fulfill(response=response)

    page.route(COLLECT, store_then_fail)
    page.goto(site.url + "/page/one")
    pump_until(page, lambda: len(delivered) >= 2, "the retry")
    assert json.loads(delivered[1])["dropped"] == {"duplicate": 2}
    events = sentinel(site, page)
    assert len(named(events, "pageview")) == 2  # /page/one's and the sentinel's
    stored_once(events)


def test_a_4xx_answer_is_not_retried(site: Site, page):
    attempts = Attempts(400)
    page.route(COLLECT, attempts)
    page.goto(site.url + "/page/one")
    pump_until(page, lambda: attempts.log, "the first send")
    refused = attempts.log[0][1]
    page.evaluate("fa.track('later')")
    wait_for_events(site, page, lambda ev: named(ev, "later"), "the next event")
    events = sentinel(site, page)
    assert not {e["event_id"] for e in events} & set(refused)
    assert all(len(attempts.tries(event_id)) == 1 for event_id in refused)


def test_a_burst_of_events_is_batched(site: Site, page):
    page.goto(site.url + "/page/one")
    wait_for_events(site, page, lambda ev: named(ev, "pageview"), "the pageview")
    before = len(site.recorder.bodies)
    page.evaluate("for (let i = 0; i < 20; i++) fa.track('burst', {i})")
    events = wait_for_events(site, page, lambda ev: len(named(ev, "burst")) == 20, "the burst")
    requests = site.recorder.bodies[before:]
    assert len(requests) <= 2  # 20 events flush at once; far fewer requests than events
    assert sorted(e["props"]["i"] for e in named(events, "burst")) == list(range(20))


def test_full_mode_keeps_unsent_events_and_replays_them_once(site: Site, page, context):
    site.options(mode="full")
    failures: list[str] = []

    def offline(route) -> None:
        failures.append(route.request.post_data or "")
        route.abort()

    page.route(COLLECT, offline)
    page.goto(site.url + "/page/one")
    page.evaluate("fa.track('offline', {n: 1})")
    pump_until(page, lambda: failures, "a failed send")
    page.goto(site.url + "/blank")  # leaves while offline (its beacon fails too); no tracker
    kept = page.evaluate(
        "() => Object.keys(localStorage).filter(k => k.startsWith('fa_q'))"
        ".flatMap(k => JSON.parse(localStorage[k])).map(([t, e]) => e.event_id)"
    )
    offline_ids = {e["event_id"] for body in failures for e in json.loads(body or "[]")}
    assert offline_ids <= set(kept)

    # Back online, in another tab: the next page load replays what was kept.
    second = context.new_page()
    second.goto(site.url + "/page/two")
    events = wait_for_events(
        site,
        second,
        lambda ev: {"/page/one", "/page/two"} <= {e["path"] for e in named(ev, "pageview")},
        "the replayed and the new pageview",
    )
    assert named(events, "offline")[0]["props"] == {"n": 1}
    assert offline_ids <= {e["event_id"] for e in events}
    stored_once(events)
    replayed = [e for e in site.sent() if e["event_id"] in offline_ids]
    assert {e["name"] for e in replayed} >= {"pageview", "offline"}
    assert all(e["offset_ms"] > 0 for e in replayed)
    # Replayed once: the storage is empty and a further load sends none of them again.
    assert (
        second.evaluate("() => Object.keys(localStorage).filter(k => k.startsWith('fa_q'))") == []
    )
    sent_before = len(site.sent())
    sentinel(site, second, mode="full")
    assert not {e["event_id"] for e in site.sent()[sent_before:]} & offline_ids
    second.close()
