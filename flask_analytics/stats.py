"""Read queries of the dashboard and the JSON API (no Flask in here).

Where the numbers come from, for each local day of a range:

- a day whose aggregation is final (a finished run that started after the day ended) is
  read from the ``analytics_daily_*`` tables only, so a page costs the same whatever the
  size of the raw table;
- today, and any day without a final run that still has raw events, is computed live
  from raw events by the aggregation's own ``SELECT`` statements
  (:func:`flask_analytics.aggregate.daily_selects`), so both paths share one definition.

Both kinds of rows are combined with ``UNION ALL`` and grouped in SQL. Counts add up
across days; rates are derived from summed counts when read, never averaged. Visitors
over a range are the sum of daily visitors (a visitor id lives one day).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa

from .aggregate import INTERNAL_EVENTS as INTERNAL_EVENTS
from .aggregate import day_bounds, sessions_select, source_events, table_selects

if TYPE_CHECKING:
    from .extension import AnalyticsState

#: Longest range one query may cover, in days (five years of daily rows).
MAX_RANGE_DAYS: Final = 5 * 366
#: Realtime: visitors active in this window are "current visitors".
REALTIME_WINDOW: Final = dt.timedelta(minutes=5)
#: Realtime lists and the per-minute chart look this far back.
REALTIME_RECENT: Final = dt.timedelta(minutes=30)

SUMMARY_COUNTS: Final = (
    "visitors",
    "sessions",
    "pageviews",
    "bounces",
    "total_duration_s",
    "events",
)


def utcnow() -> dt.datetime:
    """Naive UTC now (every stored time is naive UTC)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def ratio(numerator: float, denominator: float, scale: float = 1.0) -> float | None:
    """``numerator / denominator * scale``, or None when nothing was counted."""
    if not denominator:
        return None
    return numerator / denominator * scale


# -- ranges -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DateRange:
    """Local dates ``start`` to ``end``, both included."""

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("end is before start")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def dates(self) -> Iterator[dt.date]:
        day = self.start
        while day <= self.end:
            yield day
            day += dt.timedelta(days=1)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, dt.date) and self.start <= day <= self.end

    def previous(self) -> DateRange:
        """The period of the same length just before this one."""
        return DateRange(
            self.start - dt.timedelta(days=self.days), self.start - dt.timedelta(days=1)
        )

    def year_before(self) -> DateRange:
        """The same dates one year earlier (29 February becomes the 28th)."""
        return DateRange(_year_before(self.start), _year_before(self.end))

    def span(self, other: DateRange) -> DateRange:
        return DateRange(min(self.start, other.start), max(self.end, other.end))


def _year_before(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:
        return day.replace(year=day.year - 1, day=28)


# -- values -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    """Summed counts of ``analytics_daily_summary`` and the rates derived from them."""

    visitors: int = 0
    sessions: int = 0
    pageviews: int = 0
    bounces: int = 0
    total_duration_s: int = 0
    events: int = 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def views_per_session(self) -> float | None:
        return ratio(self.pageviews, self.sessions)

    @property
    def bounce_rate(self) -> float | None:
        return ratio(self.bounces, self.sessions)

    @property
    def avg_visit_duration_s(self) -> float | None:
        return ratio(self.total_duration_s, self.sessions)

    def counts(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def rates(self) -> dict[str, float | None]:
        return {
            "views_per_session": self.views_per_session,
            "bounce_rate": self.bounce_rate,
            "avg_visit_duration_s": self.avg_visit_duration_s,
        }

    def metric(self, name: str) -> float | None:
        """A count or a rate by name (the chart's metric)."""
        if name in RATE_NAMES:
            value: float | None = getattr(self, name)
            return value
        count: int = getattr(self, name)
        return count


RATE_NAMES: Final = frozenset({"views_per_session", "bounce_rate", "avg_visit_duration_s"})


# -- breakdowns -------------------------------------------------------------------------------

#: Rates a breakdown row may carry: name -> (numerator, denominator, scale).
ROW_RATES: Final[Mapping[str, tuple[str, str, float]]] = {
    "bounce_rate": ("bounces", "sessions", 1.0),
    "views_per_session": ("pageviews", "sessions", 1.0),
    "exit_rate": ("exits", "pageviews", 1.0),
    "avg_engagement_s": ("total_engagement_ms", "pageviews", 0.001),
    "events_per_visitor": ("events", "visitors", 1.0),
}


@dataclass(frozen=True)
class Dimension:
    """One breakdown: the daily table and key column it groups, the counts it sums.

    ``visitors`` is only offered where summing it over the grouped rows of one day cannot
    count a visitor twice (one key per visitor and day: page, country, device, event);
    acquisition breakdowns (channel, source, UTM) count visits instead, since one visitor
    can start sessions from several sources in a day.
    """

    name: str
    table: str
    key: str
    counts: tuple[str, ...]
    sort: str
    rates: tuple[str, ...] = ()
    #: Skip rows whose key is NULL (e.g. pageviews without a referrer).
    skip_null: bool = False
    #: Keep only keys where this count is above zero (entry and exit pages).
    positive: str | None = None


_PAGE = ("visitors", "pageviews", "entries", "exits", "total_engagement_ms")
_ACQUISITION = ("sessions", "pageviews", "bounces")
_AUDIENCE = ("visitors", "sessions", "pageviews")

DIMENSIONS: Final[Mapping[str, Dimension]] = {
    d.name: d
    for d in (
        Dimension(
            "page", "DailyPage", "path", _PAGE, "visitors", ("avg_engagement_s",),
            positive="pageviews",
        ),
        Dimension(
            "entry_page", "DailyPage", "path", ("entries", "visitors"), "entries",
            positive="entries",
        ),
        Dimension(
            "exit_page", "DailyPage", "path", ("exits", "pageviews"), "exits", ("exit_rate",),
            positive="exits",
        ),
        Dimension(
            "referrer", "DailyPageReferrer", "referrer_host", ("pageviews",), "pageviews",
            skip_null=True,
        ),
        Dimension(
            "source", "DailyTrafficSource", "source", _ACQUISITION, "sessions",
            ("bounce_rate", "views_per_session"),
        ),
        Dimension(
            "channel", "DailyTrafficSource", "channel", _ACQUISITION, "sessions",
            ("bounce_rate", "views_per_session"),
        ),
        Dimension("country", "DailyCountry", "country", _AUDIENCE, "visitors"),
        Dimension("device_type", "DailyDevice", "device_type", _AUDIENCE, "visitors"),
        Dimension("browser", "DailyDevice", "browser", _AUDIENCE, "visitors"),
        Dimension("os", "DailyDevice", "os", _AUDIENCE, "visitors"),
        *(
            Dimension(
                utm, "DailyUtm", utm, _ACQUISITION, "sessions",
                ("bounce_rate", "views_per_session"), skip_null=True,
            )
            for utm in ("utm_source", "utm_medium", "utm_campaign")
        ),
        Dimension(
            "event", "DailyEvent", "name", ("visitors", "events"), "visitors",
            ("events_per_visitor",),
        ),
    )
}  # fmt: skip


@dataclass(frozen=True)
class Row:
    """One line of a breakdown: its key (None = unknown/direct), counts and rates."""

    key: Any
    counts: dict[str, int]
    rates: dict[str, float | None] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        if name in self.counts:
            return self.counts[name]
        return self.rates[name]


def _row(key: Any, counts: dict[str, int], rates: Sequence[str]) -> Row:
    derived = {}
    for name in rates:
        numerator, denominator, scale = ROW_RATES[name]
        derived[name] = ratio(counts[numerator], counts[denominator], scale)
    return Row(key, counts, derived)


# -- the reader -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    """One point of a time series: a labelled span of time and its totals."""

    start: dt.date
    end: dt.date
    totals: Totals


@dataclass(frozen=True)
class Hour:
    """One hour (or minute) of raw events: local start time, visitors and pageviews."""

    start: dt.datetime
    visitors: int
    pageviews: int


@dataclass(frozen=True)
class Realtime:
    """What happens right now, read from raw events."""

    now: dt.datetime
    visitors: int
    pageviews: int
    minutes: list[Hour]
    pages: list[Row]
    sources: list[Row]
    recent: list[dict[str, Any]]


class Stats:
    """The dashboard's queries, run on one connection for one request.

    ``now`` (naive UTC) fixes "today" and the realtime window, so one request sees one
    consistent clock.
    """

    def __init__(
        self, state: AnalyticsState, conn: sa.Connection, *, now: dt.datetime | None = None
    ) -> None:
        self.state = state
        self.conn = conn
        self.now = now if now is not None else utcnow()
        self.tz = state.settings.timezone
        self.today = state.local_date(self.now)
        self.models = state.models
        self._final: dict[dt.date, bool] = {}
        self._raw_span: tuple[dt.date, dt.date] | None = None
        self._raw_span_loaded = False
        self._live_selects: dict[dt.date, Mapping[str, sa.Select[Any]]] = {}

    # -- which days are live ------------------------------------------------------------------

    def raw_span(self) -> tuple[dt.date, dt.date] | None:
        """Local dates of the oldest and newest raw (or archived) event, if any."""
        if not self._raw_span_loaded:
            bounds = []
            for model in (self.models.Event, self.models.EventArchive):
                col = model.__table__.c.created_at
                bounds.append(sa.select(sa.func.min(col)).scalar_subquery())
                bounds.append(sa.select(sa.func.max(col)).scalar_subquery())
            row = self.conn.execute(sa.select(*bounds)).one()
            lows = [v for v in row[0::2] if v is not None]
            highs = [v for v in row[1::2] if v is not None]
            if lows and highs:
                self._raw_span = (
                    self.state.local_date(min(lows)),
                    self.state.local_date(max(highs)),
                )
            self._raw_span_loaded = True
        return self._raw_span

    def _load_final(self, days: list[dt.date]) -> None:
        missing = [d for d in days if d not in self._final]
        if not missing:
            return
        run = self.models.AggregationRun.__table__
        low, high = min(missing), max(missing)
        rows = self.conn.execute(
            sa.select(run.c.date, sa.func.max(run.c.started_at))
            .where(run.c.finished_at.is_not(None), run.c.date.between(low, high))
            .group_by(run.c.date)
        )
        for day in DateRange(low, high).dates():
            self._final.setdefault(day, False)
        for day, started in rows:
            # A run that started before the day was over missed its last events.
            self._final[day] = started >= day_bounds(self.tz, day)[1]

    def is_final(self, day: dt.date) -> bool:
        """True when ``day``'s daily rows come from a run started after the day ended."""
        self._load_final([day])
        return self._final[day]

    def live_days(self, rng: DateRange) -> list[dt.date]:
        """Days of ``rng`` computed from raw events: today and days not finally aggregated."""
        span = self.raw_span()
        if span is None:
            return []
        low, high = max(rng.start, span[0]), min(rng.end, span[1])
        if low > high:
            return []
        days = list(DateRange(low, high).dates())
        self._load_final(days)
        return [d for d in days if d >= self.today or not self._final[d]]

    def _live_select(self, table: str, day: dt.date) -> sa.Select[Any]:
        if day not in self._live_selects:
            self._live_selects[day] = live_selects(self.state, day)
        return self._live_selects[day][table]

    def rows(self, table: str, rng: DateRange, columns: Sequence[str]) -> sa.Subquery:
        """``columns`` of daily table ``table`` over ``rng``: stored rows UNION ALL live rows."""
        model = self.models.daily[table].__table__
        live = self.live_days(rng)
        stored = sa.select(*(model.c[c] for c in columns)).where(
            model.c.date.between(rng.start, rng.end)
        )
        if live:
            stored = stored.where(model.c.date.not_in(live))
        parts: list[sa.Select[Any]] = [stored]
        for day in live:
            select = self._live_select(table, day).subquery()
            parts.append(sa.select(*(select.c[c] for c in columns)))
        if len(parts) == 1:
            return stored.subquery()
        return sa.union_all(*parts).subquery()

    # -- summary ------------------------------------------------------------------------------

    def daily_totals(self, rng: DateRange) -> dict[dt.date, Totals]:
        """Totals of every day of ``rng`` (days without data count zero)."""
        rows = self.rows("DailySummary", rng, ("date", *SUMMARY_COUNTS))
        query = sa.select(rows.c.date, *(sa.func.sum(rows.c[c]) for c in SUMMARY_COUNTS))
        result = {day: Totals() for day in rng.dates()}
        for day, *counts in self.conn.execute(query.group_by(rows.c.date)):
            day = _as_date(day)
            if day in result:
                result[day] = Totals(*(int(c or 0) for c in counts))
        return result

    def totals(self, rng: DateRange) -> Totals:
        return sum(self.daily_totals(rng).values(), Totals())

    # -- breakdowns ---------------------------------------------------------------------------

    def breakdown(
        self,
        dimension: Dimension,
        rng: DateRange,
        *,
        limit: int = 10,
        offset: int = 0,
        path: str | None = None,
        exclude: Sequence[str] = (),
    ) -> list[Row]:
        """Top rows of ``dimension`` over ``rng`` (optionally of one page path).

        ``exclude`` drops keys (e.g. the tracker's own event names on the Events page).
        """
        columns = [dimension.key, *dimension.counts]
        if path is not None and "path" not in columns:
            columns.append("path")
        rows = self.rows(dimension.table, rng, columns)
        key = rows.c[dimension.key]
        sums = {c: sa.func.sum(rows.c[c]) for c in dimension.counts}
        query = sa.select(key, *(s.label(c) for c, s in sums.items())).group_by(key)
        if dimension.skip_null:
            query = query.where(key.is_not(None))
        if path is not None:
            query = query.where(rows.c.path == path)
        if exclude:
            query = query.where(key.not_in(list(exclude)))
        if dimension.positive is not None:
            query = query.having(sums[dimension.positive] > 0)
        query = (
            query.order_by(sums[dimension.sort].desc(), key.asc().nulls_last())
            .limit(limit)
            .offset(offset)
        )
        return [
            _row(k, _ints(dimension.counts, vals), dimension.rates)
            for k, *vals in self.conn.execute(query)
        ]

    def page_daily(self, rng: DateRange, path: str) -> dict[dt.date, Totals]:
        """Visitors and pageviews of one page per day (other counts stay zero)."""
        rows = self.rows("DailyPage", rng, ("date", "path", "visitors", "pageviews"))
        query = (
            sa.select(rows.c.date, sa.func.sum(rows.c.visitors), sa.func.sum(rows.c.pageviews))
            .where(rows.c.path == path)
            .group_by(rows.c.date)
        )
        result = {day: Totals() for day in rng.dates()}
        for day, visitors, pageviews in self.conn.execute(query):
            result[_as_date(day)] = Totals(
                visitors=int(visitors or 0), pageviews=int(pageviews or 0)
            )
        return result

    def page_referrers(self, rng: DateRange, path: str, *, limit: int = 20) -> list[Row]:
        """Referrer hosts of one page: visitors and pageviews (NULL host = direct/none)."""
        rows = self.rows(
            "DailyPageReferrer", rng, ("path", "referrer_host", "visitors", "pageviews")
        )
        visitors, pageviews = sa.func.sum(rows.c.visitors), sa.func.sum(rows.c.pageviews)
        query = (
            sa.select(rows.c.referrer_host, visitors, pageviews)
            .where(rows.c.path == path)
            .group_by(rows.c.referrer_host)
            .order_by(visitors.desc(), rows.c.referrer_host.asc().nulls_last())
            .limit(limit)
        )
        return [
            Row(host, {"visitors": int(v or 0), "pageviews": int(p or 0)})
            for host, v, p in self.conn.execute(query)
        ]

    def sessions_histogram(self, rng: DateRange, bucket: str) -> list[Row]:
        """Sessions per ``duration_bucket`` or ``pages_bucket`` (lower bounds), ascending."""
        if bucket not in ("duration_bucket", "pages_bucket"):
            raise ValueError(f"unknown session bucket {bucket!r}")
        rows = self.rows("DailySession", rng, (bucket, "sessions", "total_duration_s", "pageviews"))
        counts = ("sessions", "total_duration_s", "pageviews")
        query = (
            sa.select(rows.c[bucket], *(sa.func.sum(rows.c[c]) for c in counts))
            .group_by(rows.c[bucket])
            .order_by(rows.c[bucket])
        )
        return [
            _row(int(b), _ints(counts, vals), ("views_per_session",))
            for b, *vals in self.conn.execute(query)
        ]

    # -- freshness ----------------------------------------------------------------------------

    def data_as_of(self) -> dt.datetime | None:
        """When the latest aggregation run finished (naive UTC), or None."""
        run = self.models.AggregationRun.__table__
        value: dt.datetime | None = self.conn.execute(
            sa.select(sa.func.max(run.c.finished_at))
        ).scalar()
        return value

    # -- raw events: hours, realtime ----------------------------------------------------------

    def _raw_union(self, start: dt.datetime, end: dt.datetime, columns: Sequence[str]) -> Any:
        parts = []
        for model in (self.models.Event, self.models.EventArchive):
            table = model.__table__
            parts.append(
                sa.select(*(table.c[c] for c in columns)).where(
                    table.c.created_at >= start, table.c.created_at < end
                )
            )
        return sa.union_all(*parts).subquery()

    def _per_slot(
        self, starts: list[dt.datetime], end: dt.datetime, *, archived: bool
    ) -> list[tuple[int, int]]:
        """(visitors, pageviews) of raw events in each ``[starts[i], starts[i+1])`` slot."""
        columns = ("created_at", "visitor_id", "name")
        if archived:
            rows: Any = self._raw_union(starts[0], end, columns)
        else:
            table = self.models.Event.__table__
            rows = (
                sa.select(*(table.c[c] for c in columns))
                .where(table.c.created_at >= starts[0], table.c.created_at < end)
                .subquery()
            )
        # Portable bucketing: compare against the slot bounds computed here with zoneinfo.
        slot = sa.case(
            *((rows.c.created_at < bound, i) for i, bound in enumerate(starts[1:])),
            else_=len(starts) - 1,
        ).label("slot")
        is_view = sa.case((rows.c.name == "pageview", 1), else_=0)
        query = sa.select(
            slot, sa.func.count(sa.distinct(rows.c.visitor_id)), sa.func.sum(is_view)
        ).group_by(slot)
        result = [(0, 0)] * len(starts)
        for index, visitors, pageviews in self.conn.execute(query):
            result[int(index)] = (int(visitors or 0), int(pageviews or 0))
        return result

    def hourly(self, day: dt.date) -> list[Hour]:
        """Visitors (distinct per hour) and pageviews per local hour of ``day``.

        Reads that day's raw and archived events only (an index range on ``created_at``),
        so its cost is one day's events whatever the size of the tables.
        """
        start, end = day_bounds(self.tz, day)
        starts = []
        moment = start
        while moment < end:
            starts.append(moment)
            moment += dt.timedelta(hours=1)
        slots = self._per_slot(starts, end, archived=True)
        return [
            Hour(_to_local(s, self.tz), visitors, pageviews)
            for s, (visitors, pageviews) in zip(starts, slots, strict=True)
        ]

    def realtime(self, *, limit: int = 10) -> Realtime:
        """Current visitors (last 5 minutes) and the last 30 minutes of raw events."""
        table = self.models.Event.__table__
        now = self.now
        since = now - REALTIME_WINDOW
        current = self.conn.execute(
            sa.select(
                sa.func.count(sa.distinct(table.c.visitor_id)),
                sa.func.sum(sa.case((table.c.name == "pageview", 1), else_=0)),
            ).where(table.c.created_at >= since)
        ).one()
        recent_start = (now - REALTIME_RECENT).replace(second=0, microsecond=0) + dt.timedelta(
            minutes=1
        )
        starts = [recent_start + dt.timedelta(minutes=i) for i in range(30)]
        minutes = [
            Hour(_to_local(s, self.tz), v, p)
            for s, (v, p) in zip(
                starts,
                self._per_slot(starts, now + dt.timedelta(days=1), archived=False),
                strict=True,
            )
        ]
        recent_filter = (table.c.created_at >= starts[0], table.c.name == "pageview")
        visitors = sa.func.count(sa.distinct(table.c.visitor_id))
        pages = [
            Row(path, {"visitors": int(v), "pageviews": int(p)})
            for path, v, p in self.conn.execute(
                sa.select(table.c.path, visitors, sa.func.count())
                .where(*recent_filter)
                .group_by(table.c.path)
                .order_by(visitors.desc(), table.c.path)
                .limit(limit)
            )
        ]
        sources = [
            Row(source, {"visitors": int(v), "pageviews": int(p)})
            for source, v, p in self.conn.execute(
                sa.select(table.c.source, visitors, sa.func.count())
                .where(*recent_filter)
                .group_by(table.c.source)
                .order_by(visitors.desc(), table.c.source.asc().nulls_last())
                .limit(limit)
            )
        ]
        shown = ("created_at", "name", "path", "source", "country", "device_type", "props")
        recent = [
            {**dict(r), "created_at": _to_local(r["created_at"], self.tz)}
            for r in self.conn.execute(
                sa.select(*(table.c[c] for c in shown))
                .where(table.c.created_at >= starts[0], table.c.name.not_in(INTERNAL_EVENTS))
                .order_by(table.c.created_at.desc(), table.c.id.desc())
                .limit(20)
            ).mappings()
        ]
        return Realtime(
            now=_to_local(now, self.tz),
            visitors=int(current[0] or 0),
            pageviews=int(current[1] or 0),
            minutes=minutes,
            pages=pages,
            sources=sources,
            recent=recent,
        )


def live_selects(state: AnalyticsState, day: dt.date) -> Mapping[str, sa.Select[Any]]:
    """The aggregation's own selects of ``day`` (as ``aggregate.daily_selects``), with CTE
    names of their own, so several live days can share one statement.

    Columns are picked by name by :meth:`Stats.rows`, so their order does not matter.
    """
    start, end = day_bounds(state.settings.timezone, day)
    suffix = day.strftime("%Y%m%d")
    src = source_events(state.models, start, end).cte(f"src_{suffix}")
    dialect = state.engine().dialect.name
    sessions = sessions_select(src, state.settings.session_timeout, dialect).cte(
        f"sessions_{suffix}"
    )
    selects: dict[str, sa.Select[Any]] = table_selects(day, src, sessions)
    return selects


def _ints(names: Sequence[str], values: Sequence[Any]) -> dict[str, int]:
    # SUM() is NULL over no rows, and a Decimal on PostgreSQL.
    return {name: int(value or 0) for name, value in zip(names, values, strict=True)}


def _as_date(value: Any) -> dt.date:
    # SQLite hands back ISO strings for dates coming out of a UNION of untyped selects.
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _to_local(utc: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    return utc.replace(tzinfo=dt.timezone.utc).astimezone(tz)


def buckets(daily: Mapping[dt.date, Totals], rng: DateRange, interval: str) -> list[Bucket]:
    """Group daily totals by ``interval`` ("day" or "month"), in date order."""
    result: list[Bucket] = []
    for day in rng.dates():
        totals = daily.get(day, Totals())
        if interval == "month" and result and result[-1].start.month == day.month:
            last = result[-1]
            result[-1] = Bucket(last.start, day, last.totals + totals)
        else:
            result.append(Bucket(day, day, totals))
    return result
