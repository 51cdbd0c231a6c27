"""stats: the dashboard's read queries, checked against an independent computation.

Raw events are generated (seeded), some days aggregated, others left live, and every
total and breakdown of :class:`flask_analytics.reports.stats.Stats` is compared with sums of
``tests/support/reference.py``'s pure-Python daily rows over the same raw events (the
data set and the expected numbers are in ``tests/support/seeded_stats.py``, shared with
the dashboard tests).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_analytics import Analytics
from flask_analytics.core.clock import day_bounds
from flask_analytics.core.rollups import INTERNAL_EVENTS
from flask_analytics.reports import (
    BREAKDOWNS,
    REALTIME_WINDOW,
    Breakdown,
    DateRange,
    LiveCache,
    Stats,
    Totals,
    buckets,
)
from flask_analytics.reports.live import TODAY_RUN_MAX_AGE
from flask_analytics.state import current_state

from ..clock import FrozenClock
from ..support.seeded_stats import (
    CUSTOM_EVENTS,
    Seeded,
    expected_breakdown,
    expected_totals,
    insert,
    make_row,
    reference_rows,
)


def ranges(seeded: Seeded) -> dict[str, DateRange]:
    today = seeded.today
    return {
        "aggregated day": DateRange(seeded.aggregated[0], seeded.aggregated[0]),
        "live past day": DateRange(seeded.live_past, seeded.live_past),
        "today": DateRange(today, today),
        "all days": DateRange(seeded.live_past, today),
        "aggregated days": DateRange(seeded.aggregated[0], seeded.aggregated[-1]),
    }


def assert_breakdown(
    got: Sequence[Any], expected: Mapping[Any, Mapping[str, int]], dimension: Breakdown
) -> None:
    """Every row equals the reference; rows are the top ones, in order."""
    assert len(got) == len(expected), dimension.name
    for row in got:
        key = (row.parent, row.key) if dimension.parent else row.key
        assert row.counts == expected[key], (dimension.name, key)
    sort = [row.counts[dimension.sort] for row in got]
    assert sort == sorted(sort, reverse=True), dimension.name


def open_stats(app: Flask, conn: sa.Connection) -> Stats:
    return Stats(current_state(app), conn)


# -- pure values -----------------------------------------------------------------------------


def test_date_range_previous_and_year_before() -> None:
    rng = DateRange(dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    assert rng.days == 29
    assert rng.previous() == DateRange(dt.date(2024, 1, 3), dt.date(2024, 1, 31))
    assert rng.year_before() == DateRange(dt.date(2023, 2, 1), dt.date(2023, 2, 28))
    assert list(DateRange(dt.date(2026, 1, 1), dt.date(2026, 1, 3)).dates()) == [
        dt.date(2026, 1, 1),
        dt.date(2026, 1, 2),
        dt.date(2026, 1, 3),
    ]
    with pytest.raises(ValueError, match="before start"):
        DateRange(dt.date(2026, 1, 2), dt.date(2026, 1, 1))


def test_rates_come_from_summed_counts_not_averages() -> None:
    # Day one: 1 bounce of 1 visit; day two: 1 of 9. Averaging daily rates gives 55.6%.
    total = Totals(sessions=1, bounces=1, pageviews=1) + Totals(sessions=9, bounces=1, pageviews=30)
    assert total.bounce_rate == pytest.approx(2 / 10)
    assert total.views_per_session == pytest.approx(31 / 10)
    assert Totals().bounce_rate is None


# -- numbers against the reference ---------------------------------------------------------------


@pytest.mark.parametrize(
    "which", ["aggregated day", "live past day", "today", "all days", "aggregated days"]
)
def test_totals_and_breakdowns_match_reference(
    paris_app: Flask, seeded: Seeded, which: str
) -> None:
    rng = ranges(seeded)[which]
    with paris_app.app_context(), current_state(paris_app).engine().connect() as conn:
        stats = open_stats(paris_app, conn)
        expected = expected_totals(seeded, rng)
        assert expected.sessions > 0
        assert stats.totals(rng) == expected
        daily = stats.daily_totals(rng)
        for day in rng.dates():
            assert daily[day] == expected_totals(seeded, DateRange(day, day)), day
        for dimension in BREAKDOWNS.values():
            got = stats.breakdown(dimension, rng, limit=1000)
            assert_breakdown(got, expected_breakdown(seeded, dimension, rng), dimension)


def test_breakdown_limit_keeps_the_top_rows(paris_app: Flask, seeded: Seeded) -> None:
    rng = ranges(seeded)["all days"]
    dimension = BREAKDOWNS["page"]
    expected = expected_breakdown(seeded, dimension, rng)
    with paris_app.app_context(), current_state(paris_app).engine().connect() as conn:
        top = open_stats(paris_app, conn).breakdown(dimension, rng, limit=3)
    assert len(top) == 3
    shown = {row.key for row in top}
    hidden = [c["visitors"] for k, c in expected.items() if k not in shown]
    assert min(row.counts["visitors"] for row in top) >= max(hidden)


def test_page_detail_and_histograms_match_reference(paris_app: Flask, seeded: Seeded) -> None:
    rng = ranges(seeded)["all days"]
    reference = reference_rows(seeded, rng)
    path = "/pricing"
    referrers: dict[Any, dict[str, int]] = defaultdict(lambda: {"visitors": 0, "pageviews": 0})
    for row in reference["DailyPageReferrer"]:
        if row["path"] == path:
            referrers[row["referrer_host"]]["visitors"] += row["visitors"]
            referrers[row["referrer_host"]]["pageviews"] += row["pageviews"]
    per_day: dict[dt.date, tuple[int, int]] = defaultdict(lambda: (0, 0))
    for row in reference["DailyPage"]:
        if row["path"] == path:
            per_day[row["date"]] = (row["visitors"], row["pageviews"])
    histograms: dict[str, dict[int, int]] = {"duration_bucket": {}, "pages_bucket": {}}
    for row in reference["DailySession"]:
        for bucket, counts in histograms.items():
            counts[row[bucket]] = counts.get(row[bucket], 0) + row["sessions"]

    with paris_app.app_context(), current_state(paris_app).engine().connect() as conn:
        stats = open_stats(paris_app, conn)
        got = {r.key: r.counts for r in stats.page_referrers(rng, path, limit=100)}
        assert got == dict(referrers)
        daily = stats.page_daily(rng, path)
        for day in rng.dates():
            assert (daily[day].visitors, daily[day].pageviews) == per_day[day], day
        for bucket, expected in histograms.items():
            rows = stats.sessions_histogram(rng, bucket)
            assert {r.key: r.counts["sessions"] for r in rows} == expected, bucket


def test_events_breakdown_can_hide_tracker_events(paris_app: Flask, seeded: Seeded) -> None:
    rng = ranges(seeded)["all days"]
    dimension = BREAKDOWNS["event"]
    with paris_app.app_context(), current_state(paris_app).engine().connect() as conn:
        rows = open_stats(paris_app, conn).breakdown(
            dimension, rng, limit=100, exclude=INTERNAL_EVENTS
        )
    expected = expected_breakdown(seeded, dimension, rng, exclude=INTERNAL_EVENTS)
    assert "engagement" not in expected
    assert {r.key for r in rows} == set(expected) == set(CUSTOM_EVENTS)
    assert_breakdown(rows, expected, dimension)


# -- where the numbers come from -------------------------------------------------------------------


def set_summary_visitors(analytics: Analytics, day: dt.date, visitors: int) -> None:
    table = analytics.DailySummary.__table__
    with analytics.db.engine.begin() as conn:
        conn.execute(sa.update(table).where(table.c.date == day).values(visitors=visitors))


def test_final_days_are_read_from_daily_tables_only(paris_app: Flask, seeded: Seeded) -> None:
    analytics: Analytics = paris_app.extensions["analytics_test"]
    day = seeded.aggregated[0]
    with paris_app.app_context():
        # Marked rows prove the source: a live computation would not see the mark.
        set_summary_visitors(analytics, day, 424_242)
        with analytics.db.engine.connect() as conn:
            stats = open_stats(paris_app, conn)
            assert stats.live_days(DateRange(day, day)) == []
            assert stats.totals(DateRange(day, day)).visitors == 424_242


@pytest.mark.clock
def test_today_and_unfinished_runs_are_live(paris_app: Flask, seeded: Seeded) -> None:
    analytics: Analytics = paris_app.extensions["analytics_test"]
    day = seeded.aggregated[-1]
    today = seeded.today
    run = analytics.AggregationRun.__table__
    with paris_app.app_context():
        analytics.aggregate(today)
        set_summary_visitors(analytics, today, 424_242)
        set_summary_visitors(analytics, day, 424_242)
        with analytics.db.engine.begin() as conn:
            # A run that started before its day ended missed the day's last events.
            _start, end = day_bounds(seeded.tz, day)
            conn.execute(
                sa.update(run)
                .where(run.c.date == day)
                .values(started_at=end - dt.timedelta(minutes=5))
            )
            # Today's run is too old to stand for today (the scheduler stopped).
            conn.execute(
                sa.update(run)
                .where(run.c.date == today)
                .values(started_at=seeded.now - TODAY_RUN_MAX_AGE)
            )
        with analytics.db.engine.connect() as conn:
            stats = open_stats(paris_app, conn)
            assert stats.live_days(DateRange(day, today)) == [day, today]
            for live in (day, today):
                rng = DateRange(live, live)
                assert stats.totals(rng) == expected_totals(seeded, rng)


def test_days_without_raw_events_use_stored_rows(app: Flask, analytics: Analytics) -> None:
    day = dt.date(2025, 6, 1)
    with app.app_context():
        with analytics.db.engine.begin() as conn:
            conn.execute(
                sa.insert(analytics.DailySummary.__table__),
                [{"date": day, "visitors": 7, "sessions": 9, "pageviews": 20, "bounces": 3,
                  "total_duration_s": 900, "events": 4}],
            )  # fmt: skip
        with analytics.db.engine.connect() as conn:
            stats = open_stats(app, conn)
            assert stats.raw_span() is None
            assert stats.live_days(DateRange(day, day)) == []
            assert stats.totals(DateRange(day - dt.timedelta(days=1), day)) == Totals(
                7, 9, 20, 3, 900, 4
            )


# -- raw-event views: hours and realtime -----------------------------------------------------------


def test_hourly_counts_match_raw_events(paris_app: Flask, seeded: Seeded) -> None:
    day = seeded.aggregated[0]
    start, end = day_bounds(seeded.tz, day)
    expected: dict[int, tuple[set[int], int]] = defaultdict(lambda: (set(), 0))
    for e in seeded.events:
        if start <= e["created_at"] < end:
            hour = int((e["created_at"] - start).total_seconds() // 3600)
            visitors, views = expected[hour]
            visitors.add(e["visitor_id"])
            expected[hour] = (visitors, views + (e["name"] == "pageview"))
    with paris_app.app_context(), current_state(paris_app).engine().connect() as conn:
        hours = open_stats(paris_app, conn).hourly(day)
    assert len(hours) == int((end - start).total_seconds() // 3600)
    for i, hour in enumerate(hours):
        visitors, views = expected.get(i, (set(), 0))
        assert (hour.visitors, hour.pageviews) == (len(visitors), views), i
        assert hour.start == (start + dt.timedelta(hours=i)).replace(tzinfo=dt.timezone.utc)
    assert sum(h.pageviews for h in hours) == expected_totals(seeded, DateRange(day, day)).pageviews


def test_hourly_has_23_hours_on_spring_forward(paris_app: Flask) -> None:
    analytics: Analytics = paris_app.extensions["analytics_test"]
    day = dt.date(2026, 3, 29)  # Europe/Paris skips 02:00-03:00
    with paris_app.app_context():
        insert(analytics, [make_row(dt.datetime(2026, 3, 29, 1, 30), 1)])  # 03:30 CEST
        with analytics.db.engine.connect() as conn:
            hours = open_stats(paris_app, conn).hourly(day)
    assert len(hours) == 23
    assert [h.start.hour for h in hours[:4]] == [0, 1, 3, 4]
    assert [h.pageviews for h in hours[:4]] == [0, 0, 1, 0]


@pytest.mark.clock
def test_realtime_counts_the_last_five_minutes(paris_app: Flask, seeded: Seeded) -> None:
    with paris_app.app_context(), current_state(paris_app).engine().connect() as conn:
        stats = open_stats(paris_app, conn)
        live = stats.realtime(limit=100)
    since = stats.now - REALTIME_WINDOW
    recent = [e for e in seeded.events if e["created_at"] >= since]
    assert live.visitors == len({e["visitor_id"] for e in recent}) == 3
    assert live.pageviews == sum(e["name"] == "pageview" for e in recent) == 4
    # Lists and the per-minute chart cover whole minutes of the last half hour.
    first = live.minutes[0].start.astimezone(dt.timezone.utc).replace(tzinfo=None)
    assert stats.now - dt.timedelta(minutes=30) < first <= stats.now - dt.timedelta(minutes=29)
    window = [e for e in seeded.events if e["created_at"] >= first and e["name"] == "pageview"]
    pages: dict[str, tuple[set[int], int]] = defaultdict(lambda: (set(), 0))
    for e in window:
        visitors, views = pages[e["path"]]
        visitors.add(e["visitor_id"])
        pages[e["path"]] = (visitors, views + 1)
    assert {r.key: (r.counts["visitors"], r.counts["pageviews"]) for r in live.pages} == {
        path: (len(v), n) for path, (v, n) in pages.items()
    }
    # Most visitors first, then by path: the whole order, not only the top. The last two
    # minutes' /live visitors are always there, but not always on top: the half hour can
    # hold the day's other traffic too (every visitor of a today still under three hours
    # old starts at local midnight), and a page of it may have as many visitors or more.
    assert pages["/live"] == ({9_000, 9_001, 9_002}, 3)
    assert [r.key for r in live.pages] == sorted(pages, key=lambda p: (-len(pages[p][0]), p))
    assert sum(m.pageviews for m in live.minutes) == len(window)
    shown = [e for e in seeded.events if e["created_at"] >= first]
    shown = [e for e in shown if e["name"] not in INTERNAL_EVENTS]
    assert len(live.recent) == min(20, len(shown))
    times = [r["created_at"] for r in live.recent]
    assert times == sorted(times, reverse=True)


# -- merging stored and live rows -----------------------------------------------------------------


@pytest.mark.clock
def test_live_counts_can_lift_a_key_into_the_top(
    app: Flask, analytics: Analytics, frozen_clock: FrozenClock
) -> None:
    state = current_state(app)
    today = state.today()
    stored_day = today - dt.timedelta(days=1)
    page = analytics.DailyPage.__table__
    source = analytics.DailyTrafficSource.__table__
    run = analytics.AggregationRun.__table__
    after = day_bounds(state.settings.timezone, stored_day)[1] + dt.timedelta(hours=1)
    stored_pages = {"/a": 10, "/b": 9, "/c": 1, "/d": 8}
    with app.app_context():
        with analytics.db.engine.begin() as conn:
            conn.execute(
                sa.insert(page),
                [{"date": stored_day, "path": p, "visitors": v, "pageviews": v, "entries": 0,
                  "exits": 0, "total_engagement_ms": 0} for p, v in stored_pages.items()],
            )  # fmt: skip
            conn.execute(
                sa.insert(source),
                [{"date": stored_day, "channel": c, "source": s, "visitors": 1, "sessions": n,
                  "pageviews": n, "bounces": 0}
                 for c, s, n in (("Direct", None, 5), ("Referral", "x.com", 6), ("Email", "nl", 7))],
            )  # fmt: skip
            conn.execute(
                sa.insert(run),
                [{"date": stored_day, "started_at": after, "finished_at": after,
                  "source_events": 1}],
            )  # fmt: skip
        # Today (live): /c gets 20 more visitors, /e 1; 3 direct visits.
        now = frozen_clock.utcnow() - dt.timedelta(seconds=5)
        start = day_bounds(state.settings.timezone, today)[0]
        moment = max(start, now - dt.timedelta(minutes=1))
        rows = [make_row(moment, 100 + i, path="/c") for i in range(20)]
        rows += [make_row(moment, 200, path="/e")]
        insert(analytics, rows)
        with analytics.db.engine.connect() as conn:
            stats = open_stats(app, conn)
            rng = DateRange(stored_day, today)
            assert stats.live_days(rng) == [today]
            top = stats.breakdown(BREAKDOWNS["page"], rng, limit=2)
            assert [(r.key, r.counts["visitors"]) for r in top] == [("/c", 21), ("/a", 10)]
            second = stats.breakdown(BREAKDOWNS["page"], rng, limit=2, offset=2)
            assert [(r.key, r.counts["visitors"]) for r in second] == [("/b", 9), ("/d", 8)]
            # A NULL key with live rows (direct visits) is merged with its stored row too.
            sources = stats.breakdown(BREAKDOWNS["source"], rng, limit=1)
            assert [(r.key, r.counts["sessions"]) for r in sources] == [(None, 5 + 21)]


def test_live_cache_expires() -> None:
    clock = [100.0]
    cache = LiveCache(30, clock=lambda: clock[0])
    day = dt.date(2026, 1, 1)
    rows: dict[str, list[dict[str, Any]]] = {"DailySummary": []}
    assert cache.get(day) is None
    cache.put(day, rows)
    assert cache.get(day) is rows
    clock[0] += 29.9
    assert cache.get(day) is rows
    clock[0] += 0.1
    assert cache.get(day) is None
    off = LiveCache(0, clock=lambda: clock[0])
    off.put(day, rows)
    assert off.get(day) is None


def test_month_buckets_sum_their_days() -> None:
    rng = DateRange(dt.date(2025, 12, 30), dt.date(2026, 2, 2))
    daily = {day: Totals(visitors=1, pageviews=day.day) for day in rng.dates()}
    months = buckets(daily, rng, "month")
    assert [(b.start, b.end) for b in months] == [
        (dt.date(2025, 12, 30), dt.date(2025, 12, 31)),
        (dt.date(2026, 1, 1), dt.date(2026, 1, 31)),
        (dt.date(2026, 2, 1), dt.date(2026, 2, 2)),
    ]
    assert [b.totals.visitors for b in months] == [2, 31, 2]
    assert months[1].totals.pageviews == sum(range(1, 32))
    assert len(buckets(daily, rng, "day")) == rng.days
