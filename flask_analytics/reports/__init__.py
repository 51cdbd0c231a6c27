"""The read side: ranges, totals, breakdowns, live days and realtime. No Flask here."""

from __future__ import annotations

from .breakdowns import BREAKDOWNS, ROW_RATES, Breakdown, Row, custom_breakdown
from .live import LIVE_KEYS, LiveCache, LiveDays, live_selects
from .ranges import MAX_RANGE_DAYS, DateRange
from .realtime import REALTIME_RECENT, REALTIME_WINDOW, Hour, Realtime
from .stats import Stats
from .totals import RATE_NAMES, Bucket, Totals, buckets, ratio

__all__ = [
    "BREAKDOWNS",
    "LIVE_KEYS",
    "MAX_RANGE_DAYS",
    "RATE_NAMES",
    "REALTIME_RECENT",
    "REALTIME_WINDOW",
    "ROW_RATES",
    "Breakdown",
    "Bucket",
    "DateRange",
    "Hour",
    "LiveCache",
    "LiveDays",
    "Realtime",
    "Row",
    "Stats",
    "Totals",
    "buckets",
    "custom_breakdown",
    "live_selects",
    "ratio",
]
