"""Event properties (the ``props`` JSON column): the rows of a ``prop:KEY`` breakdown and
the keys the events of a range carry.

Both are read from kept events with their ``props`` column
(:meth:`.filtered.FilteredEvents.prop_events`), which no other question reads. A value is
the property as text (:func:`.filters.prop_value`: a string as is, a number or boolean as
its JSON text), the same text a ``prop:KEY`` filter compares; events without the key
have the value NULL, shown as ``(none)`` and filtered with ``prop:KEY:is:(none)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa

from ..core.rollups import PAGEVIEW, total
from .filters import prop_value

if TYPE_CHECKING:
    from .filtered import FilteredEvents
    from .ranges import DateRange

#: The virtual daily table of one property's values: ``day``, ``prop`` (the key),
#: ``value``, ``visitors``, ``pageviews``, ``events`` (other events), a row per day and value.
PROP_TABLE: Final = "DailyProp"


def values_select(events: Any, key: str, dialect: str) -> sa.Select[Any]:
    """Rows of :data:`PROP_TABLE` for property ``key`` from ``events`` (day, visitor_id,
    name, props). Visitors are distinct per day and value, counted in two hashed steps
    (per value and visitor, then per value) like the other virtual tables."""
    e = events.c
    is_pv = sa.case((e.name == PAGEVIEW, 1), else_=0)
    valued = sa.select(
        e.day, e.visitor_id, prop_value(e.props, key, dialect).label("value"), is_pv.label("pv")
    ).subquery("fa_prop_values")
    v = valued.c
    per_visitor = (
        sa.select(v.day, v.value, total(v.pv).label("pageviews"), sa.func.count().label("n"))
        .group_by(v.day, v.value, v.visitor_id)
        .subquery("fa_prop_visitors")
    )
    p = per_visitor.c
    return sa.select(
        p.day,
        sa.literal(key, sa.String()).label("prop"),
        p.value,
        sa.func.count().label("visitors"),
        total(p.pageviews).label("pageviews"),
        total(p.n - p.pageviews).label("events"),
    ).group_by(p.day, p.value)


def keys_select(events: Any, dialect: str, event: str | None = None) -> sa.Select[Any]:
    """Each property key of ``events`` (day, visitor_id, name, props) with how many of them
    carry it, of events named ``event`` only when given: ``json_each`` on SQLite,
    ``json_object_keys`` on PostgreSQL (props that are not a JSON object have no keys)."""
    e = events.c
    if dialect == "sqlite":
        props = sa.case((sa.func.json_type(e.props) == "object", e.props))
        keys: Any = sa.func.json_each(props).table_valued("key", name="fa_keys")
    else:
        props = sa.case((sa.func.json_typeof(e.props) == "object", e.props))
        keys = sa.func.json_object_keys(props).table_valued("key", name="fa_keys")
        keys = keys.render_derived()
    query = (
        sa.select(keys.c.key, sa.func.count().label("events"))
        .select_from(events)
        .join(keys, sa.true())
        .group_by(keys.c.key)
    )
    if event is not None:
        query = query.where(e.name == event)
    return query


class PropQuestions:
    """The questions :class:`.stats.Stats` answers about event properties (its base):
    read from raw events, so they need the raw events of the range."""

    raw: bool
    filtered: FilteredEvents

    def check_raw(self, rng: DateRange, subject: str = "Filtered reports") -> None:
        raise NotImplementedError  # Stats.check_raw

    def check_props(self, table: str, rng: DateRange) -> None:
        """Raise ``RawDataMissing`` when ``table`` is :data:`PROP_TABLE` (a ``prop:KEY``
        breakdown) and ``rng`` reaches days whose raw events are gone."""
        if table == PROP_TABLE:
            self.check_raw(rng, "Filtered reports" if self.raw else "Event properties")

    def prop_keys(
        self, rng: DateRange, *, event: str | None = None, limit: int | None = 50
    ) -> tuple[list[tuple[str, int]], int]:
        """Event property keys of ``rng`` (of events named ``event`` only, when given),
        each with how many events carry it, most first (then by key), at most ``limit``;
        and how many keys there are. Read from raw events, honouring the filters."""
        self.check_raw(rng, "Event properties")
        counted = sorted(self.filtered.prop_keys(rng, event).items(), key=lambda i: (-i[1], i[0]))
        return (counted if limit is None else counted[:limit]), len(counted)
