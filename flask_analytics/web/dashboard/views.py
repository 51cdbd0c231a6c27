"""The dashboard's HTML pages, one view function each (endpoint = function name)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from flask import request

from ...core.rollups import DURATION_BUCKETS, INTERNAL_EVENTS, PAGES_BUCKETS
from ...reports import BREAKDOWNS, Breakdown, DateRange, Row, Stats, Totals
from ...reports.compare import Compared, compared, compared_totals
from ...reports.endpoints import EndpointTiming, endpoint_timings, error_pages
from ...reports.filtered import RawDataMissing
from ...state import current_state
from .current import current_query, custom_breakdowns, freshness, open_stats, render_page
from .experience import VITAL_LABELS, panel
from .goals import overview_goals
from .notes import annotated
from .page import page_detail as page_details
from .properties import parse_prop, properties
from .query import (
    MAX_LIMIT,
    BadQuery,
    ViewQuery,
    parse_limit,
    parse_order,
    parse_path,
    parse_window,
    quote_value,
)
from .series import (
    bucket_bounds,
    comparison_label,
    duration_labels,
    fill_histogram,
    histogram_chart,
    page_chart,
    pages_labels,
    realtime_chart,
    series_chart,
)
from .worldmap import WorldMap, world_map

#: Computes one extra template variable of a list page from its stats, query and limit.
ListExtra = Callable[[Stats, ViewQuery, int], Any]

#: The overview's lists and the only counts they show: fewer sums over a year of rows.
OVERVIEW_LISTS: Final[Mapping[str, tuple[str, ...]]] = {
    "page": ("visitors", "pageviews"),
    "source": ("sessions", "bounces"),
    "country": ("visitors", "pageviews"),
    "device_type": ("visitors", "pageviews"),
}


def overview() -> str:
    """Cards, the time series and the top pages, sources, countries and devices."""
    query = current_query()
    with open_stats(query) as stats:
        daily, previous_daily, compare, previous = compare_series(stats, query)
        totals = sum(daily.values(), Totals())
        chart, interval = series_chart(stats, query, daily, previous_daily, totals, compare)
        chart = annotated(chart, query.range, interval)
        lists = {
            name: stats.breakdown(BREAKDOWNS[name], query.range, limit=8, counts=counts)
            for name, counts in OVERVIEW_LISTS.items()
        }
        return render_page(
            "analytics/overview.html",
            query,
            totals=totals,
            previous=previous,
            compare=compare,
            comparison_label=comparison_label(compare, stats.tz),
            chart=chart,
            interval=interval,
            lists=lists,
            goals=overview_goals(stats, query.range),
            current_visitors=stats.current_visitors(),
            **freshness(stats),
        )


def compare_series(
    stats: Stats, query: ViewQuery
) -> tuple[dict[dt.date, Totals], dict[dt.date, Totals] | None, Compared | None, Totals | None]:
    """The range's daily totals, the comparison's (whole days, for the chart), how the
    comparison lines up (:mod:`~flask_analytics.reports.compare`) and its totals like
    for like; the last three None without a comparison (or a filtered one before the
    oldest raw event)."""
    setting = query.compared
    comparison = setting.range if setting is not None else None
    if comparison is not None and not stats.covers(comparison):
        comparison = None  # a filtered view before the oldest raw event: no comparison
    if comparison is None or setting is None:
        return stats.daily_totals(query.range), None, None, None
    if comparison.end + dt.timedelta(days=1) == query.range.start:
        both = stats.daily_totals(comparison.span(query.range))
        daily = {d: both[d] for d in query.range.dates()}
        previous_daily = {d: both[d] for d in comparison.dates()}
    else:
        daily = stats.daily_totals(query.range)
        previous_daily = stats.daily_totals(comparison)
    compare = compared(stats, query.range, setting)
    previous, compare = compared_totals(stats, compare, previous_daily)
    return daily, previous_daily, compare, previous


def pages() -> str:
    """Every page, ``limit`` a page (``page=N``, sorted by ``order``), then the top entry
    and exit pages."""
    query = current_query()
    window = parse_window(request.args, 25)
    limit = window.limit or 25
    order = parse_order(request.args)
    listed = order.applied(BREAKDOWNS["page"]) if order else BREAKDOWNS["page"]
    # The pager's links keep an explicit limit and the order; every other parameter is
    # the view's own.
    extra = {"limit": str(limit)} if request.args.get("limit") else {}
    if order is not None:
        extra["order"] = order.param()
    with open_stats(query) as stats:
        top, total = stats.breakdown_page(listed, query.range, limit=limit, offset=window.offset)
        return render_page(
            "analytics/pages.html",
            query,
            extra=extra,
            limit=limit,
            totals=stats.totals(query.range),
            top=top,
            listed=listed,
            total=total or 0,
            offset=window.offset,
            entries=stats.breakdown(BREAKDOWNS["entry_page"], query.range, limit=limit),
            exits=stats.breakdown(BREAKDOWNS["exit_page"], query.range, limit=limit),
            **app_panels(stats, query.range, limit),
            hostnames=stats.breakdown(BREAKDOWNS["hostname"], query.range, limit=limit),
            **freshness(stats),
        )


def page_detail() -> str:
    """One page: its numbers against the comparison, its daily chart (with the
    comparison's line) and its referrers (previous pages of the site included)."""
    query = current_query()
    path = parse_path(request.args)
    with open_stats(query) as stats:
        detail = page_details(stats, query, path)
        metric = "pageviews" if query.metric == "pageviews" else "visitors"
        return render_page(
            "analytics/page_detail.html",
            query,
            extra={"path": path},
            path=path,
            row=detail.row,
            previous=detail.previous,
            compare=detail.compare,
            comparison_label=comparison_label(detail.compare, stats.tz),
            chart=annotated(
                page_chart(
                    detail.daily,
                    query.range,
                    metric,
                    stats.today,
                    previous_daily=detail.previous_daily,
                    compare=detail.compare,
                ),
                query.range,
                "day" if query.range.days <= 92 else "month",
            ),
            chart_metric=metric,
            exit_rate=detail.exit_rate(detail.row),
            previous_exit_rate=detail.exit_rate(detail.previous),
            exits_dimension=BREAKDOWNS["exit_page"],
            referrers=detail.referrers,
            **freshness(stats),
        )


def parse_more(args: Mapping[str, str], names: Sequence[str]) -> str | None:
    """The ``more`` parameter: which of the page's panels ``names`` shows more rows."""
    value = args.get("more")
    if value is None or value == "":
        return None
    if value not in names:
        raise BadQuery(f"more must be one of {', '.join(names)}, not {quote_value(value)}.")
    return value


def _list_page(
    template: str,
    names: Sequence[str],
    default_limit: int,
    *,
    params: Mapping[str, str] | None = None,
    **extra: ListExtra,
) -> str:
    """A page of breakdown lists ``names`` (panels), plus ``extra`` variables computed per
    request (``params``: the page's own parameters, kept by its links).

    Each panel shows ``default_limit`` rows. ``more=NAME`` shows ``limit`` rows (default
    twice as many) of panel NAME only, and the page's links keep both; without it,
    ``limit`` applies to every panel (and to the ``extra`` variables). ``order`` sorts
    the panel ``more`` names (a page of one panel: that one); ``sorts`` tells the
    template each panel's breakdown as sorted.
    """
    query = current_query()
    more = parse_more(request.args, names) if names else None
    limit = parse_limit(request.args, default_limit * 2 if more else default_limit)
    limits = {name: limit if more in (None, name) else default_limit for name in names}
    if more is not None:
        params = {**(params or {}), "more": more, "limit": str(limit)}
    sorts = {name: BREAKDOWNS[name] for name in names}
    order = parse_order(request.args)
    if order is not None:
        target = more if more is not None or len(names) != 1 else names[0]
        if target is None:
            raise BadQuery(
                "order sorts one panel: give more=PANEL too"
                + (f" (one of {', '.join(names)})." if names else "; this page has none.")
            )
        sorts[target] = order.applied(sorts[target])
        params = {**(params or {}), "order": order.param()}
    with open_stats(query) as stats:
        return render_page(
            template,
            query,
            extra=params,
            limit=limit,
            limits=limits,
            step=default_limit,
            more=more,
            sorts=sorts,
            totals=stats.totals(query.range),
            lists={
                name: stats.breakdown(sorts[name], query.range, limit=limits[name])
                for name in names
            },
            **{key: make(stats, query, limit) for key, make in extra.items()},
            **freshness(stats),
        )


def sources() -> str:
    """Channels, sources, referrers and UTM parameters (``more=NAME``: more of one)."""
    names = (
        "channel", "source", "referrer", "utm_source", "utm_medium", "utm_campaign",
        "utm_term", "utm_content",
    )  # fmt: skip
    return _list_page("analytics/sources.html", names, 10)


def _world(stats: Stats, query: ViewQuery, limit: int) -> WorldMap:
    """The world map of the range: every country's visitors."""
    rows = stats.breakdown(BREAKDOWNS["country"], query.range, limit=None, counts=("visitors",))
    return world_map((row.key, row.counts["visitors"]) for row in rows)


def locations() -> str:
    """The world map, countries, then regions, cities and languages (``more=NAME``: more
    of one)."""
    return _list_page(
        "analytics/locations.html", ("country", "region", "city", "language"), 50, world=_world
    )


def devices() -> str:
    """Device types, browsers and operating systems, their versions and screen sizes
    (``more=NAME``: more of one)."""
    names = ("device_type", "browser", "os", "browser_version", "os_version", "screen")
    return _list_page("analytics/devices.html", names, 10)


def _custom_events(stats: Stats, query: ViewQuery, limit: int) -> list[Row]:
    """The host's events (the tracker's own ones left out)."""
    return stats.breakdown(BREAKDOWNS["event"], query.range, limit=limit, exclude=INTERNAL_EVENTS)


def _internal_events(stats: Stats, query: ViewQuery, limit: int) -> list[Row]:
    """The tracker's own events (outbound links, downloads...), whatever the limit."""
    rows = stats.breakdown(BREAKDOWNS["event"], query.range, limit=MAX_LIMIT)
    return [r for r in rows if r.key in INTERNAL_EVENTS]


def _custom_dimension_rows(
    stats: Stats, query: ViewQuery, limit: int
) -> list[tuple[Breakdown, list[Row]]]:
    """Each custom dimension's breakdown and rows (a built-in name hides it)."""
    return [
        (d, stats.breakdown(d, query.range, limit=limit))
        for d in custom_breakdowns()
        if d.name not in BREAKDOWNS
    ]


def events() -> str:
    """Custom events, the tracker's own events and the custom dimensions; with one event
    selected (``filter=event:is:NAME``), its properties: keys, and the values of the key
    ``prop`` names (see :mod:`.properties`)."""
    wanted = parse_prop(request.args)
    return _list_page(
        "analytics/events.html",
        (),
        50,
        params={"prop": wanted} if wanted is not None else None,
        custom=_custom_events,
        internal=_internal_events,
        dimensions=_custom_dimension_rows,
        properties=lambda stats, query, limit: properties(stats, query, limit, wanted),
    )


def engagement() -> str:
    """Visit duration and pages per visit, as histograms; page experience per page."""
    query = current_query()
    with open_stats(query) as stats:
        totals = stats.totals(query.range)
        setting = query.compared
        previous: Totals | None = None
        compare: Compared | None = None
        if setting is not None and stats.covers(setting.range):
            previous, compare = compared_totals(stats, compared(stats, query.range, setting))
        durations = stats.sessions_histogram(query.range, "duration_bucket")
        pages_rows = stats.sessions_histogram(query.range, "pages_bucket")
        duration_bounds = bucket_bounds(DURATION_BUCKETS, durations)
        pages_bounds = bucket_bounds(PAGES_BUCKETS, pages_rows)
        durations = fill_histogram(durations, duration_bounds)
        pages_rows = fill_histogram(pages_rows, pages_bounds)
        d_labels = duration_labels(duration_bounds)
        p_labels = pages_labels(pages_bounds)
        return render_page(
            "analytics/engagement.html",
            query,
            session_minutes=current_state().settings.session_timeout // 60,
            totals=totals,
            previous=previous,
            compare=compare,
            durations=list(zip(d_labels, durations, strict=True)),
            pages_rows=list(zip(p_labels, pages_rows, strict=True)),
            duration_chart=histogram_chart(durations, d_labels, "long"),
            pages_chart=histogram_chart(pages_rows, p_labels, "pages"),
            experience=panel(stats, query.range),
            vital_labels=VITAL_LABELS,
            **freshness(stats),
        )


def realtime() -> str:
    """Current visitors, the last 30 minutes per minute, and today's totals."""
    with open_stats() as stats:
        live = stats.realtime()
        today = DateRange(stats.today, stats.today)
        return render_page(
            "analytics/realtime.html",
            None,
            live=live,
            chart=realtime_chart(live.minutes),
            totals=stats.totals(today),
            **freshness(stats),
        )


def app_panels(stats: Stats, rng: DateRange, limit: int) -> dict[str, Any]:
    """The Endpoints and Error pages panels (raw events: None where they are gone)."""
    try:
        return {
            "endpoints": endpoint_rows(endpoint_timings(stats, rng)[:limit]),
            "errors": error_pages(stats, rng, limit=limit),
        }
    except RawDataMissing:
        return {"endpoints": None, "errors": None}


def endpoint_rows(found: list[EndpointTiming]) -> list[Row]:
    """The endpoints panel's rows: pageviews and visits, bounce rate, response times."""
    return [
        Row(
            t.endpoint,
            {"pageviews": t.pageviews, "visits": t.visits},
            {"bounce_rate": t.bounce_rate, "p50_ms": t.p50_ms, "p95_ms": t.p95_ms},
        )
        for t in found
    ]
