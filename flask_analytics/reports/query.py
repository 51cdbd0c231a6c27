"""The query model: one question to the engine, and its typed answer.

A :class:`Query` is a range, an optional comparison, filters, a dimension (or none for
totals and the daily series), the counts wanted, an order and a limit. :meth:`Stats.answer
<flask_analytics.reports.stats.Stats.answer>` plans it (rollups when unfiltered, the raw
path when filtered) and returns an :class:`Answer`. The JSON API and CSV are built from
answers; the dashboard's pages ask :class:`~.stats.Stats` the same questions directly.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from .breakdowns import Breakdown, Row
from .filters import Filter
from .ranges import DateRange
from .totals import Totals


class BadQuestion(ValueError):
    """A query the engine cannot answer as asked (an unknown count to order by...)."""


@dataclass(frozen=True)
class Query:
    """One question: ``dimension`` None asks for totals (and the daily series)."""

    range: DateRange
    filters: tuple[Filter, ...] = ()
    #: The period to compare with (totals only); None: no comparison.
    compare: DateRange | None = None
    #: A breakdown name (see :data:`~.breakdowns.BREAKDOWNS` and custom dimensions).
    dimension: str | None = None
    #: Counts of each row (default: all the breakdown's counts).
    metrics: tuple[str, ...] = ()
    #: The count rows are sorted by, largest first (default: the breakdown's).
    order: str | None = None
    #: Sort by :attr:`order` smallest first instead.
    ascending: bool = False
    #: Rows wanted (None: every row from ``offset`` on).
    limit: int | None = 100
    offset: int = 0

    def shaped(self, breakdown: Breakdown) -> Breakdown:
        """``breakdown`` sorted by :attr:`order`; raises :class:`BadQuestion`."""
        for name in (*self.metrics, *((self.order,) if self.order else ())):
            if name not in breakdown.counts:
                raise BadQuestion(
                    f"{breakdown.name} rows count {', '.join(breakdown.counts)}, not {name!r}."
                )
        if self.order is None:
            return breakdown
        return dataclasses.replace(breakdown, sort=self.order, ascending=self.ascending)


@dataclass(frozen=True)
class Answer:
    """What a :class:`Query` gets back."""

    query: Query
    #: Totals of the range (totals questions only).
    totals: Totals | None = None
    #: Totals of the comparison period, None without one (or when a filtered comparison
    #: reaches days whose raw events are gone).
    previous: Totals | None = None
    #: Totals of each day of the range (totals questions only).
    series: Mapping[dt.date, Totals] = field(default_factory=dict)
    #: Rows of the breakdown, in order (breakdown questions only).
    rows: list[Row] = field(default_factory=list)
    #: The breakdown answered, with its order (breakdown questions only).
    breakdown: Breakdown | None = None
    #: How many rows the whole breakdown has, every page together (breakdown questions).
    total: int | None = None
