"""A pytest plugin for host apps' test suites: what the app tracked during a test.

Enable it in your top-level ``conftest.py``::

    pytest_plugins = ["flask_analytics.testing"]

then::

    def test_signup_is_tracked(client, analytics_events):
        client.post("/signup", data={"plan": "pro"})
        analytics_events.assert_tracked("signup", props={"plan": "pro"})

``analytics_events`` listens to ``signals.event_recorded``: it holds every event any app
stored during the test (tracker, ``track()``, server pageviews, ``track_model``), as the
rows the pipeline wrote, and its checks read them from memory, never from the database.
Dropped events (bots, Do Not Track, exclusions, duplicates) are not there.

:func:`aggregate` runs a day's aggregation inline, for tests that read the dashboard's
numbers or the daily tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from flask import Flask

from . import signals
from .lifecycle.aggregate import AggregationResult, aggregate_day
from .state import current_state

__all__ = ["TrackedEvents", "aggregate", "analytics_events"]


class TrackedEvents:
    """The events stored while a test ran, oldest first (each a dict of its columns)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def _record(self, _sender: Any, *, event: Mapping[str, Any], **_extra: Any) -> None:
        self.events.append(dict(event))

    def __len__(self) -> int:
        return len(self.events)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.events)

    def named(self, name: str) -> list[dict[str, Any]]:
        """The events called ``name``."""
        return [e for e in self.events if e["name"] == name]

    def matching(
        self, name: str, props: Mapping[str, Any] | None = None, **fields: Any
    ) -> list[dict[str, Any]]:
        """Events called ``name`` whose props hold ``props`` (other props may be there too)
        and whose columns equal ``fields`` (``path="/signup"``, ``revenue_amount=...``)."""
        found = []
        for event in self.named(name):
            own = event.get("props") or {}
            if props is not None and any(
                key not in own or own[key] != value for key, value in props.items()
            ):
                continue
            if any(event.get(key) != value for key, value in fields.items()):
                continue
            found.append(event)
        return found

    def assert_tracked(
        self,
        name: str,
        props: Mapping[str, Any] | None = None,
        *,
        count: int | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Fail unless an event ``name`` matching ``props`` and ``fields`` was stored
        (exactly ``count`` of them when given); returns the last one."""
        __tracebackhide__ = True
        found = self.matching(name, props, **fields)
        wanted = f"{name!r}" + (f" with props {dict(props)!r}" if props else "")
        if fields:
            wanted += f" and {fields!r}"
        if not found or (count is not None and len(found) != count):
            seen = [(e["name"], e.get("props")) for e in self.events] or "none"
            times = "" if count is None else f" {count} time(s), found {len(found)}"
            pytest.fail(f"expected {wanted} to be tracked{times}; tracked: {seen}")
        return found[-1]

    def assert_not_tracked(self, name: str, props: Mapping[str, Any] | None = None) -> None:
        """Fail if an event ``name`` (matching ``props``) was stored."""
        __tracebackhide__ = True
        found = self.matching(name, props)
        if found:
            pytest.fail(f"expected no {name!r} event, found {len(found)}: {found}")

    def clear(self) -> None:
        """Forget the events recorded so far."""
        self.events.clear()


@pytest.fixture
def analytics_events() -> Iterator[TrackedEvents]:
    """The events the app stores during the test (see :class:`TrackedEvents`)."""
    recorder = TrackedEvents()
    signals.event_recorded.connect(recorder._record)
    try:
        yield recorder
    finally:
        signals.event_recorded.disconnect(recorder._record)


def aggregate(app: Flask, day: dt.date | None = None) -> AggregationResult:
    """Aggregate local ``day`` (default: today in ``ANALYTICS_TIMEZONE``) of ``app``
    inline, as ``flask analytics aggregate`` does; idempotent."""
    state = current_state(app)
    with app.app_context():
        return aggregate_day(state, day if day is not None else state.today())
