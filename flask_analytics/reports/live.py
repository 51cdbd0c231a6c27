"""Live days: which days of a range are read from raw events, and their rows.

A day whose aggregation is final (a finished run that started after the day ended) is
read from the ``analytics_daily_*`` tables only. A day without a final run is computed
live from raw events by the aggregation's own ``SELECT`` statements
(:func:`flask_analytics.core.rollups.daily_selects`), so both paths share one
definition, but only if it holds raw (or archived) events: which days do is found by one
statement of index probes (:func:`flask_analytics.core.runs.days_holding_events`) over the
days between the oldest and the newest event, so an empty day costs nothing, however long
the range.

Today is read from the rows of its latest finished run (the scheduler's "aggregate today"
job, every 15 minutes) while that run started less than :data:`TODAY_RUN_MAX_AGE` ago:
provisional rows, exact as of the run's start (every event stored before it started is
counted), which :meth:`LiveDays.today_as_of` gives the page to show. Without such a run
(no scheduler, or it stopped) today is computed live, like any other live day.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa

from ..core.clock import day_bounds
from ..core.dimensions import dimension_selects
from ..core.rollups import AUDIENCE_KEYS, daily_selects
from ..core.runs import days_holding_events
from .ranges import DateRange

if TYPE_CHECKING:
    from ..core.context import Context

#: Rows of the daily tables of one day, by table name.
DayRows = dict[str, list[dict[str, Any]]]

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
    **AUDIENCE_KEYS,
}
#: The custom dimensions' rollups (``analytics.dimension(name)``), outside ``models.daily``.
DIMENSION_TABLE: Final = "DailyDimension"
#: Today is read from its latest finished run's rows while that run started less than this
#: long ago: twice the scheduler's 15-minute period, so one late or failed run does not
#: send every request back to the raw events, but a stopped scheduler does.
TODAY_RUN_MAX_AGE: Final = dt.timedelta(minutes=30)
#: A live day's statement and the daily table of each of its tags.
LiveStatement = tuple[tuple[str, ...], "sa.CompoundSelect[Any]"]
#: Live statements a :class:`LiveCache` keeps (one per day; the oldest kept goes first).
STATEMENTS_KEPT: Final = 64
#: The shared row layout of the one live statement: at least this many key and count
#: columns (more when a host keyed a daily table by its own columns).
_WIDE_KEYS: Final = 5
_WIDE_COUNTS: Final = 6


class _Flight:
    """One computation of a live day under way: what the threads asking meanwhile wait on."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.rows: DayRows | None = None


class LiveCache:
    """Live days' rows kept for ``ttl`` seconds, shared by the requests of one app.

    Computing a live day runs the aggregation's session query over that day's raw
    events; a dashboard user clicking through pages needs it once, not per page. Stored
    days never go through here: their rows are read from the daily tables.

    :meth:`fetch` computes a day once however many threads ask for it at the same time
    (single flight): the first computes, the others wait for its rows, even with
    ``ttl`` 0 (rows computed after they asked are as fresh as their own would be). If
    the first fails, the next waiting thread computes. Processes do not share it: each
    worker process computes a live day once per ``ttl``.

    Which days hold events is kept for ``ttl`` seconds too (so an event arriving for an
    empty day shows within ``ttl``, as one arriving for a live day does). It also keeps
    the last :data:`STATEMENTS_KEPT` days' live statements (built for one
    app: its models, time zone and session timeout): building one costs 15-30 ms of
    Python, running it on a small day a few milliseconds.
    """

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[dt.date, str], tuple[float, DayRows]] = {}
        self._flights: dict[tuple[dt.date, str], _Flight] = {}
        self._statements: dict[dt.date, LiveStatement] = {}
        self._holds: dict[dt.date, tuple[float, bool]] = {}

    def get(self, day: dt.date, part: str = "daily") -> DayRows | None:
        """``part`` (what :meth:`fetch` was given) of ``day``, while younger than ``ttl``."""
        with self._lock:
            return self._fresh((day, part))

    def put(self, day: dt.date, rows: DayRows, part: str = "daily") -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            now = self._clock()
            self._entries = {k: e for k, e in self._entries.items() if now - e[0] < self.ttl}
            self._entries[(day, part)] = (now, rows)

    def fetch(self, day: dt.date, part: str, compute: Callable[[], DayRows]) -> DayRows:
        """The cached ``part`` of ``day``, or ``compute()``'s, run by one thread at a time."""
        key = (day, part)
        while True:
            with self._lock:
                rows = self._fresh(key)
                if rows is not None:
                    return rows
                flight = self._flights.get(key)
                leader = flight is None
                if flight is None:
                    flight = self._flights[key] = _Flight()
            if leader:
                return self._lead(key, flight, compute)
            flight.done.wait()
            if flight.rows is not None:
                return flight.rows
            # The computing thread failed: the next one computes (or waits for another).

    def _lead(
        self, key: tuple[dt.date, str], flight: _Flight, compute: Callable[[], DayRows]
    ) -> DayRows:
        try:
            rows = compute()
            flight.rows = rows
            self.put(key[0], rows, key[1])
            return rows
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()

    def holds_events(self, days: Sequence[dt.date]) -> dict[dt.date, bool]:
        """What is known, for less than ``ttl`` seconds, of whether ``days`` hold events."""
        with self._lock:
            now = self._clock()
            known = {d: self._holds.get(d) for d in days}
            return {d: e[1] for d, e in known.items() if e is not None and now - e[0] < self.ttl}

    def put_holds_events(self, found: Mapping[dt.date, bool]) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            now = self._clock()
            self._holds = {d: e for d, e in self._holds.items() if now - e[0] < self.ttl}
            self._holds.update((d, (now, holds)) for d, holds in found.items())

    def statement(self, day: dt.date, build: Callable[[], LiveStatement]) -> LiveStatement:
        """``day``'s live statement, built by ``build()`` the first time."""
        with self._lock:
            found = self._statements.get(day)
        if found is None:
            found = build()
            with self._lock:
                while len(self._statements) >= STATEMENTS_KEPT:
                    del self._statements[next(iter(self._statements))]
                self._statements[day] = found
        return found

    def _fresh(self, key: tuple[dt.date, str]) -> DayRows | None:
        entry = self._entries.get(key)
        if entry is None or self._clock() - entry[0] >= self.ttl:
            return None
        return entry[1]


def live_selects(state: Context, day: dt.date) -> Mapping[str, sa.Select[Any]]:
    """The aggregation's own selects of ``day``, with CTE names of that day, so several
    live days can share one statement (columns are picked by name)."""
    selects: dict[str, sa.Select[Any]] = daily_selects(
        state, day, cte_suffix=day.strftime("_%Y%m%d")
    )
    return selects


class LiveDays:
    """Which days are live for one request, and their rows, read on one connection.

    ``today`` is the request's local date and ``now`` its naive UTC time (the app's clock
    by default): today is live unless a run of today started in the last
    :data:`TODAY_RUN_MAX_AGE`.
    """

    def __init__(
        self,
        state: Context,
        conn: sa.Connection,
        today: dt.date,
        cache: LiveCache | None = None,
        *,
        now: dt.datetime | None = None,
    ) -> None:
        self.state = state
        self.conn = conn
        self.today = today
        self.now = now if now is not None else state.clock.utcnow()
        self.cache = cache
        self.models = state.models
        self._final: dict[dt.date, bool] = {}
        self._started: dict[dt.date, dt.datetime | None] = {}
        self._holds_events: dict[dt.date, bool] = {}
        self._raw_span: tuple[dt.date, dt.date] | None = None
        self._raw_span_loaded = False
        self._rows: dict[tuple[dt.date, str], DayRows] = {}

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
            self._started.setdefault(day, None)
        tz = self.state.settings.timezone
        for day, started in rows:
            # A run that started before the day was over missed its last events.
            self._final[day] = started >= day_bounds(tz, day)[1]
            self._started[day] = started

    def load_final(self, rng: DateRange) -> None:
        """Find which days of ``rng`` have a final run, in one statement (:meth:`is_final`
        and :meth:`stored` then ask nothing more)."""
        self._load_final(list(rng.dates()))

    def is_final(self, day: dt.date) -> bool:
        """True when ``day``'s daily rows come from a run started after the day ended."""
        self._load_final([day])
        return self._final[day]

    def holds_events(self, days: list[dt.date]) -> dict[dt.date, bool]:
        """Whether each of ``days`` holds raw or archived events: one statement for those
        the live cache does not know."""
        missing = [d for d in days if d not in self._holds_events]
        if missing and self.cache is not None:
            self._holds_events.update(self.cache.holds_events(missing))
            missing = [d for d in missing if d not in self._holds_events]
        if missing:
            tables = [self.models.Event.__table__, self.models.EventArchive.__table__]
            tz = self.state.settings.timezone
            found = days_holding_events(self.conn, tz, tables, missing)
            probed = {day: day in found for day in missing}
            self._holds_events.update(probed)
            if self.cache is not None:
                self.cache.put_holds_events(probed)
        return {d: self._holds_events[d] for d in days}

    def today_as_of(self) -> dt.datetime | None:
        """When the run whose rows today is read from started (naive UTC): every event
        stored before then is counted. None when today is computed live instead."""
        self._load_final([self.today])
        started = self._started[self.today]
        if started is None or self.now - started >= TODAY_RUN_MAX_AGE:
            return None
        return started

    def stored(self, day: dt.date) -> bool:
        """True when ``day`` is read from the daily tables whatever its raw events: a
        past day with a final run, or today with a recent run (:meth:`today_as_of`)."""
        if day == self.today:
            return self.today_as_of() is not None
        return day < self.today and self.is_final(day)

    def days(self, rng: DateRange) -> list[dt.date]:
        """Days of ``rng`` computed from raw events: those not :meth:`stored` that hold raw
        (or archived) events. Empty days are never live: they read as zero, or as the
        rows a run stored for them."""
        candidates = [d for d in self.span_days(rng) if not self.stored(d)]
        holds = self.holds_events(candidates)
        return [d for d in candidates if holds[d]]

    def span_days(self, rng: DateRange) -> list[dt.date]:
        """Days of ``rng`` from the oldest to the newest raw (or archived) event: the only
        ones that can hold events (their runs are read in one query)."""
        span = self.raw_span()
        if span is None:
            return []
        low, high = max(rng.start, span[0]), min(rng.end, span[1])
        if low > high:
            return []
        days = list(DateRange(low, high).dates())
        self._load_final(days)
        return days

    def rows(self, table: str, day: dt.date) -> list[dict[str, Any]]:
        """Rows of daily table ``table`` for live ``day``, computed from raw events.

        The nine daily tables of a day come from one statement (the aggregation's selects
        sharing their CTEs, so the day's sessions are computed once), the custom
        dimensions' from another; both are kept for the request and, through the live
        cache, for the next requests, which compute a day once between them.
        """
        part = DIMENSION_TABLE if table == DIMENSION_TABLE else "daily"
        rows = self._rows.get((day, part))
        if rows is None:

            def compute() -> DayRows:
                if part == DIMENSION_TABLE:
                    return self._fetch_dimensions(day)
                return self._fetch_daily(day)

            rows = compute() if self.cache is None else self.cache.fetch(day, part, compute)
            self._rows[(day, part)] = rows
        return rows[table]

    def _fetch_dimensions(self, day: dt.date) -> DayRows:
        select = dimension_selects(self.state, day, cte_suffix=day.strftime("_%Y%m%d"))
        if select is None:
            return {DIMENSION_TABLE: []}
        found = self.conn.execute(select).mappings()
        return {DIMENSION_TABLE: [{**r, "date": day} for r in found]}

    def _fetch_daily(self, day: dt.date) -> DayRows:
        if self.conn.dialect.name == "postgresql":
            # The sessions CTE is materialized whole (every landing attribute): give its
            # hash aggregate room so it does not spill to disk. Reset at transaction end.
            self.conn.execute(sa.text("SET LOCAL work_mem = '32MB'"))
        if self.cache is None:
            names, statement = self._daily_statement(day)
        else:
            names, statement = self.cache.statement(day, lambda: self._daily_statement(day))
        result: DayRows = {name: [] for name in names}
        wide_keys = self._wide()[0]
        for row in self.conn.execute(statement):
            name = names[row[0]]
            keys, counts = self._keys(name), self._counts(name)
            values: dict[str, Any] = {"date": day}
            for i, key in enumerate(keys):
                value = row[1 + i]
                # Keys travel as text in the shared layout; bucket bounds are integers.
                values[key] = int(value) if value is not None and key.endswith("_bucket") else value
            for i, count in enumerate(counts):
                values[count] = int(row[1 + wide_keys + i] or 0)
            result[name].append(values)
        return result

    def _daily_statement(self, day: dt.date) -> LiveStatement:
        """The nine daily tables' selects of ``day`` as one statement of shared columns
        (a tag: the table's place in the names returned, keys as text, counts)."""
        selects = live_selects(self.state, day)
        names = tuple(selects)
        wide_keys, wide_counts = self._wide()
        parts = []
        for tag, name in enumerate(names):
            sub = selects[name].subquery()
            keys, counts = self._keys(name), self._counts(name)
            parts.append(
                sa.select(
                    sa.literal(tag, sa.Integer()).label("tag"),
                    *(sa.cast(sub.c[k], sa.String()).label(f"k{i}") for i, k in enumerate(keys)),
                    *(
                        sa.cast(sa.null(), sa.String()).label(f"k{i}")
                        for i in range(len(keys), wide_keys)
                    ),
                    *(
                        sa.cast(sub.c[c], sa.BigInteger()).label(f"n{i}")
                        for i, c in enumerate(counts)
                    ),
                    *(
                        sa.cast(sa.literal(0), sa.BigInteger()).label(f"n{i}")
                        for i in range(len(counts), wide_counts)
                    ),
                )
            )
        return names, sa.union_all(*parts)

    def _keys(self, table: str) -> tuple[str, ...]:
        """Key columns of daily table ``table``: its own, then the host's (keyed tables)."""
        return (*LIVE_KEYS[table], *self.models.keyed.get(table, ()))

    def _wide(self) -> tuple[int, int]:
        """Key and count columns of the one live statement's shared row layout."""
        names = self.models.daily
        return (
            max(_WIDE_KEYS, *(len(self._keys(n)) for n in names)),
            max(_WIDE_COUNTS, *(len(self._counts(n)) for n in names)),
        )

    def _counts(self, table: str) -> tuple[str, ...]:
        skip = {"id", "date", *self._keys(table)}
        return tuple(c.name for c in self.models.daily[table].__table__.c if c.name not in skip)
