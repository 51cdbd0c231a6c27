"""aggregate: daily rollups in SQL, checked by hand and against tests/support/reference.py."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_analytics import Analytics, AnalyticsError
from flask_analytics.core.clock import day_bounds, utcnow
from flask_analytics.core.rollups import (
    DURATION_BUCKETS,
    PAGES_BUCKETS,
    daily_selects,
    sessions_select,
    source_events,
    table_selects,
)
from flask_analytics.core.runs import day_state
from flask_analytics.lifecycle.aggregate import (
    AggregationRefused,
    AggregationResult,
    aggregate_day,
    lock_day,
)

from ..conftest import custom_event_model
from ..support import reference
from ..support.events import raw_event
from ..support.reference import as_multiset, reference_daily

DAY = dt.date(2026, 1, 15)


# -- helpers ----------------------------------------------------------------------------------


def insert_events(
    analytics: Analytics, rows: Iterable[dict[str, Any]], *, archive: bool = False
) -> None:
    """Insert raw rows directly (no pipeline) into the event or the archive table."""
    rows = list(rows)
    if not rows:
        return
    model = analytics.EventArchive if archive else analytics.Event
    with analytics.db.engine.begin() as conn:
        conn.execute(sa.insert(model.__table__), rows)


def stored_events(analytics: Analytics) -> list[dict[str, Any]]:
    """Every raw and archived event, as plain dicts (the reference's input)."""
    with analytics.db.engine.connect() as conn:
        return [
            dict(row)
            for model in (analytics.Event, analytics.EventArchive)
            for row in conn.execute(sa.select(model.__table__)).mappings()
        ]


def daily_rows(analytics: Analytics, day: dt.date | None = None) -> dict[str, list[dict[str, Any]]]:
    """Rows of every daily table (of ``day``, or all), without ``id``."""
    models = analytics.state().models
    result = {}
    with analytics.db.engine.connect() as conn:
        for name, model in models.daily.items():
            table = model.__table__
            query = sa.select(*(c for c in table.c if c.name != "id"))
            if day is not None:
                query = query.where(table.c.date == day)
            result[name] = [dict(r) for r in conn.execute(query).mappings()]
    return result


def live_rows(analytics: Analytics, day: dt.date) -> dict[str, list[dict[str, Any]]]:
    """What ``daily_selects`` computes for ``day`` straight from raw events."""
    with analytics.db.engine.connect() as conn:
        return {
            name: [dict(r) for r in conn.execute(select).mappings()]
            for name, select in daily_selects(analytics.state(), day).items()
        }


def assert_matches_reference(
    got: dict[str, list[dict[str, Any]]], expected: dict[str, list[dict[str, Any]]]
) -> None:
    assert set(got) == set(expected)
    for name in expected:
        assert as_multiset(got[name]) == as_multiset(expected[name]), name


def tuples(rows: list[dict[str, Any]], *columns: str) -> set[tuple[Any, ...]]:
    return {tuple(row[c] for c in columns) for row in rows}


# -- a day computed by hand ---------------------------------------------------------------


def at(hms: str) -> dt.datetime:
    return dt.datetime.combine(DAY, dt.time.fromisoformat(hms))


def hand_day() -> list[dict[str, Any]]:
    """Four visitors on 2026-01-15 (UTC), numbers worked out in the test below."""
    return [
        # Visitor 1, session 1: a custom event first; the first *pageview* is the landing.
        raw_event(at("09:59:00"), 1, name="signup", path="/signup", channel="Referral",
              utm_source="other"),
        raw_event(at("10:00:00"), 1, path="/a", channel="Organic Search", source="Google",
              referrer_host="google.com", utm_source="newsletter", utm_medium="email",
              utm_campaign="spring"),
        raw_event(at("10:05:00"), 1, path="/b"),
        raw_event(at("10:06:30"), 1, name="engagement", path="/b", engagement_ms=90_000),
        # Visitor 1, session 2: 1801 s after the last event.
        raw_event(at("10:36:31"), 1, path="/c"),
        # Visitor 2: a one-page visit with engagement (no bounce), then a pageview exactly
        # SESSION_TIMEOUT later (same session).
        raw_event(at("12:00:00"), 2, path="/a", device_type="mobile", browser="Safari", os="iOS",
              country="DE"),
        raw_event(at("12:00:45"), 2, name="engagement", path="/a", engagement_ms=40_000,
              device_type="mobile", browser="Safari", os="iOS", country="DE"),
        raw_event(at("12:30:45"), 2, path="/b", device_type="mobile", browser="Safari", os="iOS",
              country="DE"),
        # Visitor 3: a server-side event only: a visit without pageview.
        raw_event(at("15:00:00"), 3, name="signup", path="/signup", channel=None,
              device_type="other", browser=None, os=None),
        # Visitor 4: 1800.05 s apart, but 1800 in whole seconds: one session.
        raw_event(at("18:00:00.900000"), 4, path="/a", referrer_host="t.co"),
        raw_event(at("18:30:00.950000"), 4, path="/a", referrer_host="t.co"),
        # Another day's events never count.
        raw_event(at("23:59:59.999999") + dt.timedelta(microseconds=1), 1, path="/a"),
        raw_event(at("00:00:00") - dt.timedelta(microseconds=1), 1, path="/a"),
    ]  # fmt: skip


def test_a_day_worked_out_by_hand(app, analytics):
    with app.app_context():
        insert_events(analytics, hand_day())
        result = analytics.aggregate(DAY)
        rows = daily_rows(analytics, DAY)

    assert result.source_events == 11
    assert rows["DailySummary"] == [
        {"date": DAY, "visitors": 4, "sessions": 5, "pageviews": 7, "bounces": 1,
         "total_duration_s": 450 + 0 + 1845 + 0 + 1800, "events": 4}
    ]  # fmt: skip
    cols = ("path", "visitors", "pageviews", "entries", "exits", "total_engagement_ms")
    assert tuples(rows["DailyPage"], *cols) == {
        ("/a", 3, 4, 3, 1, 40_000),
        ("/b", 2, 2, 0, 2, 90_000),
        ("/c", 1, 1, 1, 1, 0),
    }
    assert tuples(rows["DailyPageReferrer"], "path", "referrer_host", "visitors", "pageviews") == {
        ("/a", "google.com", 1, 1),
        ("/a", None, 1, 1),
        ("/a", "t.co", 1, 2),
        ("/b", None, 2, 2),
        ("/c", None, 1, 1),
    }
    cols = ("channel", "source", "visitors", "sessions", "pageviews", "bounces")
    assert tuples(rows["DailyTrafficSource"], *cols) == {
        ("Organic Search", "Google", 1, 1, 2, 0),
        ("Direct", None, 3, 3, 5, 1),
        (None, None, 1, 1, 0, 0),
    }
    assert tuples(rows["DailyCountry"], "country", "visitors", "sessions", "pageviews") == {
        ("DE", 1, 1, 2),
        (None, 3, 4, 5),
    }
    cols = ("device_type", "browser", "os", "visitors", "sessions", "pageviews")
    assert tuples(rows["DailyDevice"], *cols) == {
        ("desktop", "Chrome", "Windows", 2, 3, 5),
        ("mobile", "Safari", "iOS", 1, 1, 2),
        ("other", None, None, 1, 1, 0),
    }
    cols = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
    assert tuples(rows["DailyUtm"], *cols, "visitors", "sessions", "pageviews", "bounces") == {
        ("newsletter", "email", "spring", None, None, 1, 1, 2, 0),
        # Visitor 1 is here too: visitors are distinct per row, not additive across rows.
        (None, None, None, None, None, 4, 4, 5, 1),
    }
    cols = ("duration_bucket", "pages_bucket", "sessions", "total_duration_s", "pageviews")
    assert tuples(rows["DailySession"], *cols) == {
        (180, 2, 1, 450, 2),
        (0, 1, 1, 0, 1),
        (1800, 2, 2, 1845 + 1800, 4),
        (0, 0, 1, 0, 0),
    }
    assert tuples(rows["DailyEvent"], "name", "visitors", "events") == {
        ("signup", 2, 2),
        ("engagement", 2, 2),
    }
    assert {name: len(r) for name, r in rows.items()} == dict(result.rows)


def test_reference_agrees_with_the_hand_computation():
    expected = reference_daily([dict(e, id=i) for i, e in enumerate(hand_day())], DAY, "UTC", 1800)
    assert expected["DailySummary"][0]["total_duration_s"] == 4095
    assert expected["DailySummary"][0]["sessions"] == 5
    assert {(r["path"], r["entries"], r["exits"]) for r in expected["DailyPage"]} == {
        ("/a", 3, 1),
        ("/b", 0, 2),
        ("/c", 1, 1),
    }


def test_buckets_are_the_documented_ones():
    # The dashboard labels histogram rows from these constants.
    assert DURATION_BUCKETS == reference.DURATION_BUCKETS
    assert PAGES_BUCKETS == reference.PAGES_BUCKETS
    assert reference.bucket(9, DURATION_BUCKETS) == 0
    assert reference.bucket(10, DURATION_BUCKETS) == 10
    assert reference.bucket(99_999, DURATION_BUCKETS) == 3600
    assert reference.bucket(12, PAGES_BUCKETS) == 10


def test_empty_day_writes_nothing(app, analytics):
    with app.app_context():
        result = analytics.aggregate(DAY)
        rows = daily_rows(analytics)
    assert result.source_events == 0
    assert all(count == 0 for count in result.rows.values())
    assert all(r == [] for r in rows.values())


# -- live selects -----------------------------------------------------------------------


def test_daily_selects_have_the_daily_tables_shape(app, analytics):
    with app.app_context():
        selects = daily_selects(analytics.state(), DAY)
        models = analytics.state().models
    assert list(selects) == list(models.daily)
    for name, select in selects.items():
        columns = [c.name for c in models.daily[name].__table__.c if c.name != "id"]
        assert [c.name for c in select.selected_columns] == columns, name


def test_daily_selects_equal_the_aggregated_rows(app, analytics):
    with app.app_context():
        insert_events(analytics, hand_day())
        live = live_rows(analytics, DAY)
        analytics.aggregate(DAY)
        stored = daily_rows(analytics, DAY)
    assert sum(len(r) for r in live.values()) > 9
    assert_matches_reference(live, stored)
    # Sums come back as ints on PostgreSQL too (not Decimal): the dashboard serializes them.
    assert all(type(v) is int for v in live["DailySummary"][0].values() if v != DAY)


def test_daily_selects_of_several_days_combine_in_one_statement(app, analytics):
    other = DAY - dt.timedelta(days=1)
    with app.app_context():
        insert_events(analytics, hand_day())
        state = analytics.state()
        both = sa.union_all(
            daily_selects(state, DAY, cte_suffix="_a")["DailySummary"],
            daily_selects(state, other, cte_suffix="_b")["DailySummary"],
        )
        with analytics.db.engine.connect() as conn:
            rows = {str(r.date)[:10]: r.pageviews for r in conn.execute(both)}
    assert rows == {"2026-01-15": 7, "2026-01-14": 1}


def test_sessions_select_from_src_only_gives_the_same_rows(app, analytics):
    """The slower form without models/bounds (stats.py builds per-day CTEs with it)."""
    with app.app_context():
        insert_events(analytics, hand_day())
        move_to_archive(analytics, at("00:00:00"), at("12:00:00"))
        analytics.aggregate(DAY)
        stored = daily_rows(analytics, DAY)
        state = analytics.state()
        start, end = day_bounds(state.settings.timezone, DAY)
        src = source_events(state.models, start, end).cte("src_x")
        dialect = analytics.db.engine.dialect.name
        sessions = sessions_select(src, 1800, dialect, non_interactive=["web_vitals"]).cte(
            "sessions_x"
        )
        with analytics.db.engine.connect() as conn:
            live = {
                name: [dict(r) for r in conn.execute(select).mappings()]
                for name, select in table_selects(DAY, src, sessions).items()
            }
    assert stored["DailySummary"][0]["sessions"] == 5
    assert_matches_reference(live, stored)


# -- time zones ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "day", "start", "end"),
    [
        # Hand-converted: CET = UTC+1, CEST = UTC+2, EST = UTC-5, EDT = UTC-4.
        ("Europe/Berlin", dt.date(2026, 3, 29), dt.datetime(2026, 3, 28, 23), dt.datetime(2026, 3, 29, 22)),
        ("Europe/Berlin", dt.date(2026, 10, 25), dt.datetime(2026, 10, 24, 22), dt.datetime(2026, 10, 25, 23)),
        ("America/New_York", dt.date(2026, 3, 8), dt.datetime(2026, 3, 8, 5), dt.datetime(2026, 3, 9, 4)),
        ("America/New_York", dt.date(2026, 11, 1), dt.datetime(2026, 11, 1, 4), dt.datetime(2026, 11, 2, 5)),
        ("UTC", DAY, dt.datetime(2026, 1, 15), dt.datetime(2026, 1, 16)),
    ],
)  # fmt: skip
def test_day_bounds_follow_dst(tz, day, start, end):
    assert day_bounds(ZoneInfo(tz), day) == (start, end)


def test_day_bounds_reject_datetimes():
    with pytest.raises(TypeError, match="date, not a datetime"):
        day_bounds(ZoneInfo("UTC"), dt.datetime(2026, 1, 15))


# Local 23:30 of the day before, 00:30 and 23:30 of the DST day, 00:30 of the day after,
# converted to UTC by hand.
DST_CASES = [
    ("Europe/Berlin", dt.date(2026, 3, 29), [
        dt.datetime(2026, 3, 28, 22, 30), dt.datetime(2026, 3, 28, 23, 30),
        dt.datetime(2026, 3, 29, 21, 30), dt.datetime(2026, 3, 29, 22, 30)]),
    ("Europe/Berlin", dt.date(2026, 10, 25), [
        dt.datetime(2026, 10, 24, 21, 30), dt.datetime(2026, 10, 24, 22, 30),
        dt.datetime(2026, 10, 25, 22, 30), dt.datetime(2026, 10, 25, 23, 30)]),
    ("America/New_York", dt.date(2026, 3, 8), [
        dt.datetime(2026, 3, 8, 4, 30), dt.datetime(2026, 3, 8, 5, 30),
        dt.datetime(2026, 3, 9, 3, 30), dt.datetime(2026, 3, 9, 4, 30)]),
    ("America/New_York", dt.date(2026, 11, 1), [
        dt.datetime(2026, 11, 1, 3, 30), dt.datetime(2026, 11, 1, 4, 30),
        dt.datetime(2026, 11, 2, 4, 30), dt.datetime(2026, 11, 2, 5, 30)]),
]  # fmt: skip


@pytest.mark.parametrize(("tz", "day", "times"), DST_CASES, ids=lambda v: str(v)[:16])
def test_events_land_on_their_local_day(make_app, tz, day, times):
    app = make_app(ANALYTICS_TIMEZONE=tz)
    analytics = app.extensions["analytics_test"]
    before, first, last, after = times
    with app.app_context():
        insert_events(
            analytics,
            [
                raw_event(before, 1, path="/before"),
                raw_event(first, 2, path="/first"),
                raw_event(last, 3, path="/last"),
                raw_event(after, 4, path="/after"),
            ],
        )
        analytics.aggregate_range(day - dt.timedelta(days=1), day + dt.timedelta(days=1))
        rows = daily_rows(analytics)
    pages = {(r["date"], r["path"]) for r in rows["DailyPage"]}
    assert pages == {
        (day - dt.timedelta(days=1), "/before"),
        (day, "/first"),
        (day, "/last"),
        (day + dt.timedelta(days=1), "/after"),
    }
    # 23:30 local of the day before is the DST day's date in UTC for New York: still the
    # day before locally.
    assert {r["date"]: r["visitors"] for r in rows["DailySummary"]} == {
        day - dt.timedelta(days=1): 1,
        day: 2,
        day + dt.timedelta(days=1): 1,
    }


def test_a_session_across_the_spring_forward_gap_is_short(make_app):
    # Berlin 01:59 CET and 03:01 CEST on 2026-03-29 are two minutes apart.
    app = make_app(ANALYTICS_TIMEZONE="Europe/Berlin")
    analytics = app.extensions["analytics_test"]
    with app.app_context():
        insert_events(
            analytics,
            [raw_event(dt.datetime(2026, 3, 29, 0, 59)), raw_event(dt.datetime(2026, 3, 29, 1, 1))],
        )
        analytics.aggregate(dt.date(2026, 3, 29))
        (summary,) = daily_rows(analytics)["DailySummary"]
    assert (summary["sessions"], summary["total_duration_s"]) == (1, 120)


# -- idempotence, runs, refusal -----------------------------------------------------------


def test_aggregating_twice_gives_identical_rows_and_two_runs(app, analytics):
    with app.app_context():
        insert_events(analytics, hand_day())
        first = analytics.aggregate(DAY)
        once = daily_rows(analytics)
        second = analytics.aggregate(DAY)
        twice = daily_rows(analytics)
        with analytics.db.engine.connect() as conn:
            runs = conn.execute(sa.select(analytics.AggregationRun.__table__)).mappings().all()
    assert_matches_reference(twice, once)
    assert first.rows == second.rows
    assert [(r["date"], r["source_events"]) for r in runs] == [(DAY, 11), (DAY, 11)]
    for run, result in zip(runs, (first, second), strict=True):
        assert run["started_at"] == result.started_at
        assert run["finished_at"] == result.finished_at
        assert run["started_at"] <= run["finished_at"]


def test_result_and_range(app, analytics):
    seen: list[dt.date] = []
    with app.app_context():
        insert_events(analytics, hand_day())
        results = analytics.aggregate_range(
            DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=1), progress=seen.append
        )
        with pytest.raises(ValueError, match="after end"):
            analytics.aggregate_range(DAY, DAY - dt.timedelta(days=1))
    assert seen == [DAY - dt.timedelta(days=1), DAY, DAY + dt.timedelta(days=1)]
    assert all(isinstance(r, AggregationResult) for r in results)
    assert [r.source_events for r in results] == [1, 11, 1]
    assert [r.date for r in results] == seen


def move_to_archive(analytics: Analytics, start: dt.datetime, end: dt.datetime) -> int:
    """Move raw events with start <= created_at < end to the archive, in one transaction."""
    event_table = analytics.Event.__table__
    archive_table = analytics.EventArchive.__table__
    in_range = sa.and_(event_table.c.created_at >= start, event_table.c.created_at < end)
    columns = [c.name for c in event_table.c]
    with analytics.db.engine.begin() as conn:
        conn.execute(
            sa.insert(archive_table).from_select(columns, sa.select(event_table).where(in_range))
        )
        return conn.execute(sa.delete(event_table).where(in_range)).rowcount


def test_archived_day_gives_identical_rows(app, analytics):
    with app.app_context():
        insert_events(analytics, hand_day())
        analytics.aggregate(DAY)
        before = daily_rows(analytics)
        # Half archived (the archive job moves in batches), then all of it.
        assert move_to_archive(analytics, at("00:00:00"), at("12:00:00")) == 5
        half = analytics.aggregate(DAY)
        after_half = daily_rows(analytics)
        assert move_to_archive(analytics, at("00:00:00"), at("00:00:00") + dt.timedelta(1)) == 6
        full = analytics.aggregate(DAY)
        after_full = daily_rows(analytics)
        with analytics.db.engine.connect() as conn:
            raw_left = conn.scalar(sa.select(sa.func.count()).select_from(analytics.Event))
    assert raw_left == 2  # the neighbouring days' events
    assert half.source_events == full.source_events == 11
    assert_matches_reference(after_half, before)
    assert_matches_reference(after_full, before)


def test_purged_day_is_refused_unless_forced(app, analytics):
    with app.app_context():
        insert_events(analytics, hand_day())
        analytics.aggregate(DAY)
        before = daily_rows(analytics)
        move_to_archive(analytics, at("00:00:00"), at("00:00:00") + dt.timedelta(1))
        with analytics.db.engine.begin() as conn:
            conn.execute(sa.delete(analytics.EventArchive.__table__))
        with pytest.raises(AggregationRefused, match=r"2026-01-15.*force=True") as refused:
            analytics.aggregate(DAY)
        kept = daily_rows(analytics)
        forced = analytics.aggregate(DAY, force=True)
        wiped = daily_rows(analytics, DAY)
        again = analytics.aggregate(DAY)  # nothing left to protect: no refusal
        with analytics.db.engine.connect() as conn:
            runs = conn.execute(
                sa.select(analytics.AggregationRun.source_events).order_by(
                    analytics.AggregationRun.id
                )
            ).scalars()
            run_events = list(runs)
    assert isinstance(refused.value, AnalyticsError)
    assert_matches_reference(kept, before)  # the refused run rolled back entirely
    assert forced.source_events == 0
    assert all(rows == [] for rows in wiped.values())
    assert again.source_events == 0
    assert run_events == [11, 0, 0]  # the refused run left no run row


def run_counts(analytics: Analytics) -> list[int]:
    """``source_events`` of every aggregation run, oldest first."""
    runs = analytics.AggregationRun.__table__
    with analytics.db.engine.connect() as conn:
        return list(conn.execute(sa.select(runs.c.source_events).order_by(runs.c.id)).scalars())


@pytest.mark.parametrize("purged_from", ["archive", "raw"])
def test_partly_purged_day_is_refused_unless_forced(app, analytics, purged_from):
    """Fewer events than the last run read: recomputing would lower the day's numbers."""
    with app.app_context():
        insert_events(analytics, hand_day())
        analytics.aggregate(DAY)
        before = daily_rows(analytics)
        # Half the day archived (5 events before noon), the rest raw; then three events of
        # one table deleted behind the aggregation's back.
        assert move_to_archive(analytics, at("00:00:00"), at("12:00:00")) == 5
        table = (analytics.EventArchive if purged_from == "archive" else analytics.Event).__table__
        in_day = sa.and_(
            table.c.created_at >= at("00:00:00"),
            table.c.created_at < at("00:00:00") + dt.timedelta(1),
        )
        with analytics.db.engine.begin() as conn:
            ids = (
                conn.execute(sa.select(table.c.id).where(in_day).order_by(table.c.id).limit(3))
                .scalars()
                .all()
            )
            assert conn.execute(sa.delete(table).where(table.c.id.in_(ids))).rowcount == 3
        with pytest.raises(AggregationRefused) as refused:
            analytics.aggregate(DAY)
        kept = daily_rows(analytics)
        runs_after_refusal = run_counts(analytics)
        forced = analytics.aggregate(DAY, force=True)
        recomputed = daily_rows(analytics, DAY)
        expected = reference_daily(stored_events(analytics), DAY, "UTC", 1800)
        again = analytics.aggregate(DAY)  # as many events as the forced run read: no refusal
        runs_at_end = run_counts(analytics)
    message = str(refused.value)
    assert "2026-01-15" in message
    assert "read 11 events" in message
    assert "only 8 raw or archived events are left" in message
    assert "Pass force=True" in message
    assert isinstance(refused.value, AnalyticsError)
    assert_matches_reference(kept, before)  # the refused run rolled back entirely
    assert runs_after_refusal == [11]  # ... and left no run row
    assert forced.source_events == again.source_events == 8
    assert_matches_reference(recomputed, expected)  # the events left, nothing else
    assert recomputed["DailySummary"] != before["DailySummary"]
    assert runs_at_end == [11, 8, 8]


def test_day_with_more_events_than_its_last_run_is_recomputed_without_force(app, analytics):
    """Late events (the count grew since the last run) are no purge."""
    with app.app_context():
        insert_events(analytics, hand_day())
        first = analytics.aggregate(DAY)
        insert_events(analytics, [raw_event(at("18:00:00"), 9), raw_event(at("18:05:00"), 9)])
        second = analytics.aggregate(DAY)
        got = daily_rows(analytics, DAY)
        expected = reference_daily(stored_events(analytics), DAY, "UTC", 1800)
        runs = run_counts(analytics)
    assert (first.source_events, second.source_events) == (11, 13)
    assert_matches_reference(got, expected)
    assert got["DailySummary"][0]["visitors"] == 5
    assert runs == [11, 13]


# -- concurrency -------------------------------------------------------------------------


def many_events(n_visitors: int = 60) -> list[dict[str, Any]]:
    rows = []
    for v in range(n_visitors):
        start = at("08:00:00") + dt.timedelta(minutes=7 * v)
        for i in range(5):
            rows.append(
                raw_event(start + dt.timedelta(minutes=13 * i), v, path=f"/p{(v + i) % 7}",
                      name="pageview" if i % 3 else "click", country=("DE", "US", None)[v % 3])
            )  # fmt: skip
    return rows


def test_concurrent_runs_give_the_rows_of_one(app, analytics):
    with app.app_context():
        insert_events(analytics, many_events())
        analytics.aggregate(DAY)
        single = daily_rows(analytics)
    state = analytics.state(app)
    errors: list[BaseException] = []

    def run(barrier: threading.Barrier) -> None:
        try:
            with app.app_context():
                barrier.wait(timeout=30)
                aggregate_day(state, DAY)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    for _ in range(3):
        barrier = threading.Barrier(3)
        threads = [threading.Thread(target=run, args=(barrier,)) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors
        with app.app_context():
            assert_matches_reference(daily_rows(analytics), single)


def test_a_run_waits_for_the_day_lock(app, analytics):
    """Another transaction holding the day's lock makes a run wait, then it runs whole."""
    with app.app_context():
        insert_events(analytics, hand_day())
        engine = analytics.db.engine
    state = analytics.state(app)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            with app.app_context():
                outcome["result"] = aggregate_day(state, DAY)
        except BaseException as exc:  # reported by the main thread
            outcome["error"] = exc

    summary = analytics.DailySummary.__table__
    with app.app_context(), engine.begin() as holder:
        lock_day(holder, DAY)
        holder.execute(sa.delete(summary).where(summary.c.date == DAY))  # SQLite: the lock
        worker = threading.Thread(target=run)
        worker.start()
        if engine.dialect.name == "postgresql":
            deadline = time.monotonic() + 30
            waiting = 0
            while not waiting and time.monotonic() < deadline:
                with engine.connect() as conn:
                    waiting = conn.scalar(
                        sa.text(
                            "SELECT count(*) FROM pg_locks "
                            "WHERE locktype = 'advisory' AND NOT granted "
                            "AND database = (SELECT oid FROM pg_database "
                            "WHERE datname = current_database())"
                        )
                    )
                time.sleep(0.02)
            assert waiting, "the run never waited for the advisory lock"
        else:
            time.sleep(0.5)  # SQLite cannot show a waiter: give it time to block
        released = utcnow()
    worker.join(timeout=120)
    assert "error" not in outcome, outcome.get("error")
    if engine.dialect.name == "postgresql":
        assert outcome["result"].started_at >= released  # it read nothing before the lock
    else:
        # SQLite computes from a snapshot meanwhile and waits for the write lock to swap.
        assert outcome["result"].finished_at >= released
    assert outcome["result"].source_events == 11
    with app.app_context():
        assert daily_rows(analytics)["DailySummary"] != []


@contextlib.contextmanager
def once_while_computing(engine: sa.Engine, action: Callable[[], None]) -> Iterator[None]:
    """Run ``action()`` once, when a run inside the block first writes a computed daily
    row to its temporary tables (the day's events are read, nothing is swapped in yet)."""
    done: list[bool] = []

    def hook(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if done or not statement.startswith("INSERT INTO analytics_tmp_analytics_daily_"):
            return
        done.append(True)  # before action(): a run inside it does not trigger it again
        action()

    sa.event.listen(engine, "before_cursor_execute", hook)
    try:
        yield
    finally:
        sa.event.remove(engine, "before_cursor_execute", hook)
    assert done, "the run never wrote a computed row"


def test_writers_go_on_while_a_day_is_computed(app, analytics):
    """An event written while a run computes the day's rows is stored at once (SQLite
    holds its write lock only for the swap), not counted by that run, counted by the next."""
    with app.app_context():
        insert_events(analytics, hand_day())
        engine = analytics.db.engine
    state = analytics.state(app)
    late = dict(hand_day()[0], event_id=str(uuid.uuid4()))
    written: list[bool] = []

    def write_late_event() -> None:
        with engine.connect() as other:
            if engine.dialect.name == "sqlite":
                other.exec_driver_sql("PRAGMA busy_timeout = 0")  # locked: fail, never wait
            other.execute(sa.insert(analytics.Event.__table__), late)
            other.commit()
            if engine.dialect.name == "sqlite":
                other.exec_driver_sql("PRAGMA busy_timeout = 15000")
                other.commit()
        written.append(True)

    with app.app_context(), once_while_computing(engine, write_late_event):
        first = aggregate_day(state, DAY)
    assert written == [True]
    assert first.source_events == 11
    with app.app_context():
        computed = daily_rows(analytics)
        assert aggregate_day(state, DAY).source_events == 12
        # Every table of the first run comes from one view of the day: the 11 events.
        with analytics.db.engine.begin() as conn:
            table = analytics.Event.__table__
            conn.execute(sa.delete(table).where(table.c.event_id == late["event_id"]))
        # One event fewer than the last run read: forced, the refusal is tested above.
        aggregate_day(state, DAY, force=True)
        assert daily_rows(analytics) == computed


def test_a_run_older_than_one_that_swapped_in_meanwhile_is_no_purge(app, analytics):
    """SQLite: a run computing from 11 events while another run of the day reads 12 and
    swaps first is not refused as "partly purged": the events are all there."""
    with app.app_context():
        insert_events(analytics, hand_day())
        engine = analytics.db.engine
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL runs of a day hold its lock from snapshot to swap")
    state = analytics.state(app)
    late = dict(hand_day()[0], event_id=str(uuid.uuid4()))
    newer: list[AggregationResult] = []

    def write_late_event_and_aggregate() -> None:
        with engine.begin() as other:
            other.execute(sa.insert(analytics.Event.__table__), late)
        newer.append(aggregate_day(state, DAY))

    with app.app_context(), once_while_computing(engine, write_late_event_and_aggregate):
        older = aggregate_day(state, DAY)
    assert (newer[0].source_events, older.source_events) == (12, 11)
    with app.app_context():
        assert run_counts(analytics) == [12, 11]  # the last swap stands
        assert day_state(analytics.state(app), DAY).status == "stale"
        assert aggregate_day(state, DAY).source_events == 12


# -- event models --------------------------------------------------------------------------


def test_custom_event_model_aggregates(make_app):
    app: Flask = make_app(event_model=custom_event_model)
    analytics = app.extensions["analytics_test"]
    rows = [dict(e, plan=("pro", None)[i % 2], ab_variant="B") for i, e in enumerate(hand_day())]
    with app.app_context():
        insert_events(analytics, rows)
        analytics.aggregate(DAY)
        got = daily_rows(analytics, DAY)
        expected = reference_daily(stored_events(analytics), DAY, "UTC", 1800)
    assert got["DailySummary"][0]["visitors"] == 4
    assert_matches_reference(got, expected)


def test_session_timeout_setting_is_used(app, analytics):
    state = copy.copy(analytics.state(app))
    state.settings = dataclasses.replace(state.settings, session_timeout=60)
    with app.app_context():
        insert_events(analytics, hand_day())
        aggregate_day(state, DAY)
        got = daily_rows(analytics, DAY)
        expected = reference_daily(stored_events(analytics), DAY, "UTC", 60)
    # Visitor 1's visits split in four, visitor 2's in two, visitor 4's in two.
    assert got["DailySummary"][0]["sessions"] == 9
    assert_matches_reference(got, expected)
