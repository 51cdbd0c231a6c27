"""Filters: ``DIMENSION:OP:VALUE`` parsed into typed values, and their SQL conditions.

A filter on a *session* dimension keeps whole sessions (a session's value is its landing
event's, as the rollups define it: the first pageview, else the first event; entry and
exit pages are its first and last pageview's path). A filter on an *event* dimension
keeps the events that match and the sessions holding at least one of them. Filters
combine with AND. DESIGN.md "Definitions" (v2) has the whole rule; :mod:`.filtered`
applies it.

Matching is exact and case-sensitive on both databases:

- ``is`` / ``is_not``: equal to one of the alternatives (``is_not``: to none of them; an
  unknown value, NULL, is kept by ``is_not`` unless ``(none)`` is among the alternatives).
- ``contains``: holds one of the alternatives as a substring.
- ``matches``: equals one of the alternatives read as a glob where ``*`` stands for any
  characters (no other character is special).
- ``(none)`` as an alternative of ``is`` / ``is_not`` stands for the unknown value (no
  country, direct traffic...): what a breakdown's "Direct / None" or "Unknown" row holds.

VALUE holds alternatives separated by ``|``; ``\\|`` is a literal pipe and ``\\\\`` a
literal backslash.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa

from ..goals import PAGEVIEW, Goal

#: Operators, with the words the dashboard shows for them.
OPERATORS: Final[Mapping[str, str]] = {
    "is": "is",
    "is_not": "is not",
    "contains": "contains",
    "matches": "matches",
}
#: The alternative standing for an unknown value (NULL).
NONE_VALUE: Final = "(none)"
#: Limits of one request's filters.
MAX_FILTERS: Final = 20
MAX_ALTERNATIVES: Final = 50
MAX_VALUE_LENGTH: Final = 2000
#: A whole ``filter`` parameter: its value plus room for the dimension and operator.
MAX_FILTER_LENGTH: Final = MAX_VALUE_LENGTH + 100
MAX_PROP_KEY: Final = 64
PROP_PREFIX: Final = "prop:"

#: Session dimensions: filter name -> session column (landing attributes, entry/exit).
SESSION_DIMENSIONS: Final[Mapping[str, str]] = {
    "entry_page": "entry_path",
    "exit_page": "exit_path",
    "hostname": "hostname",
    "referrer": "referrer_host",
    "source": "source",
    "channel": "channel",
    "utm_source": "utm_source",
    "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign",
    "utm_term": "utm_term",
    "utm_content": "utm_content",
    "country": "country",
    "device_type": "device_type",
    "browser": "browser",
    "os": "os",
    "browser_version": "browser_version",
    "os_version": "os_version",
    "language": "language",
    "region": "region",
    "city": "city",
    "screen": "screen",
}
#: Built-in event dimensions: filter name -> event column. ``prop:KEY`` and the event
#: model's custom columns are event dimensions too.
EVENT_DIMENSIONS: Final[Mapping[str, str]] = {
    "page": "path",
    "event": "name",
    "endpoint": "endpoint",
}
#: Session dimensions read from an event's own column (:func:`event_condition`).
_OWN_COLUMN: Final[Mapping[str, str]] = {
    **SESSION_DIMENSIONS,
    "entry_page": "path",
    "exit_page": "path",
}
#: Dimension labels for the dashboard's filter menu and chips.
LABELS: Final[Mapping[str, str]] = {
    "page": "Page",
    "entry_page": "Entry page",
    "exit_page": "Exit page",
    "hostname": "Hostname",
    "referrer": "Referrer",
    "source": "Source",
    "channel": "Channel",
    "utm_source": "UTM source",
    "utm_medium": "UTM medium",
    "utm_campaign": "UTM campaign",
    "utm_term": "UTM term",
    "utm_content": "UTM content",
    "country": "Country",
    "device_type": "Device",
    "browser": "Browser",
    "os": "OS",
    "browser_version": "Browser version",
    "os_version": "OS version",
    "language": "Language",
    "region": "Region",
    "city": "City",
    "screen": "Screen size",
    "event": "Event",
    "endpoint": "Endpoint",
    "goal": "Goal",
}
#: The goal dimension: an event dimension whose values are goal names (``is``/``is_not``).
GOAL: Final = "goal"


class BadFilter(ValueError):
    """A ``filter`` parameter that cannot be used (its message says why)."""


@dataclass(frozen=True)
class Filter:
    """One filter: a dimension, an operator and one or more alternatives."""

    dimension: str
    op: str
    values: tuple[str, ...]

    @property
    def is_session(self) -> bool:
        return self.dimension in SESSION_DIMENSIONS

    @property
    def prop_key(self) -> str | None:
        """The property key of a ``prop:KEY`` filter, else None."""
        if self.dimension.startswith(PROP_PREFIX):
            return self.dimension[len(PROP_PREFIX) :]
        return None

    def param(self) -> str:
        """The ``filter`` parameter that parses back into this filter."""
        value = "|".join(v.replace("\\", "\\\\").replace("|", "\\|") for v in self.values)
        return f"{self.dimension}:{self.op}:{value}"

    @property
    def label(self) -> str:
        """ "Country is FR or DE", for chips and headings."""
        key = self.prop_key
        name = f"Property {key}" if key is not None else LABELS.get(self.dimension, self.dimension)
        return f"{name} {OPERATORS[self.op]} {' or '.join(self.values)}"


def split_values(text: str) -> tuple[str, ...]:
    """Alternatives of a VALUE: ``|`` separates, ``\\|`` and ``\\\\`` escape."""
    values: list[str] = []
    current: list[str] = []
    chars = iter(text)
    for char in chars:
        if char == "\\":
            following = next(chars, "")
            if following in ("|", "\\"):
                current.append(following)
            else:
                current.append(char + following)
        elif char == "|":
            values.append("".join(current))
            current = []
        else:
            current.append(char)
    values.append("".join(current))
    return tuple(values)


def _has_control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in text)


def _quote(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "...")


def parse_filter(text: str, custom: Iterable[str] = (), goals: Iterable[str] = ()) -> Filter:
    """One ``DIMENSION:OP:VALUE`` parameter (``custom``: the event model's custom columns;
    ``goals``: the goal names ``goal:is:NAME`` may use)."""
    if len(text) > MAX_FILTER_LENGTH:
        raise BadFilter(f"A filter is at most {MAX_FILTER_LENGTH} characters long.")
    if _has_control(text):
        raise BadFilter(f"The filter {_quote(text)} holds a control character.")
    rest = text
    if rest.startswith(PROP_PREFIX):
        key, sep, rest = rest[len(PROP_PREFIX) :].partition(":")
        if not sep or not key or len(key) > MAX_PROP_KEY:
            raise BadFilter(
                f"A property filter is prop:KEY:OP:VALUE (KEY up to {MAX_PROP_KEY} "
                f"characters), not {_quote(text)}."
            )
        dimension = PROP_PREFIX + key
    else:
        dimension, sep, rest = rest.partition(":")
        known = {*SESSION_DIMENSIONS, *EVENT_DIMENSIONS, *custom, GOAL}
        if not sep:
            raise BadFilter(
                f"A filter is DIMENSION:OP:VALUE (e.g. source:is:Google), not {_quote(text)}."
            )
        if dimension not in known:
            raise BadFilter(
                f"Unknown filter dimension {_quote(dimension)}; use one of "
                f"{', '.join(sorted(known))} or prop:KEY."
            )
    op, sep, value = rest.partition(":")
    if not sep or op not in OPERATORS:
        raise BadFilter(
            f"The filter {_quote(text)} needs an operator: one of {', '.join(OPERATORS)}."
        )
    values = split_values(value)
    if any(v == "" for v in values):
        raise BadFilter(
            f"The filter {_quote(text)} has an empty value; use {NONE_VALUE} for unknown."
        )
    if len(values) > MAX_ALTERNATIVES:
        raise BadFilter(f"A filter has at most {MAX_ALTERNATIVES} alternatives.")
    if op in ("contains", "matches") and NONE_VALUE in values:
        raise BadFilter(f"{NONE_VALUE} goes with is or is_not, not with {op}.")
    if dimension == GOAL:
        _check_goal_filter(op, values, goals)
    return Filter(dimension, op, tuple(dict.fromkeys(values)))


def _check_goal_filter(op: str, values: Sequence[str], goals: Iterable[str]) -> None:
    known = set(goals)
    if op not in ("is", "is_not"):
        raise BadFilter(f"A goal filter is goal:is:NAME or goal:is_not:NAME, not {op}.")
    unknown = [v for v in values if v not in known]
    if unknown:
        names = ", ".join(sorted(known)) if known else "none are declared"
        raise BadFilter(f"Unknown goal {_quote(unknown[0])} (goals: {names}).")


def parse_filters(
    texts: Sequence[str], custom: Iterable[str] = (), goals: Iterable[str] = ()
) -> tuple[Filter, ...]:
    """Every ``filter`` parameter of a request, in order, duplicates dropped."""
    if len(texts) > MAX_FILTERS:
        raise BadFilter(f"At most {MAX_FILTERS} filters at a time.")
    names, goal_names = tuple(custom), tuple(goals)
    return tuple(dict.fromkeys(parse_filter(text, names, goal_names) for text in texts))


def with_filter(filters: Sequence[Filter], added: Filter) -> tuple[Filter, ...]:
    """``filters`` plus ``added``, replacing any filter on the same dimension."""
    return (*(f for f in filters if f.dimension != added.dimension), added)


# -- SQL ---------------------------------------------------------------------------------


def _like_pattern(value: str, dialect: str, *, contains: bool) -> str:
    """A case-sensitive pattern: GLOB on SQLite, LIKE with ``\\`` escapes on PostgreSQL."""
    if dialect == "sqlite":
        escaped = "".join(f"[{c}]" if c in "?[" else c for c in value)
        if contains:
            escaped = "*" + escaped.replace("*", "[*]") + "*"
        return escaped
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%" if contains else escaped.replace("*", "%")


def _pattern_match(column: Any, pattern: str, dialect: str) -> sa.ColumnElement[bool]:
    if dialect == "sqlite":
        matched: sa.ColumnElement[bool] = column.op("GLOB", is_comparison=True)(pattern)
        return matched
    return sa.cast(column, sa.Text()).like(pattern, escape="\\")


def condition(item: Filter, column: Any, dialect: str) -> sa.ColumnElement[bool]:
    """The SQL test of ``item`` on ``column`` (true or false, never NULL)."""
    known = [v for v in item.values if v != NONE_VALUE]
    wants_null = NONE_VALUE in item.values
    if item.op in ("is", "is_not"):
        parts: list[sa.ColumnElement[bool]] = []
        if known:
            parts.append(sa.and_(column.is_not(None), column.in_(known)))
        if wants_null:
            parts.append(column.is_(None))
        hit = sa.or_(*parts) if len(parts) > 1 else parts[0]
        return sa.not_(hit) if item.op == "is_not" else hit
    contains = item.op == "contains"
    tests = [
        _pattern_match(column, _like_pattern(v, dialect, contains=contains), dialect) for v in known
    ]
    return sa.and_(column.is_not(None), sa.or_(*tests))


def prop_value(props: Any, key: str, dialect: str) -> Any:
    """Property ``key`` of a JSON ``props`` column, as text (NULL when absent): a string as
    it is, a number or boolean as its JSON text (``true``), on both databases."""
    if dialect != "sqlite":
        return props.op("->>")(sa.literal(key, sa.Text()))
    if key.isascii() and key.isprintable() and '"' not in key:
        path = '$."' + key.replace("\\", "\\\\") + '"'
        return _sqlite_text(sa.func.json_type(props, path), sa.func.json_extract(props, path))
    # A path is compared with a key as the stored JSON writes it (a non-ASCII key escaped)
    # and cannot name one holding a double quote: json_each decodes keys.
    item = sa.func.json_each(props).table_valued("key", "atom", "type", name="fa_prop")
    found = sa.select(_sqlite_text(item.c.type, item.c.atom)).where(item.c.key == key)
    return found.scalar_subquery()


def _sqlite_text(kind: Any, value: Any) -> Any:
    # json_extract gives a boolean as 1 or 0; PostgreSQL's ->> as true or false.
    return sa.case((kind.in_(("true", "false")), kind), else_=sa.cast(value, sa.Text()))


def goal_condition(goal: Goal, columns: Any, dialect: str) -> sa.ColumnElement[bool]:
    """The SQL test of an event row (``columns``: name, path, props) matching ``goal``."""
    if goal.event is not None:
        parts = [columns.name == goal.event]
    else:
        assert goal.page is not None
        page = Filter("page", "matches", (goal.page,))
        parts = [columns.name == PAGEVIEW, condition(page, columns.path, dialect)]
    for key, value in goal.props:
        parts.append(sa.func.coalesce(prop_value(columns.props, key, dialect) == value, False))
    return sa.and_(*parts)


def goals_condition(
    item: Filter, goals: Mapping[str, Goal], columns: Any, dialect: str
) -> sa.ColumnElement[bool]:
    """The SQL test of a ``goal:is:A|B`` (or ``is_not``) filter on an event row."""
    hit = sa.or_(*(goal_condition(goals[name], columns, dialect) for name in item.values))
    return sa.not_(hit) if item.op == "is_not" else hit


def event_condition(
    item: Filter, columns: Any, dialect: str, goals: Mapping[str, Goal]
) -> sa.ColumnElement[bool]:
    """``item`` tested on one event row's own columns: event dimensions, and session
    dimensions read from the event's own landing columns (entry and exit page: its
    path), which is how a scope limits reports of single events (realtime)."""
    if item.dimension == GOAL:
        return goals_condition(item, goals, columns, dialect)
    key = item.prop_key
    if key is not None:
        return condition(item, prop_value(columns.props, key, dialect), dialect)
    name = _OWN_COLUMN.get(item.dimension) or EVENT_DIMENSIONS.get(item.dimension, item.dimension)
    return condition(item, columns[name], dialect)
