"""Tracker in a real browser: custom fields (``analytics_script(fields=...)``, ``fa.set``).

The host's event model has two custom columns, ``plan`` and ``ab_variant``; only
``ab_variant`` is declared in ``ANALYTICS_CLIENT_FIELDS``. The page sets both: the tracker
sends both, the endpoint stores only the declared one.
"""

from __future__ import annotations

import pytest

from .tracker_fixtures import (  # noqa: F401 (fixtures)
    Site,
    chromium_fixture,
    context_fixture,
    fields_site_fixture,
    named,
    page_fixture,
    sentinel,
    wait_for_events,
)

pytestmark = pytest.mark.browser


def one(events: list[dict], name: str) -> dict:
    [event] = named(events, name)
    return event


def test_fields_go_with_every_event_and_only_declared_columns_are_stored(fields_site: Site, page):
    site = fields_site
    site.options(fields={"ab_variant": "A", "plan": "enterprise"})
    page.goto(site.url + "/page/one")
    wait_for_events(site, page, lambda ev: named(ev, "pageview"), "the pageview")
    page.evaluate("fa.set({ab_variant: 'B', plan: 'pro'}); fa.track('after_set')")
    page.evaluate("fa.set({ab_variant: null}); fa.track('unset')")
    # Values the server could refuse unset the key instead (a 400 would lose the batch).
    page.evaluate("fa.set({ab_variant: {nested: 1}, plan: 10n}); fa.track('refused')")
    page.evaluate("fa.set({ab_variant: 'C'}); fa.track('again', {kept: 'yes', big: 10n})")
    names = {"pageview", "early", "after_set", "unset", "refused", "again"}
    events = wait_for_events(
        site, page, lambda ev: names <= {e["name"] for e in ev}, f"the events {sorted(names)}"
    )

    stored = {e["name"]: (e["ab_variant"], e["plan"]) for e in events}
    assert stored == {
        "pageview": ("A", None),  # plan is not client-settable: never stored
        "early": ("A", None),  # queued by the stub in <head>, sent with data-fields
        "after_set": ("B", None),
        "unset": (None, None),
        "refused": (None, None),
        "again": ("C", None),
    }
    assert one(events, "again")["props"] == {"kept": "yes"}  # props: the same filter
    assert one(events, "pageview")["screen_width"] == 1111  # the tracker's own fields too

    # The tracker did send plan (top-level, like ab_variant): the endpoint ignored it.
    sent = {e["name"]: e for e in site.sent()}
    assert sent["pageview"]["plan"] == "enterprise"
    assert sent["after_set"]["plan"] == "pro"
    assert "ab_variant" not in sent["unset"]
    assert "ab_variant" not in sent["refused"]
    assert "plan" not in sent["refused"]
    assert sent["again"]["ab_variant"] == "C"


def test_fields_follow_the_visitor_to_engagement_and_the_next_page(fields_site: Site, page):
    site = fields_site
    page.clock.install()
    site.options(fields={"ab_variant": "B"})
    page.goto(site.url + "/page/one")
    page.clock.fast_forward(5000)  # visible ≥ 3 s: the next navigation reports engagement
    page.evaluate("history.pushState({}, '', '/page/spa')")
    events = wait_for_events(
        site, page, lambda ev: named(ev, "engagement") and len(named(ev, "pageview")) == 2,
        "the engagement and the second pageview",
    )  # fmt: skip
    assert [e["path"] for e in named(events, "pageview")] == ["/page/one", "/page/spa"]
    for name in ("pageview", "engagement"):
        assert {e["ab_variant"] for e in named(events, name)} == {"B"}, name


def test_strict_mode_sends_no_fields_even_when_the_tag_has_them(fields_site: Site, page):
    site = fields_site
    site.options(mode="strict", fields={"ab_variant": "A"})

    def hand_written_fields(route):
        # analytics_script() writes no data-fields in strict mode; a hand-written tag may.
        response = route.fetch()
        html = response.text()
        assert 'data-mode="strict"' in html
        assert "data-fields" not in html
        html = html.replace(
            'data-mode="strict"', 'data-mode="strict" data-fields="{&#34;ab_variant&#34;:&#34;A&#34;}"'
        )  # fmt: skip
        route.fulfill(response=response, body=html)

    page.route("**/page/strict", hand_written_fields)
    page.goto(site.url + "/page/strict")
    tag_fields = page.evaluate("document.querySelector('script[data-api]').dataset.fields")
    assert tag_fields == '{"ab_variant":"A"}'
    page.evaluate("fa.set({ab_variant: 'B', plan: 'pro'}); fa.track('signup')")
    events = sentinel(site, page)
    strict = [e for e in site.sent() if "sentinel" not in e["url"]]
    assert {e["name"] for e in strict} == {"pageview", "early", "signup"}
    for event in strict:
        assert "ab_variant" not in event, event
        assert "plan" not in event, event
    assert all(e["ab_variant"] is None for e in events)
