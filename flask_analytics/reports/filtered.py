"""The raw path of the query engine: any question over a range, filtered, exactly.

Filtered questions cannot be read from the daily rollups (they hold one dimension each),
so each is answered by one statement over sessions and raw + archived events:

1. Sessions of the range: final days' rows of ``analytics_session`` (written by the
   aggregation from the rollups' own session computation), and, for the other days,
   sessions cut here from raw events by the same rule (a visitor's events of one local
   day, split at gaps above ``SESSION_TIMEOUT``, ordered by ``(created_at, id)``), each
   with its local day as an index into the range (computed from UTC seconds per
   stretch of equal-length days, so DST days are exact).
2. Kept sessions: those whose landing attributes (first pageview, else first event) and
   entry/exit pages pass the session filters, and, with event filters, that hold at
   least one event passing them all.
3. Kept events (when the question needs events): the range's events joined to their
   kept session on visitor and ``started_at <= created_at <= ended_at`` (a visitor's
   sessions never overlap), passing the event filters.
4. From those, the rows of a *virtual daily table* (the same names and columns as the
   ``analytics_daily_*`` tables, one row per local day and key), summed over the range
   like the stored ones.

Counts follow DESIGN.md's filter definition: pageviews and events count kept events;
visitors are distinct visitors of kept sessions per day, summed over days; sessions,
bounces and duration are the kept sessions'. A session's bounce, duration and pages
bucket are properties of the whole session. Without filters every number equals the
rollups' (the tests compare both paths on random traffic).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa

from ..core import dialects
from ..core.clock import day_bounds
from ..core.rollups import (
    LANDING_COLUMNS,
    PAGEVIEW,
    sessions_select,
    total,
)
from .filters import (
    EVENT_DIMENSIONS,
    GOAL,
    SESSION_DIMENSIONS,
    Filter,
    condition,
    goals_condition,
    prop_value,
)
from .props import PROP_TABLE, keys_select, values_select
from .ranges import DateRange
from .spans import as_date, date_runs, day_index, intervals, share_of_span, within
from .virtual import dimension_select, table_select

if TYPE_CHECKING:
    from ..core.context import Context
    from ..goals import Goal
    from .live import LiveDays

#: Columns of a session besides its landing attributes (``analytics_session``'s, with
#: ``day``, the index of its local day in the range, instead of ``date``).
_SESSION_COLUMNS: Final = (
    "day",
    "visitor_id",
    "started_at",
    "ended_at",
    "duration_s",
    "events",
    "pageviews",
    "bounce",
    "entry_path",
    "exit_path",
)


#: Event columns the virtual tables read (besides the event model's custom columns).
_EVENT_COLUMNS: Final = (
    "created_at", "visitor_id", "name", "path", "referrer_host", "engagement_ms"
)  # fmt: skip


@dataclass(frozen=True)
class _Kept:
    """Temporary tables of one range's kept sessions and (with event filters) events."""

    rng: DateRange
    sessions: sa.Table
    events: sa.Table | None


def _window(table: sa.Table, offset: int, length: int) -> sa.Select[Any]:
    """Rows of ``table`` whose ``day`` is in ``[offset, offset + length)``, renumbered
    from 0."""
    c = table.c
    if offset == 0:
        return sa.select(*c).where(c.day < length)
    day = (c.day - offset).label("day")
    return sa.select(day, *(col for col in c if col.name != "day")).where(
        c.day >= offset, c.day < offset + length
    )


#: Numbers of the temporary tables this process writes (names unique per connection).
_TABLE_NUMBERS: Final = itertools.count()


class RawDataMissing(ValueError):
    """A raw-path question about days whose raw events are gone (purged after archive)."""


#: Virtual tables read whole per request, by their key columns (few keys per day).
_SHARED_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    "DailyPage": ("path",),
    "DailyTrafficSource": ("channel", "source"),
    "DailyCountry": ("country",),
    "DailyDevice": ("device_type", "browser", "os"),
    "DailyUtm": ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"),
    "DailySession": ("duration_bucket", "pages_bucket"),
}


def _table_counts(models: Any, table: str) -> tuple[str, ...]:
    """The count columns of daily table ``table`` (all but id, date and its keys)."""
    skip = {"id", "date", *_SHARED_KEYS[table]}
    return tuple(c.name for c in models.daily[table].__table__.c if c.name not in skip)


class FilteredEvents:
    """The raw path of one request: virtual daily rows of kept events and sessions.

    ``live`` tells which days of a range have final rollups: their sessions are read
    from ``analytics_session``; the other days' sessions are cut from raw events here.
    """

    def __init__(
        self,
        state: Context,
        conn: sa.Connection,
        filters: Sequence[Filter],
        custom_columns: Sequence[str] = (),
        live: LiveDays | None = None,
        goals: Mapping[str, Goal] | None = None,
    ) -> None:
        self.state = state
        #: The app's goals by name (``goal:is:NAME`` filters and goal reports).
        self.goals: Mapping[str, Goal] = goals or {}
        self.conn = conn
        self.filters = tuple(filters)
        self.dialect = conn.dialect.name
        self.tz = state.settings.timezone
        self.models = state.models
        self.custom_columns = tuple(custom_columns)
        self.live = live
        self.session_filters = [f for f in self.filters if f.is_session]
        self.event_filters = [f for f in self.filters if not f.is_session]
        self._stored: dict[DateRange, list[dt.date]] = {}
        #: Whole virtual tables read for this request (see :meth:`grouped`).
        self._tables: dict[tuple[str, DateRange], dict[tuple[Any, ...], dict[str, int]]] = {}
        self._spans: dict[str, tuple[Any, Any]] = {}
        #: Kept sessions (and events) written for this request, by range.
        self._kept: list[_Kept] = []
        self._temps: list[sa.Table] = []

    # -- which days read stored sessions --------------------------------------------------

    def stored_days(self, rng: DateRange) -> list[dt.date]:
        """Days of ``rng`` whose sessions are read from ``analytics_session``: the days the
        unfiltered path reads from the daily tables (final days, and today while its
        latest run is recent: see :class:`~.live.LiveDays`), when their session rows add
        up to their summary's sessions (days aggregated before the table existed have
        none). Events of such a day join the sessions its run stored, so its filtered
        numbers are as of that run, like its unfiltered ones."""
        if rng in self._stored:
            return self._stored[rng]
        days: list[dt.date] = []
        if self.live is not None:
            self.live.load_final(rng)
            final = [d for d in rng.dates() if self.live.stored(d)]
            if final:
                days = self._with_session_rows(final)
        self._stored[rng] = days
        return days

    def _with_session_rows(self, days: list[dt.date]) -> list[dt.date]:
        low, high = min(days), max(days)
        summary = self.models.daily["DailySummary"].__table__
        session = self.models.Session.__table__
        expected: dict[Any, Any] = dict(
            self.conn.execute(
                sa.select(summary.c.date, summary.c.sessions).where(
                    summary.c.date.between(low, high)
                )
            ).all()
        )
        found: dict[Any, Any] = dict(
            self.conn.execute(
                sa.select(session.c.date, sa.func.count())
                .where(session.c.date.between(low, high))
                .group_by(session.c.date)
            ).all()
        )
        sessions = {as_date(k): int(v) for k, v in expected.items()}
        rows = {as_date(k): int(v) for k, v in found.items()}
        return [d for d in days if sessions.get(d, 0) == rows.get(d, 0)]

    # -- statement ------------------------------------------------------------------------

    def _event_condition(self, item: Filter, columns: Any) -> sa.ColumnElement[bool]:
        if item.dimension == GOAL:
            return goals_condition(item, self.goals, columns, self.dialect)
        return condition(item, self._event_value(item, columns), self.dialect)

    def _event_value(self, item: Filter, columns: Any) -> Any:
        key = item.prop_key
        if key is not None:
            return prop_value(columns.props, key, self.dialect)
        return columns[EVENT_DIMENSIONS.get(item.dimension, item.dimension)]

    def _created_at(self, t: sa.Table, intervals: Sequence[tuple[dt.datetime, dt.datetime]]) -> Any:
        """``t.created_at`` to compare with ``intervals`` (see :meth:`_off_index`)."""
        return self._off_index(t.c.created_at, intervals)

    def _off_index(self, column: Any, intervals: Sequence[tuple[Any, Any]]) -> Any:
        """``column`` to compare with ``[start, end)`` ``intervals``; on SQLite, made unfit
        for its index when they cover at least half of the column's span in its table.
        Without statistics SQLite reads any range through the index, a row lookup per
        row: reading most of a table that way took 2.5 times a plain scan
        (bench/query.py --profile)."""
        if self.dialect != "sqlite":
            return column
        key = f"{column.table.name}.{column.name}"
        if key not in self._spans:
            row = self.conn.execute(sa.select(sa.func.min(column), sa.func.max(column))).one()
            low, high = row[0], row[1]
            if isinstance(high, dt.date) and not isinstance(high, dt.datetime):
                high += dt.timedelta(days=1)  # a date stands for its whole day
            self._spans[key] = (low, high)
        if share_of_span(intervals, *self._spans[key]) < 0.5:
            return column
        # The unary plus keeps the value and takes the term off the index.
        return sa.sql.elements.UnaryExpression(
            column, operator=sa.sql.operators.custom_op("+"), type_=column.type
        )

    def _events(self, rng: DateRange, columns: Sequence[str], days: Sequence[dt.date]) -> Any:
        """Raw + archived events of ``days`` (all of ``rng`` when None) with ``columns``."""
        parts = []
        for archived, model in enumerate((self.models.Event, self.models.EventArchive)):
            t: sa.Table = model.__table__
            ts = dialects.epoch_seconds(t.c.created_at, self.dialect)
            parts.append(
                sa.select(
                    *(t.c[name] for name in columns),
                    sa.literal_column(str(archived), sa.Integer()).label("archived"),
                    ts.label("ts"),
                ).where(within(t.c.created_at, intervals(self.tz, days)))
            )
        return sa.union_all(*parts)

    def _computed_sessions(self, rng: DateRange, days: Sequence[dt.date]) -> sa.Select[Any]:
        """Sessions of ``days`` cut from raw events by the rollups' own
        :func:`~flask_analytics.core.rollups.sessions_select`, split at local midnight:
        ``analytics_session``'s columns, with ``day`` (the day's index in ``rng``)
        instead of ``date``."""
        columns = ("id", "created_at", "visitor_id", "name", "path", *LANDING_COLUMNS)
        events = self._events(rng, columns, days).subquery("fa_day_events")
        src = sa.select(*events.c, day_index(events.c.ts, self.tz, rng).label("day")).subquery(
            "fa_src"
        )
        start, _ = day_bounds(self.tz, min(days))
        _, end = day_bounds(self.tz, max(days))
        return sessions_select(
            src,
            self.state.settings.session_timeout,
            self.dialect,
            non_interactive=self.state.settings.non_interactive_events,
            models=self.models,
            bounds=(start, end),
            by_day=True,
        )

    def _stored_sessions(self, rng: DateRange, days: Sequence[dt.date]) -> sa.Select[Any]:
        """``analytics_session`` rows of ``days``, with their day's index in ``rng``."""
        t: sa.Table = self.models.Session.__table__
        day = dialects.days_between(rng.start, t.c.date, self.dialect).label("day")
        return sa.select(
            day,
            *(t.c[name] for name in _SESSION_COLUMNS if name != "day"),
            *(t.c[name] for name in LANDING_COLUMNS),
        ).where(date_runs(t.c.date, days, self._off_index))

    def _passing(self, rng: DateRange) -> Any:
        """Sessions of ``rng`` that pass the session filters (a subquery)."""
        stored = self.stored_days(rng)
        computed = [d for d in rng.dates() if d not in set(stored)]
        if self.live is not None and computed:
            holds = self.live.holds_events(computed)
            computed = [d for d in computed if holds[d]]
        selects = []
        if stored:
            selects.append(self._stored_sessions(rng, stored))
        if computed:
            selects.append(self._computed_sessions(rng, computed))
        if not selects:
            selects.append(self._stored_sessions(rng, []))
        every = selects[0] if len(selects) == 1 else sa.union_all(*selects)
        sessions = every.subquery("fa_every_session")
        sc = sessions.c
        session_columns: dict[str, Any] = {name: sc[name] for name in LANDING_COLUMNS}
        session_columns.update(entry_path=sc.entry_path, exit_path=sc.exit_path)
        wheres = [
            condition(f, session_columns[SESSION_DIMENSIONS[f.dimension]], self.dialect)
            for f in self.session_filters
        ]
        return sa.select(*sc).where(*wheres).subquery("fa_passing")

    def _joined(
        self,
        rng: DateRange,
        sessions: Any,
        extra: Sequence[str],
        wheres: Sequence[Callable[[Any], sa.ColumnElement[bool]]] = (),
        session_extra: Sequence[str] = (),
    ) -> Any:
        """Events of ``rng`` joined to their session in ``sessions`` (on visitor and
        ``started_at <= created_at <= ended_at``: a visitor's sessions never overlap),
        passing the event filters and ``wheres`` (functions of the event table's columns),
        with ``extra`` event columns and ``session_extra`` session columns: a ``UNION
        ALL`` of raw and archived events."""
        p = sessions.c
        columns = _EVENT_COLUMNS
        in_range = intervals(self.tz, list(rng.dates()))
        # One join per table, the event filters inside it: a join above the UNION ALL
        # had PostgreSQL sort every event of the range for a merge join (3M events:
        # 144 MB spilled to disk) and SQLite materialize them all first.
        branches = []
        for model in (self.models.Event, self.models.EventArchive):
            t: sa.Table = model.__table__
            branches.append(
                sa.select(
                    p.day,
                    p.started_at.label("session_start"),
                    *(p[name].label(f"session_{name}") for name in session_extra),
                    *(t.c[name] for name in (*columns, *extra)),
                    dialects.epoch_seconds(t.c.created_at, self.dialect).label("ts"),
                )
                .select_from(
                    t.join(
                        sessions,
                        sa.and_(
                            t.c.visitor_id == p.visitor_id,
                            t.c.created_at >= p.started_at,
                            t.c.created_at <= p.ended_at,
                        ),
                    )
                )
                .where(
                    within(self._created_at(t, in_range), in_range),
                    *(self._event_condition(f, t.c) for f in self.event_filters),
                    *(where(t.c) for where in wheres),
                )
            )
        return sa.union_all(*branches)

    # -- kept sessions and events, once per request -----------------------------------------

    def _temp_table(self, name: str, columns: Sequence[tuple[str, Any]]) -> sa.Table:
        """A new, empty temporary table ``name`` (one left by an earlier request on this
        connection is dropped first)."""
        table = sa.Table(
            name, sa.MetaData(), *(sa.Column(n, type_) for n, type_ in columns),
            prefixes=["TEMPORARY"],
        )  # fmt: skip
        table.drop(self.conn, checkfirst=True)
        table.create(self.conn)
        self._temps.append(table)
        return table

    def _materialize(self, rng: DateRange) -> _Kept:
        """Write the kept sessions of ``rng`` (and, with event filters, its kept events)
        to temporary tables: every statement of the request reads them, instead of each
        repeating the filters, the session reads and the join."""
        # Unique on the connection: two Stats of one request (a page and its panel) must
        # not drop each other's tables.
        number = next(_TABLE_NUMBERS)
        session_t: sa.Table = self.models.Session.__table__
        event_t: sa.Table = self.models.Event.__table__
        big = sa.BigInteger()
        session_columns = [
            ("day", sa.Integer()),
            *((n, session_t.c[n].type) for n in (*_SESSION_COLUMNS[1:], *LANDING_COLUMNS)),
            ("kpv", big),
            ("kev", big),
        ]
        sessions = self._temp_table(f"fa_kept_sessions_{number}", session_columns)
        names = [n for n, _ in session_columns]
        passing = self._passing(rng)
        p = passing.c
        events: sa.Table | None = None
        if not self.event_filters:
            kept = sa.select(*p, p.pageviews.label("kpv"), (p.events - p.pageviews).label("kev"))
        else:
            extra = self.custom_columns
            event_columns = [
                ("day", sa.Integer()),
                ("session_start", session_t.c.started_at.type),
                *((n, event_t.c[n].type) for n in _EVENT_COLUMNS),
                *((n, event_t.c[n].type) for n in extra),
                ("ts", big),
            ]
            events = self._temp_table(f"fa_kept_events_{number}", event_columns)
            # Only what the join needs: the full rows, read twice (raw and archived
            # branches), made PostgreSQL write the CTE to disk (107 MiB at 3M events).
            narrow: Any = sa.select(p.day, p.visitor_id, p.started_at, p.ended_at)
            if self.dialect == "sqlite":
                # An indexed table of its own: SQLite otherwise materializes the passing
                # sessions and builds an automatic index on them for each branch.
                # (session_columns starts with day, visitor_id, started_at, ended_at.)
                window = self._temp_table(f"fa_passing_{number}", session_columns[:4])
                self.conn.execute(
                    sa.insert(window).from_select([n for n, _ in session_columns[:4]], narrow)
                )
                sa.Index(f"{window.name}_visitor", window.c.visitor_id).create(self.conn)
                narrow = window
            else:
                narrow = narrow.cte("fa_passing")
            self.conn.execute(
                sa.insert(events).from_select(
                    [n for n, _ in event_columns], self._joined(rng, narrow, extra)
                )
            )
            k = events.c
            is_pv = sa.case((k.name == PAGEVIEW, 1), else_=0)
            per_session = (
                sa.select(
                    k.visitor_id,
                    k.session_start,
                    sa.func.sum(is_pv).label("kpv"),
                    sa.func.sum(1 - is_pv).label("kev"),
                )
                .group_by(k.visitor_id, k.session_start)
                .subquery("fa_per_session")
            )
            q = per_session.c
            kept = sa.select(*p, q.kpv, q.kev).select_from(
                passing.join(
                    per_session,
                    sa.and_(q.visitor_id == p.visitor_id, q.session_start == p.started_at),
                )
            )
        self.conn.execute(sa.insert(sessions).from_select(names, kept))
        if self.dialect == "postgresql":
            # Temporary tables have no statistics until analysed: without them the
            # planner misjudged the kept sessions' size and hashed the events instead.
            for table in (sessions, events):
                if table is None:
                    continue
                self.conn.exec_driver_sql(f"ANALYZE {table.name}")
        else:
            sa.Index(f"{sessions.name}_visitor", sessions.c.visitor_id).create(self.conn)
            # Release the read snapshot the inserts began (the tables stay).
            self.conn.commit()
        return _Kept(rng, sessions, events)

    def _parts(self, rng: DateRange, table: str) -> tuple[Any, Any]:
        """(kept sessions, kept events) of ``rng``: subqueries whose ``day`` is the
        index in ``rng``. Each is read from the request's temporary tables of the first
        range that covers ``rng`` (a day's sessions and events do not depend on the
        range: sessions end at local midnight), shifted by the day offset."""
        kept = next(
            (k for k in self._kept if k.rng.start <= rng.start and rng.end <= k.rng.end),
            None,
        )
        if kept is None:
            kept = self._materialize(rng)
            self._kept.append(kept)
        offset = (rng.start - kept.rng.start).days
        length = (rng.end - rng.start).days + 1
        sessions = _window(kept.sessions, offset, length).subquery("fa_sessions")
        if kept.events is not None:
            return sessions, _window(kept.events, offset, length).subquery("fa_events")
        extra = self.custom_columns if table == "DailyDimension" else ()
        return sessions, self._joined(rng, sessions, extra).subquery("fa_events")

    def sessions_of(self, rng: DateRange) -> Any:
        """The kept sessions of ``rng`` (a subquery; ``day`` is the index in ``rng``).
        Without filters every session is kept: they are read where they are, not
        written to a temporary table first."""
        if not self.filters:
            return self._passing(rng)
        return self._parts(rng, "")[0]

    def events_of(
        self,
        rng: DateRange,
        *,
        extra: Sequence[str] = (),
        wheres: Sequence[Callable[[Any], sa.ColumnElement[bool]]] = (),
        session_extra: Sequence[str] = (),
        sessions: bool = False,
    ) -> Any:
        """The kept events of ``rng`` passing ``wheres`` too, with ``extra`` event columns
        and ``session_extra`` columns of their session (named ``session_<column>``): a
        ``SELECT`` (see :meth:`_joined`). ``sessions``: with ``session_start`` too.

        Without session filters, and when no session column is asked for, the events are
        read in one scan of the range, each on its local day, without joining their
        sessions: every event of a day is in one of its sessions, so the kept events are
        the events passing the event filters. (On a final day, an event stored after the
        day's run counts here, while the joined path, which reads the run's sessions,
        leaves it out until the day is aggregated again.)"""
        if not self.session_filters and not session_extra and not sessions:
            return self._plain_events(rng, ("visitor_id", "name", "path", *extra), wheres)
        return self._joined(rng, self.sessions_of(rng), extra, wheres, session_extra)

    def _plain_events(
        self,
        rng: DateRange,
        columns: Sequence[str],
        wheres: Sequence[Callable[[Any], sa.ColumnElement[bool]]] = (),
    ) -> Any:
        """The range's events passing the event filters and ``wheres``: ``day`` (the
        local day's index in ``rng``) and ``columns``, a ``UNION ALL`` of raw and
        archived events."""
        in_range = intervals(self.tz, list(rng.dates()))
        branches = []
        for model in (self.models.Event, self.models.EventArchive):
            t: sa.Table = model.__table__
            ts = dialects.epoch_seconds(t.c.created_at, self.dialect)
            branches.append(
                sa.select(
                    day_index(ts, self.tz, rng).label("day"), *(t.c[name] for name in columns)
                ).where(
                    within(self._created_at(t, in_range), in_range),
                    *(self._event_condition(f, t.c) for f in self.event_filters),
                    *(where(t.c) for where in wheres),
                )
            )
        return sa.union_all(*branches)

    def prop_events(self, rng: DateRange) -> Any:
        """Kept events of ``rng`` with their ``props`` (a subquery: day, visitor_id, name,
        props); only property questions read that column. Without session filters, the
        events passing the event filters are read straight from the range's events
        (every event is in one session of its day), in one scan."""
        if self.session_filters:
            sessions, _ = self._parts(rng, PROP_TABLE)
            return self._joined(rng, sessions, ("props",)).subquery("fa_events")
        return self._plain_events(rng, ("visitor_id", "name", "props")).subquery("fa_events")

    def prop_keys(self, rng: DateRange, event: str | None = None) -> dict[str, int]:
        """Property keys of the kept events of ``rng`` (named ``event`` only, when given),
        with how many of those events carry each."""
        query = keys_select(self.prop_events(rng), self.dialect, event)
        return {str(key): int(n) for key, n in self.conn.execute(query)}

    def close(self) -> None:
        """Drop the request's temporary tables. On PostgreSQL they were created in the
        request's transaction and go with it (which may have failed: no statement then)."""
        if self.dialect != "postgresql":
            for table in self._temps:
                table.drop(self.conn, checkfirst=True)
        self._temps.clear()
        self._kept.clear()

    # -- reading --------------------------------------------------------------------------

    def grouped(
        self,
        table: str,
        rng: DateRange,
        keys: Sequence[str],
        counts: Sequence[str],
        equals: Mapping[str, Any],
    ) -> dict[tuple[Any, ...], dict[str, int]]:
        """Sums of ``counts`` of virtual table ``table`` over ``rng``, grouped by ``keys``
        (``date`` is a key like any other), for rows whose columns equal ``equals``.

        Tables whose keys are few per day (:data:`_SHARED_KEYS`) are read once per
        request grouped by all their keys with every count, and summed here by the keys
        asked: the Devices page's three panels, the Pages page's top, entry and exit
        pages are one statement each. The sums are the rollup path's (which sums stored
        rows the same way), so both paths still agree.
        """
        shared = _SHARED_KEYS.get(table)
        if shared is not None and "date" not in keys and not equals and set(keys) <= set(shared):
            if (table, rng) not in self._tables:
                self._tables[table, rng] = self._grouped(
                    table, rng, shared, _table_counts(self.models, table), {}
                )
            sums: dict[tuple[Any, ...], dict[str, int]] = {}
            positions = [shared.index(k) for k in keys]
            for full_key, full_counts in self._tables[table, rng].items():
                key = tuple(full_key[i] for i in positions)
                acc = sums.setdefault(key, dict.fromkeys(counts, 0))
                for count in counts:
                    acc[count] += full_counts[count]
            return sums
        return self._grouped(table, rng, keys, counts, equals)

    def _grouped(
        self,
        table: str,
        rng: DateRange,
        keys: Sequence[str],
        counts: Sequence[str],
        equals: Mapping[str, Any],
    ) -> dict[tuple[Any, ...], dict[str, int]]:
        if table == "DailyDimension":
            _, events = self._parts(rng, table)
            inner = dimension_select(events, str(equals["dimension"])).subquery("fa_rows")
        elif table == PROP_TABLE:
            events = self.prop_events(rng)
            inner = values_select(events, str(equals["prop"]), self.dialect).subquery("fa_rows")
        else:
            inner = table_select(*self._parts(rng, table), table, rng, self.tz).subquery("fa_rows")
        r = inner.c
        key_columns = [r.day if k == "date" else r[k] for k in keys]
        query = sa.select(*key_columns, *(total(r[c]) for c in counts)).group_by(*key_columns)
        for column, value in equals.items():
            query = query.where(r[column] == value)
        if self.dialect == "postgresql":
            self.conn.execute(sa.text("SET LOCAL work_mem = '64MB'"))
            # The statement is planned afresh per request and costed far above
            # jit_above_cost; compiling its expressions took 0.9-1.8 s a statement at 3M
            # events (bench/query.py --profile), more than JIT saved.
            self.conn.execute(sa.text("SET LOCAL jit = off"))
        result: dict[tuple[Any, ...], dict[str, int]] = {}
        for record in self.conn.execute(query):
            key = tuple(
                rng.start + dt.timedelta(days=int(v)) if k == "date" else v
                for k, v in zip(keys, record, strict=False)
            )
            result[key] = {c: int(v or 0) for c, v in zip(counts, record[len(keys) :], strict=True)}
        return result
