"""What the layers below the app's state need from it, as a protocol.

:class:`flask_analytics.state.AppState` implements :class:`Context`; lifecycle, reports,
the buffer and ingest are written against this protocol, so they never import the
layer that builds the state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import sqlalchemy as sa

    from ..config import Settings
    from ..models import Models
    from .clock import Clock
    from .dimensions import CustomDimension, DailyAggregation

#: ``fn(event: dict, request)`` filling in fields of every event (``@analytics.enrich``).
Enricher = Callable[[dict[str, Any], Any], None]


@dataclass
class Hooks:
    """The host's callbacks and declarations, shared by every app of one extension."""

    enrichers: list[Enricher] = field(default_factory=list)
    #: Custom columns shown as breakdowns, in declaration order.
    dimensions: list[CustomDimension] = field(default_factory=list)
    #: Host functions run inside every day's aggregation transaction.
    daily_aggregations: list[DailyAggregation] = field(default_factory=list)
    #: Who may see the dashboard (``@analytics.dashboard_access``); None: nobody.
    access: Callable[[], Any] | None = None


class Context(Protocol):
    """One app's settings, models, engines and clock."""

    settings: Settings
    models: Models
    clock: Clock
    hooks: Hooks

    @property
    def app(self) -> object:
        """The Flask app this state belongs to: the sender of the package's signals."""
        ...

    def engine(self) -> sa.Engine:
        """The engine of the event tables."""
        ...

    def autocommit_engine(self) -> sa.Engine:
        """The same engine in autocommit mode, for single-statement writes."""
        ...

    def today(self) -> dt.date:
        """The current local date (``ANALYTICS_TIMEZONE``)."""
        ...

    def local_date(self, utc: dt.datetime) -> dt.date:
        """The local date of a naive UTC time."""
        ...
