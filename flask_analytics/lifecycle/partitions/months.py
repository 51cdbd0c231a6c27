"""UTC months, the unit of partitioning: parsing, arithmetic, bounds, partition names."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...core.context import Context


def parse_month(text: str) -> dt.date:
    """``YYYY-MM`` as the first day of that month."""
    match = re.fullmatch(r"\s*(\d{4})-(\d{2})\s*", text)
    if match is None or not 1 <= int(match[2]) <= 12:
        raise ValueError(f"{text!r} is not a month: use YYYY-MM.")
    return dt.date(int(match[1]), int(match[2]), 1)


def add_months(month: dt.date, count: int) -> dt.date:
    """First day of the month ``count`` months after ``month``'s."""
    index = month.year * 12 + month.month - 1 + count
    return dt.date(index // 12, index % 12 + 1, 1)


def month_bounds(month: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """Naive UTC ``[start, end)`` of the UTC month of ``month``."""
    first = month.replace(day=1)
    return dt.datetime.combine(first, dt.time()), dt.datetime.combine(
        add_months(first, 1), dt.time()
    )


def partition_name(parent: str, month: dt.date) -> str:
    """Name of ``parent``'s partition of ``month`` (``analytics_event_2026_01``)."""
    return f"{parent}_{month:%Y_%m}"


def current_utc_month(state: Context) -> dt.date:
    """First day of the current UTC month, by the app's clock."""
    return state.clock.utcnow().date().replace(day=1)


def touching_days(state: Context, month: dt.date) -> list[dt.date]:
    """Local days (``ANALYTICS_TIMEZONE``) with hours inside the UTC month of ``month``."""
    start, end = month_bounds(month)
    first = state.local_date(start)
    last = state.local_date(end - dt.timedelta(microseconds=1))
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def check_months_ahead(months_ahead: int) -> None:
    """Raise ``ValueError`` unless ``months_ahead`` is an integer >= 0."""
    if isinstance(months_ahead, bool) or not isinstance(months_ahead, int) or months_ahead < 0:
        raise ValueError(f"months_ahead must be an integer >= 0, not {months_ahead!r}")
