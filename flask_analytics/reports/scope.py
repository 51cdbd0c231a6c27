"""Scopes: the part of the traffic one viewer may see (a customer's hostnames, paths...).

``@analytics.dashboard_access`` may return a :class:`Scope` instead of True; share links
and API tokens may carry one. A scope is a set of filters ANDed into every question the
request asks, before the request's own filters:

- ``hostnames``: ``hostname:is:A|B`` (a session dimension; a visitor's id is keyed on the
  hostname, so a visit never spans two hostnames and the filter is exact);
- ``path_prefixes``: the events whose path starts with one of them, in the visits that
  enter *and* leave on such a path (``page``, ``entry_page`` and ``exit_page`` all match
  ``PREFIX*``), so no page outside the prefixes shows up as an entry or exit page;
- ``filters``: any filters in the ``DIMENSION:OP:VALUE`` syntax (:mod:`.filters`).

An empty list matches nothing (``Scope(hostnames=[])`` shows no traffic), so a customer
without sites sees zeros, never everything. A scoped question reads raw events (the
daily tables hold no hostname), so its numbers follow the filter definitions exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from .filters import GOAL, NONE_VALUE, BadFilter, Filter, parse_filters, split_values

#: The filters that match nothing (an empty list in a scope).
_NOTHING: Final = (
    Filter("hostname", "is", (NONE_VALUE,)),
    Filter("hostname", "is_not", (NONE_VALUE,)),
)


@dataclass(frozen=True)
class Scope:
    """What a viewer may see: hostnames, path prefixes and filters, all ANDed (None: no
    limit on that part; an empty list: nothing)."""

    hostnames: Sequence[str] | None = None
    path_prefixes: Sequence[str] | None = None
    filters: Sequence[str] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for name in ("hostnames", "path_prefixes"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise TypeError(f"Scope({name}=...) takes a list of strings, not one string.")
            if value is not None:
                object.__setattr__(self, name, tuple(str(v) for v in value))
        if isinstance(self.filters, str):
            raise TypeError("Scope(filters=...) takes a list of filter strings.")
        object.__setattr__(self, "filters", tuple(self.filters))
        if self.hostnames is not None:
            object.__setattr__(
                self, "hostnames", tuple(h.strip().lower().rstrip(".") for h in self.hostnames)
            )
            if any(not h for h in self.hostnames):
                raise ValueError("Scope hostnames must not be empty strings.")
        for prefix in self.path_prefixes or ():
            if not prefix.startswith("/") or "*" in prefix:
                raise ValueError(
                    f"A scope's path prefix starts with '/' and holds no '*', not {prefix!r}."
                )
        parse_filters(list(self.filters), _any_column(self.filters), _any_goal(self.filters))

    def as_filters(
        self, custom: Iterable[str] = (), goals: Iterable[str] = ()
    ) -> tuple[Filter, ...]:
        """The scope as filters (``custom``: the event model's custom columns, ``goals``:
        the app's goal names); raises :class:`.BadFilter` for a filter the app cannot use."""
        result: list[Filter] = []
        if self.hostnames is not None:
            if not self.hostnames:
                return _NOTHING
            result.append(Filter("hostname", "is", tuple(dict.fromkeys(self.hostnames))))
        if self.path_prefixes is not None:
            if not self.path_prefixes:
                return _NOTHING
            globs = tuple(dict.fromkeys(p + "*" for p in self.path_prefixes))
            result.extend(Filter(d, "matches", globs) for d in ("page", "entry_page", "exit_page"))
        result.extend(parse_filters(list(self.filters), custom, goals))
        return tuple(dict.fromkeys(result))

    def to_json(self) -> str:
        """The scope as JSON (stored with share links and API tokens)."""
        data: dict[str, Any] = {"filters": list(self.filters)}
        if self.hostnames is not None:
            data["hostnames"] = list(self.hostnames)
        if self.path_prefixes is not None:
            data["path_prefixes"] = list(self.path_prefixes)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Scope:
        """The scope :meth:`to_json` wrote."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("A scope is a JSON object.")
        return cls(
            hostnames=data.get("hostnames"),
            path_prefixes=data.get("path_prefixes"),
            filters=data.get("filters") or (),
        )

    def describe(self) -> str:
        """One line for listings: ``hostnames=a.com paths=/shop filters=source:is:Google``."""
        parts = []
        if self.hostnames is not None:
            parts.append("hostnames=" + (",".join(self.hostnames) or "(nothing)"))
        if self.path_prefixes is not None:
            parts.append("paths=" + (",".join(self.path_prefixes) or "(nothing)"))
        if self.filters:
            parts.append("filters=" + " ".join(self.filters))
        return " ".join(parts) or "everything"


def _any_column(texts: Sequence[str]) -> list[str]:
    # At construction the app (its custom columns and goals) is unknown: accept any
    # dimension name there; the app checks it again in ``as_filters``.
    return [t.partition(":")[0] for t in texts]


def _any_goal(texts: Sequence[str]) -> list[str]:
    prefix = GOAL + ":"
    return [
        name
        for t in texts
        if t.startswith(prefix) and t.count(":") >= 2
        for name in split_values(t.split(":", 2)[2])
    ]


__all__ = ["BadFilter", "Scope"]
