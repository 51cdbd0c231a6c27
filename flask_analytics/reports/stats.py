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
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa

from ..core.clock import day_bounds
from ..core.dimensions import dimension_selects
from ..core.rollups import INTERNAL_EVENTS as INTERNAL_EVENTS
from ..core.rollups import daily_selects

if TYPE_CHECKING:
    from ..core.context import Context

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
        # Spelled out: a year of days is added per chart, fields() would dominate.
        return Totals(
            self.visitors + other.visitors,
            self.sessions + other.sessions,
            self.pageviews + other.pageviews,
            self.bounces + other.bounces,
            self.total_duration_s + other.total_duration_s,
            self.events + other.events,
        )

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
    #: Column equalities selecting the rows (a custom dimension's name).
    where: tuple[tuple[str, Any], ...] = ()
    #: Column header / panel title (custom dimensions carry the host's label).
    label: str = ""


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


def custom_dimension(name: str, label: str = "") -> Dimension:
    """The breakdown of a custom dimension declared with ``analytics.dimension(name)``.

    Its rollups are event-level (visitors with an event carrying the value), one row per
    value and day, so visitors add up over days like every other breakdown.
    """
    return Dimension(
        name,
        "DailyDimension",
        "value",
        ("visitors", "pageviews", "events"),
        "visitors",
        ("events_per_visitor",),
        where=(("dimension", name),),
        label=label or name,
    )


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


def _row(
    key: Any, counts: dict[str, int], rates: Sequence[str], sums: Mapping[str, int] | None = None
) -> Row:
    """A row with ``rates`` derived from ``sums`` (default: its shown counts)."""
    source = counts if sums is None else sums
    derived = {}
    for name in rates:
        numerator, denominator, scale = ROW_RATES[name]
        derived[name] = ratio(source[numerator], source[denominator], scale)
    return Row(key, counts, derived)


#: Key columns of each daily table (the rest, but id and date, are counts).
LIVE_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    "DailySummary": (),
    "DailyPage": ("path",),
    "DailyPageReferrer": ("path", "referrer_host"),
    "DailyTrafficSource": ("channel", "source"),
    "DailyCountry": ("country",),
    "DailyDevice": ("device_type", "browser", "os"),
    "DailyUtm": ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"),
    "DailySession": ("duration_bucket", "pages_bucket"),
    "DailyEvent": ("name",),
}
#: The custom dimensions' rollups (``analytics.dimension(name)``), outside ``models.daily``.
DIMENSION_TABLE: Final = "DailyDimension"
_WIDE_KEYS: Final = 5
_WIDE_COUNTS: Final = 6
#: Above this many keys with live rows, a top-N query fetches every stored group instead.
_MAX_LIVE_KEYS: Final = 2000


class LiveCache:
    """Live days' rows kept for ``ttl`` seconds, shared by the requests of one app.

    Computing a live day runs the aggregation's session query over that day's raw
    events; a dashboard user clicking through pages needs it once, not per page. Stored
    days never go through here: their rows are read from the daily tables.
    """

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[dt.date, tuple[float, dict[str, list[dict[str, Any]]]]] = {}

    def get(self, day: dt.date) -> dict[str, list[dict[str, Any]]] | None:
        with self._lock:
            entry = self._entries.get(day)
            if entry is None or self._clock() - entry[0] >= self.ttl:
                return None
            return entry[1]

    def put(self, day: dt.date, rows: dict[str, list[dict[str, Any]]]) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            now = self._clock()
            self._entries = {d: e for d, e in self._entries.items() if now - e[0] < self.ttl}
            self._entries[day] = (now, rows)


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
        self,
        state: Context,
        conn: sa.Connection,
        *,
        now: dt.datetime | None = None,
        live_cache: LiveCache | None = None,
    ) -> None:
        self.state = state
        self.conn = conn
        self.now = now if now is not None else state.clock.utcnow()
        self.tz = state.settings.timezone
        self.today = state.local_date(self.now)
        self.models = state.models
        self._final: dict[dt.date, bool] = {}
        self._raw_span: tuple[dt.date, dt.date] | None = None
        self._raw_span_loaded = False
        self._live: dict[dt.date, dict[str, list[dict[str, Any]]]] = {}
        self.live_cache = live_cache

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

    def live_rows(self, table: str, day: dt.date) -> list[dict[str, Any]]:
        """Rows of daily table ``table`` for live ``day``, computed from raw events.

        All nine tables of a day come from one statement (the aggregation's selects
        sharing their CTEs, so the day's sessions are computed once) and are kept for
        the request and, through the live cache, for the next requests.
        """
        rows = self._live.get(day)
        if rows is None and self.live_cache is not None:
            rows = self.live_cache.get(day)
        if rows is None or table not in rows:
            fetched = self._fetch_dimensions(day) if table == DIMENSION_TABLE else None
            rows = {**(rows or {}), **(fetched or self._fetch_live(day))}
            if self.live_cache is not None:
                self.live_cache.put(day, rows)
        self._live[day] = rows
        return rows[table]

    def _fetch_dimensions(self, day: dt.date) -> dict[str, list[dict[str, Any]]]:
        select = dimension_selects(self.state, day, cte_suffix=day.strftime("_%Y%m%d"))
        if select is None:
            return {DIMENSION_TABLE: []}
        found = self.conn.execute(select).mappings()
        return {DIMENSION_TABLE: [{**r, "date": day} for r in found]}

    def _table(self, table: str) -> sa.Table:
        if table == DIMENSION_TABLE:
            custom: sa.Table = self.models.DailyDimension.__table__
            return custom
        daily: sa.Table = self.models.daily[table].__table__
        return daily

    def _fetch_live(self, day: dt.date) -> dict[str, list[dict[str, Any]]]:
        if self.conn.dialect.name == "postgresql":
            # The sessions CTE is materialized whole (every landing attribute): give its
            # hash aggregate room so it does not spill to disk. Reset at transaction end.
            self.conn.execute(sa.text("SET LOCAL work_mem = '32MB'"))
        selects = live_selects(self.state, day)
        names = list(selects)
        parts = []
        for tag, name in enumerate(names):
            sub = selects[name].subquery()
            keys, counts = LIVE_KEYS[name], self._counts(name)
            parts.append(
                sa.select(
                    sa.literal(tag, sa.Integer()).label("tag"),
                    *(sa.cast(sub.c[k], sa.String()).label(f"k{i}") for i, k in enumerate(keys)),
                    *(
                        sa.cast(sa.null(), sa.String()).label(f"k{i}")
                        for i in range(len(keys), _WIDE_KEYS)
                    ),
                    *(
                        sa.cast(sub.c[c], sa.BigInteger()).label(f"n{i}")
                        for i, c in enumerate(counts)
                    ),
                    *(
                        sa.cast(sa.literal(0), sa.BigInteger()).label(f"n{i}")
                        for i in range(len(counts), _WIDE_COUNTS)
                    ),
                )
            )
        result: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for row in self.conn.execute(sa.union_all(*parts)):
            name = names[row[0]]
            keys, counts = LIVE_KEYS[name], self._counts(name)
            values: dict[str, Any] = {"date": day}
            for i, key in enumerate(keys):
                value = row[1 + i]
                # Keys travel as text in the shared layout; bucket bounds are integers.
                values[key] = int(value) if value is not None and key.endswith("_bucket") else value
            for i, count in enumerate(counts):
                values[count] = int(row[1 + _WIDE_KEYS + i] or 0)
            result[name].append(values)
        return result

    def _counts(self, table: str) -> tuple[str, ...]:
        skip = {"id", "date", *LIVE_KEYS[table]}
        return tuple(c.name for c in self.models.daily[table].__table__.c if c.name not in skip)

    def grouped(
        self,
        table: str,
        rng: DateRange,
        keys: Sequence[str],
        counts: Sequence[str],
        *,
        equals: Mapping[str, Any] | None = None,
        exclude: Sequence[Any] = (),
        skip_null: bool = False,
        positive: str | None = None,
        sort: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[tuple[tuple[Any, ...], dict[str, int]]]:
        """Sums of ``counts`` of daily table ``table`` over ``rng``, grouped by ``keys``.

        Stored rows of final days are grouped in SQL; live days' rows (see
        :meth:`live_rows`) are added in Python. With ``limit``, SQL returns only the top
        stored groups plus the stored sums of every key that has live rows: a key
        without live rows can only reach the merged top if it is in the stored top, so
        the result is exact. ``exclude``, ``skip_null`` and ``positive`` (a count that
        must be above zero) filter the first key; ``equals`` filters any column.
        """
        model = self._table(table)
        equals = equals or {}
        live_days = self.live_days(rng)
        live: dict[tuple[Any, ...], list[int]] = {}
        for day in live_days:
            for row in self.live_rows(table, day):
                if any(row[column] != value for column, value in equals.items()):
                    continue
                acc = live.setdefault(tuple(row[k] for k in keys), [0] * len(counts))
                for i, count in enumerate(counts):
                    acc[i] += row[count]

        key_columns = [model.c[k] for k in keys]
        sums = [sa.func.sum(model.c[c]) for c in counts]
        base = (
            sa.select(*key_columns, *(total.label(f"fa_n{i}") for i, total in enumerate(sums)))
            .where(model.c.date.between(rng.start, rng.end))
            .group_by(*key_columns)
        )
        if live_days:
            base = base.where(model.c.date.not_in(live_days))
        for column, value in equals.items():
            base = base.where(model.c[column] == value)
        if exclude:
            base = base.where(key_columns[0].not_in(list(exclude)))
        if skip_null:
            base = base.where(key_columns[0].is_not(None))
        query = base
        live_keys = [k[0] for k in live]
        if limit is not None and len(live_keys) <= _MAX_LIVE_KEYS:
            order: list[Any] = []
            if positive is not None:
                # Keys failing the filter rank last (the merged counts decide later).
                order.append(sa.case((sums[counts.index(positive)] > 0, 0), else_=1))
            order += [
                sums[counts.index(sort or counts[0])].desc(),
                *(k.asc().nulls_last() for k in key_columns),
            ]
            if not live_keys:
                query = base.order_by(*order).limit(offset + limit)
            else:
                # One pass: the stored top groups, plus every key that has live rows.
                rank = sa.func.row_number().over(order_by=order).label("fa_rank")
                ranked = base.add_columns(rank).subquery()
                known = [k for k in live_keys if k is not None]
                wanted: sa.ColumnElement[bool] = ranked.c[keys[0]].in_(known)
                if len(known) < len(live_keys):
                    wanted = sa.or_(wanted, ranked.c[keys[0]].is_(None))
                columns = [ranked.c[k] for k in keys]
                columns += [ranked.c[f"fa_n{i}"] for i in range(len(sums))]
                query = sa.select(*columns).where(
                    sa.or_(ranked.c.fa_rank <= offset + limit, wanted)
                )
        merged: dict[tuple[Any, ...], list[int]] = {}
        for record in self.conn.execute(query):
            key = tuple(
                _as_date(v) if k == "date" else v for k, v in zip(keys, record, strict=False)
            )
            merged[key] = [int(v or 0) for v in record[len(keys) :]]
        for key, values in live.items():
            stored = merged.get(key, [0] * len(counts))
            merged[key] = [a + b for a, b in zip(stored, values, strict=True)]

        result = []
        for key, values in merged.items():
            first = key[0]
            if (skip_null and first is None) or (exclude and first in exclude):
                continue
            counted = dict(zip(counts, values, strict=True))
            if positive is not None and counted[positive] <= 0:
                continue
            result.append((key, counted))
        if sort is not None:
            result.sort(
                key=lambda item: (
                    -item[1][sort],
                    *((k is None, k if k is not None else "") for k in item[0]),
                )
            )
        else:
            result.sort(key=lambda item: tuple((k is None, k) for k in item[0]))
        if limit is not None:
            result = result[offset : offset + limit]
        return result

    # -- summary --------------------------------------------------------------------------

    def daily_totals(self, rng: DateRange) -> dict[dt.date, Totals]:
        """Totals of every day of ``rng`` (days without data count zero)."""
        result = {day: Totals() for day in rng.dates()}
        for (day,), counts in self.grouped("DailySummary", rng, ("date",), SUMMARY_COUNTS):
            if day in result:
                result[day] = Totals(**counts)
        return result

    def totals(self, rng: DateRange) -> Totals:
        return sum(self.daily_totals(rng).values(), Totals())

    # -- breakdowns -----------------------------------------------------------------------

    def breakdown(
        self,
        dimension: Dimension,
        rng: DateRange,
        *,
        limit: int = 10,
        offset: int = 0,
        path: str | None = None,
        exclude: Sequence[str] = (),
        counts: Sequence[str] | None = None,
    ) -> list[Row]:
        """Top rows of ``dimension`` over ``rng`` (optionally of one page path).

        ``exclude`` drops keys (e.g. the tracker's own event names on the Events page);
        ``counts`` limits the sums to those a view shows (rates needing others are left
        out).
        """
        wanted = tuple(counts) if counts is not None else dimension.counts
        needed = {dimension.sort, *([dimension.positive] if dimension.positive else [])}
        summed = (*wanted, *(c for c in dimension.counts if c in needed and c not in wanted))
        rows = self.grouped(
            dimension.table,
            rng,
            (dimension.key,),
            summed,
            equals={**dict(dimension.where), **({"path": path} if path is not None else {})},
            exclude=exclude,
            skip_null=dimension.skip_null,
            positive=dimension.positive,
            sort=dimension.sort,
            limit=limit,
            offset=offset,
        )
        rates = [r for r in dimension.rates if set(ROW_RATES[r][:2]) <= set(summed)]
        return [_row(key[0], {c: sums[c] for c in wanted}, rates, sums) for key, sums in rows]

    def page_daily(self, rng: DateRange, path: str) -> dict[dt.date, Totals]:
        """Visitors and pageviews of one page per day (other counts stay zero)."""
        result = {day: Totals() for day in rng.dates()}
        rows = self.grouped(
            "DailyPage", rng, ("date",), ("visitors", "pageviews"), equals={"path": path}
        )
        for (day,), counts in rows:
            result[day] = Totals(**counts)
        return result

    def page_referrers(self, rng: DateRange, path: str, *, limit: int = 20) -> list[Row]:
        """Referrer hosts of one page: visitors and pageviews (NULL host = direct/none)."""
        rows = self.grouped(
            "DailyPageReferrer",
            rng,
            ("referrer_host",),
            ("visitors", "pageviews"),
            equals={"path": path},
            sort="visitors",
            limit=limit,
        )
        return [Row(key[0], counts) for key, counts in rows]

    def sessions_histogram(self, rng: DateRange, bucket: str) -> list[Row]:
        """Sessions per ``duration_bucket`` or ``pages_bucket`` (lower bounds), ascending."""
        if bucket not in ("duration_bucket", "pages_bucket"):
            raise ValueError(f"unknown session bucket {bucket!r}")
        counts = ("sessions", "total_duration_s", "pageviews")
        rows = self.grouped("DailySession", rng, (bucket,), counts)
        return [_row(int(key[0]), c, ("views_per_session",)) for key, c in rows]

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

    def current_visitors(self) -> int:
        """Distinct visitors of raw events in the last five minutes."""
        table = self.models.Event.__table__
        query = sa.select(sa.func.count(sa.distinct(table.c.visitor_id))).where(
            table.c.created_at >= self.now - REALTIME_WINDOW
        )
        return int(self.conn.execute(query).scalar() or 0)

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


def live_selects(state: Context, day: dt.date) -> Mapping[str, sa.Select[Any]]:
    """The aggregation's own selects of ``day``, with CTE names of that day, so several
    live days can share one statement (columns are picked by name)."""
    selects: dict[str, sa.Select[Any]] = daily_selects(
        state, day, cte_suffix=day.strftime("_%Y%m%d")
    )
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
    if interval != "month":
        return [Bucket(day, day, daily.get(day, Totals())) for day in rng.dates()]
    months: dict[tuple[int, int], list[Any]] = {}
    for day in rng.dates():
        entry = months.setdefault((day.year, day.month), [day, day, []])
        entry[1] = day
        entry[2].append(daily.get(day, Totals()))
    return [Bucket(first, last, sum(parts, Totals())) for first, last, parts in months.values()]
