"""The dashboard's JSON API and CSV exports: totals, breakdowns and realtime."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from flask import Response, jsonify, request

from ...core.rollups import DURATION_BUCKETS, PAGES_BUCKETS
from ...reports import (
    BadFilter,
    BadQuestion,
    Breakdown,
    DateRange,
    Query,
    Totals,
    parse_filter,
)
from ...reports.breakdowns import ENDPOINT, SCREEN_WIDTH, prop_breakdown
from ...reports.compare import Compared, compared, compared_totals
from ...reports.endpoints import endpoint_timings, error_pages
from ...reports.experience import VITALS, page_experience
from ...reports.filters import MAX_VALUE_LENGTH, NONE_VALUE, PROP_PREFIX
from ...reports.totals import ratio
from ...state import current_state
from . import experience
from .current import current_query, custom_columns, offered_breakdowns, open_stats
from .export import csv_response, json_number, page_suffix, row_json, totals_json
from .goals import breakdown_goal
from .query import (
    MAX_LIMIT,
    BadQuery,
    ViewQuery,
    parse_format,
    parse_limit,
    parse_order,
    parse_window,
    quote_value,
)
from .series import bucket_bounds, duration_labels, fill_histogram, pages_labels

#: Values a suggestion answers by default.
SUGGEST_LIMIT: Final = 10
#: Control characters (C0, DEL): no stored event name holds them.
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


def api_stats() -> Response:
    """Totals and rates of the period and the one before (JSON or CSV), like for like:
    while the period holds today, the one before stops at the same point (see
    :mod:`~flask_analytics.reports.compare`; ``previous.until``)."""
    query = current_query()
    fmt = parse_format(request.args)
    # compare=none still answers the previous period (the API's shape has one).
    setting = query.compared or dataclasses.replace(query, compare="previous").compared
    assert setting is not None
    question = Query(query.range, query.filters)
    previous: Totals | None = None
    compare: Compared | None = None
    with open_stats(query) as stats:
        answer = stats.answer(question, offered_breakdowns())
        if stats.covers(setting.range):
            previous, compare = compared_totals(stats, compared(stats, query.range, setting))
        as_of = stats.data_as_of()
        today_as_of = stats.live.today_as_of() if question.range.end >= stats.today else None
    totals = answer.totals
    assert totals is not None
    comparison = setting.range
    if fmt == "csv":
        header = ["period", "start", "end", *totals.counts(), *totals.rates(), "until"]
        rows = [
            [label, rng.start.isoformat(), rng.end.isoformat(), *t.counts().values()]
            + [json_number(v) for v in t.rates().values()]
            + [until]
            for label, rng, t, until in (
                ("current", query.range, totals, ""),
                *(
                    (("previous", comparison, previous, utc_text(compare.until) or ""),)
                    if previous is not None and compare is not None
                    else ()
                ),
            )
        ]
        return csv_response(header, rows, f"stats-{query.range.start}-{query.range.end}.csv")
    return jsonify(
        {
            **totals_json(query.range, totals),
            "timezone": current_state().settings.timezone.key,
            "filters": [f.param() for f in query.filters],
            "data_as_of": utc_text(as_of),
            # When the range holds today: the start of the run today's numbers come
            # from (None: today is computed live from raw events).
            "today_as_of": utc_text(today_as_of),
            "visitors_note": "Visitors over a range are the sum of daily unique visitors.",
            "previous": (
                compared_json(comparison, previous, compare)
                if previous is not None and compare is not None
                else None
            ),
        }
    )


def utc_text(moment: dt.datetime | None) -> str | None:
    """A naive UTC time as ISO 8601 with ``Z``, or None."""
    return moment.isoformat() + "Z" if moment is not None else None


def compared_json(rng: DateRange, totals: Totals, compare: Compared) -> dict[str, Any]:
    """The comparison's totals as the stats API answers them: ``until`` is where its
    numbers stop (None: whole days), ``has_data`` False when nothing was recorded by its
    end (a change against it means nothing)."""
    return {
        **totals_json(rng, totals),
        "until": utc_text(compare.until),
        "has_data": compare.has_data,
    }


def api_breakdown(dimension: str) -> Response:
    """The rows of one breakdown, built-in or custom (JSON or CSV); 404 for an unknown one.

    ``order`` sorts by another of the breakdown's counts (``visitors``, ``visitors:desc``:
    largest first; ``visitors:asc``: smallest first); ``goal=NAME``
    answers the rows that converted on that goal instead (:mod:`.goals`).
    """
    known = {**offered_breakdowns(), SCREEN_WIDTH.name: SCREEN_WIDTH, ENDPOINT.name: ENDPOINT}
    if dimension not in known and dimension.startswith(PROP_PREFIX):
        known[dimension] = parse_prop_breakdown(dimension[len(PROP_PREFIX) :])
    if dimension not in known:
        response = jsonify(
            error=f"Unknown dimension {quote_value(dimension)}; use one of {', '.join(known)}."
        )
        response.status_code = 404
        return response
    with_goal = breakdown_goal(known[dimension])
    if with_goal is not None:
        return with_goal
    query = current_query()
    fmt = parse_format(request.args)
    # CSV: the whole list unless a page of it is asked for.
    window = parse_window(request.args, None if fmt == "csv" else 100)
    order = parse_order(request.args)
    question = Query(
        query.range,
        query.filters,
        dimension=dimension,
        order=order.column if order else None,
        ascending=order.ascending if order else False,
        limit=window.limit,
        offset=window.offset,
    )
    with open_stats(query) as stats:
        try:
            answer = stats.answer(question, known)
        except BadQuestion as error:
            raise BadQuery(str(error)) from None
    breakdown, rows = answer.breakdown, answer.rows
    assert breakdown is not None
    if fmt == "csv":
        parent = [breakdown.parent] if breakdown.parent else []
        header = [*parent, breakdown.name, *breakdown.counts, *breakdown.rates]
        response = csv_response(
            header,
            [
                [
                    *([r.parent] if parent else []),
                    r.key,
                    *r.counts.values(),
                    *(json_number(v) for v in r.rates.values()),
                ]
                for r in rows
            ],
            f"{breakdown.name}-{query.range.start}-{query.range.end}{page_suffix(window)}.csv",
        )
    else:
        response = jsonify(
            {
                "dimension": breakdown.name,
                "start": query.range.start.isoformat(),
                "end": query.range.end.isoformat(),
                "limit": window.limit,
                "offset": window.offset,
                "page": window.page,
                "total": answer.total,
                "order": breakdown.sort,
                "ascending": breakdown.ascending,
                "filters": [f.param() for f in query.filters],
                "rows": [row_json(breakdown, r) for r in rows],
            }
        )
    response.headers["X-Total-Count"] = str(answer.total)
    return response


def parse_prop_breakdown(key: str) -> Breakdown:
    """The ``prop:KEY`` breakdown of a request (:class:`BadQuery` for a key no filter can
    name)."""
    try:
        return prop_breakdown(key)
    except BadFilter as error:
        raise BadQuery(str(error)) from None


def api_prop_breakdown(key: str) -> Response:
    """``/api/breakdown/prop:KEY``, for any key (one holding ``/`` too)."""
    return api_breakdown(PROP_PREFIX + key)


#: Keys ``/api/props`` answers by default (``limit=`` up to :data:`MAX_LIMIT`).
PROP_KEYS_LIMIT: Final = 50


def api_props() -> Response:
    """Event property keys of the period (``event=NAME``: of that event only), each with
    how many events carry it, most first, honouring the filters (JSON or CSV)."""
    query = current_query()
    fmt = parse_format(request.args)
    limit = parse_limit(request.args, PROP_KEYS_LIMIT)
    event = request.args.get("event") or None
    if event is not None and (len(event) > MAX_VALUE_LENGTH or _CONTROL.search(event)):
        raise BadQuery(f"event must be an event name, not {quote_value(event)}.")
    with open_stats(query) as stats:
        keys, total = stats.prop_keys(query.range, event=event, limit=limit)
    if fmt == "csv":
        name = "props" if event is None else f"props-{re.sub(r'[^A-Za-z0-9_]+', '-', event)}"
        response = csv_response(
            ["key", "events"], keys, f"{name}-{query.range.start}-{query.range.end}.csv"
        )
    else:
        response = jsonify(
            {
                "event": event,
                "start": query.range.start.isoformat(),
                "end": query.range.end.isoformat(),
                "limit": limit,
                "total": total,
                "filters": [f.param() for f in query.filters],
                "keys": [{"key": key, "events": events} for key, events in keys],
            }
        )
    response.headers["X-Total-Count"] = str(total)
    return response


#: Keys ``/api/devices`` may group by (``by=``), in the device table's order.
DEVICE_KEYS: Final = ("device_type", "browser", "os")
#: Counts of a device row.
DEVICE_COUNTS: Final = ("visitors", "sessions", "pageviews")
#: The session distributions: name -> (bucket column, declared lower bounds, labels).
DISTRIBUTIONS: Final[
    Mapping[str, tuple[str, Sequence[int], Callable[[Sequence[int]], list[str]]]]
] = {
    "duration": ("duration_bucket", DURATION_BUCKETS, duration_labels),
    "pages": ("pages_bucket", PAGES_BUCKETS, pages_labels),
}


def api_sessions() -> Response:
    """Session-length and pages-per-session distributions (JSON or CSV): sessions per
    bucket (lower bounds, empty buckets included), their share, duration and pageviews."""
    query = current_query()
    fmt = parse_format(request.args)
    distributions: dict[str, list[dict[str, Any]]] = {}
    with open_stats(query) as stats:
        for name, (column, declared, labels) in DISTRIBUTIONS.items():
            rows = stats.sessions_histogram(query.range, column)
            bounds = bucket_bounds(declared, rows)
            filled = fill_histogram(rows, bounds)
            sessions = sum(r.counts["sessions"] for r in filled)
            distributions[name] = [
                {
                    column: r.key,
                    "label": label,
                    **r.counts,
                    "share": json_number(ratio(r.counts["sessions"], sessions)),
                    **{k: json_number(v) for k, v in r.rates.items()},
                }
                for r, label in zip(filled, labels(bounds), strict=True)
            ]
    total = sum(r["sessions"] for r in distributions["duration"])
    if fmt == "csv":
        header = ["distribution", "bucket", "label", "sessions", "share", "total_duration_s"]
        header += ["pageviews", "views_per_session"]
        return csv_response(
            header,
            [
                [name, row[DISTRIBUTIONS[name][0]], *(row[h] for h in header[2:])]
                for name, rows in distributions.items()
                for row in rows
            ],
            f"sessions-{query.range.start}-{query.range.end}.csv",
        )
    return jsonify(
        {
            "start": query.range.start.isoformat(),
            "end": query.range.end.isoformat(),
            "filters": [f.param() for f in query.filters],
            "sessions": total,
            **distributions,
        }
    )


def parse_device_keys(value: str | None) -> tuple[str, ...]:
    """The ``by`` parameter of ``/api/devices``: device_type, browser and/or os (comma
    separated, each once), or ``screen`` or ``screen_width`` alone; default all three."""
    if not value:
        return DEVICE_KEYS
    keys = tuple(value.split(","))
    if keys in (("screen",), ("screen_width",)):
        return keys
    if len(set(keys)) != len(keys) or not set(keys) <= set(DEVICE_KEYS):
        raise BadQuery(
            f"by must list {', '.join(DEVICE_KEYS)} (comma separated, each once), "
            f"or be screen or screen_width alone, not {quote_value(value)}."
        )
    return tuple(k for k in DEVICE_KEYS if k in keys)


def api_devices() -> Response:
    """Devices by type, browser and OS together (``by=`` fewer of them), by screen-size
    class (``by=screen``) or by screen width (``by=screen_width``): visitors, visits and
    pageviews per row, most visitors first, paginated like a breakdown (JSON or CSV)."""
    keys = parse_device_keys(request.args.get("by"))
    if len(keys) == 1 and keys[0].startswith("screen"):
        return api_breakdown(keys[0])
    query = current_query()
    fmt = parse_format(request.args)
    window = parse_window(request.args, None if fmt == "csv" else 100)
    with open_stats(query) as stats:
        rows, total = stats.grouped_page(
            "DailyDevice",
            query.range,
            keys,
            DEVICE_COUNTS,
            sort="visitors",
            limit=window.limit,
            offset=window.offset,
        )
    if fmt == "csv":
        response = csv_response(
            [*keys, *DEVICE_COUNTS],
            [[*key, *(counts[c] for c in DEVICE_COUNTS)] for key, counts in rows],
            f"devices-{query.range.start}-{query.range.end}{page_suffix(window)}.csv",
        )
    else:
        response = jsonify(
            {
                "start": query.range.start.isoformat(),
                "end": query.range.end.isoformat(),
                "by": list(keys),
                "limit": window.limit,
                "offset": window.offset,
                "page": window.page,
                "total": total,
                "order": "visitors",
                "filters": [f.param() for f in query.filters],
                "rows": [{**dict(zip(keys, key, strict=True)), **counts} for key, counts in rows],
            }
        )
    response.headers["X-Total-Count"] = str(total)
    return response


def api_experience() -> Response:
    """Page experience (JSON or CSV): the site's row and each page's visitors, median and
    average time on page and scroll depth, and every web vital's p75, samples and
    good / needs-improvement / poor shares, pages by visitors (``limit``, ``page`` or
    ``offset``). Read from raw events: 400 for ranges whose raw events were purged."""
    query = current_query()
    fmt = parse_format(request.args)
    window = parse_window(request.args, None if fmt == "csv" else 100)
    with open_stats(query) as stats:
        found = page_experience(stats, query.range, limit=window.limit, offset=window.offset)
    if fmt == "csv":
        name = f"experience-{query.range.start}-{query.range.end}{page_suffix(window)}.csv"
        response = csv_response(experience.csv_header(), experience.csv_rows(found), name)
    else:
        response = jsonify(
            {
                "start": query.range.start.isoformat(),
                "end": query.range.end.isoformat(),
                "limit": window.limit,
                "offset": window.offset,
                "page": window.page,
                "total": found.total,
                "order": "visitors",
                "filters": [f.param() for f in query.filters],
                "thresholds": {name: list(bounds) for name, bounds in VITALS.items()},
                "site": experience.page_json(found.site),
                "rows": [experience.page_json(r) for r in found.rows],
            }
        )
    response.headers["X-Total-Count"] = str(found.total)
    return response


def api_endpoints() -> Response:
    """Per Flask endpoint (JSON or CSV): pageviews, visits, bounce rate and the server
    response time's p50 and p95 (ms; server pageviews only), most pageviews first. Read
    from raw events, filters applied."""
    query = current_query()
    fmt = parse_format(request.args)
    with open_stats(query) as stats:
        found = endpoint_timings(stats, query.range)
    header = ["endpoint", "pageviews", "visits", "bounce_rate", "timed", "p50_ms", "p95_ms"]
    rows = [
        [r.endpoint, r.pageviews, r.visits, r.bounce_rate, r.timed, r.p50_ms, r.p95_ms]
        for r in found
    ]
    return _table(query, fmt, "endpoints", header, rows)


def api_errors() -> Response:
    """Error pages (JSON or CSV): paths answered 404 by referrer, with pageviews and
    visitors, most pageviews first (``limit``, default 100). Read from raw events."""
    query = current_query()
    fmt = parse_format(request.args)
    window = parse_window(request.args, 100)
    with open_stats(query) as stats:
        found = error_pages(stats, query.range, limit=window.limit or 100)
    header = ["path", "referrer", "pageviews", "visitors"]
    rows = [[r.path, r.referrer, r.pageviews, r.visitors] for r in found]
    return _table(query, fmt, "errors", header, rows)


def _table(
    query: ViewQuery, fmt: str, name: str, header: list[str], rows: list[list[Any]]
) -> Response:
    """Rows as CSV (``name-START-END.csv``) or JSON (objects keyed by ``header``)."""
    if fmt == "csv":
        return csv_response(header, rows, f"{name}-{query.range.start}-{query.range.end}.csv")
    return jsonify(
        start=query.range.start.isoformat(),
        end=query.range.end.isoformat(),
        filters=[f.param() for f in query.filters],
        rows=[dict(zip(header, row, strict=True)) for row in rows],
    )


def api_realtime() -> Response:
    """Current visitors and pageviews, and pageviews per minute of the last 30 minutes."""
    with open_stats() as stats:
        live = stats.realtime(limit=5)
    return jsonify(
        visitors=live.visitors,
        pageviews=live.pageviews,
        minutes=[{"start": m.start.isoformat(), "pageviews": m.pageviews} for m in live.minutes],
    )


def suggestion_breakdowns() -> dict[str, Breakdown]:
    """The breakdown giving each filter dimension's values: the API's."""
    return offered_breakdowns()


def api_suggest(dimension: str) -> Response:
    """Values of filter dimension ``dimension`` whose text holds ``q`` (any case), most
    frequent first, over the page's period and filters, the filter on ``dimension``
    itself left out: what the filter menu offers. ``(none)`` stands for the unknown value.

    ``prop:KEY`` answers the values of the ``prop:KEY`` breakdown; dimensions without a
    breakdown (undeclared custom columns) answer no values. A version is offered once,
    however many browsers (or systems) have it. With ``q``, the
    range's top :data:`MAX_LIMIT` values are searched.
    """
    try:
        parse_filter(f"{dimension}:is:{NONE_VALUE}", custom_columns())
    except BadFilter as error:
        response = jsonify(error=str(error))
        response.status_code = 404
        return response
    query = current_query()
    needle = request.args.get("q", "")
    if len(needle) > MAX_VALUE_LENGTH:
        raise BadQuery(f"q is at most {MAX_VALUE_LENGTH} characters long.")
    limit = parse_limit(request.args, SUGGEST_LIMIT)
    fmt = parse_format(request.args)
    others = dataclasses.replace(
        query, filters=tuple(f for f in query.filters if f.dimension != dimension)
    )
    breakdown = suggestion_breakdowns().get(dimension)
    if breakdown is None and dimension.startswith(PROP_PREFIX):
        breakdown = parse_prop_breakdown(dimension[len(PROP_PREFIX) :])
    values: list[dict[str, object]] = []
    if breakdown is not None:
        with open_stats(others) as stats:
            rows = stats.breakdown(
                breakdown,
                query.range,
                limit=MAX_LIMIT if needle else limit,
                counts=(breakdown.sort,),
            )
        wanted = needle.casefold()
        seen: set[str] = set()
        for row in rows:
            value = NONE_VALUE if row.key is None else str(row.key)
            if wanted in value.casefold() and value not in seen:
                seen.add(value)
                values.append({"value": value, breakdown.sort: row.counts[breakdown.sort]})
                if len(values) == limit:
                    break
    if fmt == "csv":
        counted = breakdown.sort if breakdown is not None else "count"
        return csv_response(
            ["value", counted],
            [[v["value"], v.get(counted)] for v in values],
            f"suggest-{re.sub(r'[^A-Za-z0-9_]+', '-', dimension)}-{query.range.start}.csv",
        )
    return jsonify(
        {
            "dimension": dimension,
            "q": needle,
            "start": query.range.start.isoformat(),
            "end": query.range.end.isoformat(),
            "filters": [f.param() for f in others.filters],
            "counted": breakdown.sort if breakdown is not None else None,
            "values": values,
        }
    )
