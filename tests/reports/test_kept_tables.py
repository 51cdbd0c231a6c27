"""The raw path writes a request's kept sessions and events to temporary tables once
(:mod:`flask_analytics.reports.filtered`): answers about sub-ranges read from a covering
range's tables equal answers asked afresh, and no table outlives the request (both
databases)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_analytics.reports import BREAKDOWNS, DateRange, Stats
from flask_analytics.reports.filters import parse_filters
from flask_analytics.state import current_state

from ..support.seeded_stats import Seeded

FILTERS = {
    "session": ("source:is:Google",),
    "event": ("page:matches:/blog/*",),
    "both": ("device_type:is_not:Tablet", "page:is_not:/about"),
}


def temp_tables(conn: sa.Connection) -> list[str]:
    """Temporary tables this connection can see."""
    if conn.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_temp_master WHERE type = 'table'"
    else:
        query = (
            "SELECT relname FROM pg_class WHERE relpersistence = 't' AND relkind = 'r' "
            "AND pg_table_is_visible(oid)"
        )
    return sorted(str(name) for (name,) in conn.exec_driver_sql(query))


def answers(stats: Stats, rng: DateRange) -> tuple[object, ...]:
    pages = stats.breakdown(BREAKDOWNS["page"], rng, limit=100)
    sources = stats.breakdown(BREAKDOWNS["source"], rng, limit=100)
    return (
        stats.totals(rng),
        stats.daily_totals(rng),
        [(r.key, r.counts) for r in pages],
        [(r.key, r.counts) for r in sources],
    )


@pytest.mark.parametrize("kind", sorted(FILTERS))
def test_sub_ranges_read_from_a_covering_range_equal_fresh_answers(
    paris_app: Flask, seeded: Seeded, kind: str
) -> None:
    state = current_state(paris_app)
    filters = parse_filters(FILTERS[kind])
    whole = DateRange(seeded.live_past, seeded.today)
    parts = [DateRange(day, day) for day in whole.dates()] + [
        DateRange(whole.start + (whole.end - whole.start) // 2, whole.end)
    ]
    with paris_app.app_context(), state.engine().connect() as conn:
        shared = Stats(state, conn, filters=filters)
        shared.totals(whole)  # writes the whole range's tables first
        written = temp_tables(conn)
        assert any(name.startswith("fa_kept_sessions_") for name in written), written
        reused = [answers(shared, rng) for rng in parts]
        # No sub-range wrote tables of its own.
        assert temp_tables(conn) == written
        shared.close()
    fresh = []
    for rng in parts:
        with paris_app.app_context(), state.engine().connect() as conn:
            stats = Stats(state, conn, filters=filters)
            fresh.append(answers(stats, rng))
            stats.close()
    assert reused == fresh
    assert any(totals.visitors for totals, *_ in reused)


def test_no_temporary_table_outlives_the_request(paris_app: Flask, seeded: Seeded) -> None:
    state = current_state(paris_app)
    rng = DateRange(seeded.live_past, seeded.today)
    with paris_app.app_context(), state.engine().connect() as conn:
        stats = Stats(state, conn, filters=parse_filters(FILTERS["both"]))
        expected = stats.totals(rng)
        assert temp_tables(conn)
        stats.close()
        conn.rollback()  # the request's end (PostgreSQL drops them with its transaction)
        assert temp_tables(conn) == []
        # A table left on the connection by a request that failed before close() is
        # replaced, not reused or refused, by the next request.
        failed = Stats(state, conn, filters=parse_filters(FILTERS["both"]))
        failed.totals(rng)
        again = Stats(state, conn, filters=parse_filters(FILTERS["both"]))
        assert again.totals(rng) == expected
        again.close()
