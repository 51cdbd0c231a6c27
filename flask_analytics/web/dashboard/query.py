"""The dashboard's query string: period, comparison, chart metric, limit and format.

Parsing validates every parameter into a typed value first; a value the dashboard
cannot use raises :class:`BadQuery`, answered with 400 and its message.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ...models import PATH_MAX
from ...reports import MAX_RANGE_DAYS, BadFilter, Breakdown, DateRange, Filter, parse_filters
from ...reports.ranges import LAST_DATE, Comparison

PERIODS: Final[Mapping[str, str]] = {
    "today": "Today",
    "yesterday": "Yesterday",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "90d": "Last 90 days",
    "month": "This month",
    "12mo": "Last 12 months",
    "custom": "Custom range",
}
DEFAULT_PERIOD: Final = "30d"
COMPARES: Final[Mapping[str, str]] = {
    "previous": "Previous period",
    "year": "Year before",
    "none": "No comparison",
}
#: Card metrics, in display order, with their labels.
METRICS: Final[Mapping[str, str]] = {
    "visitors": "Unique visitors",
    "sessions": "Total visits",
    "pageviews": "Pageviews",
    "views_per_session": "Views per visit",
    "bounce_rate": "Bounce rate",
    "avg_visit_duration_s": "Visit duration",
}
MAX_LIMIT: Final = 10_000
#: Largest ``offset`` (and first row of the last ``page``) a list may be asked from.
MAX_OFFSET: Final = 100_000_000
#: ASCII digits only: ``\d`` also matches other scripts' digits ("٢٠٢٦", "²").
_DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_LIMIT_RE: Final = re.compile(r"[0-9]{1,9}")
#: Control characters (C0, DEL, C1): collection never stores them, PostgreSQL refuses NUL.
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class BadQuery(ValueError):
    """A query parameter the dashboard cannot use (answered with 400 and the message)."""


@dataclass(frozen=True)
class ViewQuery:
    """What the URL asks for: a period (preset or custom), a comparison, a chart metric
    and the filters every number of the page is limited to."""

    period: str
    range: DateRange
    compare: str
    metric: str
    filters: tuple[Filter, ...] = ()

    @property
    def compared(self) -> Comparison | None:
        """The comparison period, following the calendar: "This month" and "Last 12
        months" (and a custom range of whole months) against the same days of the
        months before; other ranges against as many days just before; "year" against
        the same dates a year earlier."""
        if self.compare == "previous":
            by_months = self.period in ("month", "12mo") or (
                self.period == "custom" and self.range.whole_months
            )
            return Comparison.previous(self.range, by_months=by_months)
        if self.compare == "year":
            return Comparison.year(self.range)
        return None

    @property
    def comparison(self) -> DateRange | None:
        compared = self.compared
        return compared.range if compared is not None else None

    @property
    def label(self) -> str:
        return PERIODS[self.period]

    def params(self) -> dict[str, Any]:
        """The query string that reproduces this view (bookmarkable); ``filter`` is a list."""
        params: dict[str, Any] = {"period": self.period}
        if self.period == "custom":
            params.update(start=self.range.start.isoformat(), end=self.range.end.isoformat())
        if self.compare != "previous":
            params["compare"] = self.compare
        if self.metric != "visitors":
            params["metric"] = self.metric
        if self.filters:
            params["filter"] = [f.param() for f in self.filters]
        return params


def quote_value(value: str) -> str:
    """A parameter's value as quoted in an error message, cut after 40 characters."""
    return repr(value if len(value) <= 40 else value[:40] + "...")


def parse_date(value: str, name: str) -> dt.date:
    """Parameter ``name`` as a date (YYYY-MM-DD, 1971 to :data:`LAST_DATE`)."""
    if not _DATE_RE.fullmatch(value):
        raise BadQuery(f"{name} must be a date as YYYY-MM-DD, not {quote_value(value)}.")
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise BadQuery(f"{name} {quote_value(value)} is not a valid date.") from None
    if day.year < 1971:
        raise BadQuery(f"{name} must be in 1971 or later.")
    if day > LAST_DATE:
        raise BadQuery(f"{name} must be {LAST_DATE.isoformat()} or earlier.")
    return day


def preset_range(period: str, today: dt.date) -> DateRange:
    """The local dates of a preset period ending today (or yesterday)."""
    day = dt.timedelta(days=1)
    if period == "today":
        return DateRange(today, today)
    if period == "yesterday":
        return DateRange(today - day, today - day)
    if period in ("7d", "30d", "90d"):
        return DateRange(today - (int(period[:-1]) - 1) * day, today)
    if period == "month":
        return DateRange(today.replace(day=1), today)
    if period == "12mo":
        month = today.month - 11
        year = today.year + (month - 1) // 12
        return DateRange(dt.date(year, (month - 1) % 12 + 1, 1), today)
    raise BadQuery(
        f"period must be one of {', '.join(PERIODS)} (custom with start and end), "
        f"not {quote_value(period)}."
    )


def parse_filter_args(
    args: Mapping[str, Any], custom: Iterable[str] = (), goals: Iterable[str] = ()
) -> tuple[Filter, ...]:
    """The repeated ``filter`` parameter (see :mod:`flask_analytics.reports.filters`):
    ``request.args`` or a mapping holding one string or a list of them."""
    getlist = getattr(args, "getlist", None)
    value = args.get("filter")
    if getlist is not None:
        texts = list(getlist("filter"))
    elif value is None:
        texts = []
    else:
        texts = [value] if isinstance(value, str) else list(value)
    try:
        return parse_filters(texts, custom, goals)
    except BadFilter as error:
        raise BadQuery(str(error)) from None


def parse_query(
    args: Mapping[str, Any],
    today: dt.date,
    custom: Iterable[str] = (),
    goals: Iterable[str] = (),
) -> ViewQuery:
    """Validate the dashboard's query parameters, raising :class:`BadQuery`.

    ``custom``: the event model's custom columns (filter dimensions besides the built-in
    ones); ``goals``: the goal names ``filter=goal:is:NAME`` may use.
    """
    period = args.get("period") or None
    start, end = args.get("start"), args.get("end")
    if start is not None or end is not None:
        if period not in (None, "custom"):
            raise BadQuery("Give either a preset period or start and end, not both.")
        if not start or not end:
            raise BadQuery("start and end are both required (YYYY-MM-DD).")
        first, last = parse_date(start, "start"), parse_date(end, "end")
        if last < first:
            raise BadQuery("end must not be before start.")
        rng = DateRange(first, last)
        period = "custom"
    elif period == "custom":
        raise BadQuery("period=custom needs start and end (YYYY-MM-DD).")
    else:
        rng = preset_range(period or DEFAULT_PERIOD, today)
        period = period or DEFAULT_PERIOD
    if rng.days > MAX_RANGE_DAYS:
        raise BadQuery(f"The range is too long: at most {MAX_RANGE_DAYS} days.")
    compare = args.get("compare") or "previous"
    if compare not in COMPARES:
        raise BadQuery(f"compare must be one of {', '.join(COMPARES)}, not {quote_value(compare)}.")
    metric = args.get("metric") or "visitors"
    if metric not in METRICS:
        raise BadQuery(f"metric must be one of {', '.join(METRICS)}, not {quote_value(metric)}.")
    return ViewQuery(period, rng, compare, metric, parse_filter_args(args, custom, goals))


def parse_limit(args: Mapping[str, str], default: int) -> int:
    """The ``limit`` parameter (1 to :data:`MAX_LIMIT`), ``default`` when absent."""
    value = args.get("limit")
    if value is None or value == "":
        return default
    if not _LIMIT_RE.fullmatch(value) or not 1 <= int(value) <= MAX_LIMIT:
        raise BadQuery(
            f"limit must be a whole number from 1 to {MAX_LIMIT}, not {quote_value(value)}."
        )
    return int(value)


@dataclass(frozen=True)
class Window:
    """Which rows of a list a request asks for: ``limit`` rows (None: all) from ``offset``;
    ``page`` when it was asked by page number."""

    limit: int | None
    offset: int = 0
    page: int | None = None


def _whole_number(args: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    value = args.get(name)
    if value is None or value == "":
        return None
    if not _LIMIT_RE.fullmatch(value) or not low <= int(value) <= high:
        raise BadQuery(
            f"{name} must be a whole number from {low} to {high:,}, not {quote_value(value)}."
        )
    return int(value)


def parse_window(args: Mapping[str, str], default_limit: int | None) -> Window:
    """``limit`` (see :func:`parse_limit`; ``default_limit`` None: every row) with either
    ``page`` (1 is the first ``limit`` rows) or ``offset`` (rows skipped), not both."""
    limit = parse_limit(args, default_limit) if default_limit is not None else None
    if limit is None and args.get("limit"):
        limit = parse_limit(args, MAX_LIMIT)
    if args.get("page") and args.get("offset"):
        raise BadQuery("Give either page or offset, not both.")
    offset = _whole_number(args, "offset", 0, MAX_OFFSET)
    if offset is not None:
        return Window(limit, offset)
    if limit is None:
        if args.get("page"):
            raise BadQuery("page needs limit (rows per page).")
        return Window(None)
    page = _whole_number(args, "page", 1, MAX_OFFSET // limit + 1)
    if page is None:
        return Window(limit)
    return Window(limit, (page - 1) * limit, page)


@dataclass(frozen=True)
class Order:
    """The ``order`` parameter: a count to sort rows by, largest first unless ``ascending``."""

    column: str
    ascending: bool = False

    def param(self) -> str:
        """The parameter's value: ``visitors:desc``."""
        return f"{self.column}:{'asc' if self.ascending else 'desc'}"

    def applied(self, breakdown: Breakdown) -> Breakdown:
        """``breakdown`` sorted this way (:class:`BadQuery` for a count it does not have)."""
        if self.column not in breakdown.counts:
            raise BadQuery(
                f"order must be one of {', '.join(breakdown.counts)} (with :asc or :desc), "
                f"not {quote_value(self.column)}."
            )
        return dataclasses.replace(breakdown, sort=self.column, ascending=self.ascending)


def parse_order(args: Mapping[str, str]) -> Order | None:
    """The ``order`` parameter: ``COUNT``, ``COUNT:desc`` (largest first) or ``COUNT:asc``;
    which counts a list has is checked by :meth:`Order.applied`."""
    value = args.get("order")
    if value is None or value == "":
        return None
    column, _, direction = value.partition(":")
    if not column or direction not in ("", "asc", "desc"):
        raise BadQuery(
            "order must be a count, optionally followed by :asc or :desc (visitors:desc), "
            f"not {quote_value(value)}."
        )
    return Order(column, direction == "asc")


def parse_path(args: Mapping[str, str]) -> str:
    """The ``path`` parameter: a page path as collected (``/``, at most PATH_MAX characters)."""
    path = args.get("path", "")
    if not path.startswith("/") or len(path) > PATH_MAX:
        raise BadQuery(
            f"path must be a page path starting with '/' (at most {PATH_MAX} characters)."
        )
    if _CONTROL_RE.search(path):
        raise BadQuery(f"path must not contain control characters, not {quote_value(path)}.")
    return path


def parse_format(args: Mapping[str, str]) -> str:
    """The ``format`` parameter of the API: json (default) or csv."""
    fmt = args.get("format") or "json"
    if fmt not in ("json", "csv"):
        raise BadQuery(f"format must be json or csv, not {quote_value(fmt)}.")
    return fmt
