"""Page experience: per page, how far people scroll, how long they stay, and the web
vitals of its loads (LCP, INP, CLS, TTFB) at the 75th percentile with the share of good,
needs-improvement and poor values.

Samples (from raw + archived events of the range; see DESIGN.md for the events):

- Time on page and scroll depth: the tracker sends an ``engagement`` event when a page
  is hidden or left, with the visible time since its last report (``engagement_ms``) and
  the deepest scroll so far (``scroll_depth``, 0-100); a page hidden twice sends two.
  One sample is a *page visit*: a visitor's engagement events of one page on one local
  day (visitor ids live one day), its time the sum of their ``engagement_ms``, its
  scroll depth the largest ``scroll_depth``. Events without the value give no sample.
- Web vitals: one ``web_vitals`` event per page load with props ``lcp``, ``inp``,
  ``ttfb`` (ms) and ``cls`` (unitless); each prop that is a JSON number >= 0 is one
  sample of its vital (a missing, text or negative prop is none).
- Visitors of a page: distinct visitors with a pageview of it per local day, summed over
  the range (as the Pages report counts them); of the site: with any pageview.

Percentiles are nearest-rank: the p-th percentile of n samples is the smallest sample v
such that at least p% of the samples are <= v, i.e. the ``ceil(p * n / 100)``-th
smallest. The median is the 50th. Computed in SQL (``row_number`` and ``count`` over the
samples of each page and metric), the same on SQLite and PostgreSQL.

Ratings follow web.dev's published thresholds (:data:`VITALS`): a value is *good* at or
below the first, *poor* above the second, *needs improvement* in between; a page's
rating is that of its p75.

Why raw values: a percentile cannot be summed across days (the p75 of a week is not any
mix of its days' p75s), so the range's p75 and median are computed from every sample of
the range, read from raw and archived events. Archived events count, so the report
reaches back as far as the archive does; a range reaching days whose raw events were
purged (``ANALYTICS_ARCHIVE_RETENTION_DAYS``) is refused with
:class:`~.filtered.RawDataMissing`, like every raw-path report, rather than answered
from the days that are left. Counts and sums (samples, threshold counts, totals) would
add up across days, but percentiles would not, so nothing here is rolled up.

Filters: with filters, samples are the kept events of the filter definition (raw path,
:mod:`.filtered`): session filters keep the events of the sessions they keep; an event
filter keeps the events matching it (``page:matches:/blog/*`` keeps those pages'
measurements; ``event:is:signup`` keeps no engagement or vitals event, so no samples).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa

from ..core import dialects
from ..core.rollups import ENGAGEMENT, PAGEVIEW
from .ranges import DateRange

if TYPE_CHECKING:
    from .stats import Stats

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
#: Ratings, best first.
RATINGS: Final = ("good", "needs_improvement", "poor")

_VISITORS: Final = "visitors"
_NAMES: Final = (PAGEVIEW, ENGAGEMENT, WEB_VITALS)


@dataclass(frozen=True)
class Summary:
    """A page-visit metric: sample count, nearest-rank median and mean (None: no sample)."""

    samples: int = 0
    median: int | None = None
    average: float | None = None


@dataclass(frozen=True)
class Vital:
    """One web vital of a page: samples, nearest-rank p75, and samples per rating."""

    samples: int = 0
    p75: float | None = None
    good: int = 0
    needs_improvement: int = 0
    poor: int = 0

    def share(self, rating: str) -> float | None:
        """The share of samples rated ``rating`` (None without samples)."""
        counted: int = getattr(self, rating)
        return counted / self.samples if self.samples else None

    def rating(self, name: str) -> str | None:
        """The rating of the p75 of vital ``name``."""
        return None if self.p75 is None else rate(name, self.p75)


@dataclass(frozen=True)
class PageExperience:
    """One page's experience (``path`` None: the whole site)."""

    path: str | None
    visitors: int = 0
    time_on_page_ms: Summary = Summary()
    scroll_depth: Summary = Summary()
    vitals: Mapping[str, Vital] = field(default_factory=lambda: {n: Vital() for n in VITALS})


@dataclass(frozen=True)
class Experience:
    """A page of :func:`page_experience`'s rows, the site row, and how many pages there are."""

    rows: list[PageExperience]
    site: PageExperience
    total: int


def rate(name: str, value: float) -> str:
    """The rating of one value of vital ``name``."""
    good, poor = VITALS[name]
    if value <= good:
        return "good"
    return "needs_improvement" if value <= poor else "poor"


def page_experience(
    stats: Stats, rng: DateRange, *, limit: int | None = 10, offset: int = 0
) -> Experience:
    """Page experience over ``rng`` (see the module's docstring): ``stats`` gives the
    connection, the app's context and the request's filters. Pages are sorted by
    visitors (most first), then path; ``limit`` (None: all) and ``offset`` cut them.
    Raises :class:`~.filtered.RawDataMissing` for ranges whose raw events are gone."""
    stats.check_raw(rng, "Page experience reports")
    found: dict[tuple[int, str | None], dict[str, Any]] = {}
    for record in stats.conn.execute(_statement(stats, rng)).mappings():
        found.setdefault((record["site"], record["path"]), {})[record["metric"]] = record
    pages = [_page(path, metrics) for (site, path), metrics in found.items() if not site]
    pages.sort(key=lambda p: (-p.visitors, p.path is None, p.path or ""))
    site = _page(None, found.get((1, None), {}))
    cut = pages[offset:] if limit is None else pages[offset : offset + limit]
    return Experience(cut, site, len(pages))


def _page(path: str | None, metrics: Mapping[str, Any]) -> PageExperience:
    def summary(metric: str) -> Summary:
        record = metrics.get(metric)
        if record is None or not record["samples"]:
            return Summary()
        samples = int(record["samples"])
        return Summary(samples, int(record["p50"]), float(record["total"]) / samples)

    def vital(name: str) -> Vital:
        record = metrics.get(name)
        if record is None or not record["samples"]:
            return Vital()
        samples, good, fair = (int(record[k]) for k in ("samples", "good", "fair"))
        return Vital(samples, float(record["p75"]), good, fair, samples - good - fair)

    visitors = metrics.get(_VISITORS)
    return PageExperience(
        path,
        int(visitors["samples"]) if visitors is not None else 0,
        summary(TIME),
        summary(SCROLL),
        {name: vital(name) for name in VITALS},
    )


def _events(stats: Stats, rng: DateRange) -> Any:
    """The range's pageview, engagement and web-vitals events (the kept ones when the
    request is filtered): ``day`` (index in ``rng``), visitor, name, path, engagement
    and scroll columns, props."""
    extra = ("engagement_ms", "scroll_depth", "props")
    return stats.filtered.events_of(rng, extra=extra, wheres=[lambda c: c.name.in_(_NAMES)])


def _statement(stats: Stats, rng: DateRange) -> sa.CompoundSelect[Any]:
    """Rows (site, path, metric, samples, total, p50, p75, good, fair): per page
    (site 0) and for the whole site (site 1, path NULL); ``visitors`` rows count
    (day, visitor) pairs with a pageview in ``samples``."""
    dialect = stats.conn.dialect.name
    src = _events(stats, rng).subquery("fa_xp_src")
    vitals = [dialects.json_number(src.c.props, name, dialect).label(name) for name in VITALS]
    events = (
        sa.select(src.c.day, src.c.visitor_id, src.c.name, src.c.path)
        .add_columns(src.c.engagement_ms, src.c.scroll_depth, *vitals)
        .cte("fa_xp_events")
        .prefix_with("MATERIALIZED")
    )
    e = events.c
    real = sa.Float()
    is_engagement = e.name == ENGAGEMENT
    visit = (e.day, e.visitor_id, e.path)
    streams: list[tuple[str, sa.Select[Any]]] = [
        (
            TIME,
            sa.select(e.path, sa.func.sum(e.engagement_ms).label("value"))
            .where(is_engagement, e.engagement_ms.is_not(None))
            .group_by(*visit),
        ),
        (
            SCROLL,
            sa.select(e.path, sa.func.max(e.scroll_depth).label("value"))
            .where(is_engagement, e.scroll_depth.is_not(None))
            .group_by(*visit),
        ),
        *(
            (name, sa.select(e.path, e[name].label("value")).where(e.name == WEB_VITALS))
            for name in VITALS
        ),
    ]
    samples = sa.union_all(
        *(
            sa.select(
                s.c.path,
                sa.literal(metric, sa.Text()).label("metric"),
                sa.cast(s.c.value, real).label("value"),
            ).where(s.c.value.is_not(None), s.c.value >= 0)
            for metric, s in ((m, q.subquery()) for m, q in streams)
        )
    ).cte("fa_xp_samples")
    scoped = sa.union_all(
        sa.select(sa.literal(0).label("site"), samples.c.path, samples.c.metric, samples.c.value),
        sa.select(
            sa.literal(1), sa.cast(sa.null(), samples.c.path.type), samples.c.metric,
            samples.c.value,
        ),
    ).subquery("fa_xp_scoped")  # fmt: skip
    s = scoped.c
    partition = (s.site, s.path, s.metric)
    ranked = sa.select(
        *partition,
        s.value,
        sa.func.row_number().over(partition_by=partition, order_by=s.value).label("rank"),
        sa.func.count().over(partition_by=partition).label("n"),
    ).subquery("fa_xp_ranked")
    r = ranked.c
    good = sa.or_(*(sa.and_(r.metric == n, r.value <= low) for n, (low, _) in VITALS.items()))
    fair = sa.or_(
        *(
            sa.and_(r.metric == n, r.value > low, r.value <= high)
            for n, (low, high) in VITALS.items()
        )
    )

    def counted(test: sa.ColumnElement[bool]) -> Any:
        return sa.func.sum(sa.case((test, 1), else_=0))

    measured = sa.select(
        r.site,
        r.path,
        r.metric,
        sa.func.count().label("samples"),
        sa.func.sum(r.value).label("total"),
        # Nearest rank: the ceil(p * n)-th smallest is the first whose rank r has r >= p * n.
        sa.func.min(sa.case((r.rank * 2 >= r.n, r.value))).label("p50"),
        sa.func.min(sa.case((r.rank * 4 >= r.n * 3, r.value))).label("p75"),
        counted(good).label("good"),
        counted(fair).label("fair"),
    ).group_by(r.site, r.path, r.metric)
    nothing = [sa.cast(sa.null(), real).label(n) for n in ("total", "p50", "p75", "good", "fair")]
    viewed = sa.select(e.day, e.visitor_id, e.path).where(e.name == PAGEVIEW).distinct().subquery()
    site_viewed = sa.select(e.day, e.visitor_id).where(e.name == PAGEVIEW).distinct().subquery()
    metric = sa.literal(_VISITORS, sa.Text())
    return sa.union_all(
        measured,
        sa.select(
            sa.literal(0), viewed.c.path, metric, sa.func.count(), *nothing
        ).group_by(viewed.c.path),
        sa.select(
            sa.literal(1), sa.cast(sa.null(), samples.c.path.type), metric, sa.func.count(),
            *nothing,
        ).select_from(site_viewed),
    )  # fmt: skip


def shares(vital: Vital) -> Sequence[tuple[str, float | None]]:
    """(rating, share) of ``vital``, best first."""
    return [(rating, vital.share(rating)) for rating in RATINGS]
