"""Live days: which days of a range are computed from raw events, and how often.

A day is live only when it holds raw (or archived) events and has no final run; every
live computation is counted from the SQL the database receives (the live statement
names its CTEs after its day), never from the code's own bookkeeping, and the numbers
are compared with ``tests/support/reference.py``.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_analytics import Analytics
from flask_analytics.core.clock import day_bounds
from flask_analytics.core.runs import days_holding_events
from flask_analytics.reports import BREAKDOWNS, DateRange, LiveCache, Stats, Totals, live
from flask_analytics.state import current_state
from flask_analytics.web.dashboard.query import preset_range

from ..clock import FrozenClock
from ..support.seeded_stats import (
    TIMEZONE,
    Seeded,
    day_events,
    expected_breakdown,
    expected_totals,
    insert,
    make_row,
)

DAY = dt.timedelta(days=1)
#: The live statement names its CTEs ``src_YYYYMMDD`` and ``sessions_YYYYMMDD``.
LIVE_CTE = re.compile(r"\bsessions_(\d{8})\b")


@pytest.fixture
def paris_app(make_app: Any) -> Flask:
    app: Flask = make_app(ANALYTICS_TIMEZONE=TIMEZONE)
    app.extensions["analytics_test"].dashboard_access(lambda: True)
    return app


@contextmanager
def live_computations(engine: sa.Engine) -> Iterator[Counter[dt.date]]:
    """Counts, per day, the statements computing a live day that reach the database."""
    counted: Counter[dt.date] = Counter()

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        for day in set(LIVE_CTE.findall(statement)):
            counted[dt.datetime.strptime(day, "%Y%m%d").date()] += 1

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        yield counted
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)


@contextmanager
def statements(engine: sa.Engine) -> Iterator[list[str]]:
    """Every statement sent to the database while the block runs."""
    sent: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)


def stored_events(analytics: Analytics) -> list[dict[str, Any]]:
    """Raw events read back (the reference orders a visitor's events by time and id)."""
    with analytics.db.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(analytics.Event.__table__)).mappings()]


def seeded_days(
    app: Flask, days: list[dt.date], *, today: dt.date, now: dt.datetime, seed: int = 3
) -> None:
    """Realistic raw events on each of ``days`` (today's stop at ``now``)."""
    rnd = random.Random(seed)
    tz = current_state(app).settings.timezone
    rows: list[dict[str, Any]] = []
    for day in days:
        start, end = day_bounds(tz, day)
        end = min(end, now)
        if day == today:
            # Always some of today, even a second after midnight.
            rows.append(make_row(start, 77, path="/today"))
        if end > start:
            rows += day_events(rnd, start, end, 8)
    with app.app_context():
        insert(app.extensions["analytics_test"], rows)


def reference(app: Flask, today: dt.date, now: dt.datetime) -> Seeded:
    """What the reference needs: every stored event and the site's time zone."""
    analytics: Analytics = app.extensions["analytics_test"]
    with app.app_context():
        events = stored_events(analytics)
    return Seeded(events, today, [], today, ZoneInfo(TIMEZONE), now)


def assert_matches_reference(stats: Stats, seeded: Seeded, rng: DateRange) -> None:
    expected = expected_totals(seeded, rng)
    assert expected.pageviews > 0
    assert stats.totals(rng) == expected
    for name in ("page", "source", "country", "device_type", "event"):
        dimension = BREAKDOWNS[name]
        got = stats.breakdown(dimension, rng, limit=1000)
        want = expected_breakdown(seeded, dimension, rng)
        assert {row.key: row.counts for row in got} == want, name


# -- which days hold events -------------------------------------------------------------------


def test_days_holding_events_follow_local_days_across_dst(
    paris_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bounds are local days (25 hours on 26 October 2025 in Paris), raw or archived."""
    analytics: Analytics = paris_app.extensions["analytics_test"]
    utc = dt.datetime
    rows = [
        # 23:59:59 CEST on the 25th, then 00:30 CEST and 23:30 CET on the 26th (25 h).
        make_row(utc(2025, 10, 25, 21, 59, 59), 1),
        make_row(utc(2025, 10, 25, 22, 30), 2),
        make_row(utc(2025, 10, 26, 22, 30), 3),
    ]
    # The 28th holds archived events only (archived rows keep their raw id).
    archived = {**make_row(utc(2025, 10, 28, 12), 4), "id": 1_000}
    with paris_app.app_context():
        insert(analytics, rows)
        with analytics.db.engine.begin() as conn:
            conn.execute(sa.insert(analytics.EventArchive.__table__), [archived])
        tz = ZoneInfo(TIMEZONE)
        days = list(DateRange(dt.date(2025, 10, 20), dt.date(2025, 10, 30)).dates())
        tables = [analytics.Event.__table__, analytics.EventArchive.__table__]
        with analytics.db.engine.connect() as conn:
            found = days_holding_events(conn, tz, tables, days)
            assert found == {dt.date(2025, 10, 25), dt.date(2025, 10, 26), dt.date(2025, 10, 28)}
            raw_only = days_holding_events(conn, tz, tables[:1], days)
            assert raw_only == {dt.date(2025, 10, 25), dt.date(2025, 10, 26)}
            assert days_holding_events(conn, tz, tables, []) == set()
            # Past the driver's parameter limit the days are probed in several statements.
            monkeypatch.setattr(conn.dialect, "insertmanyvalues_max_parameters", 6)
            with statements(analytics.db.engine) as sent:
                assert days_holding_events(conn, tz, tables, days) == found
            assert len(sent) == 4  # 11 days, 3 a statement


def test_five_years_of_days_are_checked_in_one_statement(paris_app: Flask) -> None:
    analytics: Analytics = paris_app.extensions["analytics_test"]
    end = dt.date(2026, 6, 30)
    rng = DateRange(end - dt.timedelta(days=5 * 366 - 1), end)
    busy = [rng.start, rng.start + 400 * DAY, end]
    with paris_app.app_context():
        insert(analytics, [make_row(day_bounds(ZoneInfo(TIMEZONE), d)[0], 1) for d in busy])
        with analytics.db.engine.connect() as conn:
            stats = Stats(current_state(paris_app), conn, now=dt.datetime(2030, 1, 1))
            with statements(analytics.db.engine) as sent:
                assert stats.live.days(rng) == busy
    probes = [s for s in sent if "EXISTS" in s.upper()]
    assert len(probes) == 1
    # The oldest and newest event, the runs of those days and the probe: nothing per day.
    assert len(sent) == 3


# -- empty days cost nothing -----------------------------------------------------------------


def test_only_days_holding_events_without_a_final_run_are_live(
    paris_app: Flask, frozen_clock: FrozenClock
) -> None:
    analytics: Analytics = paris_app.extensions["analytics_test"]
    state = current_state(paris_app)
    now = frozen_clock.utcnow()
    today = state.today()
    final, unaggregated, early_run = today - 20 * DAY, today - 10 * DAY, today - 5 * DAY
    seeded_days(paris_app, [final, unaggregated, early_run, today], today=today, now=now)
    run = analytics.AggregationRun.__table__
    with paris_app.app_context():
        analytics.aggregate(final)
        analytics.aggregate(early_run)
        with analytics.db.engine.begin() as conn:
            # A run that started before its day ended missed the day's last events.
            ended = day_bounds(state.settings.timezone, early_run)[1]
            conn.execute(
                sa.update(run)
                .where(run.c.date == early_run)
                .values(started_at=ended - dt.timedelta(minutes=5))
            )
    seeded = reference(paris_app, today, now)
    rng = DateRange(today - 29 * DAY, today)
    with paris_app.app_context(), analytics.db.engine.connect() as conn:
        stats = Stats(state, conn)
        with live_computations(analytics.db.engine) as computed:
            assert stats.live.days(rng) == [unaggregated, early_run, today]
            assert_matches_reference(stats, seeded, rng)
            for day in (final, unaggregated, early_run, today):
                assert_matches_reference(stats, seeded, DateRange(day, day))
    # Each live day computed once for the request, the 26 empty days and the final day never.
    assert computed == {unaggregated: 1, early_run: 1, today: 1}


@pytest.mark.parametrize("years_ago", [1, 3])
def test_one_old_event_does_not_make_the_12_month_overview_live(
    paris_app: Flask, frozen_clock: FrozenClock, years_ago: int
) -> None:
    """One event tracked with a timestamp from a year (inside the range) or years ago
    (before it): the days between it and today stay stored, only its day is live."""
    analytics: Analytics = paris_app.extensions["analytics_test"]
    state = current_state(paris_app)
    now = frozen_clock.utcnow()
    today = state.today()
    busy = [today - n * DAY for n in (200, 90, 30, 2)]
    seeded_days(paris_app, [*busy, today], today=today, now=now)
    with paris_app.app_context():
        for day in busy:
            analytics.aggregate(day)
        # Inside the 12 months (which start on a 1st, 335 to 365 days ago), or before.
        old = now - dt.timedelta(days=300 if years_ago == 1 else 365 * years_ago)
        assert analytics.track("pageview", url="https://example.com/old", timestamp=old)
    old_day = state.local_date(old)
    client = paris_app.test_client()
    with paris_app.app_context():
        engine = analytics.db.engine
    with live_computations(engine) as computed:
        page = client.get("/analytics/?period=12mo&compare=previous")
    assert page.status_code == 200
    expected_live = sorted({old_day, today} if years_ago == 1 else {today})
    assert sorted(computed) == expected_live
    assert set(computed.values()) == {1}
    seeded = reference(paris_app, today, now)
    with paris_app.app_context(), analytics.db.engine.connect() as conn:
        stats = Stats(state, conn)
        twelve = preset_range("12mo", today)
        assert stats.live.days(twelve) == expected_live
        assert_matches_reference(stats, seeded, twelve)


# -- one computation per live day, however many requests ask ---------------------------------


class Waiters:
    """Counts threads waiting for another thread's live computation (no sleeping: the
    test waits on a condition until they are all there)."""

    def __init__(self) -> None:
        self.count = 0
        self.changed = threading.Condition()

    def until(self, count: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.count >= count, timeout=60)


@pytest.fixture
def waiters(monkeypatch: pytest.MonkeyPatch) -> Waiters:
    """Every computation's "done" event reports the threads that start waiting on it."""
    seen = Waiters()

    class Watched(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            with seen.changed:
                seen.count += 1
                seen.changed.notify_all()
            return super().wait(timeout)

    class Flight(live._Flight):
        def __init__(self) -> None:
            super().__init__()
            self.done = Watched()

    monkeypatch.setattr(live, "_Flight", Flight)
    return seen


def run_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """``work(i)`` in ``count`` threads started together; their results, or exceptions."""
    results: list[Any] = [None] * count
    start = threading.Barrier(count)

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = work(i)
        except Exception as error:  # handed back to the test, which asserts on it
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive()
    return results


@pytest.mark.parametrize("ttl", [30.0, 0.0])
def test_live_cache_computes_a_day_once_for_concurrent_callers(
    waiters: Waiters, ttl: float
) -> None:
    cache = LiveCache(ttl)
    day = dt.date(2026, 1, 1)
    computed: list[int] = []

    def compute() -> dict[str, list[dict[str, Any]]]:
        computed.append(1)
        waiters.until(7)  # the seven other threads wait for this computation
        return {"DailySummary": [{"date": day, "visitors": 3}]}

    results = run_threads(8, lambda _i: cache.fetch(day, "daily", compute))
    assert len(computed) == 1
    assert all(r == {"DailySummary": [{"date": day, "visitors": 3}]} for r in results)
    assert len({id(r) for r in results}) == 1
    # Later calls: from the cache while it lasts, or computed again without one.
    again = cache.fetch(day, "daily", lambda: {"DailySummary": []})
    assert (again is results[0]) == (ttl > 0)
    assert (cache.get(day) is results[0]) == (ttl > 0)


def test_live_cache_hands_a_failed_computation_to_a_waiting_thread(waiters: Waiters) -> None:
    cache = LiveCache(30)
    day = dt.date(2026, 1, 1)
    calls: list[int] = []
    lock = threading.Lock()

    def compute() -> dict[str, list[dict[str, Any]]]:
        with lock:
            calls.append(1)
            first = len(calls) == 1
        if first:
            waiters.until(3)
            raise RuntimeError("database went away")
        return {"DailySummary": []}

    results = run_threads(4, lambda _i: cache.fetch(day, "daily", compute))
    failed = [r for r in results if isinstance(r, RuntimeError)]
    assert len(failed) == 1
    assert [r for r in results if not isinstance(r, RuntimeError)] == [{"DailySummary": []}] * 3
    # The first thread's failure, then one computation for the three others.
    assert len(calls) == 2


def test_concurrent_requests_compute_a_live_day_once(
    paris_app: Flask, frozen_clock: FrozenClock, waiters: Waiters
) -> None:
    """Eight requests on their own connections, one live statement: the first computes
    (held at the database until the seven others wait for it), the others read its rows."""
    analytics: Analytics = paris_app.extensions["analytics_test"]
    state = current_state(paris_app)
    now = frozen_clock.utcnow()
    today = state.today()
    day = today - 3 * DAY
    seeded_days(paris_app, [day], today=today, now=now)
    seeded = reference(paris_app, today, now)
    cache = LiveCache(30)
    with paris_app.app_context():
        engine = analytics.db.engine

    def hold(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if LIVE_CTE.search(statement):
            waiters.until(7)

    def request(_i: int) -> Any:
        with paris_app.app_context(), engine.connect() as conn:
            return Stats(state, conn, live_cache=cache).totals(DateRange(day, day))

    sa.event.listen(engine, "before_cursor_execute", hold)
    try:
        with live_computations(engine) as computed:
            results = run_threads(8, request)
    finally:
        sa.event.remove(engine, "before_cursor_execute", hold)
    assert computed == {day: 1}
    assert results == [expected_totals(seeded, DateRange(day, day))] * 8


# -- today: the scheduler's provisional rows, or live ----------------------------------------


def latest_start(analytics: Analytics, day: dt.date) -> dt.datetime:
    """When the latest finished run of ``day`` started, read from the runs table."""
    run = analytics.AggregationRun.__table__
    with analytics.db.engine.connect() as conn:
        started: dt.datetime = conn.scalar(
            sa.select(sa.func.max(run.c.started_at)).where(
                run.c.date == day, run.c.finished_at.is_not(None)
            )
        )
    return started


def today_totals(app: Flask) -> tuple[Any, list[dt.date], dt.datetime | None]:
    """Today's totals, the live days of today, and when today's numbers are as of."""
    state = current_state(app)
    today = state.today()
    with app.app_context(), state.engine().connect() as conn:
        stats = Stats(state, conn)
        rng = DateRange(today, today)
        return stats.totals(rng), stats.live.days(rng), stats.live.today_as_of()


@dataclass
class Today:
    """Today's seeded events: the app, its engine, the frozen time, the reference totals."""

    app: Flask
    analytics: Analytics
    engine: sa.Engine
    today: dt.date
    now: dt.datetime
    expected: Totals

    def expected_now(self) -> Totals:
        """The reference's totals of today over the events stored now."""
        seeded = reference(self.app, self.today, self.now)
        return expected_totals(seeded, DateRange(self.today, self.today))


@pytest.fixture
def seeded_today(paris_app: Flask, frozen_clock: FrozenClock) -> Today:
    analytics: Analytics = paris_app.extensions["analytics_test"]
    now = frozen_clock.utcnow()
    today = current_state(paris_app).today()
    seeded_days(paris_app, [today], today=today, now=now)
    with paris_app.app_context():
        engine = analytics.db.engine
    seeded = reference(paris_app, today, now)
    expected = expected_totals(seeded, DateRange(today, today))
    return Today(paris_app, analytics, engine, today, now, expected)


@pytest.mark.clock
def test_today_with_a_recent_run_reads_its_stored_rows(seeded_today: Today) -> None:
    paris_app, analytics, engine = seeded_today.app, seeded_today.analytics, seeded_today.engine
    today, now, expected = seeded_today.today, seeded_today.now, seeded_today.expected
    with paris_app.app_context():
        analytics.aggregate(today)
        started = latest_start(analytics, today)
    with live_computations(engine) as computed:
        totals, live_days, as_of = today_totals(paris_app)
    assert (totals, live_days, as_of) == (expected, [], started)
    assert computed == {}
    # Rows the run stored are what is read: a marked row shows through, and an event
    # written after the run waits for the next one.
    summary = analytics.DailySummary.__table__
    with paris_app.app_context():
        with engine.begin() as conn:
            conn.execute(sa.update(summary).where(summary.c.date == today).values(visitors=424_242))
        insert(analytics, [make_row(now, 4_242, path="/after-the-run")])
    totals, live_days, _as_of = today_totals(paris_app)
    assert (totals.visitors, totals.pageviews) == (424_242, expected.pageviews)
    assert live_days == []
    # The page says when today's numbers were computed (the run's start, local time).
    local = started.replace(tzinfo=dt.timezone.utc).astimezone(ZoneInfo(TIMEZONE))
    shown = f"{local.day} {local.strftime('%b %Y, %H:%M')}"
    html = paris_app.test_client().get("/analytics/?period=today").get_data(as_text=True)
    assert (
        f'today\'s numbers as of <time datetime="{local.isoformat()}" data-today-as-of>'
        f"{shown}</time>"
    ) in html


@pytest.mark.clock
def test_today_is_live_without_a_recent_run(seeded_today: Today) -> None:
    """No run of today (no scheduler), then one older than TODAY_RUN_MAX_AGE (the
    scheduler stopped): today is computed live from every event, the page says so."""
    paris_app, analytics, engine = seeded_today.app, seeded_today.analytics, seeded_today.engine
    today, now, expected = seeded_today.today, seeded_today.now, seeded_today.expected
    with live_computations(engine) as computed:
        assert today_totals(paris_app) == (expected, [today], None)
    assert computed == {today: 1}
    html = paris_app.test_client().get("/analytics/?period=today").get_data(as_text=True)
    assert "today and days not yet aggregated are computed live." in html
    assert "data-today-as-of" not in html

    run = analytics.AggregationRun.__table__
    with paris_app.app_context():
        analytics.aggregate(today)
        assert today_totals(paris_app)[1] == []  # a recent run: stored
        with engine.begin() as conn:
            conn.execute(sa.update(run).values(started_at=now - live.TODAY_RUN_MAX_AGE))
        insert(analytics, [make_row(now, 4_242, path="/after-the-run")])
    with live_computations(engine) as computed:
        assert today_totals(paris_app) == (seeded_today.expected_now(), [today], None)
    assert computed == {today: 1}


def test_live_cache_keeps_the_last_days_statements() -> None:
    cache = LiveCache(0)
    built: list[dt.date] = []

    def build(day: dt.date) -> Any:
        built.append(day)
        return (("DailySummary",), sa.union_all(sa.select(sa.literal(day.toordinal()))))

    first = dt.date(2026, 1, 1)
    days = [first + n * DAY for n in range(live.STATEMENTS_KEPT + 1)]
    kept = cache.statement(first, lambda: build(first))
    assert cache.statement(first, lambda: build(first)) is kept
    for day in days[1:]:
        cache.statement(day, lambda day=day: build(day))
    assert built == days  # each built once
    cache.statement(days[-1], lambda: build(days[-1]))
    cache.statement(first, lambda: build(first))  # the oldest made room for the last one
    assert built == [*days, first]


def test_live_cache_keeps_which_days_hold_events_for_its_ttl(
    paris_app: Flask, frozen_clock: FrozenClock
) -> None:
    """A second request within the ttl sends no probe; an event arriving for an empty
    day shows once the ttl is over (as one arriving for a live day does)."""
    analytics: Analytics = paris_app.extensions["analytics_test"]
    state = current_state(paris_app)
    now = frozen_clock.utcnow()
    today = state.today()
    busy, empty, later = today - 9 * DAY, today - 5 * DAY, today - 2 * DAY
    seeded_days(paris_app, [busy, later], today=today, now=now)
    ticks = [0.0]
    cache = LiveCache(30, clock=lambda: ticks[0])
    rng = DateRange(today - 20 * DAY, today - DAY)
    with paris_app.app_context():
        engine = analytics.db.engine

    def live_days() -> tuple[list[dt.date], int]:
        with paris_app.app_context(), engine.connect() as conn, statements(engine) as sent:
            found = Stats(state, conn, live_cache=cache).live.days(rng)
        return found, sum("EXISTS" in s.upper() for s in sent)

    assert live_days() == ([busy, later], 1)
    with paris_app.app_context():
        insert(analytics, [make_row(day_bounds(state.settings.timezone, empty)[0], 5)])
    assert live_days() == ([busy, later], 0)
    ticks[0] += 30
    assert live_days() == ([busy, empty, later], 1)
