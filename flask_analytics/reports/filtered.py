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

from ..core.rollups import (
    AUDIENCE_KEYS,
    LANDING_COLUMNS,
    PAGEVIEW,
    total,
)
from .props import PROP_TABLE, keys_select, values_select
from .ranges import DateRange
from .rawsql import EVENT_COLUMNS, SESSION_COLUMNS, RawStatements
from .virtual import dimension_select, table_select

if TYPE_CHECKING:
    pass


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
    **AUDIENCE_KEYS,
}


def _table_counts(models: Any, table: str) -> tuple[str, ...]:
    """The count columns of daily table ``table`` (all but id, date and its keys; a
    keyed table's host columns and ``value_`` counts are not in virtual tables)."""
    skip = {"id", "date", *_SHARED_KEYS[table]}
    return tuple(c for c in models.builtin_columns(table) if c not in skip)


class FilteredEvents(RawStatements):
    """The raw path of one request: virtual daily rows of kept events and sessions.

    ``live`` tells which days of a range have final rollups: their sessions are read
    from ``analytics_session``; the other days' sessions are cut from raw events here.
    """

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
            *((n, session_t.c[n].type) for n in (*SESSION_COLUMNS[1:], *LANDING_COLUMNS)),
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
                *((n, event_t.c[n].type) for n in EVENT_COLUMNS),
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
