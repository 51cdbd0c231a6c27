"""One page's numbers for its detail page and ``/api/page``: its totals, its days and
the comparison's (like for like, see :mod:`~flask_analytics.reports.compare`), and its
referrers with the previous pages of the site (see :mod:`~flask_analytics.reports.referrers`)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from flask import Response, jsonify, request

from ...reports import BREAKDOWNS, Row, Stats, Totals, ratio
from ...reports.compare import Compared, compared, compared_page
from ...reports.referrers import PreviousPage, page_referrers
from .current import current_query, open_stats
from .export import csv_response, json_number, range_json
from .query import ViewQuery, parse_format, parse_path


@dataclass(frozen=True)
class PageDetail:
    """What the page detail shows of one path."""

    path: str
    #: The page's row over the range (None: no pageview).
    row: Row | None
    #: Visitors and pageviews per day of the range.
    daily: dict[dt.date, Totals]
    #: How the comparison lines up (None without one) and the page's row over it.
    compare: Compared | None
    previous: Row | None
    #: Visitors and pageviews per day of the comparison, whole days (the chart's line).
    previous_daily: dict[dt.date, Totals] | None
    referrers: list[Row]
    #: False when the range's raw events are gone: no previous pages told apart.
    previous_pages: bool

    def exit_rate(self, row: Row | None) -> float | None:
        if row is None or not row.counts["pageviews"]:
            return None
        return row.counts["exits"] / row.counts["pageviews"]


def page_detail(
    stats: Stats, query: ViewQuery, path: str, *, referrer_limit: int | None = 25
) -> PageDetail:
    """``path``'s numbers over ``query``'s range and comparison."""
    found = stats.breakdown(BREAKDOWNS["page"], query.range, limit=1, path=path)
    setting = query.compared
    compare: Compared | None = None
    previous: Row | None = None
    previous_daily: dict[dt.date, Totals] | None = None
    if setting is not None and stats.covers(setting.range):
        compare = compared(stats, query.range, setting)
        previous, compare = compared_page(stats, compare, path)
        previous_daily = stats.page_daily(setting.range, path)
    referrers, split = page_referrers(stats, query.range, path, limit=referrer_limit)
    return PageDetail(
        path=path,
        row=found[0] if found else None,
        daily=stats.page_daily(query.range, path),
        compare=compare,
        previous=previous,
        previous_daily=previous_daily,
        referrers=referrers,
        previous_pages=split,
    )


def _row_json(row: Row | None) -> dict[str, Any]:
    page = BREAKDOWNS["page"]
    counts = row.counts if row is not None else dict.fromkeys(page.counts, 0)
    rates = row.rates if row is not None else dict.fromkeys(page.rates)
    exits = ratio(counts["exits"], counts["pageviews"])
    return {
        "totals": dict(counts),
        "rates": {**{k: json_number(v) for k, v in rates.items()}, "exit_rate": json_number(exits)},
    }


def api_page() -> Response:
    """``/api/page?path=``: one page's totals and rates, its comparison's (like for like:
    ``previous.until``, ``previous.has_data``), its days and its referrers, the
    previous pages of the site included (JSON); the two periods' totals as CSV."""
    query = current_query()
    path = parse_path(request.args)
    fmt = parse_format(request.args)
    with open_stats(query) as stats:
        detail = page_detail(stats, query, path, referrer_limit=None)
    compare = detail.compare
    current = _row_json(detail.row)
    before = _row_json(detail.previous) if compare is not None else None
    if fmt == "csv":
        names = [*current["totals"], *current["rates"]]
        start, end = query.range.start.isoformat(), query.range.end.isoformat()
        rows = [["current", start, end, *current["totals"].values(), *current["rates"].values()]]
        rows[0].append("")
        if compare is not None and before is not None:
            until = compare.until.isoformat() + "Z" if compare.until is not None else ""
            first, last = compare.range.start.isoformat(), compare.range.end.isoformat()
            values = [*before["totals"].values(), *before["rates"].values(), until]
            rows.append(["previous", first, last, *values])
        slug = re.sub(r"[^A-Za-z0-9_]+", "-", path).strip("-") or "root"
        return csv_response(
            ["period", "start", "end", *names, "until"],
            rows,
            f"page-{slug[:60]}-{query.range.start}-{query.range.end}.csv",
        )
    return jsonify(
        {
            "path": path,
            **range_json(query.range, query.filters),
            **current,
            "days": [
                {"date": d.isoformat(), "visitors": t.visitors, "pageviews": t.pageviews}
                for d, t in detail.daily.items()
            ],
            "previous": (
                {
                    "start": compare.range.start.isoformat(),
                    "end": compare.range.end.isoformat(),
                    "until": compare.until.isoformat() + "Z" if compare.until else None,
                    "has_data": compare.has_data,
                    **before,
                    "days": [
                        {"date": d.isoformat(), "visitors": t.visitors, "pageviews": t.pageviews}
                        for d, t in (detail.previous_daily or {}).items()
                    ],
                }
                if compare is not None and before is not None
                else None
            ),
            "referrers_split": detail.previous_pages,
            "referrers": [
                {
                    "referrer": None if isinstance(r.key, PreviousPage) else r.key,
                    "previous_page": r.key if isinstance(r.key, PreviousPage) else None,
                    **r.counts,
                }
                for r in detail.referrers
            ],
        }
    )
