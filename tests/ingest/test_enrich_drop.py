"""An ``@analytics.enrich`` hook drops an event by raising ``DropEvent``: not stored,
counted under its reason in the collect answer, sent as ``signals.event_dropped``."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from flask_analytics import DropEvent, signals

from ..conftest import DESKTOP_UA, collect_payload


def stored_paths(app):
    ext = app.extensions["analytics_test"]
    with app.app_context():
        return sorted(ext.db.session.scalars(sa.select(ext.Event.path)))


def test_a_hook_drops_events_from_collect_and_track(app, analytics):
    calls = []

    @analytics.enrich
    def drop_internal(event, request):
        calls.append(("first", event["path"]))
        if event["path"].startswith("/internal"):
            raise DropEvent("internal")
        if event["path"] == "/plain":
            raise DropEvent()

    @analytics.enrich
    def mark(event, request):
        calls.append(("second", event["path"]))

    dropped = []

    def on_dropped(sender, event, reason):
        dropped.append((sender, reason, event["path"]))

    paths = ["/a", "/internal/1", "/b", "/internal/2", "/plain"]
    batch = [collect_payload(url=f"http://localhost{p}") for p in paths]
    client = app.test_client()
    with signals.event_dropped.connected_to(on_dropped, sender=app):
        answer = client.post("/_analytics/collect", json=batch, headers={"User-Agent": DESKTOP_UA})
        with app.app_context():
            kept = analytics.track("signup", url="https://example.com/welcome")
            gone = analytics.track("signup", url="https://example.com/internal/x")

    assert answer.status_code == 202
    body = answer.get_json()
    assert body["accepted"] == 2
    assert body["dropped"] == {"internal": 2, "excluded": 1}
    assert answer.headers["X-Analytics-Dropped"] == "excluded,internal"
    assert kept is not None
    assert gone is None
    assert stored_paths(app) == ["/a", "/b", "/welcome"]
    expected = [(app, "internal", p) for p in ["/internal/1", "/internal/2", "/internal/x"]]
    assert sorted(dropped) == sorted([*expected, (app, "excluded", "/plain")])
    # The hooks after the one that dropped the event did not run for it.
    assert [p for hook, p in calls if hook == "second"] == ["/a", "/b", "/welcome"]
    drops = analytics.state(app).drops
    assert (drops["internal"], drops["excluded"]) == (3, 1)


@pytest.mark.parametrize("reason", ["", "Staff", "two words", "a,b", "x" * 33, "1st", None])
def test_reasons_must_be_short_names(reason):
    with pytest.raises(ValueError, match="DropEvent reason"):
        DropEvent(reason)


def test_a_hook_that_drops_everything_answers_202_with_nothing_stored(app, analytics):
    @analytics.enrich
    def drop_all(event, request):
        raise DropEvent("staff")

    answer = app.test_client().post(
        "/_analytics/collect",
        json=[collect_payload(), collect_payload(name="signup")],
        headers={"User-Agent": DESKTOP_UA},
    )
    assert answer.status_code == 202
    assert answer.get_json()["dropped"] == {"staff": 2}
    assert answer.get_json()["accepted"] == 0
    assert stored_paths(app) == []
