"""The dashboard's read queries over a range of days, on one connection (no Flask here).

Each local day of a range is read either from the ``analytics_daily_*`` tables (a day
whose aggregation is final) or live from raw events (see :mod:`.live`), so a page costs
the same whatever the size of the raw table. Both kinds of rows are summed per key: the
stored ones in SQL, the live ones added in Python. Counts add up across days; rates are
derived from summed counts when read, never averaged. Visitors over a range are the sum
of daily visitors (a visitor id lives one day).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, TypedDict

import sqlalchemy as sa

from ..core.clock import day_bounds, to_local
from . import realtime as raw_events
from .breakdowns import (
    ENDPOINT_COLUMN,
    ROW_RATES,
    SCREEN_COLUMN,
    Breakdown,
    Row,
    prop_breakdown,
    row_with_rates,
)
from .filtered import FilteredEvents, RawDataMissing
from .filters import PROP_PREFIX, BadFilter, Filter, event_condition
from .live import DIMENSION_TABLE, LiveCache, LiveDays
from .pinned import pinned_rows
from .props import PropQuestions
from .query import Answer, BadQuestion, Query
from .ranges import DateRange
from .realtime import Hour, Realtime
from .totals import SUMMARY_COUNTS, Totals
from .virtual import HOURLY

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing's own from Python 3.11

    from ..core.context import Context

#: One group of :meth:`Stats.grouped`: its keys and its counts.
_Group = tuple[tuple[Any, ...], dict[str, int]]

#: Above this many keys with live rows, a top-N query fetches every stored group instead.
_MAX_LIVE_KEYS: Final = 2000


class GroupOptions(TypedDict, total=False):
    """What :meth:`Stats.grouped` may be asked besides the table, range, keys and counts."""

    #: Column values the rows must have (any column).
    equals: Mapping[str, Any] | None
    #: First keys left out.
    exclude: Sequence[Any]
    #: Leave out groups whose first key is NULL.
    skip_null: bool
    #: A count that must be above zero.
    positive: str | None
    #: The count groups are sorted by, largest first (None: by keys).
    sort: str | None
    #: Sort smallest first instead.
    ascending: bool
    #: Groups wanted (None: all of them), from ``offset`` on.
    limit: int | None
    offset: int
    #: Read the raw path even unfiltered (no daily table holds the groups).
    raw_only: bool


class BreakdownOptions(TypedDict, total=False):
    """What :meth:`Stats.breakdown` may be asked besides the breakdown and range."""

    #: Rows wanted (default 10; None: all of them), from ``offset`` on.
    limit: int | None
    offset: int
    #: One page path's rows only.
    path: str | None
    #: Keys left out (e.g. the tracker's own event names on the Events page).
    exclude: Sequence[str]
    #: The sums wanted (default: the breakdown's; rates needing others are left out).
    counts: Sequence[str] | None


class Stats(PropQuestions):
    """The dashboard's queries, run on one connection for one request (event properties'
    in :class:`.props.PropQuestions`).

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
        filters: Sequence[Filter] = (),
        scope: Sequence[Filter] = (),
        raw: bool = False,
    ) -> None:
        self.state = state
        self.conn = conn
        self.now = now if now is not None else state.clock.utcnow()
        self.tz = state.settings.timezone
        self.today = state.local_date(self.now)
        self.models = state.models
        self.live_cache = live_cache
        #: Which days of a range are live, and their rows (kept for this request).
        self.live = LiveDays(state, conn, self.today, live_cache, now=self.now)
        #: The viewer's scope (:mod:`.scope`), ANDed before the request's own filters.
        self.scope = tuple(scope)
        self.filters = tuple(dict.fromkeys((*self.scope, *filters)))
        self._raw_checked: set[DateRange] = set()
        #: Filtered questions (or ``raw=True``) read raw events: see :mod:`.filtered`;
        #: except those a keyed daily table answers exactly (:mod:`.pinned`), unless
        #: ``raw=True``.
        self.raw = raw or bool(self.filters)
        self.forced_raw = raw
        # The screen width is grouped like a custom dimension (see ``breakdowns.SCREEN_WIDTH``).
        columns = dict.fromkeys(
            [*(d.name for d in state.hooks.dimensions), SCREEN_COLUMN, ENDPOINT_COLUMN]
        )
        #: The app's goals by name (declared, then ``ANALYTICS_GOALS``).
        self.goals = state.hooks.app_goals(state.settings.goals)
        #: Custom columns the raw path reads (the host's dimensions, screen width).
        self.columns = list(columns)
        self.filtered = FilteredEvents(
            state, conn, self.filters, self.columns, self.live, goals=self.goals
        )
        #: The raw path cut at an instant, by instant (see :func:`.compare.day_until`).
        self.cut_paths: dict[dt.datetime, FilteredEvents] = {}

    def close(self) -> None:
        """Drop what the request's filtered questions wrote (temporary tables)."""
        self.filtered.close()
        for cut in self.cut_paths.values():
            cut.close()
        self.cut_paths.clear()

    # -- which days are live ------------------------------------------------------------------

    def raw_span(self) -> tuple[dt.date, dt.date] | None:
        """Local dates of the oldest and newest raw (or archived) event, if any."""
        return self.live.raw_span()

    def live_days(self, rng: DateRange) -> list[dt.date]:
        """Days of ``rng`` computed from raw events: today and days not finally aggregated."""
        return self.live.days(rng)

    def covers(self, rng: DateRange) -> bool:
        """False when ``rng`` is a raw-path question about days whose raw events are gone
        (a comparison period of a filtered view then has no numbers)."""
        if not self.raw:
            return True
        try:
            self.check_raw(rng)
        except RawDataMissing:
            return False
        return True

    def check_raw(self, rng: DateRange, subject: str = "Filtered reports") -> None:
        """Raise :class:`RawDataMissing` when ``rng`` reaches days that have daily rows
        but whose raw events are gone (purged after the archive's retention); the
        message begins with ``subject``, what needs them."""
        if rng in self._raw_checked:
            return
        span = self.live.raw_span()
        summary = self.models.daily["DailySummary"].__table__
        last = rng.end if span is None else min(rng.end, span[0] - dt.timedelta(days=1))
        if last >= rng.start:
            stored = self.conn.execute(
                sa.select(sa.func.max(summary.c.date)).where(
                    summary.c.date.between(rng.start, last)
                )
            ).scalar()
            if stored is not None:
                if span is None:
                    raise RawDataMissing(
                        f"{subject} read raw events, and none are left for this range."
                    )
                raise RawDataMissing(
                    f"{subject} read raw events, kept from {span[0].isoformat()}: "
                    f"start the range on {span[0].isoformat()} or later."
                )
        self._raw_checked.add(rng)

    # -- sums over stored and live rows -------------------------------------------------------

    def _daily_table(self, table: str) -> sa.Table:
        if table == DIMENSION_TABLE:
            custom: sa.Table = self.models.DailyDimension.__table__
            return custom
        daily: sa.Table = self.models.daily[table].__table__
        return daily

    def grouped(
        self,
        table: str,
        rng: DateRange,
        keys: Sequence[str],
        counts: Sequence[str],
        **options: Unpack[GroupOptions],
    ) -> list[_Group]:
        """Sums of ``counts`` of daily table ``table`` over ``rng``, grouped by ``keys``
        (see :class:`GroupOptions`).

        Stored rows of final days are grouped in SQL; live days' rows (see
        :meth:`LiveDays.rows`) are added in Python. With ``limit``, SQL returns only the top
        stored groups plus the stored sums of every key that has live rows: a key
        without live rows can only reach the merged top if it is in the stored top, so
        the result is exact.
        """
        return self.grouped_page(table, rng, keys, counts, with_total=False, **options)[0]

    def grouped_page(
        self,
        table: str,
        rng: DateRange,
        keys: Sequence[str],
        counts: Sequence[str],
        *,
        with_total: bool = True,
        **options: Unpack[GroupOptions],
    ) -> tuple[list[_Group], int | None]:
        """:meth:`grouped`'s rows, and with ``with_total`` how many groups there are in all
        (every page together: what ``limit`` and ``offset`` cut)."""
        equals = options.get("equals") or {}
        pinned = None if self.forced_raw else pinned_rows(self.models, table, self.filters)
        read = list(counts) if pinned is None else [pinned.column(c) for c in counts]
        if pinned is not None:
            equals = {**equals, **pinned.equals}
        exclude = options.get("exclude", ())
        skip_null = options.get("skip_null", False)
        positive = options.get("positive")
        sort = options.get("sort")
        ascending = options.get("ascending", False)
        limit = options.get("limit")
        offset = options.get("offset", 0)
        if (self.raw and pinned is None) or options.get("raw_only", False):
            self.check_raw(
                rng,
                "Filtered reports" if self.raw else "Numbers no daily table holds (screen widths)",
            )
            computed = self.filtered.grouped(table, rng, keys, counts, equals)
            every = _finish(computed, counts, exclude, skip_null, positive, sort, ascending)
            return _cut(every, limit, offset), len(every)
        model = self._daily_table(table)
        live_days = self.live.days(rng)
        live: dict[tuple[Any, ...], list[int]] = {}
        for day in live_days:
            for row in self.live.rows(table, day):
                if any(row[column] != value for column, value in equals.items()):
                    continue
                acc = live.setdefault(tuple(row[k] for k in keys), [0] * len(counts))
                for i, column in enumerate(read):
                    acc[i] += row[column]

        key_columns = [model.c[k] for k in keys]
        sums = [sa.func.sum(model.c[c]) for c in read]
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
        # Smallest first, live rows could lift a stored bottom group out of the page and
        # let another in: every stored group is read.
        if limit is not None and not ascending and len(live_keys) <= _MAX_LIVE_KEYS:
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

        by_key = {key: dict(zip(counts, values, strict=True)) for key, values in merged.items()}
        every = _finish(by_key, counts, exclude, skip_null, positive, sort, ascending)
        if not with_total:
            return _cut(every, limit, offset), None
        if query is base:  # every stored group was read
            return _cut(every, limit, offset), len(every)
        # Groups whose first key has live rows are all in ``every``; the others are
        # counted in SQL (the merged counts of those are their stored ones).
        having = None if positive is None else sums[counts.index(positive)] > 0
        live_first = set(live_keys)
        with_live = sum(1 for key, _ in every if key[0] in live_first)
        stored_only = self._count_groups(base, key_columns[0], live_keys, having)
        return _cut(every, limit, offset), stored_only + with_live

    def _count_groups(
        self,
        base: sa.Select[Any],
        first: sa.ColumnElement[Any],
        live_keys: Sequence[Any],
        having: sa.ColumnElement[bool] | None,
    ) -> int:
        """Stored groups of ``base`` whose first key has no live rows (and that pass
        ``having``)."""
        query = base if having is None else base.having(having)
        if live_keys:
            known = [k for k in live_keys if k is not None]
            outside: sa.ColumnElement[bool] = first.not_in(known) if known else sa.true()
            if len(known) < len(live_keys):
                outside = sa.and_(outside, first.is_not(None))
            else:
                outside = sa.or_(outside, first.is_(None))
            query = query.where(outside)
        counted = sa.select(sa.func.count()).select_from(query.subquery("fa_groups"))
        return int(self.conn.scalar(counted) or 0)

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
        self, breakdown: Breakdown, rng: DateRange, **options: Unpack[BreakdownOptions]
    ) -> list[Row]:
        """Top rows of ``breakdown`` over ``rng`` (see :class:`BreakdownOptions`)."""
        return self.breakdown_page(breakdown, rng, with_total=False, **options)[0]

    def breakdown_page(
        self,
        breakdown: Breakdown,
        rng: DateRange,
        *,
        with_total: bool = True,
        **options: Unpack[BreakdownOptions],
    ) -> tuple[list[Row], int | None]:
        """:meth:`breakdown`'s rows, and with ``with_total`` how many rows the whole
        breakdown has (every page together)."""
        counts = options.get("counts")
        path = options.get("path")
        self.check_props(breakdown.table, rng)
        wanted = tuple(counts) if counts is not None else breakdown.counts
        needed = {breakdown.sort, *([breakdown.positive] if breakdown.positive else [])}
        summed = (*wanted, *(c for c in breakdown.counts if c in needed and c not in wanted))
        keys = (breakdown.key, *((breakdown.parent,) if breakdown.parent else ()))
        rows, total = self.grouped_page(
            breakdown.table,
            rng,
            keys,
            summed,
            equals={**dict(breakdown.where), **({"path": path} if path is not None else {})},
            exclude=options.get("exclude", ()),
            skip_null=breakdown.skip_null,
            positive=breakdown.positive,
            sort=breakdown.sort,
            ascending=breakdown.ascending,
            limit=options.get("limit", 10),
            offset=options.get("offset", 0),
            raw_only=breakdown.raw_only,
            with_total=with_total,
        )
        rates = [r for r in breakdown.rates if set(ROW_RATES[r][:2]) <= set(summed)]
        return [
            row_with_rates(
                int(key[0]) if breakdown.numeric and key[0] is not None else key[0],
                {c: sums[c] for c in wanted},
                rates,
                sums,
                key[1] if breakdown.parent else None,
            )
            for key, sums in rows
        ], total

    def answer(self, query: Query, breakdowns: Mapping[str, Breakdown]) -> Answer:
        """Answer ``query`` (its filters must be this Stats' own): totals, the daily series
        and the comparison for a totals question; rows for a breakdown named in
        ``breakdowns``. Raises :class:`~.query.BadQuestion` and ``KeyError`` (unknown
        dimension)."""
        if tuple(dict.fromkeys((*self.scope, *query.filters))) != self.filters:
            raise ValueError("open Stats with the query's filters")
        if query.dimension is None:
            series = self.daily_totals(query.range)
            previous = None
            if query.compare is not None and self.covers(query.compare):
                previous = self.totals(query.compare)
            return Answer(query, sum(series.values(), Totals()), previous, series)
        name = query.dimension
        if name not in breakdowns and name.startswith(PROP_PREFIX):
            try:
                breakdown = query.shaped(prop_breakdown(name[len(PROP_PREFIX) :]))
            except BadFilter as error:
                raise BadQuestion(str(error)) from None
        else:
            breakdown = query.shaped(breakdowns[name])
        rows, total = self.breakdown_page(
            breakdown,
            query.range,
            limit=query.limit,
            offset=query.offset,
            counts=query.metrics or None,
        )
        return Answer(query, rows=rows, breakdown=breakdown, total=total)

    def page_daily(self, rng: DateRange, path: str) -> dict[dt.date, Totals]:
        """Visitors and pageviews of one page per day (other counts stay zero)."""
        result = {day: Totals() for day in rng.dates()}
        rows = self.grouped(
            "DailyPage", rng, ("date",), ("visitors", "pageviews"), equals={"path": path}
        )
        for (day,), counts in rows:
            result[day] = Totals(**counts)
        return result

    def page_referrers(self, rng: DateRange, path: str, *, limit: int | None = 20) -> list[Row]:
        """Referrer hosts of one page: visitors and pageviews (NULL host = direct/none;
        :func:`.referrers.page_referrers` tells previous pages of the site apart)."""
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
        return [row_with_rates(int(key[0]), c, ("views_per_session",)) for key, c in rows]

    # -- freshness ----------------------------------------------------------------------------

    def data_as_of(self) -> dt.datetime | None:
        """When the latest aggregation run finished (naive UTC), or None."""
        run = self.models.AggregationRun.__table__
        value: dt.datetime | None = self.conn.execute(
            sa.select(sa.func.max(run.c.finished_at))
        ).scalar()
        return value

    # -- raw events: hours, realtime ----------------------------------------------------------

    def hourly(self, day: dt.date) -> list[Hour]:
        """Visitors (distinct per hour) and pageviews per local hour of ``day``."""
        if not self.raw:
            return raw_events.hourly(self.conn, self.models, self.tz, day)
        rng = DateRange(day, day)
        self.check_raw(rng)
        sums = self.filtered.grouped(HOURLY, rng, ("hour",), ("visitors", "pageviews"), {})
        start, end = day_bounds(self.tz, day)
        hours = []
        for slot in range(int((end - start).total_seconds()) // 3600):
            counted = sums.get((slot,), {"visitors": 0, "pageviews": 0})
            moment = to_local(start + dt.timedelta(hours=slot), self.tz)
            hours.append(Hour(moment, counted["visitors"], counted["pageviews"]))
        return hours

    def current_visitors(self) -> int:
        """Distinct visitors of raw events in the last five minutes (within the scope)."""
        return raw_events.current_visitors(self.conn, self.models, self.now, self._own())

    def realtime(self, *, limit: int = 10) -> Realtime:
        """Current visitors (last 5 minutes) and the last 30 minutes of raw events, those
        within the scope (each event tested on its own columns: see
        :func:`.filters.event_condition`)."""
        return raw_events.realtime(
            self.conn,
            self.models,
            self.tz,
            self.now,
            limit=limit,
            timeout=self.state.settings.session_timeout,
            where=self._own(),
        )

    def _own(self) -> raw_events.Where:
        dialect = self.conn.dialect.name
        scope, goals = self.scope, self.goals
        return lambda columns: [event_condition(f, columns, dialect, goals) for f in scope]


def _finish(
    sums: Mapping[tuple[Any, ...], dict[str, int]],
    counts: Sequence[str],
    exclude: Sequence[Any],
    skip_null: bool,
    positive: str | None,
    sort: str | None,
    ascending: bool = False,
) -> list[tuple[tuple[Any, ...], dict[str, int]]]:
    """Grouped sums filtered on their first key and count, sorted (by ``sort``, largest
    first unless ``ascending``; ties and no ``sort`` by keys, NULL last)."""
    result = []
    for key, counted in sums.items():
        first = key[0]
        if (skip_null and first is None) or (exclude and first in exclude):
            continue
        if positive is not None and counted[positive] <= 0:
            continue
        result.append((key, counted))
    if sort is not None:
        result.sort(
            key=lambda item: (
                item[1][sort] if ascending else -item[1][sort],
                *((k is None, k if k is not None else "") for k in item[0]),
            )
        )
    else:
        result.sort(key=lambda item: tuple((k is None, k) for k in item[0]))
    return result


def _cut(rows: list[_Group], limit: int | None, offset: int) -> list[_Group]:
    """The page of ``rows`` that ``limit`` and ``offset`` ask for."""
    return rows[offset:] if limit is None else rows[offset : offset + limit]


def _as_date(value: Any) -> dt.date:
    # SQLite hands back ISO strings for dates coming out of a UNION of untyped selects.
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])
