"""``fa``: the formatting and URL helpers of the dashboard's templates."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final

import sqlalchemy as sa
from flask import has_request_context, request, url_for

from ...reports import (
    OPERATORS,
    BadFilter,
    Breakdown,
    DateRange,
    Filter,
    parse_filter,
    with_filter,
)
from ...reports.filters import LABELS, MAX_FILTERS, NONE_VALUE
from ...reports.ranges import LAST_DATE
from ...state import current_state
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
    "goals": "Goals",
    "funnels": "Funnels",
    "realtime": "Realtime",
    "annotations_page": "Annotations",
}


@dataclass(frozen=True)
class PageLink:
    """One item of a list's page navigation: a page number (None: a gap, "...") and
    its URL (None for the current page)."""

    number: int | None
    url: str | None = None

    @property
    def current(self) -> bool:
        return self.number is not None and self.url is None


@dataclass(frozen=True)
class Pager:
    """Page navigation of a list of ``total`` rows shown ``limit`` at a time."""

    total: int
    limit: int
    offset: int
    #: Pages to show: the first and last, and two either side of the current one.
    links: tuple[PageLink, ...]
    previous: str | None
    next: str | None

    @property
    def first_row(self) -> int:
        return min(self.offset + 1, self.total)

    @property
    def last_row(self) -> int:
        return min(self.offset + self.limit, self.total)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.limit))


@dataclass(frozen=True)
class Sorting:
    """The sort links of one list's column headers: which count the rows are sorted by,
    which way, and each sortable column's link (the sorted one's turns the order)."""

    column: str
    ascending: bool
    links: Mapping[str, str]

    def state(self, column: str) -> str | None:
        """The header's ``aria-sort``: ascending, descending, or None when not sorted."""
        if column != self.column:
            return None
        return "ascending" if self.ascending else "descending"


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
    operators = OPERATORS

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

    def _params(self) -> dict[str, Any]:
        """The current view's parameters (``filter`` a list), as ``ViewQuery.params``."""
        if self.query is not None:
            return self.query.params()
        return {"filter": [f.param() for f in self.filters]} if self.filters else {}

    def url(self, endpoint: str, **changes: Any) -> str:
        """URL of a dashboard page keeping the current period, comparison, metric and
        filters (``filter=None`` drops them, a list replaces them)."""
        params = self._params()
        if endpoint == self.endpoint:
            params.update(self.extra)
        if "period" in changes and changes["period"] != "custom":
            params.pop("start", None)
            params.pop("end", None)
        params.update(changes)
        params = {k: v for k, v in params.items() if v is not None}
        return url_for(f"analytics_dashboard.{endpoint}", **params)

    def sorting(self, breakdown: Breakdown, panel: str | None = None) -> Sorting:
        """Sort links of a list of ``breakdown`` (as sorted) on this page: each of its
        counts, largest first, or the other way for the sorted one. ``panel``: the
        list's name on a page of several (``more=``), which the links open."""
        links = {}
        for column in breakdown.counts:
            ascending = column == breakdown.sort and not breakdown.ascending
            order = f"{column}:{'asc' if ascending else 'desc'}"
            links[column] = self.url(self.endpoint, order=order, more=panel, page=None)
        return Sorting(breakdown.sort, breakdown.ascending, links)

    def pager(self, endpoint: str, total: int, limit: int, offset: int) -> Pager:
        """Navigation between the pages of a list on page ``endpoint`` (``page=N``, the
        view's other parameters kept; page 1 has none)."""
        pages = max(1, -(-total // limit))
        current = offset // limit + 1

        def url(number: int) -> str:
            return self.url(endpoint, page=number if number > 1 else None)

        shown = sorted({1, pages, *range(max(1, current - 2), min(pages, current + 2) + 1)})
        links: list[PageLink] = []
        for number in shown:
            if links and links[-1].number is not None and number > links[-1].number + 1:
                links.append(PageLink(None))
            links.append(PageLink(number, None if number == current else url(number)))
        return Pager(
            total,
            limit,
            offset,
            tuple(links),
            # Past the end, "previous" leads back to the last page.
            previous=url(min(current - 1, pages)) if current > 1 else None,
            next=url(current + 1) if current < pages else None,
        )

    @staticmethod
    def url_plain(endpoint: str) -> str:
        """URL of a dashboard page (or static file) without any query parameter."""
        return url_for(f"analytics_dashboard.{endpoint}")

    def carried(self, *, filters: bool = True) -> list[tuple[str, str]]:
        """The current view as form fields, (name, value) pairs: ``filter`` once per
        filter (left out with ``filters=False``), the page's own parameters included."""
        fields: list[tuple[str, str]] = []
        for name, value in {**self._params(), **self.extra}.items():
            if name == "filter" and not filters:
                continue
            values = value if isinstance(value, list | tuple) else [value]
            fields += [(name, str(v)) for v in values]
        return fields

    def hidden(self) -> list[tuple[str, str]]:
        """Fields the custom-range form must carry besides start and end: (name, value)
        pairs, ``filter`` repeated."""
        return [(n, v) for n, v in self.carried() if n not in ("period", "start", "end")]

    # -- filters ------------------------------------------------------------------------

    @cached_property
    def filters(self) -> tuple[Filter, ...]:
        """The active filters: the query's. Pages without a query (realtime, errors) apply
        none, but their links carry the request's well-formed ``filter`` parameters on."""
        if self.query is not None:
            return self.query.filters
        if not has_request_context():
            return ()
        # Any event column is accepted here: the page the link leads to checks again.
        table: sa.Table = current_state().models.Event.__table__
        columns = list(table.c.keys())
        state = current_state()
        goals = list(state.hooks.app_goals(state.settings.goals))
        found: list[Filter] = []
        for text in request.args.getlist("filter")[:MAX_FILTERS]:
            try:
                found.append(parse_filter(text, columns, goals))
            except BadFilter:
                continue
        return tuple(dict.fromkeys(found))

    @staticmethod
    def row_filter(dimension: str, key: Any) -> Filter:
        """The filter a breakdown row of ``dimension`` stands for (NULL: ``(none)``)."""
        return Filter(dimension, "is", (NONE_VALUE if key is None else str(key),))

    def is_filtered(self, dimension: str, key: Any) -> bool:
        """Whether the row of ``dimension`` with ``key`` is the active filter."""
        return self.row_filter(dimension, key) in self.filters

    def _with_filters(self, endpoint: str, filters: Sequence[Filter], **changes: Any) -> str:
        return self.url(endpoint, filter=[f.param() for f in filters] or None, **changes)

    def filter_url(
        self, dimension: str, key: Any, parent: str | None = None, parent_key: Any = None
    ) -> str:
        """This page limited to the row of ``dimension`` with ``key``, replacing any filter
        on that dimension (and on ``parent``, whose value ``parent_key`` the row carries:
        a browser version's row filters on its browser too). Realtime applies no filter:
        its rows open today's overview."""
        filters = tuple(self.filters)
        if parent is not None:
            filters = with_filter(filters, self.row_filter(parent, parent_key))
        filters = with_filter(filters, self.row_filter(dimension, key))
        if self.query is None:
            return self._with_filters("overview", filters, period="today")
        return self._with_filters(self.endpoint, filters)

    def without_filter_url(self, removed: Filter) -> str:
        """This page without filter ``removed``."""
        return self._with_filters(self.endpoint, [f for f in self.filters if f != removed])

    def clear_filters_url(self) -> str:
        """This page without any filter."""
        return self.url(self.endpoint, filter=None)

    @staticmethod
    def filter_dimensions() -> list[tuple[str, str]]:
        """Dimensions of the filter menu, (name, label): built-in ones, then the host's
        custom ones (``prop:KEY`` is typed in)."""
        custom = [(d.name, d.label) for d in current_state().hooks.dimensions]
        return [*LABELS.items(), *((n, label) for n, label in custom if n not in LABELS)]

    @staticmethod
    def suggest_url() -> str:
        """The value suggestions' URL, to be followed by a dimension name."""
        return url_for("analytics_dashboard.api_suggest", dimension="_")[:-1]

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
