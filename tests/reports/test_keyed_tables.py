"""Host columns keying built-in daily tables (``Analytics(daily_models=[...])``).

One app per database keys ``analytics_daily_page`` and ``analytics_daily_event`` by the
event model's ``plan`` and ``analytics_daily_page_referrer`` by ``plan`` and
``ab_variant``, over seeded traffic where visitors switch plans within a day (and within
a visit). Checked against pure-Python references, never the package's own output: the
stored and live rows (``keyed_reference`` below), the unkeyed tables and reports they
must still give (``reference.py``), and filtered numbers (``filter_reference.py``), from
the rollups when a filter pins the host columns, from raw events otherwise; then the
rows after archival and re-aggregation, and filtered answers with the raw events gone.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
from collections.abc import Iterator, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_analytics import (
    Analytics,
    DailyEventMixin,
    DailyPageMixin,
    DailyPageReferrerMixin,
)
from flask_analytics.core.rollups import daily_selects
from flask_analytics.models import DailyCountryMixin
from flask_analytics.reports import BREAKDOWNS, DateRange, Stats
from flask_analytics.reports.filtered import RawDataMissing
from flask_analytics.reports.filters import parse_filter
from flask_analytics.state import current_state

from ..conftest import build_app, custom_event_model, release_app
from ..support.filter_reference import filtered_range, summed
from ..support.reference import as_multiset, local_date, reference_daily, sessions_of
from ..support.seeded_stats import day_events

TIMEZONE = "Europe/Paris"
TIMEOUT = 1800
#: Naive UTC "now": the three days before are aggregated, today is live.
NOW = dt.datetime(2026, 3, 12, 14, 0)
TODAY = dt.date(2026, 3, 12)
AGGREGATED = [dt.date(2026, 3, 9), dt.date(2026, 3, 10), dt.date(2026, 3, 11)]
RANGE = DateRange(AGGREGATED[0], TODAY)
PLANS = ["free", "pro", "team", None]
VARIANTS = ["a", "b"]
HOST = ("plan", "ab_variant")
KEYS = {
    "DailyPage": ("path", "plan"),
    "DailyEvent": ("name", "plan"),
    "DailyPageReferrer": ("path", "referrer_host", "plan", "ab_variant"),
}


def keyed_models(db: SQLAlchemy) -> list[Any]:
    class DailyPage(DailyPageMixin, db.Model):  # type: ignore[name-defined, misc]
        plan = db.Column(db.String(32))

    class DailyEvent(DailyEventMixin, db.Model):  # type: ignore[name-defined, misc]
        plan = db.Column(db.String(32))

    class DailyPageReferrer(DailyPageReferrerMixin, db.Model):  # type: ignore[name-defined, misc]
        plan = db.Column(db.String(32))
        ab_variant = db.Column(db.String(16))

    return [DailyPage, DailyEvent, DailyPageReferrer]


def seeded_rows() -> list[dict[str, Any]]:
    """Three days and today's first hours of traffic; a visitor has a plan and a variant,
    and a quarter of their events carry others (a plan change mid-visit)."""
    rnd = random.Random(23)
    tz = ZoneInfo(TIMEZONE)
    rows = []
    for day in [*AGGREGATED, TODAY]:
        start = dt.datetime.combine(day, dt.time(), tz).astimezone(dt.timezone.utc)
        end = min(start + dt.timedelta(days=1), NOW.replace(tzinfo=dt.timezone.utc))
        rows += day_events(
            rnd, start.replace(tzinfo=None), end.replace(tzinfo=None) - dt.timedelta(minutes=5), 20
        )
    base: dict[int, tuple[str | None, str]] = {}
    for row in rows:
        plan, variant = base.setdefault(
            row["visitor_id"], (rnd.choice(PLANS), rnd.choice(VARIANTS))
        )
        if rnd.random() < 0.25:
            plan, variant = rnd.choice(PLANS), rnd.choice(VARIANTS)
        row.update(plan=plan, ab_variant=variant)
    return rows


@pytest.fixture(scope="module")
def site(module_database_url: str, schemas: Any) -> Iterator[Flask]:
    app, db = build_app(
        module_database_url,
        schemas,
        "keyed",
        event_model=custom_event_model,
        daily_models=keyed_models,
        ANALYTICS_TIMEZONE=TIMEZONE,
    )
    analytics: Analytics = app.extensions["analytics_test"]
    analytics.dashboard_access(lambda: True)
    with time_machine.travel(NOW.replace(tzinfo=dt.timezone.utc), tick=False), app.app_context():
        with analytics.db.engine.begin() as conn:
            conn.execute(sa.insert(analytics.Event.__table__), seeded_rows())
        for day in AGGREGATED:
            analytics.aggregate(day)
    yield app
    release_app(app, db, schemas)


class Events:
    """The stored events (with ids: the references order a visitor's by time, then id),
    hashable by identity so the filtered reference is computed once per question."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)


@pytest.fixture(scope="module")
def events(site: Flask) -> Events:
    table = site.extensions["analytics_test"].Event.__table__
    with site.app_context(), current_state(site).engine().connect() as conn:
        return Events([dict(r) for r in conn.execute(sa.select(table)).mappings()])


# -- the independent computation ----------------------------------------------------------


def keyed_reference(events: Events, day: dt.date) -> dict[str, list[dict]]:
    """The keyed tables' rows of ``day`` by their definition (models.KEYED_TABLES)."""
    zone = ZoneInfo(TIMEZONE)
    todays = [e for e in events if local_date(e["created_at"], zone) == day]
    ordered = sorted(todays, key=lambda e: (e["created_at"], e["id"]))
    rows: dict[str, dict[tuple, dict[str, int]]] = {t: {} for t in KEYS}

    def row(table: str, key: tuple) -> dict[str, int]:
        counts = {
            "DailyPage": ("visitors", "pageviews", "entries", "exits", "total_engagement_ms",
                          "value_visitors", "value_entries", "value_exits"),
            "DailyEvent": ("visitors", "events", "value_visitors"),
            "DailyPageReferrer": ("visitors", "pageviews", "value_visitors"),
        }[table]  # fmt: skip
        return rows[table].setdefault(key, dict.fromkeys(counts, 0))

    first: set[tuple] = set()
    distinct: set[tuple] = set()
    for e in ordered:
        host = (e["plan"], e["ab_variant"])
        if e["name"] == "pageview":
            tables = [
                ("DailyPage", (e["path"],), (e["plan"],), "pageviews"),
                ("DailyPageReferrer", (e["path"], e["referrer_host"]), host, "pageviews"),
            ]
        elif e["name"] == "engagement":
            r = row("DailyPage", (e["path"], e["plan"]))
            r["total_engagement_ms"] += e["engagement_ms"] or 0
            tables = [("DailyEvent", (e["name"],), (e["plan"],), "events")]
        else:
            tables = [("DailyEvent", (e["name"],), (e["plan"],), "events")]
        for table, keys, values, count in tables:
            r = row(table, (*keys, *values))
            r[count] += 1
            if (table, e["visitor_id"], keys) not in first:
                first.add((table, e["visitor_id"], keys))
                r["visitors"] += 1
            if (table, e["visitor_id"], keys, values) not in distinct:
                distinct.add((table, e["visitor_id"], keys, values))
                r["value_visitors"] += 1
    for session in sessions_of(todays, TIMEOUT):
        if session.entry is None:
            continue
        row("DailyPage", (session.entry, session.pageviews[0]["plan"]))["entries"] += 1
        row("DailyPage", (session.exit, session.pageviews[-1]["plan"]))["exits"] += 1
        for plan in {e["plan"] for e in session.events}:
            row("DailyPage", (session.entry, plan))["value_entries"] += 1
            row("DailyPage", (session.exit, plan))["value_exits"] += 1
    return {
        table: [
            {"date": day, **dict(zip(KEYS[table], key, strict=True)), **counts}
            for key, counts in by_key.items()
        ]
        for table, by_key in rows.items()
    }


def stored_rows(site: Flask, table: str, day: dt.date) -> list[dict[str, Any]]:
    model = site.extensions["analytics_test"].models.daily[table]
    t = model.__table__
    with site.app_context(), current_state(site).engine().connect() as conn:
        found = conn.execute(sa.select(t).where(t.c.date == day)).mappings()
        return [{k: v for k, v in r.items() if k != "id"} for r in found]


def unkeyed(rows: Sequence[dict[str, Any]], table: str) -> list[dict[str, Any]]:
    """Keyed rows summed over the host columns, without the ``value_`` counts."""
    own = [k for k in KEYS[table] if k not in HOST]
    sums: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        key = (r["date"], *(r[k] for k in own))
        acc = sums.setdefault(key, {"date": r["date"], **{k: r[k] for k in own}})
        for name, value in r.items():
            if name in ("date", *KEYS[table]) or name.startswith("value_"):
                continue
            acc[name] = acc.get(name, 0) + value
    return list(sums.values())


def stats(site: Flask, conn: sa.Connection, *filters: str, raw: bool = False) -> Stats:
    parsed = [parse_filter(f, HOST) for f in filters]
    return Stats(current_state(site), conn, now=NOW, filters=parsed, raw=raw)


def breakdown(site: Flask, name: str, *filters: str, raw: bool = False, rng=RANGE) -> dict:
    with site.app_context(), current_state(site).engine().connect() as conn:
        s = stats(site, conn, *filters, raw=raw)
        try:
            rows = s.breakdown(BREAKDOWNS[name], rng, limit=None)
        finally:
            s.close()
    return {r.key: r.counts for r in rows}


@functools.cache
def _filtered(events: Events, filters: tuple[str, ...], rng: DateRange) -> dict[str, list]:
    specs = []
    for text in filters:
        dimension, op, value = text.split(":", 2)
        specs.append((dimension, op, tuple(value.split("|"))))
    return filtered_range(events.rows, rng.dates(), TIMEZONE, TIMEOUT, specs)


def expected(events: Events, name: str, filters: Sequence[str], rng=RANGE) -> dict:
    """Breakdown ``name`` over ``rng`` by DESIGN.md's (filter) definitions."""
    item = BREAKDOWNS[name]
    rows = _filtered(events, tuple(filters), rng)[item.table]
    sums = summed(rows, [item.key], item.counts)
    return {
        key[0]: counts
        for key, counts in sums.items()
        if not (item.skip_null and key[0] is None)
        and (item.positive is None or counts[item.positive] > 0)
    }


# -- tests -------------------------------------------------------------------------------


def test_stored_and_live_rows_follow_their_definition(site, events):
    for day in AGGREGATED:
        reference = keyed_reference(events, day)
        for table in KEYS:
            assert as_multiset(stored_rows(site, table, day)) == as_multiset(reference[table])
    assert sum(len(r) for r in keyed_reference(events, AGGREGATED[0]).values()) > 50
    # Today is live: the aggregation's selects over raw events, the same definition.
    state = current_state(site)
    with site.app_context(), state.engine().connect() as conn:
        for table, select in daily_selects(state, TODAY).items():
            if table in KEYS:
                live = [dict(r) for r in conn.execute(select).mappings()]
                assert as_multiset(live) == as_multiset(keyed_reference(events, TODAY)[table])


def test_summed_over_host_columns_they_are_the_unkeyed_tables(site, events):
    """Counts keep their meaning: visitors, entries and exits are counted in one row."""
    for day in AGGREGATED:
        reference = reference_daily(events.rows, day, TIMEZONE, TIMEOUT)
        for table in KEYS:
            stored = unkeyed(stored_rows(site, table, day), table)
            assert as_multiset(stored) == as_multiset(reference[table])
    # Visitors with several plans a day exist, so summing value_visitors would overcount.
    day = AGGREGATED[0]
    rows = stored_rows(site, "DailyPage", day)
    assert sum(r["value_visitors"] for r in rows) > sum(r["visitors"] for r in rows)


@pytest.mark.parametrize("name", ["page", "entry_page", "exit_page", "event"])
def test_unfiltered_reports_keep_their_numbers(site, events, name):
    assert breakdown(site, name) == expected(events, name, ())


@pytest.mark.parametrize("value", ["pro", "free", "(none)"])
def test_a_pinned_filter_is_answered_exactly_from_the_rollup(site, events, value):
    plan = f"plan:is:{value}"
    for name in ("page", "entry_page", "exit_page", "event"):
        reference = expected(events, name, [plan])
        assert reference
        assert breakdown(site, name, plan) == reference
    assert breakdown(site, "page", plan, raw=True) == expected(events, "page", [plan])
    # One page's trend, per day (the page view's chart).
    page_rows = _filtered(events, (plan,), RANGE)["DailyPage"]
    trend = summed(page_rows, ["date"], ["visitors", "pageviews"], {"path": "/pricing"})
    with site.app_context(), current_state(site).engine().connect() as conn:
        daily = stats(site, conn, plan).page_daily(RANGE, "/pricing")
    got = {(d,): {"visitors": t.visitors, "pageviews": t.pageviews} for d, t in daily.items()}
    nonzero = {k: v for k, v in trend.items() if v["visitors"] or v["pageviews"]}
    assert nonzero
    assert {k: v for k, v in got.items() if v["visitors"] or v["pageviews"]} == nonzero
    # Both host columns of the referrer table pinned: its rows answer; one is not enough.
    with site.app_context(), current_state(site).engine().connect() as conn:
        s = stats(site, conn, plan, "ab_variant:is:a")
        rows = s.grouped("DailyPageReferrer", RANGE, ("path", "referrer_host"), ("visitors",))
        assert not s.filtered._kept  # no raw-path tables were written
    spec = [("plan", "is", (value,)), ("ab_variant", "is", ("a",))]
    rows_ref = filtered_range(events.rows, RANGE.dates(), TIMEZONE, TIMEOUT, spec)
    expected_rows = summed(rows_ref["DailyPageReferrer"], ["path", "referrer_host"], ["visitors"])
    assert dict(rows) == expected_rows


@pytest.mark.parametrize(
    "filters",
    [["plan:is:pro|team"], ["plan:is_not:pro"], ["plan:is:pro", "page:is:/pricing"]],
)
def test_other_filters_read_raw_events_and_stay_exact(site, events, filters):
    for name in ("page", "entry_page"):
        assert breakdown(site, name, *filters) == expected(events, name, filters)


def test_the_api_answers_a_pinned_filter_from_the_rollup(site, events):
    client = site.test_client()
    response = client.get(
        "/analytics/api/breakdown/page",
        query_string={
            "start": RANGE.start.isoformat(),
            "end": RANGE.end.isoformat(),
            "filter": "plan:is:team",
            "limit": 1000,
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    got = {r["page"]: (r["visitors"], r["pageviews"], r["entries"]) for r in response.json["rows"]}
    reference = expected(events, "page", ["plan:is:team"])
    assert got == {k: (c["visitors"], c["pageviews"], c["entries"]) for k, c in reference.items()}


def test_archived_and_reaggregated_days_keep_their_rows(site, events):
    analytics: Analytics = site.extensions["analytics_test"]
    day = AGGREGATED[0]
    before = {t: as_multiset(stored_rows(site, t, day)) for t in KEYS}
    event, archive = analytics.Event.__table__, analytics.EventArchive.__table__
    with time_machine.travel(NOW.replace(tzinfo=dt.timezone.utc), tick=False):
        with site.app_context(), analytics.db.engine.begin() as conn:
            start, end = (
                dt.datetime.combine(d, dt.time(), ZoneInfo(TIMEZONE))
                .astimezone(dt.timezone.utc)
                .replace(tzinfo=None)
                for d in (day, day + dt.timedelta(days=1))
            )
            moved = sa.select(event).where(event.c.created_at >= start, event.c.created_at < end)
            conn.execute(sa.insert(archive).from_select(list(event.c.keys()), moved))
            conn.execute(
                sa.delete(event).where(event.c.created_at >= start, event.c.created_at < end)
            )
        with site.app_context():
            analytics.aggregate(day)
            analytics.aggregate(day)  # idempotent
    for table in KEYS:
        assert as_multiset(stored_rows(site, table, day)) == before[table]
    reference = keyed_reference(events, day)
    assert before["DailyPage"] == as_multiset(reference["DailyPage"])


def test_pinned_filters_need_no_raw_events(site, events):
    """Runs last: the aggregated days' raw and archived events are deleted."""
    analytics: Analytics = site.extensions["analytics_test"]
    rng = DateRange(AGGREGATED[0], AGGREGATED[-1])
    reference = expected(events, "page", ["plan:is:pro"], rng)
    end = dt.datetime(2026, 3, 11, 23)  # local midnight of today, naive UTC
    with site.app_context(), analytics.db.engine.begin() as conn:
        for model in (analytics.Event, analytics.EventArchive):
            conn.execute(sa.delete(model.__table__).where(model.__table__.c.created_at < end))
    assert breakdown(site, "page", "plan:is:pro", rng=rng) == reference
    with pytest.raises(RawDataMissing):
        breakdown(site, "page", "plan:is:pro", raw=True, rng=rng)


# -- declarations --------------------------------------------------------------------------


def test_daily_models_are_checked_when_declared():
    def attempt(columns: dict[str, Any], mixin: type = DailyPageMixin) -> None:
        db = SQLAlchemy()
        model = type("DailyX", (mixin, db.Model), {"__module__": __name__, **columns})
        Analytics(db=db, event_model=custom_event_model(db), daily_models=[model])

    with pytest.raises(TypeError, match="groups visits"):
        attempt({"plan": sa.Column(sa.String(32))}, DailyCountryMixin)
    with pytest.raises(TypeError, match="not a custom column"):
        attempt({"referrer_host": sa.Column(sa.String(32))})
    with pytest.raises(TypeError, match="not a custom column"):
        attempt({"tier": sa.Column(sa.String(32))})
    with pytest.raises(TypeError, match="string column"):
        attempt({"plan": sa.Column(sa.Integer())})
    with pytest.raises(TypeError, match="1 to 3 columns"):
        attempt({})
    db = SQLAlchemy()
    models = keyed_models(db)
    analytics = Analytics(db=db, event_model=custom_event_model(db), daily_models=models)
    assert analytics.DailyPage is models[0]
    assert {"plan", "value_visitors", "value_entries", "value_exits"} <= set(
        analytics.DailyPage.__table__.c.keys()
    )
    assert analytics.DailyPage.value_visitors is not None  # mapped on the host's model
