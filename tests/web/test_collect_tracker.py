"""The partial-acceptance cases through the real tracker in chromium (SQLite).

Each case's ``fa.track`` call is made after a control event, two events per batch, so
each batch holds one good and one bad event: the good one must be stored, and what the
tracker sent for the bad one must be the payload tests/web/test_collect_partial.py
posts on both databases and both write paths.
"""

from __future__ import annotations

import pytest

from ..support.collect import TRACKER_CASES
from .tracker_fixtures import (  # noqa: F401 (fixtures)
    Site,
    chromium_fixture,
    context_fixture,
    fields_site_fixture,
    page_fixture,
    wait_for_events,
)

pytestmark = pytest.mark.browser

SENT_KEYS = ("name", "props", "ab_variant")


def test_one_bad_event_from_the_tracker_never_costs_the_good_one(fields_site: Site, page):
    fields_site.options(batch_size=2, batch_timeout_ms=60_000)
    page.goto(fields_site.url + "/page/one")  # its pageview and "early": one batch
    wait_for_events(fields_site, page, lambda ev: any(e["name"] == "early" for e in ev), "early")
    for i, case in enumerate(TRACKER_CASES):
        page.evaluate(f'() => {{ fa.track("control-{i}"); {case.js}; }}')
        wait_for_events(
            fields_site,
            page,
            lambda ev, i=i: any(e["name"] == f"control-{i}" for e in ev),
            f"control-{i}",
        )
    batches = {
        body[0]["name"]: body
        for _, body in fields_site.recorder.bodies
        if isinstance(body, list) and body and isinstance(body[0], dict)
    }
    stored = fields_site.events()
    stored_ids = {e["event_id"] for e in stored}
    for i, case in enumerate(TRACKER_CASES):
        control, bad = batches[f"control-{i}"]
        assert control["event_id"] in stored_ids, case.id
        # The payload test_collect_partial.py posts is the one the tracker sent.
        assert {k: bad.get(k) for k in case.event} == case.event, case.id
        rows = [e for e in stored if e["event_id"] == bad["event_id"]]
        if case.stored is None:
            assert rows == [], case.id
        else:
            [row] = rows
            assert {k: row[k] for k in case.stored} == case.stored, case.id
