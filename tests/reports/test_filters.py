"""Filtered reports equal DESIGN.md's filter definition, computed independently.

Seeded traffic over six local days of Europe/Paris around a DST change, with a frozen
"today": two aggregated days partly moved to the archive, two more aggregated days, one
past day left live, and today. Every case runs around the spring change (its 23-hour
day aggregated), a few around the autumn one (its 25-hour day live). Several hostnames,
referrers and UTM tags, custom events with props, engagement events (some late enough
to open a session of their own), server-side visits without pageviews, events before a
visit's first pageview, and two custom columns (``plan``, declared as a dimension, and
``ab_variant``). For every filter of :data:`GROUPS`, each question :class:`Stats` answers
through the raw path (totals, daily totals, every breakdown, the custom one, both session
histograms, one page's days and referrers, the DST day's hours) must equal
``tests/support/filter_reference.py``'s pure-Python numbers, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_analytics import Analytics
from flask_analytics.reports import (
    BREAKDOWNS,
    Breakdown,
    DateRange,
    Stats,
    Totals,
    custom_breakdown,
    parse_filters,
)
from flask_analytics.reports.totals import SUMMARY_COUNTS
from flask_analytics.state import current_state

from ..clock import FrozenClock
from ..conftest import custom_event_model
from ..support.filter_reference import (
    FilterSpec,
    Row,
    filtered_daily,
    filtered_hourly,
    filtered_range,
    kept_sessions,
    summed,
    value_passes,
)
from ..support.reference import as_multiset, reference_daily

TIMEZONE = "Europe/Paris"
TIMEOUT = 1800


@dataclass(frozen=True)
class Period:
    """Six local days around a DST change, the last one today (frozen at ``now``)."""

    #: Today's frozen time (naive UTC).
    now: dt.datetime
    dst_day: dt.date
    #: Its length in hours (23 in spring, 25 in autumn).
    dst_hours: int
    #: The first instant of the new UTC offset (naive UTC).
    change: dt.datetime
    #: A past day left without aggregation (its sessions are cut from raw events).
    live_past: dt.date

    @property
    def today(self) -> dt.date:
        return self.now.date()

    @property
    def range(self) -> DateRange:
        return DateRange(self.today - dt.timedelta(days=5), self.today)

    @property
    def aggregated(self) -> tuple[dt.date, ...]:
        """The other past days; the first two are then (partly) moved to the archive."""
        return tuple(d for d in self.range.dates() if d not in (self.live_past, self.today))


#: 15:00 in Paris two days after the spring change (a 23-hour day, aggregated).
SPRING = Period(
    now=dt.datetime(2027, 3, 30, 13, 0),
    dst_day=dt.date(2027, 3, 28),
    dst_hours=23,
    change=dt.datetime(2027, 3, 28, 1),
    live_past=dt.date(2027, 3, 27),
)
#: The same after the autumn change (a 25-hour day, left live).
AUTUMN = Period(
    now=dt.datetime(2026, 10, 27, 13, 0),
    dst_day=dt.date(2026, 10, 25),
    dst_hours=25,
    change=dt.datetime(2026, 10, 25, 1),
    live_past=dt.date(2026, 10, 25),
)
#: The custom columns (custom_event_model) and the one declared as a dimension.
CUSTOM_COLUMNS = ("plan", "ab_variant")
DIMENSION = "plan"
#: The page whose daily numbers and referrers are checked.
DETAIL_PATH = "/pricing"

HOSTS = ("example.com", "blog.example.com", "shop.example.org")
PATHS = (
    "/",
    "/pricing",
    "/blog/launch",
    "/blog/2027/dst",
    "/Blog/caps",
    "/docs/install",
    "/about",
    "/a|b",
    "/q/100%_off",
    "/search?q=[x]",
)
SOURCES: tuple[dict[str, Any], ...] = (
    {"channel": "Direct", "source": None, "referrer_host": None},
    {"channel": "Organic Search", "source": "Google", "referrer_host": "google.com"},
    {"channel": "Organic Search", "source": "DuckDuckGo", "referrer_host": "duckduckgo.com"},
    {"channel": "Organic Social", "source": "Hacker News", "referrer_host": "news.ycombinator.com"},
    {"channel": "Referral", "source": "github.com", "referrer_host": "github.com"},
    {
        "channel": "Email",
        "source": "newsletter",
        "referrer_host": None,
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "spring|summer",
    },
    {
        "channel": "Paid Search",
        "source": "Google",
        "referrer_host": "google.com",
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_campaign": "brand",
        "utm_term": "analytics",
        "utm_content": "ad_1",
    },
    {
        "channel": "Paid Search",
        "source": "Bing",
        "referrer_host": "bing.com",
        "utm_source": "bing",
        "utm_medium": "cpc",
        "utm_campaign": "brand",
        "utm_content": "ad_2",
    },
)
DEVICES = (
    ("desktop", "Chrome", "Windows"),
    ("desktop", "Firefox", "Linux"),
    ("mobile", "Safari", "iOS"),
    ("mobile", "Chrome", "Android"),
    ("tablet", "Safari", "iPadOS"),
    (None, None, None),
)
COUNTRIES = ("FR", "FR", "US", "DE", "GB", None)
#: Audience columns: versions per browser and OS, languages, (region, city) per country,
#: screen classes. Drawn from a generator of their own (see :func:`audience`).
VERSIONS = {"Chrome": ("131", "130", "99"), "Firefox": ("133", "115"), "Safari": ("17", "18")}
OS_VERSIONS = {"Windows": ("10", "11"), "iOS": ("17", "18"), "Android": ("14", None)}
LANGUAGES = ("en", "en", "fr", "de", None)
PLACES = {
    "FR": (("FR-IDF", "Paris"), ("FR-ARA", "Lyon"), (None, None)),
    "US": (("US-CA", "San Francisco"), ("US-NY", "New York")),
    "DE": (("DE-BE", "Berlin"),),
    "GB": (("GB-ENG", "Paris"),),  # a city name found in two countries
}
SCREENS = ("mobile", "tablet", "laptop", "desktop", None)
PLANS = ("free", "pro", "team")


# -- the data set ------------------------------------------------------------------------------


def event_row(created_at: dt.datetime, visitor: int, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "created_at": created_at,
        "name": "pageview",
        "hostname": "example.com",
        "path": "/",
        "referrer": None,
        "referrer_host": None,
        "channel": "Direct",
        "source": None,
        "utm_source": None,
        "utm_medium": None,
        "utm_campaign": None,
        "utm_term": None,
        "utm_content": None,
        "device_type": None,
        "browser": None,
        "os": None,
        "country": None,
        "browser_version": None,
        "os_version": None,
        "language": None,
        "region": None,
        "city": None,
        "screen": None,
        "visitor_id": visitor,
        "engagement_ms": None,
        "screen_width": None,
        "scroll_depth": None,
        "props": None,
        "plan": None,
        "ab_variant": None,
    }
    row.update(fields)
    return row


def custom_event(rnd: random.Random) -> dict[str, Any]:
    name = rnd.choice(("signup", "signup", "outbound", "download", "Signup"))
    if name == "signup":
        plan = rnd.choice(PLANS)
        return {"name": name, "props": {"plan": plan}, "plan": plan}
    if name == "outbound":
        return {"name": name, "props": {"url": "https://github.com/x", "note": "a:b|c"}}
    return {"name": name, "props": None if rnd.random() < 0.5 else {"plan": "pro"}}


def audience(
    rnd: random.Random, browser: str | None, os_name: str | None, country: str | None
) -> dict[str, Any]:
    """A visit's browser and OS versions, language, region, city and screen class (a
    generator of their own leaves the other columns as they were drawn before)."""
    region, city = rnd.choice(PLACES.get(country or "", ((None, None),)))
    return {
        "browser_version": rnd.choice(VERSIONS.get(browser or "", (None,))),
        "os_version": rnd.choice(OS_VERSIONS.get(os_name or "", (None,))),
        "language": rnd.choice(LANGUAGES),
        "region": region,
        "city": city,
        "screen": rnd.choice(SCREENS),
    }


def visit(rnd: random.Random, start: dt.datetime) -> list[dict[str, Any]]:
    """One visitor's visit: pageviews, engagement and custom events, at ``start``."""
    visitor = rnd.randrange(1, 90)
    host = rnd.choice(HOSTS)
    landing = rnd.choice(SOURCES)
    device, browser, os_name = rnd.choice(DEVICES)
    country = rnd.choice(COUNTRIES)
    same = {
        "device_type": device,
        "browser": browser,
        "os": os_name,
        "country": country,
        "ab_variant": rnd.choice(("A", "B", None)),
        **audience(random.Random(f"{visitor}:{start.isoformat()}"), browser, os_name, country),
    }
    moment = start + dt.timedelta(microseconds=rnd.randrange(1_000_000))
    rows = []
    if rnd.random() < 0.08:
        # A server-side visit: tracked events only, no pageview.
        for _ in range(rnd.choice((1, 2))):
            rows.append(event_row(moment, visitor, hostname=host, **same, **custom_event(rnd)))
            moment += dt.timedelta(seconds=rnd.randrange(1, 300))
        return rows
    if rnd.random() < 0.1:
        # An event before the first pageview, with other attributes than the landing's.
        rows.append(
            event_row(moment, visitor, name="web_vitals", hostname=rnd.choice(HOSTS), path="/")
        )
        moment += dt.timedelta(seconds=rnd.randrange(0, 20))
    for view in range(rnd.choice((1, 1, 2, 3, 4, 6, 11))):
        path = rnd.choice(PATHS)
        attribution = (
            landing
            if view == 0
            else {"channel": "Direct", "referrer_host": rnd.choice((host, None))}
        )
        common = {**same, "path": path, "hostname": host if rnd.random() > 0.1 else HOSTS[0]}
        plan = rnd.choice((None, None, "pro", "free"))
        rows.append(event_row(moment, visitor, **common, **attribution, plan=plan))
        gap = rnd.choice((rnd.randrange(1, 240), rnd.randrange(1, 240), TIMEOUT, TIMEOUT + 1))
        if rnd.random() < 0.4:
            late = rnd.random() < 0.1
            at = moment + dt.timedelta(seconds=TIMEOUT + 5 if late else rnd.randrange(1, gap + 1))
            rows.append(
                event_row(
                    at,
                    visitor,
                    **common,
                    name="engagement",
                    engagement_ms=rnd.randrange(500, 90_000),
                )
            )
        if rnd.random() < 0.2:
            at = moment + dt.timedelta(seconds=rnd.randrange(0, 5))
            rows.append(event_row(at, visitor, **common, **custom_event(rnd)))
        moment += dt.timedelta(seconds=gap, microseconds=rnd.randrange(1_000_000))
    return rows


def generate(seed: int, visits: int, period: Period) -> list[dict[str, Any]]:
    """``visits`` visits spread over the period's UTC span, none after now."""
    rnd = random.Random(seed)
    start = local_midnight(period.range.start)
    span = int((period.now - start).total_seconds())
    rows = []
    for _ in range(visits):
        rows += visit(rnd, start + dt.timedelta(seconds=rnd.randrange(span)))
    # Visits across the DST change, in the DST day's last hour and across midnight.
    rows += visit(rnd, period.change - dt.timedelta(minutes=10))
    rows += visit(
        rnd, local_midnight(period.dst_day + dt.timedelta(days=1)) - dt.timedelta(minutes=40)
    )
    rows += visit(rnd, local_midnight(period.live_past) - dt.timedelta(minutes=3))
    return [r for r in rows if r["created_at"] < period.now]


def local_midnight(day: dt.date) -> dt.datetime:
    """Naive UTC of local midnight starting ``day`` (computed here with zoneinfo)."""
    aware = dt.datetime.combine(day, dt.time.min, tzinfo=ZoneInfo(TIMEZONE))
    return aware.astimezone(dt.timezone.utc).replace(tzinfo=None)


def seed_data(
    app: Flask, analytics: Analytics, frozen_clock: FrozenClock, period: Period, visits: int
) -> list[dict[str, Any]]:
    """Insert, aggregate, archive; the stored events of both tables, read back."""
    frozen_clock.move_to(period.now.replace(tzinfo=dt.timezone.utc))
    aggregated = period.aggregated
    event: sa.Table = analytics.Event.__table__
    archive: sa.Table = analytics.EventArchive.__table__
    with app.app_context():
        with analytics.db.engine.begin() as conn:
            conn.execute(sa.insert(event), generate(15, visits, period))
        for day in aggregated:
            analytics.aggregate(day)
        # The first aggregated day goes to the archive whole, the second a third of it.
        moved = sa.or_(
            event.c.created_at < local_midnight(aggregated[1]),
            sa.and_(event.c.created_at < local_midnight(period.live_past), event.c.id % 3 == 0),
        )
        with analytics.db.engine.begin() as conn:
            conn.execute(
                sa.insert(archive).from_select(list(event.c.keys()), sa.select(event).where(moved))
            )
            conn.execute(sa.delete(event).where(moved))
        with analytics.db.engine.connect() as conn:
            rows = [
                dict(r) for t in (event, archive) for r in conn.execute(sa.select(t)).mappings()
            ]
    assert any(r["created_at"] < local_midnight(aggregated[1]) for r in rows)
    return rows


# -- the filters ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """Filters as plain tuples, and what the reference must show for them to mean anything."""

    filters: tuple[FilterSpec, ...]
    #: The filtered numbers differ from the unfiltered ones.
    narrows: bool = True


def f(dimension: str, op: str, *values: str) -> FilterSpec:
    return (dimension, op, values)


SOURCE_CASES: dict[str, Case] = {
    "source is": Case((f("source", "is", "Google"),)),
    "source is (none)": Case((f("source", "is", "(none)"),)),
    "country is_not keeps NULL": Case((f("country", "is_not", "FR"),)),
    "country is_not (none)": Case((f("country", "is_not", "FR", "(none)"),)),
    "country is (none) or DE": Case((f("country", "is", "(none)", "DE"),)),
    "channel contains": Case((f("channel", "contains", "Search"),)),
    "entry_page matches": Case((f("entry_page", "matches", "/blog/*"),)),
    "exit_page is": Case((f("exit_page", "is", "/pricing", "/about"),)),
    "hostname is": Case((f("hostname", "is", "blog.example.com"),)),
    "referrer is": Case((f("referrer", "is", "news.ycombinator.com", "github.com"),)),
}
UTM_AND_DEVICE_CASES: dict[str, Case] = {
    "utm_campaign with a pipe": Case((f("utm_campaign", "is", "spring|summer"),)),
    "utm_medium is_not": Case((f("utm_medium", "is_not", "cpc"),)),
    "utm_source contains": Case((f("utm_source", "contains", "oo", "in"),)),
    "utm_term and utm_content": Case(
        (f("utm_term", "is", "analytics"), f("utm_content", "matches", "ad_*"))
    ),
    "device_type is": Case((f("device_type", "is", "mobile", "tablet"),)),
    "browser is_not": Case((f("browser", "is_not", "Chrome"),)),
    "os matches": Case((f("os", "matches", "*OS"),)),
    "browser and its version": Case(
        (f("browser", "is", "Chrome"), f("browser_version", "is", "131", "130"))
    ),
    "os_version is_not": Case((f("os_version", "is_not", "10", "(none)"),)),
    "language is": Case((f("language", "is", "fr", "de"),)),
    "region matches": Case((f("region", "matches", "FR-*"),)),
    "city is": Case((f("city", "is", "Paris"),)),
    "screen is_not and page": Case(
        (f("screen", "is_not", "mobile"), f("page", "matches", "/blog/*"))
    ),
}
EVENT_CASES: dict[str, Case] = {
    "page is": Case((f("page", "is", "/pricing"),)),
    "page matches": Case((f("page", "matches", "/blog/*"),)),
    "page is, with a pipe": Case((f("page", "is", "/a|b"),)),
    "page contains % and _": Case((f("page", "contains", "%_"),)),
    "event is": Case((f("event", "is", "signup"),)),
    "event is_not": Case((f("event", "is_not", "pageview", "engagement"),)),
    "prop is": Case((f("prop:plan", "is", "pro"),)),
    "prop is_not keeps NULL": Case((f("prop:plan", "is_not", "pro"),)),
    "prop is (none)": Case((f("prop:plan", "is", "(none)"),)),
    "prop contains": Case((f("prop:note", "contains", "b|c"),)),
    "custom column is": Case((f("plan", "is", "pro"),)),
    "custom column is_not": Case((f("ab_variant", "is_not", "A"),)),
}
COMBINED_CASES: dict[str, Case] = {
    "none": Case((), narrows=False),
    "source and page": Case((f("source", "is", "Google"), f("page", "matches", "/blog/*"))),
    "country, event and prop": Case(
        (
            f("country", "is_not", "(none)"),
            f("event", "is", "signup"),
            f("prop:plan", "is", "pro", "team"),
        )
    ),
    "device, channel and page": Case(
        (
            f("device_type", "is", "desktop"),
            f("channel", "contains", "Organic"),
            f("page", "is_not", "/"),
        )
    ),
    "entry, exit and hostname": Case(
        (
            f("entry_page", "is", "/"),
            f("exit_page", "is_not", "/"),
            f("hostname", "matches", "*example.com"),
        )
    ),
    "custom column and page": Case((f("ab_variant", "is", "B"), f("page", "contains", "blog"))),
    "referrer and page, brackets": Case(
        (f("referrer", "is_not", "(none)"), f("page", "matches", "/search?q=[*]", "/a|*"))
    ),
}


def param(spec: FilterSpec) -> str:
    """The ``filter`` parameter of a spec, escaped by DESIGN.md's rule."""
    dimension, op, values = spec
    value = "|".join(v.replace("\\", "\\\\").replace("|", "\\|") for v in values)
    return f"{dimension}:{op}:{value}"


# -- comparing ----------------------------------------------------------------------------------


def expected_rows(breakdown: Breakdown, rows: dict[str, list[Row]]) -> dict[Any, dict[str, int]]:
    """A breakdown's rows by key (with its parent's value first when it has one), as the
    definition gives them (after its row filters)."""
    keys = (breakdown.key, *((breakdown.parent,) if breakdown.parent else ()))
    sums = summed(rows[breakdown.table], keys, breakdown.counts, dict(breakdown.where))
    return {
        ((key[1], key[0]) if breakdown.parent else key[0]): counts
        for key, counts in sums.items()
        if not (breakdown.skip_null and key[0] is None)
        and (breakdown.positive is None or counts[breakdown.positive] > 0)
    }


def totals_of(rows: list[Row], keys: Sequence[str] = ()) -> dict[tuple[Any, ...], Totals]:
    return {k: Totals(**c) for k, c in summed(rows, keys, SUMMARY_COUNTS).items()}


class Comparison:
    """Every question of one case: mismatches are collected, so a failure names them all."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.mismatches: list[str] = []
        self.nonempty = 0

    def equal(self, question: str, got: Any, expected: Any) -> None:
        if expected:
            self.nonempty += 1
        if got == expected:
            return
        if isinstance(got, dict) and isinstance(expected, dict):
            # Only the keys that differ: (expected, got).
            keys = sorted(
                {*got, *expected} - {k for k in got if got[k] == expected.get(k)}, key=repr
            )
            expected, got = {k: expected.get(k) for k in keys}, {k: got.get(k) for k in keys}
        self.mismatches.append(f"{self.name}: {question}: expected {expected!r}, got {got!r}")


def compare_case(
    stats: Stats,
    events: list[dict[str, Any]],
    case: Case,
    comparison: Comparison,
    period: Period,
    rows: dict[str, list[Row]],
) -> None:
    """Every question of ``case`` against ``rows``, the reference's virtual daily tables."""
    rng, dst_day = period.range, period.dst_day
    summary = rows["DailySummary"]
    expected_total = totals_of(summary).get((), Totals())
    comparison.equal("totals", stats.totals(rng), expected_total)
    daily = totals_of(summary, ("date",))
    comparison.equal(
        "daily_totals",
        stats.daily_totals(rng),
        {day: daily.get((day,), Totals()) for day in rng.dates()},
    )
    around = DateRange(dst_day, dst_day + dt.timedelta(days=1))
    comparison.equal(
        "totals from the DST day",
        stats.totals(around),
        sum((daily.get((d,), Totals()) for d in around.dates()), Totals()),
    )
    for breakdown in (*BREAKDOWNS.values(), custom_breakdown(DIMENSION)):
        got = stats.breakdown(breakdown, rng, limit=1000)
        by_key = {((r.parent, r.key) if breakdown.parent else r.key): r.counts for r in got}
        comparison.equal(f"breakdown {breakdown.name}", by_key, expected_rows(breakdown, rows))
        order = [row.counts[breakdown.sort] for row in got]
        if len(got) != len(by_key) or order != sorted(order, reverse=True):
            comparison.mismatches.append(f"{comparison.name}: {breakdown.name}: rows {got!r}")
    counts = ("sessions", "total_duration_s", "pageviews")
    for bucket in ("duration_bucket", "pages_bucket"):
        comparison.equal(
            f"sessions_histogram {bucket}",
            {row.key: row.counts for row in stats.sessions_histogram(rng, bucket)},
            {k[0]: c for k, c in summed(rows["DailySession"], (bucket,), counts).items()},
        )
    page_days = summed(
        rows["DailyPage"], ("date",), ("visitors", "pageviews"), {"path": DETAIL_PATH}
    )
    comparison.equal(
        f"page_daily {DETAIL_PATH}",
        stats.page_daily(rng, DETAIL_PATH),
        {day: Totals(**page_days.get((day,), {})) for day in rng.dates()},
    )
    referrers = summed(
        rows["DailyPageReferrer"],
        ("referrer_host",),
        ("visitors", "pageviews"),
        {"path": DETAIL_PATH},
    )
    comparison.equal(
        f"page_referrers {DETAIL_PATH}",
        {row.key: row.counts for row in stats.page_referrers(rng, DETAIL_PATH, limit=1000)},
        {k[0]: c for k, c in referrers.items()},
    )
    hours = filtered_hourly(events, dst_day, TIMEZONE, TIMEOUT, case.filters)
    comparison.equal(
        f"hourly {dst_day}",
        [(h.start, h.visitors, h.pageviews) for h in stats.hourly(dst_day)],
        hours,
    )


# -- the tests -----------------------------------------------------------------------------------


@pytest.fixture
def custom_app(make_app: Callable[..., Flask]) -> Flask:
    app = make_app(event_model=custom_event_model, ANALYTICS_TIMEZONE=TIMEZONE)
    app.extensions["analytics_test"].dimension(DIMENSION, label="Plan")
    return app


#: A few cases on the autumn period (its 25-hour day, its hours).
AUTUMN_CASES: dict[str, Case] = {
    "none": Case((), narrows=False),
    "source is, with (none)": Case((f("source", "is", "(none)", "Google"),)),
    "page matches": Case((f("page", "matches", "/blog/*", "/a|*"),)),
    "country is_not and event is_not": Case(
        (f("country", "is_not", "FR"), f("event", "is_not", "engagement"))
    ),
}
#: The cases in groups, each group checked on one seeded data set per database.
GROUPS: dict[str, tuple[Period, dict[str, Case]]] = {
    "sources": (SPRING, SOURCE_CASES),
    "utm and devices": (SPRING, UTM_AND_DEVICE_CASES),
    "events": (SPRING, EVENT_CASES),
    "combined": (SPRING, COMBINED_CASES),
    "autumn": (AUTUMN, AUTUMN_CASES),
}


@pytest.mark.parametrize("group", list(GROUPS))
def test_filtered_answers_equal_the_definition(
    custom_app: Flask, frozen_clock: FrozenClock, group: str
) -> None:
    period, cases = GROUPS[group]
    rng = period.range
    analytics: Analytics = custom_app.extensions["analytics_test"]
    events = seed_data(
        custom_app, analytics, frozen_clock, period, 220 if period is SPRING else 120
    )
    unfiltered = filtered_range(events, rng.dates(), TIMEZONE, TIMEOUT, ())
    unfiltered_totals = totals_of(unfiltered["DailySummary"])[()]
    assert len(filtered_hourly(events, period.dst_day, TIMEZONE, TIMEOUT, ())) == period.dst_hours
    state = current_state(custom_app)
    mismatches: list[str] = []
    with custom_app.app_context(), state.engine().connect() as conn:
        for name, case in cases.items():
            filters = parse_filters([param(s) for s in case.filters], CUSTOM_COLUMNS)
            assert [(x.dimension, x.op, x.values) for x in filters] == list(case.filters), name
            reference = filtered_range(
                events, rng.dates(), TIMEZONE, TIMEOUT, case.filters, (DIMENSION,)
            )
            got = totals_of(reference["DailySummary"]).get((), Totals())
            assert got.sessions > 0, name
            assert got.pageviews + got.events > 0, name
            assert (got != unfiltered_totals) == case.narrows, name
            comparison = Comparison(name)
            stats = Stats(state, conn, filters=filters, raw=True)
            compare_case(stats, events, case, comparison, period, reference)
            assert comparison.nonempty >= 15, (name, comparison.nonempty)
            mismatches += comparison.mismatches
            if not case.filters:
                # The rollups (aggregated, archived, live days) give the same numbers.
                rollups = Comparison(f"{name}, rollups")
                compare_case(Stats(state, conn), events, case, rollups, period, reference)
                mismatches += rollups.mismatches
    assert not mismatches, "\n".join(mismatches[:40])


# -- the reference on its own --------------------------------------------------------------------


def test_the_reference_without_filters_equals_the_daily_reference() -> None:
    events = [dict(r, id=i) for i, r in enumerate(generate(3, 120, SPRING))]
    for day in SPRING.range.dates():
        filtered = filtered_daily(events, day, TIMEZONE, TIMEOUT, ())
        daily = reference_daily(events, day, TIMEZONE, TIMEOUT)
        for table, rows in daily.items():
            assert as_multiset(filtered[table]) == as_multiset(rows), (day, table)


def test_reference_matching() -> None:
    assert value_passes("is", ("FR", "DE"), "DE")
    assert not value_passes("is", ("FR",), "fr")
    assert not value_passes("is", ("FR",), None)
    assert value_passes("is", ("(none)",), None)
    assert value_passes("is_not", ("FR",), None)
    assert not value_passes("is_not", ("FR", "(none)"), None)
    assert value_passes("contains", ("oo",), "Google")
    assert not value_passes("contains", ("oo",), None)
    assert value_passes("matches", ("/blog/*",), "/blog/")
    assert value_passes("matches", ("*a*b*",), "xaxxbx")
    assert not value_passes("matches", ("*a*b",), "xbxa")
    assert not value_passes("matches", ("/blog/*",), "/Blog/x")
    assert not value_passes("matches", ("/b?g",), "/bag")
    assert value_passes("matches", ("/b?g",), "/b?g")
    assert not value_passes("matches", ("ab*ba",), "aba")


def test_reference_sessions_take_the_landing_pageview() -> None:
    at = dt.datetime(2027, 3, 25, 10)
    events = [
        dict(event_row(at, 1, name="web_vitals", country="US"), id=1),
        dict(event_row(at + dt.timedelta(seconds=5), 1, country="FR", path="/x"), id=2),
        dict(event_row(at + dt.timedelta(seconds=9), 1, name="signup", path="/x"), id=3),
    ]
    [(session, kept)] = kept_sessions(events, TIMEOUT, [f("country", "is", "FR")])
    assert kept == events
    assert kept_sessions(events, TIMEOUT, [f("country", "is", "US")]) == []
    [(_, kept)] = kept_sessions(events, TIMEOUT, [f("event", "is", "signup")])
    assert [e["id"] for e in kept] == [3]
    assert session.landing["id"] == 2
