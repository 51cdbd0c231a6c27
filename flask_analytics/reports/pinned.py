"""Filtered questions that a keyed daily table answers exactly, without raw events.

A host column keying a daily table (``daily_models=``, see :mod:`..core.keyed`) is an
event dimension: ``filter=plan:is:pro`` keeps the events whose plan is ``pro`` and the
visits holding one. When every filter of a question pins one host column of the table
to one value, and every host column of the table is pinned, the table's rows with those
values hold the filtered numbers: the additive counts as they are, the distinct ones
(visitors, entries, exits) in their ``value_`` twins. Anything else (two values, another
operator, another dimension, a column left free, whose rows would share visitors) goes
to the raw path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..models import KEYED_TABLES, VALUE_PREFIX
from .filters import NONE_VALUE, Filter

if TYPE_CHECKING:
    from ..models import Models


@dataclass(frozen=True)
class Pinned:
    """The rows of a keyed table that answer a filtered question."""

    #: Host column -> the one value the filters pin it to (None: unknown).
    equals: dict[str, str | None]
    #: The counts read from their ``value_`` twin.
    exact: frozenset[str]

    def column(self, count: str) -> str:
        """The table column holding ``count`` for the pinned rows."""
        return VALUE_PREFIX + count if count in self.exact else count


def pinned_rows(models: Models, table: str, filters: Sequence[Filter]) -> Pinned | None:
    """How keyed daily table ``table`` answers ``filters`` exactly, or None."""
    columns = models.keyed.get(table)
    if not columns or not filters:
        return None
    equals: dict[str, str | None] = {}
    for item in filters:
        if item.dimension not in columns or item.op != "is" or len(item.values) != 1:
            return None
        value = item.values[0]
        equals[item.dimension] = None if value == NONE_VALUE else value
    if set(equals) != set(columns):
        return None
    return Pinned(equals, frozenset(KEYED_TABLES[table]))
