"""``fa``: the formatting and URL helpers of the dashboard's templates."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final

from flask import url_for

from ...reports import DateRange
from ...reports.ranges import LAST_DATE
from .format import change, compact, decimal, duration, flag, format_metric, grouped, percent
from .query import COMPARES, METRICS, PERIODS, ViewQuery

#: Pages of the dashboard: endpoint -> tab label.
NAV: Final[Mapping[str, str]] = {
    "overview": "Overview",
    "pages": "Pages",
    "sources": "Sources",
    "locations": "Locations",
    "devices": "Devices",
    "events": "Events",
    "engagement": "Engagement",
    "realtime": "Realtime",
}


def add_years(day: dt.date, years: int) -> dt.date:
    """``day`` moved by whole years (29 February becomes the 28th)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


class Helpers:
    """Formatting and URL helpers, available in dashboard templates as ``fa``."""

    compact = staticmethod(compact)
    grouped = staticmethod(grouped)
    percent = staticmethod(percent)
    duration = staticmethod(duration)
    decimal = staticmethod(decimal)
    metric = staticmethod(format_metric)
    change = staticmethod(change)
    flag = staticmethod(flag)
    periods = PERIODS
    compares = COMPARES
    metrics = METRICS
    nav = NAV

    def __init__(
        self,
        query: ViewQuery | None,
        *,
        endpoint: str = "overview",
        extra: Mapping[str, str] | None = None,
        today: dt.date | None = None,
    ) -> None:
        self.query = query
        #: Short endpoint name of the current page ("overview", "page_detail"...).
        self.endpoint = endpoint
        #: Parameters of the current page besides the period (the page detail's path).
        self.extra = dict(extra or {})
        self.today = today

    def url(self, endpoint: str, **changes: Any) -> str:
        """URL of a dashboard page keeping the current period, comparison and metric."""
        params: dict[str, Any] = self.query.params() if self.query else {}
        if endpoint == self.endpoint:
            params.update(self.extra)
        if "period" in changes and changes["period"] != "custom":
            params.pop("start", None)
            params.pop("end", None)
        params.update(changes)
        params = {k: v for k, v in params.items() if v is not None}
        return url_for(f"analytics_dashboard.{endpoint}", **params)

    @staticmethod
    def url_plain(endpoint: str) -> str:
        """URL of a dashboard page (or static file) without any query parameter."""
        return url_for(f"analytics_dashboard.{endpoint}")

    def hidden(self) -> dict[str, str]:
        """Fields the custom-range form must carry besides start and end."""
        params = self.query.params() if self.query else {}
        for name in ("period", "start", "end"):
            params.pop(name, None)
        return {**params, **self.extra}

    def shift(self, direction: int) -> str | None:
        """URL of the period just before (-1) or after (+1); None when it starts after
        today or ends after the last date a report may cover."""
        if self.query is None:
            return None
        rng = self.query.range
        try:
            if self.query.period == "12mo":
                moved = DateRange(add_years(rng.start, direction), add_years(rng.end, direction))
            else:
                step = dt.timedelta(days=rng.days * direction)
                moved = DateRange(rng.start + step, rng.end + step)
        except (OverflowError, ValueError):  # past the calendar's end (9999-12-31)
            return None
        if moved.end > LAST_DATE or (self.today is not None and moved.start > self.today):
            return None
        return self.url(
            self.endpoint, period="custom", start=moved.start.isoformat(), end=moved.end.isoformat()
        )

    @staticmethod
    def range_text(rng: DateRange) -> str:
        """Human range: 3 Jan - 1 Feb 2026, or 3 Jan 2026 for one day."""
        end = f"{rng.end.day} {rng.end.strftime('%b %Y')}"
        if rng.days == 1:
            return end
        if rng.start.year == rng.end.year:
            return f"{rng.start.day} {rng.start.strftime('%b')} \N{EN DASH} {end}"
        return f"{rng.start.day} {rng.start.strftime('%b %Y')} \N{EN DASH} {end}"

    @staticmethod
    def when(moment: dt.datetime) -> str:
        """A local time as ``3 Jan 2026, 14:05``."""
        return f"{moment.day} {moment.strftime('%b %Y, %H:%M')}"

    @staticmethod
    def share(value: float, total: float) -> float:
        """Bar width in percent of ``total`` (0-100)."""
        return 0.0 if not total else max(0.0, min(100.0, value / total * 100))
