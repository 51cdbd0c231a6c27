"""Goals and funnels as the host declares them (``analytics.goal``, ``analytics.funnel``,
``ANALYTICS_GOALS``, ``ANALYTICS_FUNNELS``): validated definitions, no SQL.

A goal matches an event: either a custom event by name (``event="signup"``) or a pageview
whose path matches a glob (``page="/pricing*"``, ``*`` standing for any characters), and
in both cases, optionally, property values (``props={"plan": "pro"}``, compared as text).
A funnel is 2 to 8 goal names, in order. The SQL of a goal lives in
:mod:`flask_analytics.reports.filters`; what goals and funnels count is in DESIGN.md
("Goals", "Funnels").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

#: Name of pageview events (a page goal matches them; an event goal cannot name them).
PAGEVIEW: Final = "pageview"
MAX_NAME: Final = 120
MAX_PROPS: Final = 10
MIN_STEPS: Final = 2
MAX_STEPS: Final = 8


class GoalError(ValueError):
    """A goal or funnel declaration that cannot be used (its message says why)."""


@dataclass(frozen=True)
class Goal:
    """One goal: a custom event name or a page glob, plus property values."""

    name: str
    event: str | None = None
    page: str | None = None
    props: tuple[tuple[str, str], ...] = ()

    @property
    def description(self) -> str:
        """What the goal matches, in words: "event signup (plan = pro)"."""
        what = f"event {self.event}" if self.event is not None else f"visit {self.page}"
        if self.props:
            what += " (" + ", ".join(f"{k} = {v}" for k, v in self.props) + ")"
        return what


@dataclass(frozen=True)
class Funnel:
    """One funnel: goal names in order."""

    name: str
    steps: tuple[str, ...] = field(default=())


def _name(kind: str, name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise GoalError(f"A {kind} name is a non-empty string of at most {MAX_NAME} characters.")
    if any(ord(c) < 32 or c in "|\\" for c in name):
        raise GoalError(f"The {kind} name {name!r} holds a control character, | or \\.")
    return name


def make_goal(
    name: Any,
    *,
    event: Any = None,
    page: Any = None,
    props: Mapping[str, Any] | None = None,
) -> Goal:
    """A validated :class:`Goal` (exactly one of ``event`` and ``page``)."""
    name = _name("goal", name)
    if (event is None) == (page is None):
        raise GoalError(f"Goal {name!r} needs exactly one of event= and page=.")
    if event is not None and (not isinstance(event, str) or not event or event == PAGEVIEW):
        raise GoalError(f"Goal {name!r}: event= is a custom event name (for pageviews use page=).")
    if page is not None and (not isinstance(page, str) or not page.startswith("/")):
        raise GoalError(f"Goal {name!r}: page= is a path glob starting with /, like /blog/*.")
    pairs: list[tuple[str, str]] = []
    if props is not None:
        if not isinstance(props, Mapping) or len(props) > MAX_PROPS:
            raise GoalError(f"Goal {name!r}: props= is a mapping of at most {MAX_PROPS} keys.")
        for key, value in props.items():
            if not isinstance(key, str) or not key or isinstance(value, bool):
                raise GoalError(f"Goal {name!r}: props keys are strings.")
            if not isinstance(value, str | int):
                raise GoalError(
                    f"Goal {name!r}: the value of prop {key!r} is a string or an integer."
                )
            pairs.append((key, str(value)))
    return Goal(name, event, page, tuple(sorted(pairs)))


def make_funnel(name: Any, steps: Any, goals: Iterable[str] | None = None) -> Funnel:
    """A validated :class:`Funnel`; with ``goals``, its steps must be among them."""
    name = _name("funnel", name)
    if (
        not isinstance(steps, Sequence)
        or isinstance(steps, str)
        or not all(isinstance(s, str) for s in steps)
        or not MIN_STEPS <= len(steps) <= MAX_STEPS
    ):
        raise GoalError(
            f"Funnel {name!r}: steps= is a list of {MIN_STEPS} to {MAX_STEPS} goal names."
        )
    if goals is not None:
        known = set(goals)
        unknown = [s for s in steps if s not in known]
        if unknown:
            raise GoalError(f"Funnel {name!r}: {', '.join(map(repr, unknown))} is not a goal.")
    return Funnel(name, tuple(steps))


def goals_from_config(key: str, value: Any) -> tuple[Goal, ...]:
    """``ANALYTICS_GOALS``: a list of mappings with the keywords of ``analytics.goal``."""
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise GoalError(f"{key} is a list of goals like {{'name': 'Signup', 'event': 'signup'}}.")
    goals = []
    for item in value:
        if not isinstance(item, Mapping) or set(item) - {"name", "event", "page", "props"}:
            raise GoalError(f"{key}: {item!r} is not a goal (keys: name, event, page, props).")
        goals.append(
            make_goal(
                item.get("name"), event=item.get("event"), page=item.get("page"),
                props=item.get("props"),
            )
        )  # fmt: skip
    return tuple(goals)


def funnels_from_config(key: str, value: Any) -> tuple[Funnel, ...]:
    """``ANALYTICS_FUNNELS``: a list of mappings ``{"name": ..., "steps": [...]}``."""
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise GoalError(f"{key} is a list of funnels like {{'name': ..., 'steps': [...]}}.")
    funnels = []
    for item in value:
        if not isinstance(item, Mapping) or set(item) != {"name", "steps"}:
            raise GoalError(f"{key}: {item!r} is not a funnel (keys: name, steps).")
        funnels.append(make_funnel(item["name"], item["steps"]))
    return tuple(funnels)


def merged_goals(declared: Iterable[Goal], configured: Iterable[Goal]) -> dict[str, Goal]:
    """Goals by name, declared ones first; a name given twice, differently, is an error."""
    result: dict[str, Goal] = {}
    for goal in (*declared, *configured):
        if goal.name in result and result[goal.name] != goal:
            raise GoalError(f"Goal {goal.name!r} is declared twice, differently.")
        result[goal.name] = goal
    return result


def merged_funnels(
    declared: Iterable[Funnel], configured: Iterable[Funnel], goals: Mapping[str, Goal]
) -> dict[str, Funnel]:
    """Funnels by name, declared ones first, each step one of ``goals``."""
    result: dict[str, Funnel] = {}
    for funnel in (*declared, *configured):
        if funnel.name in result and result[funnel.name] != funnel:
            raise GoalError(f"Funnel {funnel.name!r} is declared twice, differently.")
        result[funnel.name] = make_funnel(funnel.name, list(funnel.steps), goals)
    return result
