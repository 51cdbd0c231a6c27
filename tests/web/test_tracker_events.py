"""Tracker in a real browser: links, downloads, forms, custom events, engagement, vitals."""

from __future__ import annotations

import json
import time

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

SECRETS = ("alice@example.com", "hunter2-s3cret", "shadowing-field", "s3cret")


def test_outbound_clicks_are_sent_before_the_page_goes(site: Site, page):
    page.route("https://example.com/**", lambda route: route.fulfill(body="<p>elsewhere</p>"))
    page.goto(site.url + "/page/one")
    with page.context.expect_page() as popup:
        page.click("#outbound", button="middle")  # opens a tab; this page stays
    popup.value.close()
    page.click("#outbound")  # navigates away at once
    page.wait_for_url("https://example.com/**")
    events = wait_for_events(
        site, page, lambda ev: len(named(ev, "outbound")) == 2, "two outbound events"
    )
    for event in named(events, "outbound"):
        assert event["path"] == "/page/one"
        # Neither the query string nor the fragment: they carry tokens.
        assert event["props"] == {"url": "https://example.com/landing"}


def test_downloads_by_extension_and_by_download_attribute(site: Site, page):
    page.goto(site.url + "/page/one")
    page.click("#download")
    with page.expect_download():
        page.click("#export")
    events = wait_for_events(site, page, lambda ev: len(named(ev, "download")) == 2, "downloads")
    assert sorted(e["props"]["url"] for e in named(events, "download")) == [
        site.url + "/files/export",
        site.url + "/files/report.pdf",
    ]


def test_form_submits_send_the_form_name_and_never_a_field_value(site: Site, page):
    seen: list[str] = []
    page.on(
        "request",
        lambda request: seen.append(request.post_data or "") if "collect" in request.url else None,
    )
    page.goto(site.url + "/page/one")
    page.click("#submit")  # posts the form to /thanks
    page.wait_for_url("**/thanks")
    events = wait_for_events(site, page, lambda ev: named(ev, "form_submit"), "the form event")
    [submit] = named(events, "form_submit")
    assert submit["path"] == "/page/one"
    assert submit["props"] == {"form": "signup"}
    events = sentinel(site, page)
    received = json.dumps(site.sent()) + "".join(seen)
    stored = json.dumps(events, default=str)
    for secret in SECRETS:
        assert secret not in received
        assert secret not in stored


def test_custom_events_keep_only_valid_props(site: Site, page):
    page.goto(site.url + "/page/one")
    page.evaluate(
        """() => {
        fa.track("signup", {plan: "pro", seats: 3, ratio: 0.5, trial: true,
                            missing: null, nested: {a: 1}, list: [1], nan: NaN,
                            long: "x".repeat(2001), fine: "y".repeat(2000),
                            // the server refuses numbers beyond 2**53 (with the batch)
                            edge: 2 ** 53, low: -(2 ** 53), big: 2 ** 53 + 2, huge: 1e300,
                            inf: -Infinity});
        fa.track("plain");
        fa.track();  // no name: nothing
        // A value JSON cannot carry is left out, like the others above; a throwing getter
        // drops the event: the host page never sees a throw.
        fa.track("bigint", {n: 10n, symbol: Symbol("s"), bare: Object.create(null), ok: 1});
        fa.track("trap", {get boom() { throw new Error("host getter") }});
    }"""
    )
    events = wait_for_events(
        site,
        page,
        lambda ev: named(ev, "signup") and named(ev, "plain") and named(ev, "bigint"),
        "custom events",
    )
    [signup] = named(events, "signup")
    assert signup["props"] == {
        "plan": "pro", "seats": 3, "ratio": 0.5, "trial": True, "fine": "y" * 2000,
        "edge": 2**53, "low": -(2**53),
    }  # fmt: skip
    assert signup["path"] == "/page/one"
    [plain] = named(events, "plain")
    assert plain["props"] is None
    [bigint] = named(events, "bigint")
    assert bigint["props"] == {"ok": 1}
    events = sentinel(site, page)
    assert {e["name"] for e in events} == {
        "pageview", "early", "signup", "plain", "bigint", "web_vitals",
    }  # fmt: skip


def test_engagement_and_scroll_depth_are_sent_on_leaving(site: Site, page):
    page.clock.install()
    started = time.monotonic()
    page.goto(site.url + "/tall")
    wait_for_events(site, page, lambda ev: named(ev, "pageview"), "the pageview")
    for position in ("document.body.scrollHeight", "0"):  # the deepest scroll counts
        # Resolves once the scroll event was dispatched (the tracker's listener first).
        page.evaluate(
            f"""() => new Promise(resolve => {{
                addEventListener("scroll", resolve, {{once: true}});
                scrollTo(0, {position});
            }})"""
        )
    page.clock.fast_forward(5000)  # five seconds of visible time
    page.goto(site.url + "/page/next")
    events = wait_for_events(site, page, lambda ev: named(ev, "engagement"), "engagement")
    [engagement] = named(events, "engagement")
    assert engagement["path"] == "/tall"
    assert engagement["scroll_depth"] == 100
    elapsed_ms = (time.monotonic() - started) * 1000
    assert 5000 <= engagement["engagement_ms"] <= 5000 + elapsed_ms


def test_single_page_app_navigation_reports_the_previous_page(site: Site, page):
    page.clock.install()
    page.goto(site.url + "/tall")
    wait_for_events(site, page, lambda ev: named(ev, "pageview"), "the pageview")
    page.clock.fast_forward(4000)
    page.evaluate("history.pushState({}, '', '/spa/next')")
    events = wait_for_events(site, page, lambda ev: named(ev, "engagement"), "engagement")
    [engagement] = named(events, "engagement")
    assert engagement["path"] == "/tall"
    assert engagement["engagement_ms"] >= 4000
    assert engagement["scroll_depth"] is not None


def test_a_glance_sends_no_engagement(site: Site, page):
    page.clock.install()
    page.clock.pause_at(time.time() + 60)  # no time passes on the page
    page.goto(site.url + "/page/one")
    page.goto(site.url + "/page/two")  # the first page's beacon carries its pageview
    page.clock.resume()
    events = sentinel(site, page)
    assert [e["path"] for e in named(events, "pageview")][:2] == ["/page/one", "/page/two"]
    assert not named(events, "engagement")


def test_web_vitals_are_sent_once_when_the_page_is_left(site: Site, page):
    page.goto(site.url + "/page/one")
    wait_for_events(site, page, lambda ev: named(ev, "pageview"), "the pageview")
    page.click("#work")  # a 120 ms click handler: the slowest interaction
    page.wait_for_function("document.getElementById('title').textContent == 'clicked'")
    page.goto(site.url + "/page/next")
    events = wait_for_events(site, page, lambda ev: named(ev, "web_vitals"), "web vitals")
    [vitals] = named(events, "web_vitals")
    assert vitals["path"] == "/page/one"
    props = vitals["props"]
    assert set(props) == {"lcp", "inp", "cls", "ttfb"}
    assert 0 < props["lcp"] < 15000
    assert 0 <= props["ttfb"] <= props["lcp"]
    assert props["inp"] >= 100
    assert props["cls"] == 0
    events = sentinel(site, page)
    assert len(named(events, "web_vitals")) == 2  # /page/one's and /page/next's, one each
