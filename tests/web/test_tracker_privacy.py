"""Tracker in a real browser: sampling, DNT/GPC, automation, privacy modes, no throws."""

from __future__ import annotations

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

#: What strict mode may send: the event, its page and referrer, and transport fields.
STRICT_FIELDS = {"name", "url", "referrer", "event_id", "offset_ms"}


def browse(page, site: Site) -> None:
    """Everything a visitor does that the tracker would report."""
    page.goto(site.url + "/page/one")
    page.evaluate("fa.track('signup', {plan: 'pro'})")
    page.evaluate("history.pushState({}, '', '/spa/two')")
    page.click("#download")


def only_sentinel(site: Site, page, **options) -> None:
    events = sentinel(site, page, **options)
    assert {e["path"] for e in events} == {"/page/sentinel"}
    assert {e["url"].split("/", 3)[3] for e in site.sent()} == {"page/sentinel"}


def test_sample_rate_zero_sends_nothing(site: Site, page):
    site.options(sample_rate=0)
    browse(page, site)  # fa.track works (does nothing) even when the page is not sampled
    only_sentinel(site, page)


@pytest.mark.parametrize(
    "signal",
    [
        "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})",
        "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})",
    ],
    ids=["dnt", "gpc"],
)
def test_do_not_track_and_global_privacy_control_are_honoured(site: Site, page, signal):
    page.add_init_script(signal)
    site.options()  # respect_dnt defaults to ANALYTICS_RESPECT_DNT (True)
    browse(page, site)
    only_sentinel(site, page, respect_dnt=False)


def test_respect_dnt_false_tracks_despite_the_signal(site: Site, page):
    page.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})"
    )
    site.options(respect_dnt=False)
    page.goto(site.url + "/page/one")
    wait_for_events(site, page, lambda ev: named(ev, "pageview"), "the pageview")


def test_webdriver_browsers_are_not_tracked_unless_allowed(site: Site, page):
    assert page.evaluate("navigator.webdriver") is True  # Playwright's chromium
    site.app.config["TRACKER_OPTIONS"] = {}  # allow_automation not given
    browse(page, site)
    only_sentinel(site, page)


def test_strict_mode_sends_only_name_url_referrer_and_stores_nothing(site: Site, page):
    page.clock.install()
    site.options(mode="strict")
    page.goto(site.url + "/tall", referer="https://news.example.org/")
    page.evaluate("fa.track('signup', {plan: 'pro'})")
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.clock.fast_forward(5000)  # would be an engagement in the other modes
    page.evaluate("history.pushState({}, '', '/spa/two')")
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0
    assert page.evaluate("document.cookie") == ""
    events = sentinel(site, page)
    strict = [e for e in site.sent() if "sentinel" not in e["url"]]
    assert {e["name"] for e in strict} == {"pageview", "signup"}
    for event in strict:
        assert set(event) <= STRICT_FIELDS, event
    stored = [e for e in events if e["path"] != "/page/sentinel"]
    assert [e["referrer_host"] for e in named(stored, "pageview")] == ["news.example.org", None]
    assert all(e["props"] is None and e["screen_width"] is None for e in stored)
    assert page.context.cookies() == []


def test_balanced_mode_stores_nothing_even_when_sending_fails(site: Site, page):
    failures: list[str] = []

    def abort(route):
        failures.append(route.request.url)
        route.abort()

    page.route("**/_analytics/collect", abort)
    page.goto(site.url + "/page/one")
    page.evaluate("fa.track('signup', {plan: 'pro'})")
    pump_until(page, lambda: failures, "a failed send")
    page.goto(site.url + "/page/two")  # the unload beacon fails as well
    pump_until(page, lambda: len(failures) >= 2, "a second failed send")
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0
    assert page.evaluate("document.cookie") == ""
    assert page.context.cookies() == []


def test_a_broken_collect_url_never_throws_into_the_page(site: Site, page):
    # An invalid URL makes sendBeacon throw synchronously; the page fixture fails the test
    # on any uncaught error.
    site.options(collect_url="http://[::1")
    page.goto(site.url + "/page/one")
    page.evaluate("fa.track('signup', {plan: 'pro'})")
    page.goto(site.url + "/page/two")  # unload: sendBeacon with the broken URL
    page.evaluate("history.pushState({}, '', '/spa/three')")
    only_sentinel(site, page)
