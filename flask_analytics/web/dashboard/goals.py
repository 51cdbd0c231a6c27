"""Goals and funnels on the dashboard: the Goals and Funnels pages, ``/api/goals``,
``goal=NAME`` breakdowns and ``/api/funnel/<name>`` (JSON and CSV). The numbers come
from :mod:`flask_analytics.reports.goals` and :mod:`flask_analytics.reports.funnels`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

from flask import Response, jsonify, request

from ...goals import Funnel, Goal
from ...reports import Breakdown, RawDataMissing, Row, Stats
from ...reports.funnels import FunnelStep, funnel_steps
from ...reports.goals import Conversions, Revenue, goal_breakdown, goal_totals, money
from ...reports.ranges import DateRange
from .current import (
    current_funnels,
    current_goals,
    current_query,
    freshness,
    offered_breakdowns,
    open_stats,
    render_page,
)
from .export import csv_response, json_number, page_suffix
from .query import BadQuery, ViewQuery, parse_format, parse_window, quote_value

#: Breakdowns the Goals page shows for the selected goal.
PAGE_BREAKDOWNS: Final = (
    "source",
    "channel",
    "utm_campaign",
    "page",
    "entry_page",
    "country",
    "device_type",
)
#: Counts and rate of a goal row, in the order tables and CSV show them.
GOAL_COLUMNS: Final = ("visitors", "conversions", "events", "conversion_rate")


def revenue_text(revenue: Sequence[Revenue]) -> str:
    """ "12.50 EUR; 3.00 USD": each currency's sum, never converted."""
    return "; ".join(f"{money(r.amount)} {r.currency}" for r in revenue)


def as_row(conversions: Conversions, key: Any) -> Row:
    """A goal row as the templates' tables read rows (counts plus the rate)."""
    return Row(
        key,
        {
            "visitors": conversions.visitors,
            "conversions": conversions.conversions,
            "events": conversions.events,
        },
        {"conversion_rate": conversions.conversion_rate},
    )


def goal_summary(stats: Stats, rng: DateRange) -> list[tuple[Goal, Row, tuple[Revenue, ...]]]:
    """Every goal's row over ``rng`` (the request's filters apply)."""
    goals = list(stats.goals.values())
    return [
        (goal, as_row(c, goal.name), c.revenue)
        for goal, c in zip(goals, goal_totals(stats, rng, goals), strict=True)
    ]


def overview_goals(stats: Stats, rng: DateRange) -> list[Row] | None:
    """The overview's Goals panel: each goal's row (None without goals, or when the range
    reaches days whose raw events are gone: goals are counted from raw events)."""
    if not stats.goals:
        return None
    try:
        stats.check_raw(rng, "Goal reports")
    except RawDataMissing:
        return None
    return [row for _goal, row, _revenue in goal_summary(stats, rng)]


def unknown(kind: str, name: str, known: Iterable[str]) -> str:
    """The message for an unknown goal or funnel name, listing the declared ones."""
    names = ", ".join(known) or "none are declared"
    return f"Unknown {kind} {quote_value(name)} ({kind}s: {names})."


def selected_goal(goals: dict[str, Goal]) -> Goal | None:
    """The ``goal`` parameter's goal (400 for an unknown name); else the first goal."""
    name = request.args.get("goal")
    if not name:
        return next(iter(goals.values()), None)
    if name not in goals:
        raise BadQuery(unknown("goal", name, goals))
    return goals[name]


def goals() -> str:
    """Every goal's conversions, rate and revenue; the selected goal's by source, page,
    country and device."""
    query = current_query()
    goals = current_goals()
    goal = selected_goal(goals)
    with open_stats(query) as stats:
        summary = goal_summary(stats, query.range)
        panels: list[tuple[Breakdown, list[tuple[Row, tuple[Revenue, ...]]], int]] = []
        if goal is not None:
            breakdowns = offered_breakdowns()
            for name in PAGE_BREAKDOWNS:
                rows, total = goal_breakdown(stats, breakdowns[name], query.range, goal, limit=8)
                panels.append(
                    (breakdowns[name], [(as_row(r, r.key), r.revenue) for r in rows], total)
                )
        return render_page(
            "analytics/goals.html",
            query,
            extra={"goal": goal.name} if goal is not None and request.args.get("goal") else None,
            goal=goal,
            summary=summary,
            panels=panels,
            revenue_text=revenue_text,
            totals=stats.totals(query.range),
            **freshness(stats),
        )


def api_goals() -> Response:
    """Every goal's visitors, conversions, events, conversion rate and revenue (JSON or CSV)."""
    query = current_query()
    fmt = parse_format(request.args)
    with open_stats(query) as stats:
        goals = list(stats.goals.values())
        rows = goal_totals(stats, query.range, goals)
    if fmt == "csv":
        return csv_response(
            ["goal", *GOAL_COLUMNS, "revenue"],
            [
                [
                    c.key.name,
                    c.visitors,
                    c.conversions,
                    c.events,
                    json_number(c.conversion_rate),
                    revenue_text(c.revenue),
                ]
                for c in rows
            ],
            f"goals-{query.range.start}-{query.range.end}.csv",
        )
    return jsonify(
        {
            "start": query.range.start.isoformat(),
            "end": query.range.end.isoformat(),
            "filters": [f.param() for f in query.filters],
            "rows": [
                {"goal": c.key.name, "description": c.key.description, **c.as_json()} for c in rows
            ],
        }
    )


def api_goal_breakdown(breakdown: Breakdown, goal_name: str) -> Response:
    """``/api/breakdown/<dimension>?goal=NAME``: the rows that converted, most conversions
    first, with each row's visitors, conversions, events, conversion rate and revenue."""
    goals = current_goals()
    if goal_name not in goals:
        raise BadQuery(unknown("goal", goal_name, goals))
    query = current_query()
    fmt = parse_format(request.args)
    window = parse_window(request.args, None if fmt == "csv" else 100)
    with open_stats(query) as stats:
        rows, total = goal_breakdown(
            stats,
            breakdown,
            query.range,
            goals[goal_name],
            limit=window.limit,
            offset=window.offset,
        )
    if fmt == "csv":
        response = csv_response(
            [breakdown.name, *GOAL_COLUMNS, "revenue"],
            [
                [
                    r.key,
                    r.visitors,
                    r.conversions,
                    r.events,
                    json_number(r.conversion_rate),
                    revenue_text(r.revenue),
                ]
                for r in rows
            ],
            f"{breakdown.name}-{goal_name}-{query.range.start}-{query.range.end}"
            f"{page_suffix(window)}.csv",
        )
    else:
        response = jsonify(
            {
                "dimension": breakdown.name,
                "goal": goal_name,
                "start": query.range.start.isoformat(),
                "end": query.range.end.isoformat(),
                "limit": window.limit,
                "offset": window.offset,
                "page": window.page,
                "total": total,
                "order": "conversions",
                "filters": [f.param() for f in query.filters],
                "rows": [{breakdown.name: r.key, **r.as_json()} for r in rows],
            }
        )
    response.headers["X-Total-Count"] = str(total)
    return response


def breakdown_goal(breakdown: Breakdown) -> Response | None:
    """The goal breakdown answer when the request has ``goal=NAME``, else None."""
    name = request.args.get("goal")
    if not name:
        return None
    if breakdown.parent:
        # Conversions are grouped by one column; a version alone would merge browsers.
        raise BadQuery(
            f"goal= is not offered on {breakdown.name}, whose rows pair {breakdown.parent} "
            f"and {breakdown.name}: filter on both instead."
        )
    return api_goal_breakdown(breakdown, name)


def _funnel(name: str | None) -> Funnel | None:
    """The named funnel (400 for an unknown name); None asks for the first one."""
    funnels = current_funnels()
    if not name:
        return next(iter(funnels.values()), None)
    if name not in funnels:
        raise BadQuery(unknown("funnel", name, funnels))
    return funnels[name]


def _funnel_answer(
    funnel: Funnel,
) -> tuple[ViewQuery, list[FunnelStep], DateRange | None, list[FunnelStep] | None, Any]:
    query = current_query()
    goals = current_goals()
    with open_stats(query) as stats:
        steps = funnel_steps(stats, query.range, funnel, goals)
        comparison = query.comparison
        previous = None
        if comparison is not None and stats.covers(comparison):
            previous = funnel_steps(stats, comparison, funnel, goals)
        else:
            comparison = None
        return query, steps, comparison, previous, freshness(stats)


def funnels() -> str:
    """The selected funnel (``funnel=NAME``, default the first): visitors per step,
    drop-off and conversion from step 1, against the comparison period."""
    funnel = _funnel(request.args.get("funnel"))
    if funnel is None:
        return render_page("analytics/funnels.html", current_query(), funnel=None, funnels={})
    query, steps, comparison, previous, fresh = _funnel_answer(funnel)
    return render_page(
        "analytics/funnels.html",
        query,
        extra={"funnel": funnel.name} if request.args.get("funnel") else None,
        funnel=funnel,
        funnels=current_funnels(),
        steps=steps,
        comparison=comparison,
        previous=previous,
        **fresh,
    )


def api_funnel(name: str) -> Response:
    """One funnel's steps (JSON or CSV; 404 for an unknown funnel)."""
    funnels = current_funnels()
    if name not in funnels:
        response = jsonify(error=unknown("funnel", name, funnels))
        response.status_code = 404
        return response
    fmt = parse_format(request.args)
    query, steps, comparison, previous, _ = _funnel_answer(funnels[name])
    if fmt == "csv":
        header = [
            "period",
            "step",
            "goal",
            "visitors",
            "dropoff",
            "dropoff_rate",
            "conversion_rate",
        ]
        periods = [("current", steps), *((("previous", previous),) if previous else ())]
        return csv_response(
            header,
            [
                [
                    label,
                    s.step,
                    s.goal.name,
                    s.visitors,
                    s.dropoff,
                    json_number(s.dropoff_rate),
                    json_number(s.conversion_rate),
                ]
                for label, rows in periods
                for s in rows
            ],
            f"funnel-{name}-{query.range.start}-{query.range.end}.csv",
        )
    return jsonify(
        {
            "funnel": name,
            "start": query.range.start.isoformat(),
            "end": query.range.end.isoformat(),
            "filters": [f.param() for f in query.filters],
            "steps": [_step_json(s) for s in steps],
            "previous": (
                {
                    "start": comparison.start.isoformat(),
                    "end": comparison.end.isoformat(),
                    "steps": [_step_json(s) for s in previous],
                }
                if comparison is not None and previous is not None
                else None
            ),
        }
    )


def _step_json(step: FunnelStep) -> dict[str, Any]:
    return {
        key: json_number(value) if key.endswith("_rate") else value
        for key, value in step.as_json().items()
    }
