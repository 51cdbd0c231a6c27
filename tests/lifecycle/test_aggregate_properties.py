"""Property test: every daily table equals tests/support/reference.py on random event sets."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_analytics.core.rollups import daily_selects
from flask_analytics.lifecycle.aggregate import aggregate_day

from ..support.events import raw_event
from ..support.reference import as_multiset, local_date, reference_daily

TIMEZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata")
#: Days whose neighbourhood holds a DST change in Berlin or New York, and a plain one.
FIRST_DAYS = (dt.date(2026, 3, 7), dt.date(2026, 3, 28), dt.date(2026, 10, 31), dt.date(2026, 6, 1))
TIMEOUTS = (60, 1800)
DAYS = 2

NAMES = ("pageview", "pageview", "pageview", "engagement", "signup", "outbound", "web_vitals")
PATHS = ("/", "/a", "/b/c")
REFERRER_HOSTS = (None, "google.com", "news.ycombinator.com")
SOURCES = (
    ("Direct", None),
    ("Organic Search", "Google"),
    ("Referral", "example.org"),
    (None, None),
)
UTMS = (
    (None, None, None, None, None),
    ("newsletter", "email", "spring", None, None),
    ("google", "cpc", "brand", "shoes", "ad-1"),
)
DEVICES = (("desktop", "Chrome", "Windows"), ("mobile", "Safari", "iOS"), ("other", None, None))
COUNTRIES = (None, "DE", "US")
ENGAGEMENT = (None, 0, 1500, 60_000)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """A time zone, a session timeout and a few visitors' events over a few local days."""
    tz = ZoneInfo(draw(st.sampled_from(TIMEZONES)))
    timeout = draw(st.sampled_from(TIMEOUTS))
    first_day = draw(st.sampled_from(FIRST_DAYS))
    midnight = dt.datetime.combine(first_day, dt.time(0), tzinfo=tz)
    span = int((dt.datetime.combine(first_day + dt.timedelta(DAYS), dt.time(0), tzinfo=tz)
                - midnight).total_seconds())  # fmt: skip
    # Gaps straddle the timeout (whole-second edges included) and local midnight.
    gaps = st.one_of(
        st.sampled_from((0, 1, timeout - 1, timeout, timeout + 1, 3 * 3600)),
        st.integers(0, 2 * timeout),
    )
    visitors = draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=5, unique=True))
    rows = []
    for visitor in visitors:
        t = midnight.astimezone(dt.timezone.utc).replace(tzinfo=None)
        t += dt.timedelta(seconds=draw(st.integers(-3600, span)))
        for _ in range(draw(st.integers(1, 8))):
            t += dt.timedelta(seconds=draw(gaps))
            name = draw(st.sampled_from(NAMES))
            channel, source = draw(st.sampled_from(SOURCES))
            utm = draw(st.sampled_from(UTMS))
            device_type, browser, os_name = draw(st.sampled_from(DEVICES))
            rows.append(
                raw_event(
                    t + dt.timedelta(microseconds=draw(st.sampled_from((0, 1, 500_000, 999_999)))),
                    visitor,
                    name=name,
                    path=draw(st.sampled_from(PATHS)),
                    referrer_host=draw(st.sampled_from(REFERRER_HOSTS)),
                    channel=channel,
                    source=source,
                    utm_source=utm[0],
                    utm_medium=utm[1],
                    utm_campaign=utm[2],
                    utm_term=utm[3],
                    utm_content=utm[4],
                    device_type=device_type,
                    browser=browser,
                    os=os_name,
                    country=draw(st.sampled_from(COUNTRIES)),
                    engagement_ms=draw(st.sampled_from(ENGAGEMENT)),
                    event_id=str(uuid.uuid4()),
                )
            )
    # Ids in random order relative to time: ties on created_at are broken by id.
    ids = draw(st.permutations(range(1, len(rows) + 1)))
    archived = draw(st.lists(st.booleans(), min_size=len(rows), max_size=len(rows)))
    for row, id_, in_archive in zip(rows, ids, archived, strict=True):
        row["id"] = id_
        row["archived"] = in_archive
    days = [first_day + dt.timedelta(days=i) for i in range(-1, DAYS + 1)]
    return {"tz": tz, "timeout": timeout, "rows": rows, "days": days}


def reset(analytics: Any) -> None:
    state = analytics.state()
    tables = [state.models.Event, state.models.EventArchive, state.models.AggregationRun]
    with analytics.db.engine.begin() as conn:
        for model in [*tables, *state.models.daily.values()]:
            conn.execute(sa.delete(model.__table__))


@pytest.mark.slow
@settings(
    # 6 random scenarios per database per run (each several days, both tables, random
    # time zone and timeout): 25 took 50 s of the suite's 8 minutes; CI runs it every
    # change, so the examples add up across runs.
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_daily_tables_match_the_reference(app, analytics, scenario):
    state = copy.copy(analytics.state(app))
    state.settings = dataclasses.replace(
        state.settings, timezone=scenario["tz"], session_timeout=scenario["timeout"]
    )
    rows = scenario["rows"]
    with app.app_context():
        reset(analytics)
        with analytics.db.engine.begin() as conn:
            for archived in (False, True):
                part = [
                    {k: v for k, v in r.items() if k != "archived"}
                    for r in rows
                    if r["archived"] is archived
                ]
                model = analytics.EventArchive if archived else analytics.Event
                if part:
                    conn.execute(sa.insert(model.__table__), part)
        for day in scenario["days"]:
            expected = reference_daily(rows, day, scenario["tz"], scenario["timeout"])
            with analytics.db.engine.connect() as conn:
                live = {
                    name: conn.execute(select).mappings().all()
                    for name, select in daily_selects(state, day).items()
                }
            result = aggregate_day(state, day)
            assert result.source_events == sum(
                1 for r in rows if local_date(r["created_at"], scenario["tz"]) == day
            )
            with analytics.db.engine.connect() as conn:
                for name, model in state.models.daily.items():
                    table = model.__table__
                    stored = (
                        conn.execute(sa.select(table).where(table.c.date == day)).mappings().all()
                    )
                    want = as_multiset(expected[name])
                    assert as_multiset(stored) == want, (name, day)
                    assert as_multiset(live[name]) == want, (name, day)
                    assert result.rows[name] == len(expected[name])
