"""The query engine's raw path (:mod:`flask_analytics.reports.filtered`) without filters
equals the reference on the seeded data set: every total, daily total and breakdown,
on aggregated days, live days and today (both databases)."""

from __future__ import annotations

import pytest
from flask import Flask

from flask_analytics.reports import BREAKDOWNS, DateRange, Stats
from flask_analytics.state import current_state

from ..support.seeded_stats import Seeded, expected_breakdown, expected_totals
from .test_stats import assert_breakdown, ranges


@pytest.mark.parametrize("which", ["aggregated day", "live past day", "today", "all days"])
def test_raw_path_matches_reference(paris_app: Flask, seeded: Seeded, which: str) -> None:
    rng = ranges(seeded)[which]
    with paris_app.app_context(), current_state(paris_app).engine().connect() as conn:
        stats = Stats(current_state(paris_app), conn, raw=True)
        expected = expected_totals(seeded, rng)
        assert expected.sessions > 0
        assert stats.totals(rng) == expected
        daily = stats.daily_totals(rng)
        for day in rng.dates():
            assert daily[day] == expected_totals(seeded, DateRange(day, day)), day
        for dimension in BREAKDOWNS.values():
            got = stats.breakdown(dimension, rng, limit=1000)
            assert_breakdown(got, expected_breakdown(seeded, dimension, rng), dimension)
