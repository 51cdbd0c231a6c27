"""Per-day SQL rollups (placeholder: the aggregation engine lands here)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .extension import AnalyticsState


def aggregate_day(state: AnalyticsState, day: dt.date, *, force: bool = False) -> Any:
    raise NotImplementedError


def aggregate_range(
    state: AnalyticsState,
    start: dt.date,
    end: dt.date,
    *,
    force: bool = False,
    progress: Callable[[dt.date], None] | None = None,
) -> list[Any]:
    raise NotImplementedError
