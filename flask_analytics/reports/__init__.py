"""The read side, the query engine: ranges, filters, totals, breakdowns, live days, the
raw path for filtered questions and realtime. No Flask here."""

from __future__ import annotations

from .breakdowns import BREAKDOWNS, ROW_RATES, Breakdown, Row, custom_breakdown
from .filtered import FilteredEvents, RawDataMissing
from .filters import (
    OPERATORS,
    BadFilter,
    Filter,
    parse_filter,
    parse_filters,
    with_filter,
)
from .live import LIVE_KEYS, LiveCache, LiveDays, live_selects
from .query import Answer, BadQuestion, Query
from .ranges import MAX_RANGE_DAYS, DateRange
from .realtime import REALTIME_RECENT, REALTIME_WINDOW, Hour, Realtime
from .stats import Stats
from .totals import RATE_NAMES, Bucket, Totals, buckets, ratio

__all__ = [
    "BREAKDOWNS",
    "LIVE_KEYS",
    "MAX_RANGE_DAYS",
    "OPERATORS",
    "RATE_NAMES",
    "REALTIME_RECENT",
    "REALTIME_WINDOW",
    "ROW_RATES",
    "Answer",
    "BadFilter",
    "BadQuestion",
    "Breakdown",
    "Bucket",
    "DateRange",
    "Filter",
    "FilteredEvents",
    "Hour",
    "LiveCache",
    "LiveDays",
    "Query",
    "RawDataMissing",
    "Realtime",
    "Row",
    "Stats",
    "Totals",
    "buckets",
    "custom_breakdown",
    "live_selects",
    "parse_filter",
    "parse_filters",
    "ratio",
    "with_filter",
]
