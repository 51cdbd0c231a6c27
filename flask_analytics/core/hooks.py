"""The host's callbacks and declarations, shared by every app of one extension."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ..goals import Funnel, Goal, merged_funnels, merged_goals

#: ``fn(event: dict, request)`` filling in fields of every event (``@analytics.enrich``).
Enricher = Callable[[dict[str, Any], Any], None]

#: ``fn(conn, day, events)`` run inside a day's aggregation transaction.
DailyAggregation = Callable[[sa.Connection, dt.date, sa.Subquery], None]


@dataclass(frozen=True)
class CustomDimension:
    """A custom event column declared with ``analytics.dimension(name)``: rolled up per
    day and shown as a breakdown."""

    name: str
    label: str


@dataclass
class Hooks:
    """What the host registered on the extension (``enrich``, ``dimension``,
    ``daily_aggregation``, ``dashboard_access``, ``goal``, ``funnel``)."""

    enrichers: list[Enricher] = field(default_factory=list)
    #: Custom columns shown as breakdowns, in declaration order.
    dimensions: list[CustomDimension] = field(default_factory=list)
    #: Host functions run inside every day's aggregation transaction.
    daily_aggregations: list[DailyAggregation] = field(default_factory=list)
    #: Who may see the dashboard (``@analytics.dashboard_access``); None: nobody.
    access: Callable[[], Any] | None = None
    #: Goals and funnels declared with ``analytics.goal`` / ``analytics.funnel``.
    goals: list[Goal] = field(default_factory=list)
    funnels: list[Funnel] = field(default_factory=list)

    def app_goals(self, configured: tuple[Goal, ...]) -> dict[str, Goal]:
        """Every goal of an app: the declared ones, then its ``ANALYTICS_GOALS``."""
        return merged_goals(self.goals, configured)

    def app_funnels(
        self, configured: tuple[Funnel, ...], goals: dict[str, Goal]
    ) -> dict[str, Funnel]:
        """Every funnel of an app (declared, then ``ANALYTICS_FUNNELS``), steps checked."""
        return merged_funnels(self.funnels, configured, goals)
