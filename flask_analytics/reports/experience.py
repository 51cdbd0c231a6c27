"""Page experience: per page, how far people scroll, how long they stay, and the web
vitals of its loads (LCP, INP, CLS, TTFB) at the 75th percentile with the share of good,
needs-improvement and poor values.

Samples (see DESIGN.md for the events):

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
smallest. The median is the 50th. Computed in SQL from the range's distribution (each
distinct value with its count): the first value, in order, whose running count reaches
``p * n / 100``; the same on SQLite and PostgreSQL.

Ratings follow web.dev's published thresholds (:data:`VITALS`): a value is *good* at or
below the first, *poor* above the second, *needs improvement* in between; a page's
rating is that of its p75.

Rolled up daily, exactly: a percentile cannot be summed across days (the p75 of a week
is no mix of its days' p75s), but a distribution can. Each day's aggregation stores its
samples' distribution in ``analytics_daily_page_experience``
(:mod:`flask_analytics.core.experience`: per path and metric, each distinct value at
the precision events store it, with its count) and its visitor counts. A range's
distribution is the sum of its days', so its counts, averages, ratings, medians and p75s
equal those computed from every raw value of the range. Unfiltered, final days (and
today while its latest run is recent, as in :class:`~.live.LiveDays`) are read from the
table, which survives archive and purge; live days, and days aggregated before the table
existed, are computed from their raw and archived events by the same SELECT (virtual
rows), and summed with the stored ones in one statement. A day of the latter kind whose
raw events were purged is refused with :class:`~.filtered.RawDataMissing`.

Filters (and ``Stats(raw=True)``): the rows are computed from the kept events of the
filter definition (raw path, :mod:`.filtered`) over the whole range, which must still
have its raw events: session filters keep the events of the sessions they keep; an
event filter keeps the events matching it (``page:matches:/blog/*`` keeps those pages'
measurements; ``event:is:signup`` keeps no engagement or vitals event, so no samples).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa

from ..core import dialects
from ..core.experience import EVENT_COLUMNS, EVENT_NAMES, VISITORS, experience_select
from ..core.experience import SCROLL as SCROLL  # the metrics, for the web layer
from ..core.experience import TIME as TIME
from ..core.experience import VITALS as VITALS
from .ranges import DateRange
from .spans import as_date

if TYPE_CHECKING:
    from .stats import Stats

#: Ratings, best first.
RATINGS: Final = ("good", "needs_improvement", "poor")
#: Memory PostgreSQL may use per sort or hash of the report's statement (transaction).
_WORK_MEM_MB: Final = 64
#: What :class:`~.filtered.RawDataMissing` says needs the raw events.
_SUBJECT: Final = "Page experience reports"


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
    connection, the app's context, the request's filters and which days are live.
    Pages are sorted by visitors (most first), then path; ``limit`` (None: all) and
    ``offset`` cut them. Raises :class:`~.filtered.RawDataMissing` when raw events the
    answer needs are gone."""
    found: dict[tuple[int, str | None], dict[str, Any]] = {}
    statement = _statement(_rows(stats, rng))
    # PostgreSQL: room for the sums and the window's sort (a range's distinct values),
    # which spilled to disk at the 4 MB default; no JIT (see tune_bulk_transaction).
    dialects.tune_bulk_transaction(stats.conn, _WORK_MEM_MB)
    for record in stats.conn.execute(statement).mappings():
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

    visitors = metrics.get(VISITORS)
    return PageExperience(
        path,
        int(visitors["samples"]) if visitors is not None else 0,
        summary(TIME),
        summary(SCROLL),
        {name: vital(name) for name in VITALS},
    )


def _events(stats: Stats, rng: DateRange, suffix: str) -> Any:
    """The range's pageview, engagement and web-vitals events (the kept ones when the
    request is filtered): ``day`` (index in ``rng``) and :data:`EVENT_COLUMNS`."""
    extra = [c for c in EVENT_COLUMNS if c not in ("visitor_id", "name", "path")]
    wheres = [lambda c: c.name.in_(EVENT_NAMES)]
    events = stats.filtered.events_of(rng, extra=extra, wheres=wheres)
    return events.subquery(f"fa_xp_src{suffix}")


def _computed(stats: Stats, runs: Sequence[DateRange]) -> list[sa.Select[Any]]:
    """Virtual rows (path, metric, value, samples) of the days of ``runs``, from their
    raw events: one statement per range."""
    dialect = stats.conn.dialect.name
    selects = []
    for number, run in enumerate(runs):
        suffix = f"_{number}"
        events = _events(stats, run, suffix)
        rows = experience_select(events, dialect, suffix=suffix).subquery(f"fa_xp_day{suffix}")
        selects.append(sa.select(rows.c.path, rows.c.metric, rows.c.value, rows.c.samples))
    return selects


def _rows(stats: Stats, rng: DateRange) -> list[sa.Select[Any]]:
    """Selects of daily rows (path, metric, value, samples) whose sums are ``rng``'s
    distribution: the stored rows of final days, virtual rows of the others."""
    if stats.raw:
        stats.check_raw(rng, _SUBJECT)
        return _computed(stats, [rng])
    live = stats.live.days(rng)
    unrolled = [d for d in _days_without_rows(stats, rng) if d not in set(live)]
    if unrolled:
        holds = stats.live.holds_events(unrolled)
        gone = [d for d in unrolled if not holds[d]]
        if gone:
            stats.check_raw(DateRange(min(gone), max(gone)), _SUBJECT)
        live = sorted({*live, *(d for d in unrolled if holds[d])})
    table = stats.models.DailyPageExperience.__table__
    stored = sa.select(table.c.path, table.c.metric, table.c.value, table.c.samples).where(
        table.c.date.between(rng.start, rng.end)
    )
    if live:
        stored = stored.where(table.c.date.not_in(live))
    return [stored, *_computed(stats, _runs(live))]


def _days_without_rows(stats: Stats, rng: DateRange) -> list[dt.date]:
    """Days of ``rng`` with a daily summary but no page-experience rows: aggregated
    before the table existed (a run writes a site visitor row for any day with events)."""
    summary = stats.models.daily["DailySummary"].__table__
    table = stats.models.DailyPageExperience.__table__
    marked = sa.exists().where(
        table.c.date == summary.c.date, table.c.metric == VISITORS, table.c.path.is_(None)
    )
    query = sa.select(summary.c.date).where(
        summary.c.date.between(rng.start, rng.end), sa.not_(marked)
    )
    return sorted(as_date(v) for v in stats.conn.execute(query).scalars())


def _runs(days: Sequence[dt.date]) -> list[DateRange]:
    """``days`` as ranges of consecutive days."""
    runs: list[DateRange] = []
    for day in sorted(days):
        if runs and runs[-1].end + dt.timedelta(days=1) == day:
            runs[-1] = DateRange(runs[-1].start, day)
        else:
            runs.append(DateRange(day, day))
    return runs


def _statement(parts: Sequence[sa.Select[Any]]) -> sa.Select[Any]:
    """Rows (site, path, metric, samples, total, p50, p75, good, fair) of the summed
    daily rows ``parts``: per page (site 0) and for the whole site (site 1, path NULL,
    every page's samples together). ``visitors`` rows hold the visitors in ``samples``."""
    every = (parts[0] if len(parts) == 1 else sa.union_all(*parts)).subquery("fa_xp_rows")
    r = every.c
    summed = (
        sa.select(r.path, r.metric, r.value, sa.func.sum(r.samples).label("n"))
        .group_by(r.path, r.metric, r.value)
        .cte("fa_xp_summed")  # read twice: computed once (see core/experience.py)
    )
    g = summed.c
    no_path = sa.cast(sa.null(), g.path.type)
    scoped = sa.union_all(
        sa.select(sa.literal(0).label("site"), g.path, g.metric, g.value, g.n).where(
            g.path.is_not(None)
        ),
        # The site's distribution is every page's; its visitors are its own row's.
        sa.select(sa.literal(1), no_path, g.metric, g.value, sa.func.sum(g.n))
        .where(sa.or_(g.metric != VISITORS, g.path.is_(None)))
        .group_by(g.metric, g.value),
    ).subquery("fa_xp_scoped")
    s = scoped.c
    partition = (s.site, s.path, s.metric)
    real: sa.Double[float] = sa.Double()
    count = sa.cast(s.n, real)
    ranked = sa.select(
        *partition,
        s.value,
        count.label("n"),
        sa.func.sum(count)
        .over(partition_by=partition, order_by=s.value, rows=(None, 0))
        .label("running"),
        sa.func.sum(count).over(partition_by=partition).label("every"),
    ).subquery("fa_xp_ranked")
    k = ranked.c
    good = sa.or_(*(sa.and_(k.metric == n, k.value <= low) for n, (low, _) in VITALS.items()))
    fair = sa.or_(
        *(
            sa.and_(k.metric == n, k.value > low, k.value <= high)
            for n, (low, high) in VITALS.items()
        )
    )

    def counted(test: sa.ColumnElement[bool]) -> Any:
        return sa.func.sum(sa.case((test, k.n), else_=0))

    return sa.select(
        k.site,
        k.path,
        k.metric,
        sa.func.sum(k.n).label("samples"),
        sa.func.sum(k.value * k.n).label("total"),
        # Nearest rank: the ceil(p * n)-th smallest is the first value whose running
        # count c has c >= p * n.
        sa.func.min(sa.case((k.running * 2 >= k.every, k.value))).label("p50"),
        sa.func.min(sa.case((k.running * 4 >= k.every * 3, k.value))).label("p75"),
        counted(good).label("good"),
        counted(fair).label("fair"),
    ).group_by(k.site, k.path, k.metric)


def shares(vital: Vital) -> Sequence[tuple[str, float | None]]:
    """(rating, share) of ``vital``, best first."""
    return [(rating, vital.share(rating)) for rating in RATINGS]
