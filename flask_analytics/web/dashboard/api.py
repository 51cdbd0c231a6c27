"""The dashboard's JSON API and CSV exports: totals, breakdowns and realtime."""

from __future__ import annotations

from flask import Response, jsonify, request

from ...state import current_state
from .current import current_query, offered_breakdowns, open_stats
from .export import csv_response, json_number, row_json, totals_json
from .query import MAX_LIMIT, parse_format, parse_limit, quote_value


def api_stats() -> Response:
    """Totals and rates of the period and the one before (JSON or CSV)."""
    query = current_query()
    fmt = parse_format(request.args)
    comparison = query.range.previous() if query.compare == "none" else query.comparison
    assert comparison is not None
    with open_stats(query) as stats:
        totals = stats.totals(query.range)
        previous = stats.totals(comparison) if stats.covers(comparison) else None
        as_of = stats.data_as_of()
    if fmt == "csv":
        header = ["period", "start", "end", *totals.counts(), *totals.rates()]
        rows = [
            [label, rng.start.isoformat(), rng.end.isoformat(), *t.counts().values()]
            + [json_number(v) for v in t.rates().values()]
            for label, rng, t in (
                ("current", query.range, totals),
                *((("previous", comparison, previous),) if previous is not None else ()),
            )
        ]
        return csv_response(header, rows, f"stats-{query.range.start}-{query.range.end}.csv")
    return jsonify(
        {
            **totals_json(query.range, totals),
            "timezone": current_state().settings.timezone.key,
            "filters": [f.param() for f in query.filters],
            "data_as_of": as_of.isoformat() + "Z" if as_of else None,
            "visitors_note": "Visitors over a range are the sum of daily unique visitors.",
            "previous": totals_json(comparison, previous) if previous is not None else None,
        }
    )


def api_breakdown(dimension: str) -> Response:
    """The rows of one breakdown, built-in or custom (JSON or CSV); 404 for an unknown one."""
    known = offered_breakdowns()
    breakdown = known.get(dimension)
    if breakdown is None:
        response = jsonify(
            error=f"Unknown dimension {quote_value(dimension)}; use one of {', '.join(known)}."
        )
        response.status_code = 404
        return response
    query = current_query()
    fmt = parse_format(request.args)
    limit = parse_limit(request.args, MAX_LIMIT if fmt == "csv" else 100)
    with open_stats(query) as stats:
        rows = stats.breakdown(breakdown, query.range, limit=limit)
    if fmt == "csv":
        header = [breakdown.name, *breakdown.counts, *breakdown.rates]
        return csv_response(
            header,
            [
                [r.key, *r.counts.values(), *(json_number(v) for v in r.rates.values())]
                for r in rows
            ],
            f"{breakdown.name}-{query.range.start}-{query.range.end}.csv",
        )
    return jsonify(
        {
            "dimension": breakdown.name,
            "start": query.range.start.isoformat(),
            "end": query.range.end.isoformat(),
            "limit": limit,
            "filters": [f.param() for f in query.filters],
            "rows": [row_json(breakdown, r) for r in rows],
        }
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
