"""The raw path's statements: the sessions and events of a range, filtered.

:class:`RawStatements` builds, for one request's filters, the SQL of steps 1-3 of
:mod:`.filtered` (sessions of the range, stored or cut from raw events; those passing
the session filters; the range's events joined to them, passing the event filters) and
the one-scan read of events when no session filter applies. :class:`.filtered.FilteredEvents`
adds the request's temporary tables and the virtual daily tables read from them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa

from ..core import dialects
from ..core.clock import day_bounds
from ..core.rollups import LANDING_COLUMNS, sessions_select
from .filters import SESSION_DIMENSIONS, Filter, condition, event_condition
from .ranges import DateRange
from .spans import as_date, date_runs, day_index, intervals, share_of_span, within

if TYPE_CHECKING:
    from ..core.context import Context
    from ..goals import Goal
    from .filtered import _Kept
    from .live import LiveDays

#: Columns of a session besides its landing attributes (``analytics_session``'s, with
#: ``day``, the index of its local day in the range, instead of ``date``).
SESSION_COLUMNS: Final = (
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
EVENT_COLUMNS: Final = (
    "created_at", "visitor_id", "name", "path", "referrer_host", "engagement_ms"
)  # fmt: skip


class RawStatements:
    """The SQL of one request's raw-path reads (its filters, goals and live days).

    ``live`` tells which days of a range have final rollups: their sessions are read
    from ``analytics_session``; the other days' sessions are cut from raw events here.

    ``until`` (naive UTC) leaves out every event at or after that instant: the day it
    falls on is read as it stood then ("until now" comparisons), its sessions cut from
    raw (and archived) events even when the day is aggregated.
    """

    def __init__(
        self,
        state: Context,
        conn: sa.Connection,
        filters: Sequence[Filter],
        custom_columns: Sequence[str] = (),
        live: LiveDays | None = None,
        goals: Mapping[str, Goal] | None = None,
        *,
        until: dt.datetime | None = None,
    ) -> None:
        self.state = state
        self.until = until
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
        #: Each indexed column's (min, max) in its table (see :meth:`_off_index`).
        self._spans: dict[str, tuple[Any, Any]] = {}
        # What :class:`~.filtered.FilteredEvents` keeps for the request: whole virtual
        # tables read (see its ``grouped``), and the kept sessions (and events) written
        # to temporary tables, by range.
        self._tables: dict[tuple[str, DateRange], dict[tuple[Any, ...], dict[str, int]]] = {}
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
            final = [d for d in rng.dates() if self.live.stored(d) and not self._cut(d)]
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

    def _cut(self, day: dt.date) -> bool:
        """Whether ``until`` falls within local ``day`` (its events stop there)."""
        if self.until is None:
            return False
        start, end = day_bounds(self.tz, day)
        return start <= self.until < end

    def _intervals(self, days: Sequence[dt.date]) -> list[tuple[dt.datetime, dt.datetime]]:
        """UTC ``[start, end)`` intervals of ``days``, each ending at ``until`` at the latest."""
        found = intervals(self.tz, days)
        if self.until is None:
            return found
        until = self.until
        return [(start, min(end, until)) for start, end in found if start < until]

    # -- statement ------------------------------------------------------------------------

    def _event_condition(self, item: Filter, columns: Any) -> sa.ColumnElement[bool]:
        return event_condition(item, columns, self.dialect, self.goals)

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
                ).where(within(t.c.created_at, self._intervals(days)))
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
        if self.until is not None:
            end = min(end, self.until)
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
            *(t.c[name] for name in SESSION_COLUMNS if name != "day"),
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
        columns = EVENT_COLUMNS
        in_range = self._intervals(list(rng.dates()))
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

    def _plain_events(
        self,
        rng: DateRange,
        columns: Sequence[str],
        wheres: Sequence[Callable[[Any], sa.ColumnElement[bool]]] = (),
    ) -> Any:
        """The range's events passing the event filters and ``wheres``: ``day`` (the
        local day's index in ``rng``) and ``columns``, a ``UNION ALL`` of raw and
        archived events."""
        in_range = self._intervals(list(rng.dates()))
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
