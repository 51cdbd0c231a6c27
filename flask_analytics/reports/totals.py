"""Totals of the daily summary, the rates derived from them and their chart buckets.

Counts add up across days; rates are derived from summed counts when read, never
averaged. Visitors over a range are the sum of daily visitors (a visitor id lives one day).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Final

from .ranges import DateRange

#: The counts of ``analytics_daily_summary`` (the fields of :class:`Totals`).
SUMMARY_COUNTS: Final = (
    "visitors",
    "sessions",
    "pageviews",
    "bounces",
    "total_duration_s",
    "events",
)


def ratio(numerator: float, denominator: float, scale: float = 1.0) -> float | None:
    """``numerator / denominator * scale``, or None when nothing was counted."""
    if not denominator:
        return None
    return numerator / denominator * scale


@dataclass(frozen=True)
class Totals:
    """Summed counts of ``analytics_daily_summary`` and the rates derived from them."""

    visitors: int = 0
    sessions: int = 0
    pageviews: int = 0
    bounces: int = 0
    total_duration_s: int = 0
    events: int = 0

    def __add__(self, other: Totals) -> Totals:
        # Spelled out: a year of days is added per chart, fields() would dominate.
        return Totals(
            self.visitors + other.visitors,
            self.sessions + other.sessions,
            self.pageviews + other.pageviews,
            self.bounces + other.bounces,
            self.total_duration_s + other.total_duration_s,
            self.events + other.events,
        )

    @property
    def views_per_session(self) -> float | None:
        return ratio(self.pageviews, self.sessions)

    @property
    def bounce_rate(self) -> float | None:
        return ratio(self.bounces, self.sessions)

    @property
    def avg_visit_duration_s(self) -> float | None:
        return ratio(self.total_duration_s, self.sessions)

    def counts(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def rates(self) -> dict[str, float | None]:
        return {
            "views_per_session": self.views_per_session,
            "bounce_rate": self.bounce_rate,
            "avg_visit_duration_s": self.avg_visit_duration_s,
        }

    def metric(self, name: str) -> float | None:
        """A count or a rate by name (the chart's metric)."""
        if name in RATE_NAMES:
            value: float | None = getattr(self, name)
            return value
        count: int = getattr(self, name)
        return count


RATE_NAMES: Final = frozenset({"views_per_session", "bounce_rate", "avg_visit_duration_s"})


@dataclass(frozen=True)
class Bucket:
    """One point of a time series: a labelled span of time and its totals."""

    start: dt.date
    end: dt.date
    totals: Totals


def buckets(daily: Mapping[dt.date, Totals], rng: DateRange, interval: str) -> list[Bucket]:
    """Group daily totals by ``interval`` ("day" or "month"), in date order."""
    if interval != "month":
        return [Bucket(day, day, daily.get(day, Totals())) for day in rng.dates()]
    months: dict[tuple[int, int], tuple[dt.date, dt.date, list[Totals]]] = {}
    for day in rng.dates():
        first, _, parts = months.get((day.year, day.month), (day, day, []))
        parts.append(daily.get(day, Totals()))
        months[(day.year, day.month)] = (first, day, parts)
    return [Bucket(first, last, sum(parts, Totals())) for first, last, parts in months.values()]
