"""What the layers below the app's state need from it, as a protocol.

:class:`flask_analytics.state.AppState` implements :class:`Context`; lifecycle, reports,
the buffer and ingest are written against this protocol, so they never import the
layer that builds the state.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import sqlalchemy as sa

    from ..config import Settings
    from ..models import Models
    from .clock import Clock
    from .hooks import Hooks


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
