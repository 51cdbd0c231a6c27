"""The SELECT of ``analytics_daily_page_experience``: a day's page experience as rows
that add up across days exactly, percentiles included.

Samples of one local day (see :mod:`flask_analytics.reports.experience` for what the
tracker sends):

- ``time_on_page_ms`` and ``scroll_depth``: one per *page visit*, a visitor's
  ``engagement`` events of one page on the day; its ``engagement_ms`` summed, its
  deepest ``scroll_depth``. Events without the value give no sample.
- ``lcp``, ``inp``, ``cls``, ``ttfb``: each prop of a ``web_vitals`` event that is a
  JSON number.

Any sample below zero is none. A sample is a value at the precision events store it (an
integer number of milliseconds or percent, a double for a vital), and the rows are its
exact distribution: one row per date, path, metric and distinct value with how many
samples have it (``samples``). Summed over days, those are the range's distribution, so
its sample counts, sums (averages), counts per web-vitals rating and nearest-rank
percentiles are exactly those of the range's raw values: a percentile is read from the
summed counts, never from days' percentiles (which do not add up).

Rows of metric ``visitors`` (``value`` NULL) count, in ``samples``, the day's distinct
visitors with a pageview of ``path``, and of any page on the row with ``path`` NULL. A
run writes that site row even when it is 0, so a day aggregated with this table has
one (days aggregated before the table existed have none).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa

from ..models import PATH_MAX
from . import dialects
from .rollups import ENGAGEMENT, PAGEVIEW

if TYPE_CHECKING:
    from ..models import Models

#: Name of the tracker's web vitals events.
WEB_VITALS: Final = "web_vitals"
#: Each vital's (good, poor) thresholds: good <= the first, poor > the second (web.dev).
VITALS: Final[Mapping[str, tuple[float, float]]] = {
    "lcp": (2500, 4000),
    "inp": (200, 500),
    "cls": (0.1, 0.25),
    "ttfb": (800, 1800),
}
#: The page-visit metrics: time on page (ms) and scroll depth (0-100).
TIME: Final = "time_on_page_ms"
SCROLL: Final = "scroll_depth"
#: The metric of the visitor rows.
VISITORS: Final = "visitors"
#: Events the rows are computed from.
EVENT_NAMES: Final = (PAGEVIEW, ENGAGEMENT, WEB_VITALS)
#: Their columns the rows read.
EVENT_COLUMNS: Final = ("visitor_id", "name", "path", "engagement_ms", "scroll_depth", "props")


def day_events(models: Models, start: dt.datetime, end: dt.datetime) -> sa.CompoundSelect[Any]:
    """Raw + archived pageview, engagement and web-vitals events with ``start <=
    created_at < end``, with :data:`EVENT_COLUMNS`."""
    parts = []
    for model in (models.Event, models.EventArchive):
        table: sa.Table = model.__table__
        parts.append(
            sa.select(*(table.c[name] for name in EVENT_COLUMNS)).where(
                table.c.created_at >= start,
                table.c.created_at < end,
                table.c.name.in_(EVENT_NAMES),
            )
        )
    return sa.union_all(*parts)


def experience_select(
    events: sa.FromClause, dialect: str, *, day: dt.date | None = None, suffix: str = ""
) -> sa.CompoundSelect[Any]:
    """The daily page-experience rows of ``events`` (:data:`EVENT_COLUMNS`; other names
    are ignored): ``day`` (the events' ``day`` column: any number of local days), path,
    metric, value, samples. Given a ``day``, ``events`` are that day's and have no
    ``day`` column, and the rows start with ``date`` instead (the table's columns but
    ``id``, in table order), with the site's visitor row even at 0. ``suffix`` ends the
    names of its CTE and subqueries (several in one statement need their own)."""
    src = events.c
    # Props are parsed on web-vitals events only.
    loads = src.name == WEB_VITALS
    vitals = [
        sa.case((loads, dialects.json_number(src.props, name, dialect))).label(name)
        for name in VITALS
    ]
    days: list[Any] = [] if day is None else [sa.literal(day, sa.Date()).label("date")]
    read = sa.select(
        *([src.day] if day is None else []),
        src.visitor_id, src.name, src.path, src.engagement_ms, src.scroll_depth, *vitals,
    ).where(src.name.in_(EVENT_NAMES))  # fmt: skip
    # CTEs read more than once: PostgreSQL (12+) and SQLite (3.35+) compute each once
    # without a MATERIALIZED hint, which older SQLite would not parse.
    e = read.cte(f"fa_xp_events{suffix}").c
    by_day = [e.day] if day is None else []
    first = days or [e.day]
    # One pass over engagement events gives both page-visit samples (a sum or max of
    # no value is NULL: no sample).
    visits = (
        sa.select(
            *by_day,
            e.path,
            sa.func.sum(e.engagement_ms).label("time"),
            sa.func.max(e.scroll_depth).label("depth"),
        )
        .where(e.name == ENGAGEMENT)
        .group_by(*by_day, e.visitor_id, e.path)
        .cte(f"fa_xp_visits{suffix}")
    )
    v = visits.c
    page_visit = [v.day] if day is None else []
    streams: list[tuple[str, sa.Select[Any]]] = [
        (TIME, sa.select(*page_visit, v.path, v.time.label("value"))),
        (SCROLL, sa.select(*page_visit, v.path, v.depth.label("value"))),
        *(
            (name, sa.select(*by_day, e.path, e[name].label("value")).where(e.name == WEB_VITALS))
            for name in VITALS
        ),
    ]
    value: sa.Double[float] = sa.Double()
    samples = sa.union_all(
        *(
            sa.select(
                *([s.c.day] if day is None else []),
                s.c.path,
                sa.literal(metric, sa.Text()).label("metric"),
                sa.cast(s.c.value, value).label("value"),
            ).where(s.c.value.is_not(None), s.c.value >= 0)
            for metric, s in ((m, q.subquery()) for m, q in streams)
        )
    ).subquery(f"fa_xp_samples{suffix}")
    s = samples.c
    sampled = [*([s.day] if day is None else []), s.path, s.metric, s.value]
    no_path = sa.cast(sa.null(), sa.String(PATH_MAX))
    no_value = sa.cast(sa.null(), value)
    metric = sa.literal(VISITORS, sa.Text())
    viewed = e.name == PAGEVIEW
    site_visitors = sa.func.count(sa.distinct(sa.case((viewed, e.visitor_id))))
    return sa.union_all(
        sa.select(*days, *sampled, sa.func.count().label("samples")).group_by(*sampled),
        sa.select(*first, e.path, metric, no_value, sa.func.count(sa.distinct(e.visitor_id)))
        .where(viewed)
        .group_by(*by_day, e.path),
        # One site row per day; aggregating one day, also without pageviews (the marker).
        sa.select(*first, no_path, metric, no_value, site_visitors)
        .where(*([viewed] if day is None else []))
        .group_by(*by_day),
    )
