"""The admin dashboard blueprint: HTML pages, the JSON API and CSV exports.

Every URL of the blueprint (pages, API, CSV, its static files) answers 403 until the
host's ``@analytics.dashboard_access`` callback allows the request, and every response
carries a strict security-header set (a CSP without inline scripts or styles,
``no-referrer``, ``nosniff``, same-origin framing only). Nothing changes state, so
there is no form to protect against CSRF. The numbers come from :mod:`.stats`; this
module only parses the query, picks what a page shows and formats it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    render_template,
    request,
    url_for,
)

from ...config import Settings
from ...reports.stats import (
    DIMENSIONS,
    INTERNAL_EVENTS,
    MAX_RANGE_DAYS,
    DateRange,
    Dimension,
    LiveCache,
    Row,
    Stats,
    Totals,
    buckets,
    custom_dimension,
)
from ...state import current_state
from .. import STATIC_DIR, TEMPLATES_DIR
from . import charts

#: Security headers of every dashboard response (the CSP allows no inline script/style).
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'self'"
)


PERIODS: Final[Mapping[str, str]] = {
    "today": "Today",
    "yesterday": "Yesterday",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "90d": "Last 90 days",
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
#: Metrics whose decrease is the good news.
LOWER_IS_BETTER: Final = frozenset({"bounce_rate"})
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
MAX_LIMIT: Final = 10_000
_DATE_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
#: CSV cells starting with these are formulas to a spreadsheet.
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


class BadQuery(ValueError):
    """A query parameter the dashboard cannot use (answered with 400 and the message)."""


# -- the query string -------------------------------------------------------------------------


@dataclass(frozen=True)
class ViewQuery:
    """What the URL asks for: a period (preset or custom), a comparison, a chart metric."""

    period: str
    range: DateRange
    compare: str
    metric: str

    @property
    def comparison(self) -> DateRange | None:
        if self.compare == "previous":
            return self.range.previous()
        if self.compare == "year":
            return self.range.year_before()
        return None

    @property
    def label(self) -> str:
        return PERIODS[self.period]

    def params(self) -> dict[str, str]:
        """The query string that reproduces this view (bookmarkable)."""
        params = {"period": self.period}
        if self.period == "custom":
            params.update(start=self.range.start.isoformat(), end=self.range.end.isoformat())
        if self.compare != "previous":
            params["compare"] = self.compare
        if self.metric != "visitors":
            params["metric"] = self.metric
        return params


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "...")


def parse_date(value: str, name: str) -> dt.date:
    if not _DATE_RE.fullmatch(value):
        raise BadQuery(f"{name} must be a date as YYYY-MM-DD, not {_shown(value)}.")
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise BadQuery(f"{name} {_shown(value)} is not a valid date.") from None
    if day.year < 1971:
        raise BadQuery(f"{name} must be in 1971 or later.")
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
    if period == "12mo":
        month = today.month - 11
        year = today.year + (month - 1) // 12
        return DateRange(dt.date(year, (month - 1) % 12 + 1, 1), today)
    raise BadQuery(
        f"period must be one of {', '.join(PERIODS)} (custom with start and end), "
        f"not {_shown(period)}."
    )


def parse_query(args: Mapping[str, str], today: dt.date) -> ViewQuery:
    """Validate the dashboard's query parameters, raising :class:`BadQuery`."""
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
        raise BadQuery(f"compare must be one of {', '.join(COMPARES)}, not {_shown(compare)}.")
    metric = args.get("metric") or "visitors"
    if metric not in METRICS:
        raise BadQuery(f"metric must be one of {', '.join(METRICS)}, not {_shown(metric)}.")
    return ViewQuery(period, rng, compare, metric)


def parse_limit(args: Mapping[str, str], default: int) -> int:
    value = args.get("limit")
    if value is None or value == "":
        return default
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise BadQuery(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {_shown(value)}.")
    return int(value)


def parse_format(args: Mapping[str, str]) -> str:
    fmt = args.get("format") or "json"
    if fmt not in ("json", "csv"):
        raise BadQuery(f"format must be json or csv, not {_shown(fmt)}.")
    return fmt


# -- formatting for templates -----------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """A metric's change against the comparison period, ready to print."""

    text: str
    direction: str  # "up", "down" or "flat"
    good: bool | None
    title: str


def compact(value: float | None) -> str:
    """1234 -> "1.2k", 12345678 -> "12M" (as Plausible prints counts)."""
    if value is None:
        return "—"
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            scaled = value / size
            text = f"{scaled:.1f}" if abs(scaled) < 10 else f"{scaled:.0f}"
            return text.removesuffix(".0") + suffix
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def grouped(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def percent(value: float | None) -> str:
    if value is None:
        return "—"
    scaled = value * 100
    return f"{scaled:.0f}%" if scaled >= 10 or scaled == 0 else f"{scaled:.1f}%"


def duration(seconds: float | None) -> str:
    """42 -> "42s", 125 -> "2m 05s", 3725 -> "1h 02m"."""
    if seconds is None:
        return "—"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def decimal(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def format_metric(name: str, value: float | None) -> str:
    if name == "bounce_rate" or name.endswith("_rate"):
        return percent(value)
    if name in ("avg_visit_duration_s", "avg_engagement_s"):
        return duration(value)
    if name in ("views_per_session", "events_per_visitor"):
        return decimal(value)
    return compact(value)


def change(name: str, current: float | None, previous: float | None) -> Change | None:
    """Relative change of a count, or percentage points for a rate; None if unknown."""
    if current is None or previous is None:
        return None
    if name == "bounce_rate":
        delta = (current - previous) * 100
        text = f"{abs(delta):.0f} pp"
        title = f"{previous * 100:.1f}% before"
    else:
        title = f"{format_metric(name, previous)} before"
        if previous == 0:
            if current == 0:
                return Change("0%", "flat", None, title)
            return Change("new", "up", name not in LOWER_IS_BETTER, title)
        delta = (current - previous) / previous * 100
        text = f"{abs(delta):.0f}%"
    if round(delta) == 0:
        return Change(text, "flat", None, title)
    up = delta > 0
    return Change(text, "up" if up else "down", up != (name in LOWER_IS_BETTER), title)


def flag(code: str | None) -> str:
    """The flag emoji of an ISO 3166-1 alpha-2 code (regional indicator letters)."""
    if not code or len(code) != 2 or not code.isascii() or not code.isalpha():
        return "\N{WHITE FLAG}"
    return "".join(chr(0x1F1E6 + ord(c) - ord("A")) for c in code.upper())


def _years(day: dt.date, years: int) -> dt.date:
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
        return url_for(f"analytics_dashboard.{endpoint}")

    def hidden(self) -> dict[str, str]:
        """Fields the custom-range form must carry besides start and end."""
        params = self.query.params() if self.query else {}
        for name in ("period", "start", "end"):
            params.pop(name, None)
        return {**params, **self.extra}

    def shift(self, direction: int) -> str | None:
        """URL of the period just before (-1) or after (+1), None past today."""
        if self.query is None:
            return None
        rng = self.query.range
        step = dt.timedelta(days=rng.days * direction)
        if self.query.period == "12mo":
            moved = DateRange(_years(rng.start, direction), _years(rng.end, direction))
        else:
            moved = DateRange(rng.start + step, rng.end + step)
        if self.today is not None and moved.start > self.today:
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
        return f"{moment.day} {moment.strftime('%b %Y, %H:%M')}"

    @staticmethod
    def share(value: float, total: float) -> float:
        """Bar width in percent of ``total`` (0-100)."""
        return 0.0 if not total else max(0.0, min(100.0, value / total * 100))


# -- plumbing ---------------------------------------------------------------------------------


def _closed() -> None:
    access = current_state().hooks.access
    if access is None or not access():
        abort(403)


def _headers(response: Response) -> Response:
    headers = response.headers
    # None (the default) is the built-in policy; an empty value sends none.
    policy = current_app.config["ANALYTICS_DASHBOARD_CSP"]
    if policy is None:
        policy = CONTENT_SECURITY_POLICY
    if policy:
        headers.setdefault("Content-Security-Policy", policy)
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if request.endpoint != "analytics_dashboard.static":
        # Statistics are private: keep them out of shared caches and the back/forward cache.
        headers["Cache-Control"] = "no-store"
    return response


def _live_cache() -> LiveCache:
    """The app's cache of live days' rows (``ANALYTICS_DASHBOARD_LIVE_TTL`` seconds)."""
    cache: LiveCache | None = current_app.extensions.get("analytics_dashboard_live")
    if cache is None:
        ttl = current_app.config["ANALYTICS_DASHBOARD_LIVE_TTL"]
        cache = current_app.extensions.setdefault(
            "analytics_dashboard_live", LiveCache(float(ttl or 0))
        )
    return cache


@contextmanager
def _stats() -> Iterator[Stats]:
    state = current_state()
    with state.engine().connect() as conn:
        yield Stats(state, conn, live_cache=_live_cache())


def _query() -> ViewQuery:
    return parse_query(request.args, current_state().today())


def _wants_json() -> bool:
    return (request.blueprint == "analytics_dashboard") and (
        request.path.startswith(f"{current_state().settings.dashboard_url}/api/")
    )


def _bad_query(error: BadQuery) -> tuple[Any, int]:
    if _wants_json():
        return jsonify(error=str(error)), 400
    state = current_state()
    helpers = Helpers(None, endpoint=_endpoint(), today=state.today())
    page = render_template(
        "analytics/error.html",
        message=str(error),
        fa=helpers,
        q=None,
        timezone=state.settings.timezone.key,
    )
    return page, 400


def _custom_dimensions() -> list[Dimension]:
    """Breakdowns of the host's ``analytics.dimension(name)`` columns, in declaration order."""
    return [custom_dimension(d.name, d.label) for d in current_state().hooks.dimensions]


def _dimensions() -> dict[str, Dimension]:
    """Every breakdown the API offers: built-in ones win a name clash."""
    custom = {d.name: d for d in _custom_dimensions()}
    return {**custom, **DIMENSIONS}


def _endpoint() -> str:
    return (request.endpoint or "analytics_dashboard.overview").rsplit(".", 1)[-1]


def _render(
    template: str, query: ViewQuery | None, extra: Mapping[str, str] | None = None, **context: Any
) -> str:
    state = current_state()
    helpers = Helpers(query, endpoint=_endpoint(), extra=extra, today=state.today())
    return render_template(
        template, fa=helpers, q=query, timezone=state.settings.timezone.key, **context
    )


def _local(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.timezone.utc).astimezone(current_state().settings.timezone)


def _freshness(stats: Stats) -> dict[str, Any]:
    return {"data_as_of": _local(stats.data_as_of()), "today": stats.today}


# -- charts -----------------------------------------------------------------------------------


def _tick_format(metric: str) -> Callable[[float], str]:
    return lambda value: format_metric(metric, value)


def _day_label(day: dt.date, interval: str) -> str:
    if interval == "month":
        return day.strftime("%b %Y") if day.month == 1 else day.strftime("%b")
    return f"{day.day} {day.strftime('%b')}"


def _bucket_title(bucket_start: dt.date, bucket_end: dt.date, interval: str) -> str:
    if interval == "month":
        return f"{bucket_start.strftime('%b %Y')} ({bucket_start.day}\N{EN DASH}{bucket_end.day})"
    return f"{bucket_start.strftime('%a')} {bucket_start.day} {bucket_start.strftime('%b %Y')}"


def interval_of(rng: DateRange) -> str:
    """Chart granularity: hours for one day, days up to 92 days, months beyond."""
    if rng.days == 1:
        return "hour"
    return "day" if rng.days <= 92 else "month"


def series_chart(
    stats: Stats,
    query: ViewQuery,
    daily: Mapping[dt.date, Totals],
    previous_daily: Mapping[dt.date, Totals] | None,
    totals: Totals,
) -> tuple[charts.Chart, str]:
    """The overview's time series of ``query.metric`` and its interval."""
    metric, rng = query.metric, query.range
    label = METRICS[metric].lower()
    interval = interval_of(rng)
    if interval == "hour" and metric in ("visitors", "pageviews"):
        hours = stats.hourly(rng.start)
        # Hours come from raw events: use them only while they match the day's totals.
        if hours and sum(h.pageviews for h in hours) == totals.pageviews:
            values: list[float | None] = [float(getattr(h, metric)) for h in hours]
            previous_values: list[float | None] | None = None
            comparison = query.comparison
            if comparison is not None and previous_daily is not None:
                before = stats.hourly(comparison.start)
                if sum(h.pageviews for h in before) == previous_daily[comparison.start].pageviews:
                    previous_values = [float(getattr(h, metric)) for h in before]
            titles = [
                f"{h.start:%H:%M}: {grouped(getattr(h, metric))} {label}"
                + (
                    f" (before: {grouped(previous_values[i])})"
                    if previous_values is not None and i < len(previous_values)
                    else ""
                )
                for i, h in enumerate(hours)
            ]
            now = stats.now.replace(tzinfo=dt.timezone.utc)
            values = [None if h.start > now else v for h, v in zip(hours, values, strict=True)]
            chart = charts.build(
                [f"{h.start:%H:%M}" for h in hours],
                values,
                titles,
                previous=previous_values,
                tick_format=_tick_format(metric),
            )
            return chart, "hour"
        interval = "day"
    if interval == "hour":
        interval = "day"
    current = buckets(daily, rng, interval)
    before_buckets = (
        buckets(previous_daily, query.comparison, interval)
        if previous_daily is not None and query.comparison is not None
        else None
    )
    values = [None if b.start > stats.today else b.totals.metric(metric) for b in current]
    previous_values = (
        [b.totals.metric(metric) for b in before_buckets] if before_buckets is not None else None
    )
    titles = []
    for i, b in enumerate(current):
        title = f"{_bucket_title(b.start, b.end, interval)}: {format_metric(metric, values[i])}"
        if metric in ("visitors", "sessions", "pageviews"):
            title += f" {label}"
        if before_buckets is not None and i < len(before_buckets):
            p = before_buckets[i]
            title += (
                f" · {_bucket_title(p.start, p.end, interval)}: "
                f"{format_metric(metric, p.totals.metric(metric))}"
            )
        titles.append(title)
    chart = charts.build(
        [_day_label(b.start, interval) for b in current],
        values,
        titles,
        previous=previous_values,
        tick_format=_tick_format(metric),
        integer=metric in ("visitors", "sessions", "pageviews"),
    )
    return chart, interval


def histogram_chart(rows: Sequence[Row], labels: Sequence[str], unit: str) -> charts.Chart:
    counts = [float(r["sessions"]) for r in rows]
    total = sum(counts)
    titles = [
        f"{label} {unit}: {grouped(v)} visits ({percent(v / total if total else None)})"
        for label, v in zip(labels, counts, strict=True)
    ]
    return charts.build(labels, list(counts), titles, show_every_label=True)


def duration_labels(bounds: Sequence[int]) -> list[str]:
    """Labels 0s-10s, 10s-30s, ..., 30m+ from sorted bucket lower bounds (seconds)."""

    def short(seconds: int) -> str:
        if seconds and seconds % 3600 == 0:
            return f"{seconds // 3600}h"
        if seconds and seconds % 60 == 0:
            return f"{seconds // 60}m"
        return f"{seconds}s"

    labels = []
    for i, low in enumerate(bounds):
        if i + 1 < len(bounds):
            labels.append(f"{short(low)}\N{EN DASH}{short(bounds[i + 1])}")
        else:
            labels.append(f"{short(low)}+")
    return labels


def pages_labels(bounds: Sequence[int]) -> list[str]:
    labels = []
    for i, low in enumerate(bounds):
        high = bounds[i + 1] - 1 if i + 1 < len(bounds) else None
        if high is None:
            labels.append(f"{low}+")
        elif high == low:
            labels.append(str(low))
        else:
            labels.append(f"{low}\N{EN DASH}{high}")
    return labels


def _bucket_bounds(name: str, rows: Sequence[Row]) -> list[int]:
    """Every bucket lower bound: the aggregation's list when it has one, else the data's."""
    from ...lifecycle import aggregate

    declared = getattr(aggregate, name, None)
    seen = {int(r.key) for r in rows}
    if declared:
        return sorted(set(declared) | seen)
    return sorted(seen)


def _fill_histogram(rows: Sequence[Row], bounds: Sequence[int]) -> list[Row]:
    by_key = {int(r.key): r for r in rows}
    empty = {"sessions": 0, "total_duration_s": 0, "pageviews": 0}
    return [by_key.get(b, Row(b, dict(empty), {"views_per_session": None})) for b in bounds]


# -- CSV and JSON -----------------------------------------------------------------------------


def csv_cell(value: Any) -> Any:
    """A cell no spreadsheet runs as a formula (strings only: numbers stay numbers)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value


def csv_response(header: Sequence[str], rows: Sequence[Sequence[Any]], filename: str) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    response = Response(buffer.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _json_number(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return value


def totals_json(rng: DateRange, totals: Totals) -> dict[str, Any]:
    return {
        "start": rng.start.isoformat(),
        "end": rng.end.isoformat(),
        "totals": totals.counts(),
        "rates": {k: _json_number(v) for k, v in totals.rates().items()},
    }


def row_json(dimension: Dimension, row: Row) -> dict[str, Any]:
    return {
        dimension.name: row.key,
        **row.counts,
        **{k: _json_number(v) for k, v in row.rates.items()},
    }


# -- the blueprint ----------------------------------------------------------------------------


def make_blueprint(settings: Settings) -> Blueprint:
    """The dashboard at ``settings.dashboard_url`` (closed until ``dashboard_access`` allows)."""
    bp = Blueprint(
        "analytics_dashboard",
        __name__,
        url_prefix=settings.dashboard_url,
        template_folder=TEMPLATES_DIR,
        static_folder=STATIC_DIR,
        static_url_path="/static",
    )
    bp.before_request(_closed)
    bp.after_request(_headers)
    bp.register_error_handler(BadQuery, _bad_query)

    @bp.context_processor
    def base_template() -> dict[str, Any]:
        return {"analytics_base_template": current_state().settings.base_template}

    @bp.get("/")
    def overview() -> str:
        query = _query()
        comparison = query.comparison
        with _stats() as stats:
            if (
                comparison is not None
                and comparison.end + dt.timedelta(days=1) == query.range.start
            ):
                both = stats.daily_totals(comparison.span(query.range))
                daily = {d: both[d] for d in query.range.dates()}
                previous_daily: dict[dt.date, Totals] | None = {
                    d: both[d] for d in comparison.dates()
                }
            else:
                daily = stats.daily_totals(query.range)
                previous_daily = stats.daily_totals(comparison) if comparison else None
            totals = sum(daily.values(), Totals())
            previous = sum(previous_daily.values(), Totals()) if previous_daily else None
            chart, interval = series_chart(stats, query, daily, previous_daily, totals)
            # Only the counts the overview's lists show: fewer sums over a year of rows.
            shown = {
                "page": ("visitors", "pageviews"),
                "source": ("sessions", "bounces"),
                "country": ("visitors", "pageviews"),
                "device_type": ("visitors", "pageviews"),
            }
            lists = {
                name: stats.breakdown(DIMENSIONS[name], query.range, limit=8, counts=counts)
                for name, counts in shown.items()
            }
            return _render(
                "analytics/overview.html",
                query,
                totals=totals,
                previous=previous,
                chart=chart,
                interval=interval,
                lists=lists,
                current_visitors=stats.current_visitors(),
                **_freshness(stats),
            )

    @bp.get("/pages")
    def pages() -> str:
        query = _query()
        limit = parse_limit(request.args, 25)
        with _stats() as stats:
            return _render(
                "analytics/pages.html",
                query,
                limit=limit,
                totals=stats.totals(query.range),
                top=stats.breakdown(DIMENSIONS["page"], query.range, limit=limit),
                entries=stats.breakdown(DIMENSIONS["entry_page"], query.range, limit=limit),
                exits=stats.breakdown(DIMENSIONS["exit_page"], query.range, limit=limit),
                **_freshness(stats),
            )

    @bp.get("/pages/detail")
    def page_detail() -> str:
        query = _query()
        path = request.args.get("path", "")
        if not path.startswith("/") or len(path) > 2000:
            raise BadQuery("path must be a page path starting with '/' (at most 2000 characters).")
        with _stats() as stats:
            found = stats.breakdown(DIMENSIONS["page"], query.range, limit=1, path=path)
            row = found[0] if found else None
            daily = stats.page_daily(query.range, path)
            interval = "day" if query.range.days <= 92 else "month"
            metric = "pageviews" if query.metric == "pageviews" else "visitors"
            points = buckets(daily, query.range, interval)
            values: list[float | None] = [
                None if b.start > stats.today else float(getattr(b.totals, metric)) for b in points
            ]
            chart = charts.build(
                [_day_label(b.start, interval) for b in points],
                values,
                [
                    f"{_bucket_title(b.start, b.end, interval)}: {compact(v)} {metric}"
                    for b, v in zip(points, values, strict=True)
                ],
            )
            exits = DIMENSIONS["exit_page"]
            return _render(
                "analytics/page_detail.html",
                query,
                extra={"path": path},
                path=path,
                row=row,
                chart=chart,
                chart_metric=metric,
                exit_rate=(
                    row.counts["exits"] / row.counts["pageviews"]
                    if row and row.counts["pageviews"]
                    else None
                ),
                exits_dimension=exits,
                referrers=stats.page_referrers(query.range, path, limit=25),
                **_freshness(stats),
            )

    def _lists(template: str, names: Sequence[str], default_limit: int, **extra: Any) -> str:
        query = _query()
        limit = parse_limit(request.args, default_limit)
        with _stats() as stats:
            return _render(
                template,
                query,
                limit=limit,
                totals=stats.totals(query.range),
                lists={
                    name: stats.breakdown(DIMENSIONS[name], query.range, limit=limit)
                    for name in names
                },
                **{key: make(stats, query, limit) for key, make in extra.items()},
                **_freshness(stats),
            )

    @bp.get("/sources")
    def sources() -> str:
        names = ("channel", "source", "referrer", "utm_source", "utm_medium", "utm_campaign")
        return _lists("analytics/sources.html", names, 10)

    @bp.get("/locations")
    def locations() -> str:
        return _lists("analytics/locations.html", ("country",), 50)

    @bp.get("/devices")
    def devices() -> str:
        return _lists("analytics/devices.html", ("device_type", "browser", "os"), 10)

    @bp.get("/events")
    def events() -> str:
        def custom(stats: Stats, query: ViewQuery, limit: int) -> list[Row]:
            return stats.breakdown(
                DIMENSIONS["event"], query.range, limit=limit, exclude=INTERNAL_EVENTS
            )

        def internal(stats: Stats, query: ViewQuery, limit: int) -> list[Row]:
            rows = stats.breakdown(DIMENSIONS["event"], query.range, limit=MAX_LIMIT)
            return [r for r in rows if r.key in INTERNAL_EVENTS]

        def dimensions(stats: Stats, query: ViewQuery, limit: int) -> list[Any]:
            return [
                (d, stats.breakdown(d, query.range, limit=limit))
                for d in _custom_dimensions()
                if d.name not in DIMENSIONS
            ]

        return _lists(
            "analytics/events.html",
            (),
            50,
            custom=custom,
            internal=internal,
            dimensions=dimensions,
        )

    @bp.get("/engagement")
    def engagement() -> str:
        query = _query()
        with _stats() as stats:
            totals = stats.totals(query.range)
            comparison = query.comparison
            previous = stats.totals(comparison) if comparison is not None else None
            durations = stats.sessions_histogram(query.range, "duration_bucket")
            pages_rows = stats.sessions_histogram(query.range, "pages_bucket")
            duration_bounds = _bucket_bounds("DURATION_BUCKETS", durations)
            pages_bounds = _bucket_bounds("PAGES_BUCKETS", pages_rows)
            durations = _fill_histogram(durations, duration_bounds)
            pages_rows = _fill_histogram(pages_rows, pages_bounds)
            d_labels = duration_labels(duration_bounds)
            p_labels = pages_labels(pages_bounds)
            return _render(
                "analytics/engagement.html",
                query,
                session_minutes=current_state().settings.session_timeout // 60,
                totals=totals,
                previous=previous,
                durations=list(zip(d_labels, durations, strict=True)),
                pages_rows=list(zip(p_labels, pages_rows, strict=True)),
                duration_chart=histogram_chart(durations, d_labels, "long"),
                pages_chart=histogram_chart(pages_rows, p_labels, "pages"),
                **_freshness(stats),
            )

    @bp.get("/realtime")
    def realtime() -> str:
        with _stats() as stats:
            live = stats.realtime()
            today = DateRange(stats.today, stats.today)
            chart = charts.build(
                [f"{m.start:%H:%M}" if i % 5 == 0 else "" for i, m in enumerate(live.minutes)],
                [float(m.pageviews) for m in live.minutes],
                [
                    f"{m.start:%H:%M}: {m.pageviews} pageviews, {m.visitors} visitors"
                    for m in live.minutes
                ],
                show_every_label=True,
            )
            return _render(
                "analytics/realtime.html",
                None,
                live=live,
                chart=chart,
                totals=stats.totals(today),
                **_freshness(stats),
            )

    # -- API ------------------------------------------------------------------------------------

    @bp.get("/api/stats")
    def api_stats() -> Response:
        query = _query()
        fmt = parse_format(request.args)
        comparison = query.range.previous() if query.compare == "none" else query.comparison
        assert comparison is not None
        with _stats() as stats:
            totals = stats.totals(query.range)
            previous = stats.totals(comparison)
            as_of = stats.data_as_of()
        if fmt == "csv":
            header = ["period", "start", "end", *totals.counts(), *totals.rates()]
            rows = [
                [label, rng.start.isoformat(), rng.end.isoformat(), *t.counts().values()]
                + [_json_number(v) for v in t.rates().values()]
                for label, rng, t in (
                    ("current", query.range, totals),
                    ("previous", comparison, previous),
                )
            ]
            return csv_response(header, rows, f"stats-{query.range.start}-{query.range.end}.csv")
        return jsonify(
            {
                **totals_json(query.range, totals),
                "timezone": current_state().settings.timezone.key,
                "data_as_of": as_of.isoformat() + "Z" if as_of else None,
                "visitors_note": "Visitors over a range are the sum of daily unique visitors.",
                "previous": totals_json(comparison, previous),
            }
        )

    @bp.get("/api/breakdown/<dimension>")
    def api_breakdown(dimension: str) -> Response:
        known = _dimensions()
        dim = known.get(dimension)
        if dim is None:
            response = jsonify(
                error=f"Unknown dimension {_shown(dimension)}; use one of {', '.join(known)}."
            )
            response.status_code = 404
            return response
        query = _query()
        fmt = parse_format(request.args)
        limit = parse_limit(request.args, MAX_LIMIT if fmt == "csv" else 100)
        with _stats() as stats:
            rows = stats.breakdown(dim, query.range, limit=limit)
        if fmt == "csv":
            header = [dim.name, *dim.counts, *dim.rates]
            return csv_response(
                header,
                [
                    [r.key, *r.counts.values(), *(_json_number(v) for v in r.rates.values())]
                    for r in rows
                ],
                f"{dim.name}-{query.range.start}-{query.range.end}.csv",
            )
        return jsonify(
            {
                "dimension": dim.name,
                "start": query.range.start.isoformat(),
                "end": query.range.end.isoformat(),
                "limit": limit,
                "rows": [row_json(dim, r) for r in rows],
            }
        )

    @bp.get("/api/realtime")
    def api_realtime() -> Response:
        with _stats() as stats:
            live = stats.realtime(limit=5)
        return jsonify(
            visitors=live.visitors,
            pageviews=live.pageviews,
            minutes=[
                {"start": m.start.isoformat(), "pageviews": m.pageviews} for m in live.minutes
            ],
        )

    return bp
