"""The collect endpoint's 202 answer, and the tracker's payloads for the cases of
partial acceptance (what one bad custom event looks like when the real tracker sends it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


def answer(
    accepted: int,
    dropped: dict[str, int] | None = None,
    rejected: Sequence[dict[str, Any]] = (),
    warnings: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The JSON body of a 202 (``stored`` is the v1 name of ``accepted``)."""
    return {
        "accepted": accepted,
        "stored": accepted,
        "dropped": dropped or {},
        "rejected": list(rejected),
        "warnings": list(warnings),
    }


@dataclass(frozen=True)
class TrackerCase:
    """One ``fa.track`` call the tracker sends as it is, and what becomes of it.

    ``event`` holds the fields the tracker puts in the event object besides url,
    event_id, hash_routing and screen_width; ``stored`` is None when the event is
    rejected (``message`` is then in its error), else the stored name, props and
    ``ab_variant`` (``message`` is then in each warning).
    """

    id: str
    js: str
    event: dict[str, Any]
    message: str
    stored: dict[str, Any] | None = None
    #: Warnings for the control event of the batch (the client field case sends the
    #: field with every event).
    control_warned: bool = False
    fields: dict[str, Any] = field(default_factory=dict)


#: The issue's cases: each batch held a pageview-like control event and this one, and
#: the server refused the whole batch. ``ab_variant`` is a String(16) client field.
TRACKER_CASES = (
    TrackerCase(
        "31 keys",
        'fa.track("signup", Object.fromEntries(Array.from({length: 31}, (_, i) => ["k" + i, i])))',
        {"name": "signup", "props": {f"k{i}": i for i in range(31)}},
        "events[1].props has more than 30 keys: kept the first 30",
        stored={"name": "signup", "props": {f"k{i}": i for i in range(30)}, "ab_variant": None},
    ),
    TrackerCase(
        "long key",
        'fa.track("signup", {["k".repeat(301)]: 1, plan: "pro"})',
        {"name": "signup", "props": {"k" * 301: 1, "plan": "pro"}},
        "is longer than 300 chars: left out",
        stored={"name": "signup", "props": {"plan": "pro"}, "ab_variant": None},
    ),
    TrackerCase(
        "newline in name",
        'fa.track("sign\\nup")',
        {"name": "sign\nup"},
        "events[1].name contains control characters",
    ),
    TrackerCase(
        "blank name",
        'fa.track("   ")',
        {"name": "   "},
        "events[1].name must not be empty",
    ),
    TrackerCase(
        "half an emoji",
        'fa.track("a" + "😀".repeat(60))',
        # The tracker's slice(0, 120) counts UTF-16 units: the 60th emoji is cut in half.
        {"name": "a" + "😀" * 59 + "\ud83d"},
        "events[1].name contains invalid unicode (lone surrogates): replaced by U+FFFD",
        stored={"name": "a" + "😀" * 59 + "\ufffd", "props": None, "ab_variant": None},
    ),
    TrackerCase(
        "NUL in a prop",
        'fa.track("signup", {a: "x\\u0000y"})',
        {"name": "signup", "props": {"a": "x\x00y"}},
        "events[1].props.a contains NUL characters: left out",
        stored={"name": "signup", "props": None, "ab_variant": None},
    ),
    TrackerCase(
        "client field too long",
        'fa.set({ab_variant: "x".repeat(40)}); fa.track("signup")',
        {"name": "signup", "ab_variant": "x" * 40},
        "ab_variant is longer than 16 characters: left out",
        stored={"name": "signup", "props": None, "ab_variant": None},
        control_warned=True,
        fields={"ab_variant": "x" * 40},
    ),
)
