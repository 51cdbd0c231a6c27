"""Reports only an app can make about itself: response time and bounce rate per Flask
endpoint, and its error pages (404s) with the pages that link to them.

Both read the range's kept events (raw path, :meth:`~.filtered.FilteredEvents.events_of`:
every event of the range unfiltered, the kept ones with filters), since neither a
percentile nor a (path, referrer) pair of one status adds up from the daily tables.

- Response time: the ``duration_ms`` of server pageviews (``ANALYTICS_SERVER_PAGEVIEWS``),
  per endpoint, as nearest-rank percentiles (the p-th of n samples is the
  ``ceil(p * n / 100)``-th smallest, as for page experience), p50 and p95.
- Bounce rate of an endpoint: of the visits with a pageview on the endpoint's pages, the
  share that were bounces (one pageview and no interactive event, the session model's
  definition); a visit counts once per endpoint however many of its pages it viewed.
- Error pages: pageviews with ``status`` 404 (server pageviews, or the tracker's with
  ``analytics_script(status=404)``) by path and referrer (the page holding the broken
  link, or an outside site), with their visitors (per day, summed, as everywhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import sqlalchemy as sa

from ..core.rollups import PAGEVIEW
from .ranges import DateRange
from .totals import ratio

if TYPE_CHECKING:
    from .stats import Stats

#: The status of a page that was not found.
NOT_FOUND: Final = 404
#: Percentiles of response times.
PERCENTILES: Final = (50, 95)


@dataclass(frozen=True)
class EndpointTiming:
    """One endpoint's visits, bounce rate and server response times (ms)."""

    endpoint: str | None
    pageviews: int
    visits: int
    bounces: int
    #: Server pageviews with a response time (the percentiles' samples).
    timed: int
    p50_ms: int | None
    p95_ms: int | None

    @property
    def bounce_rate(self) -> float | None:
        return ratio(self.bounces, self.visits)


@dataclass(frozen=True)
class ErrorPage:
    """A path answered 404, from one referrer (None: none, typed or bookmarked)."""

    path: str
    referrer: str | None
    pageviews: int
    visitors: int


def endpoint_timings(stats: Stats, rng: DateRange) -> list[EndpointTiming]:
    """Every endpoint with pageviews in ``rng`` (None: pages no rule matched), most
    pageviews first. Raises :class:`~.filtered.RawDataMissing` without raw events."""
    stats.check_raw(rng, "Endpoint reports")
    views = (
        stats.filtered.events_of(
            rng,
            extra=("endpoint", "duration_ms"),
            wheres=[lambda c: c.name == PAGEVIEW],
            session_extra=("bounce",),
            sessions=True,
        )
        .subquery("fa_ep_views")
        .c
    )
    # One row per visit and endpoint: visits and bounces.
    visit = sa.select(
        views.endpoint,
        sa.func.count().label("pageviews"),
        sa.func.max(views.session_bounce).label("bounced"),  # 1 for a bounce, else 0
    ).group_by(views.endpoint, views.day, views.visitor_id, views.session_start)
    v = visit.subquery("fa_ep_visits").c
    visits = {
        row.endpoint: row
        for row in stats.conn.execute(
            sa.select(
                v.endpoint,
                sa.func.sum(v.pageviews).label("pageviews"),
                sa.func.count().label("visits"),
                sa.func.sum(v.bounced).label("bounces"),
            ).group_by(v.endpoint)
        )
    }
    times = _percentiles(stats, views)
    rows = [
        EndpointTiming(
            endpoint,
            int(row.pageviews),
            int(row.visits),
            int(row.bounces),
            *times.get(endpoint, (0, None, None)),
        )
        for endpoint, row in visits.items()
    ]
    rows.sort(key=lambda r: (-r.pageviews, r.endpoint is None, r.endpoint or ""))
    return rows


def _percentiles(
    stats: Stats, views: sa.ColumnCollection[str, sa.ColumnElement[object]]
) -> dict[str | None, tuple[int, int | None, int | None]]:
    """(samples, p50, p95) of ``duration_ms`` per endpoint, nearest-rank, in SQL."""
    duration = views.duration_ms
    ranked = (
        sa.select(
            views.endpoint,
            duration.label("value"),
            sa.func.row_number().over(partition_by=views.endpoint, order_by=duration).label("rank"),
            sa.func.count().over(partition_by=views.endpoint).label("n"),
        )
        .where(duration.is_not(None))
        .subquery("fa_ep_ranked")
        .c
    )
    # The p-th percentile: the smallest value whose rank r has r * 100 >= p * n.
    picks = [
        sa.func.min(sa.case((ranked.rank * 100 >= p * ranked.n, ranked.value))).label(f"p{p}")
        for p in PERCENTILES
    ]
    statement = sa.select(ranked.endpoint, sa.func.count().label("n"), *picks).group_by(
        ranked.endpoint
    )
    return {
        row.endpoint: (int(row.n), _int(row.p50), _int(row.p95))
        for row in stats.conn.execute(statement)
    }


def _int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def error_pages(stats: Stats, rng: DateRange, *, limit: int = 100) -> list[ErrorPage]:
    """Paths answered 404 in ``rng`` by referrer, most pageviews first."""
    stats.check_raw(rng, "Error page reports")
    views = (
        stats.filtered.events_of(
            rng,
            extra=("referrer", "status"),
            wheres=[lambda c: c.name == PAGEVIEW, lambda c: c.status == NOT_FOUND],
        )
        .subquery("fa_err_views")
        .c
    )
    per_visitor = (
        sa.select(views.path, views.referrer, sa.func.count().label("pageviews"))
        .group_by(views.path, views.referrer, views.day, views.visitor_id)
        .subquery("fa_err_visitors")
        .c
    )
    pageviews = sa.func.sum(per_visitor.pageviews)
    statement = (
        sa.select(
            per_visitor.path,
            per_visitor.referrer,
            pageviews.label("pageviews"),
            sa.func.count().label("visitors"),
        )
        .group_by(per_visitor.path, per_visitor.referrer)
        .order_by(pageviews.desc(), per_visitor.path, per_visitor.referrer)
        .limit(limit)
    )
    return [
        ErrorPage(row.path, row.referrer, int(row.pageviews), int(row.visitors))
        for row in stats.conn.execute(statement)
    ]
