"""The page-experience report (:mod:`flask_analytics.reports.experience`) against a plain
Python reference (``tests/support/experience.py``) on generated traffic over six Paris
days with a DST change, some aggregated (read from ``analytics_daily_page_experience``)
and some live (virtual rows from raw events), on SQLite and PostgreSQL: visitors, median
and average time on page and scroll depth, every vital's p75, sample count and ratings,
per page and for the site, equal on the rollup and raw paths; the daily table's rows
(each day's exact distribution) and their re-aggregation; filters; pages; purged days.
Archive and purge: ``test_experience_retention.py``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from flask import Flask

from flask_analytics.reports import DateRange, RawDataMissing
from flask_analytics.reports.experience import VITALS
from flask_analytics.state import current_state

from ..conftest import build_app, release_app
from ..support.experience import (
    EDGE,
    ONE,
    ONE_VITALS,
    ask,
    check,
    nearest_rank,
    ordered_pages,
    reference,
    reference_rows,
    seed_site,
    stored_rows,
)
from ..support.schema import SchemaKeeper
from ..support.seeded_stats import TIMEOUT, TIMEZONE

#: Now: the Sunday of Paris's autumn DST change (a 25-hour day) is in the range.
NOW = dt.datetime(2026, 10, 27, 9, 30, tzinfo=dt.timezone.utc)
TODAY = dt.date(2026, 10, 27)
DAYS = [TODAY - dt.timedelta(days=n) for n in range(5, -1, -1)]
#: Days aggregated (read from the daily table; the raw path reads their sessions from
#: analytics_session), the DST day (Sunday, 25 hours) last.
AGGREGATED = DAYS[1:4]
DST_DAY = DAYS[3]
#: A day with daily rows but no raw events left (purged).
PURGED = TODAY - dt.timedelta(days=40)

FILTERS: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str, tuple[str, ...]], ...]]] = {
    "session": (("source:is:Google",), (("source", "is", ("Google",)),)),
    "event": (("page:matches:/blog/*",), (("page", "matches", ("/blog/*",)),)),
}


@pytest.fixture(scope="module")
def site(
    module_database_url: str, schemas: SchemaKeeper
) -> Iterator[tuple[Flask, list[dict[str, Any]]]]:
    with time_machine.travel(NOW, tick=False):
        app, db = build_app(module_database_url, schemas, "experience", ANALYTICS_TIMEZONE=TIMEZONE)
        events = seed_site(app, DAYS, AGGREGATED, PURGED, seed=16)
        yield app, events
        release_app(app, db, schemas)


@pytest.mark.parametrize(
    "span", [(0, 5), (3, 3), (1, 3)], ids=["all-days", "dst-day", "aggregated-days"]
)
def test_every_number_matches_the_reference(site, span):
    app, events = site
    rng = DateRange(DAYS[span[0]], DAYS[span[1]])
    tz = current_state(app).settings.timezone
    expected = reference(events, list(rng.dates()), tz, TIMEOUT)
    answer = ask(app, NOW, rng, limit=None)
    check(answer, expected)
    # The raw path (every sample read from raw events) answers the same.
    assert ask(app, NOW, rng, limit=None, raw=True) == answer
    # The data exercise what they should: every vital rated every way, several samples.
    site_row = expected[None]
    assert site_row["visitors"] > 20
    for name in VITALS:
        assert site_row[name]["samples"] > 10
        assert min(site_row[name][r] for r in ("good", "needs_improvement", "poor")) > 0
    # Shares are the counts over the samples.
    lcp = answer.site.vitals["lcp"]
    assert lcp.share("good") == pytest.approx(site_row["lcp"]["good"] / site_row["lcp"]["samples"])


def test_daily_rows_are_each_days_exact_distribution(site):
    """Each aggregated day's rows: every distinct value per page and metric with its
    count, visitors per page and for the site; live days have none; aggregating a day
    again writes the same rows."""
    app, events = site
    tz = current_state(app).settings.timezone
    repeated = 0
    for day in AGGREGATED:
        expected = reference_rows(events, day, tz)
        assert stored_rows(app, day) == expected, day
        repeated += sum(1 for (_p, m, _v, n) in expected if m != "visitors" and n > 1)
    assert repeated > 5  # values shared by several samples are counted, not repeated
    assert stored_rows(app, DAYS[0]) == stored_rows(app, TODAY) == {}
    analytics = app.extensions["analytics_test"]
    before = stored_rows(app, DST_DAY)
    with time_machine.travel(NOW, tick=False), app.app_context():
        analytics.aggregate(DST_DAY)
        analytics.aggregate(DST_DAY)
    assert stored_rows(app, DST_DAY) == before


@pytest.mark.parametrize("kind", sorted(FILTERS))
def test_filtered_numbers_are_those_of_the_kept_events(site, kind):
    app, events = site
    rng = DateRange(DAYS[0], DAYS[-1])
    given, spec = FILTERS[kind]
    tz = current_state(app).settings.timezone
    expected = reference(events, list(rng.dates()), tz, TIMEOUT, spec)
    answer = ask(app, NOW, rng, given, limit=None)
    check(answer, expected)
    unfiltered = ask(app, NOW, rng, limit=None)
    assert 0 < answer.site.vitals["lcp"].samples < unfiltered.site.vitals["lcp"].samples
    if kind == "event":
        assert all(r.path.startswith("/blog/") for r in answer.rows)


def test_a_session_filter_keeping_every_visit_changes_nothing(site):
    """Session filters join events to their kept visits (stored ones on aggregated
    days); a filter every visit passes must answer what the plain scan answers."""
    app, _events = site
    rng = DateRange(DAYS[0], DAYS[-1])
    assert ask(app, NOW, rng, ("hostname:is:example.com",), limit=None) == ask(
        app, NOW, rng, limit=None
    )
    assert ask(app, NOW, rng, ("hostname:is:other.example",), limit=None).total == 0


def test_pages_are_cut_by_limit_and_offset(site):
    app, events = site
    rng = DateRange(DAYS[0], DAYS[-1])
    tz = current_state(app).settings.timezone
    order = ordered_pages(reference(events, list(rng.dates()), tz, TIMEOUT))
    answer = ask(app, NOW, rng, limit=3, offset=2)
    assert [r.path for r in answer.rows] == order[2:5]
    assert answer.total == len(order)
    assert ask(app, NOW, rng, limit=None, offset=len(order)).rows == []


def test_a_page_with_one_sample_and_values_at_the_thresholds(site):
    app, _events = site
    rng = DateRange(DAYS[0], DAYS[0])
    rows = {r.path: r for r in ask(app, NOW, rng, limit=None).rows}
    one = rows[ONE]
    assert one.visitors == 1
    assert (one.time_on_page_ms.samples, one.time_on_page_ms.median) == (1, 4321)
    assert one.time_on_page_ms.average == 4321
    assert (one.scroll_depth.median, one.scroll_depth.average) == (37, 37)
    for name, value in ONE_VITALS.items():
        vital = one.vitals[name]
        assert (vital.samples, vital.p75) == (1, value)
        assert vital.good == 1
        assert vital.rating(name) == "good"
    # Exactly at the good threshold is good, exactly at the poor one needs improvement,
    # just above it is poor (CLS floats included); p75 of three is the 3rd smallest.
    edge = rows[EDGE]
    assert edge.visitors == 0  # vitals without a pageview: a page, no visitors
    for name, (_good, poor) in VITALS.items():
        vital = edge.vitals[name]
        assert (vital.good, vital.needs_improvement, vital.poor) == (1, 1, 1), name
        assert vital.p75 == poor + (0.01 if name == "cls" else 1)
        assert vital.rating(name) == "poor"
        assert vital.share("good") == pytest.approx(1 / 3)
    assert (edge.time_on_page_ms.samples, edge.time_on_page_ms.median) == (0, None)


def test_nearest_rank_reference():
    assert nearest_rank([5], 75) == 5
    assert nearest_rank([1, 2, 3, 4], 75) == 3
    assert nearest_rank([1, 2, 3, 4, 5], 75) == 4
    assert nearest_rank([4, 1, 3, 2], 50) == 2
    assert nearest_rank([0.1, 0.1, 0.3], 50) == 0.1
    assert nearest_rank([], 75) is None


def test_a_range_reaching_purged_days_is_refused(site):
    app, _events = site
    with pytest.raises(RawDataMissing, match="Page experience reports read raw events"):
        ask(app, NOW, DateRange(PURGED, TODAY))
    # Days without any rows are simply empty.
    empty = ask(app, NOW, DateRange(PURGED + dt.timedelta(days=1), PURGED + dt.timedelta(days=3)))
    assert (empty.rows, empty.total, empty.site.visitors) == ([], 0, 0)
