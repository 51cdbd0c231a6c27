"""Tracker in a real browser: pageviews on load and on single-page-app navigation."""

from __future__ import annotations

import pytest

from .tracker_fixtures import (  # noqa: F401 (fixtures)
    Site,
    chromium_fixture,
    context_fixture,
    named,
    page_fixture,
    sentinel,
    site_fixture,
    wait_for_events,
)

pytestmark = pytest.mark.browser


def test_page_load_records_one_pageview(site: Site, page):
    page.goto(
        site.url + "/page/one?utm_source=news&secret=1",
        referer="https://news.example.org/story?id=7",
    )
    events = wait_for_events(site, page, lambda ev: named(ev, "early"), "the pageview batch")
    [pageview] = named(events, "pageview")
    assert pageview["path"] == "/page/one"
    assert pageview["hostname"] == "127.0.0.1"
    assert pageview["referrer"] == "https://news.example.org/story"
    assert pageview["referrer_host"] == "news.example.org"
    assert pageview["screen_width"] == 1111  # the viewport width of the context
    # The call made before the script loaded (pre-load stub queue) is replayed.
    [early] = named(events, "early")
    assert early["props"] == {"stage": "head"}
    events = sentinel(site, page)
    assert len([e for e in named(events, "pageview") if e["path"] == "/page/one"]) == 1


def test_history_navigation_records_pageviews_once_per_page(site: Site, page):
    page.goto(site.url + "/page/one")
    wait_for_events(site, page, lambda ev: named(ev, "pageview"), "the first pageview")

    page.evaluate("history.pushState({}, '', '/spa/two?tab=1')")
    wait_for_events(
        site, page, lambda ev: len(named(ev, "pageview")) == 2, "the pushState pageview"
    )

    # The same page again is not a new pageview: pushing it again, replacing its state,
    # or changing only its query string.
    page.evaluate("history.pushState({n: 1}, '', '/spa/two?tab=1')")
    page.evaluate("history.replaceState({n: 2}, '', '/spa/two?tab=2')")

    page.go_back()  # popstate: back to /spa/two (same page), then once more to /page/one
    page.go_back()
    events = wait_for_events(
        site, page, lambda ev: len(named(ev, "pageview")) == 3, "the back pageview"
    )
    assert [e["path"] for e in named(events, "pageview")] == ["/page/one", "/spa/two", "/page/one"]

    # SPA pageviews name the URL of the previous pageview as their referrer (the endpoint
    # then treats it as internal navigation, as for a multi-page site).
    sent = [e for e in site.sent() if e["name"] == "pageview"]
    assert sent[1]["referrer"] == site.url + "/page/one"
    assert sent[2]["referrer"] == site.url + "/spa/two?tab=1"
    assert sent[0]["referrer"] == ""
    assert len({e["event_id"] for e in sent}) == 3

    events = sentinel(site, page)
    assert [e["path"] for e in named(events, "pageview")] == [
        "/page/one", "/spa/two", "/page/one", "/page/sentinel",
    ]  # fmt: skip


def test_hash_routing_counts_fragments_as_pages(site: Site, page):
    site.options(hash_routing=True)
    page.goto(site.url + "/page/app#/inbox")
    wait_for_events(site, page, lambda ev: named(ev, "pageview"), "the first pageview")
    page.evaluate("location.hash = '#/settings'")
    events = wait_for_events(
        site, page, lambda ev: len(named(ev, "pageview")) == 2, "the hashchange pageview"
    )
    assert [e["path"] for e in named(events, "pageview")] == [
        "/page/app#/inbox",
        "/page/app#/settings",
    ]


def test_without_hash_routing_fragments_are_the_same_page(site: Site, page):
    page.goto(site.url + "/page/one#top")
    wait_for_events(site, page, lambda ev: named(ev, "pageview"), "the first pageview")
    page.evaluate("location.hash = '#bottom'")
    events = sentinel(site, page)
    assert [e["path"] for e in named(events, "pageview")] == ["/page/one", "/page/sentinel"]


def test_excluded_paths_send_nothing(site: Site, page):
    site.options(exclude=["/page/private*"])
    page.goto(site.url + "/page/private-area")
    page.evaluate("fa.track('clicked', {on: 'private'})")
    page.evaluate("history.pushState({}, '', '/page/public')")
    wait_for_events(site, page, lambda ev: named(ev, "pageview"), "the public pageview")
    events = sentinel(site, page)
    assert [e["path"] for e in named(events, "pageview")] == ["/page/public", "/page/sentinel"]
    assert not any("private" in e["path"] for e in events)
    assert not any("private" in e["url"] for e in site.sent())


def test_a_prerendered_page_counts_once_it_is_shown(site: Site, page):
    # Chromium prerenders likely next pages (speculation rules, the address bar); a page
    # that is never shown is not a pageview. Prerendering is simulated here.
    page.add_init_script(
        """(() => {
        let prerendering = true;
        Object.defineProperty(Document.prototype, "prerendering", {get: () => prerendering});
        window.activate = () => {
            prerendering = false;
            document.dispatchEvent(new Event("prerenderingchange"));
        };
    })()"""
    )
    page.goto(site.url + "/page/one")
    events = wait_for_events(site, page, lambda ev: named(ev, "early"), "the page's first batch")
    assert not named(events, "pageview")
    page.evaluate("activate()")
    events = wait_for_events(site, page, lambda ev: named(ev, "pageview"), "the pageview")
    assert [e["path"] for e in named(events, "pageview")] == ["/page/one"]
