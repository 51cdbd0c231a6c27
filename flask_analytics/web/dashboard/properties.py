"""The events page's Properties panel: the keys of the selected event (the one an
``event:is:NAME`` filter names) and one key's values, each a link adding ``prop:KEY:is:VALUE``.

The chosen key is the page's ``prop`` parameter, kept by its links; without one, or when
the event carries no such key in the period, the event's most common key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from ...reports import BadFilter, Breakdown, Row, Stats
from ...reports.breakdowns import check_prop_key, prop_breakdown
from ...reports.filters import NONE_VALUE
from .query import BadQuery, ViewQuery, quote_value

#: Keys the panel offers at most (those most events carry).
PANEL_KEYS: Final = 50


@dataclass(frozen=True)
class Properties:
    """What the panel shows: the event, its keys (key, events carrying it), the chosen
    key's breakdown and rows."""

    event: str
    keys: list[tuple[str, int]]
    #: How many keys the event's events carry in all (``keys`` holds the top ones).
    total: int
    breakdown: Breakdown | None = None
    rows: list[Row] = field(default_factory=list)

    @property
    def key(self) -> str | None:
        return None if self.breakdown is None else self.breakdown.where[0][1]


def parse_prop(args: Mapping[str, str]) -> str | None:
    """The ``prop`` parameter: a property key a filter can name (:class:`BadQuery` else)."""
    key = args.get("prop") or None
    if key is None:
        return None
    try:
        return check_prop_key(key)
    except BadFilter:
        raise BadQuery(
            f"prop must be a property key (at most 64 characters, no ':'), not {quote_value(key)}."
        ) from None


def selected_event(query: ViewQuery) -> str | None:
    """The one event name an ``event:is:NAME`` filter selects, else None."""
    for item in query.filters:
        if item.dimension == "event" and item.op == "is" and len(item.values) == 1:
            name = item.values[0]
            return None if name == NONE_VALUE else name
    return None


def _nameable(key: str) -> bool:
    try:
        check_prop_key(key)
    except BadFilter:
        return False
    return True


def properties(stats: Stats, query: ViewQuery, limit: int, wanted: str | None) -> Properties | None:
    """The panel of ``query``'s selected event (None without one): its keys that a
    filter can name, and the values of ``wanted`` (or of its most common key)."""
    event = selected_event(query)
    if event is None:
        return None
    found, total = stats.prop_keys(query.range, event=event, limit=PANEL_KEYS)
    keys = [(key, n) for key, n in found if _nameable(key)]
    names = [key for key, _ in keys]
    chosen = wanted if wanted in names else (names[0] if names else None)
    if chosen is None:
        return Properties(event, keys, total)
    breakdown = prop_breakdown(chosen)
    rows = stats.breakdown(breakdown, query.range, limit=limit)
    return Properties(event, keys, total, breakdown, rows)
