"""Page experience after archive and purge, on SQLite and PostgreSQL: aggregated days are
read from ``analytics_daily_page_experience``, so an unfiltered range keeps every number
(against the plain-Python reference of the events as generated) once their raw events
are archived and purged; filtered ranges, which read raw events, are refused there. A
day aggregated before the table existed (no rows) is computed from its raw events, and
refused once they are gone. Today is read from a recent run's rows."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
import time_machine

from flask_analytics.core.clock import day_bounds
from flask_analytics.reports import DateRange, RawDataMissing
from flask_analytics.state import current_state

from ..support.experience import ask, check, reference, seed_site, stored_rows
from ..support.seeded_stats import TIMEOUT, TIMEZONE, insert, make_row

NOW = dt.datetime(2026, 10, 27, 9, 30, tzinfo=dt.timezone.utc)
TODAY = dt.date(2026, 10, 27)
#: Thursday to Tuesday; Sunday (DAYS[3]) is Paris's 25-hour DST day.
DAYS = [TODAY - dt.timedelta(days=n) for n in range(5, -1, -1)]
#: Archived and then purged (older than 2 days): Thursday to Saturday.
PURGED_DAYS = DAYS[:3]
#: An old day with a summary row and nothing else (no events, no page-experience rows).
OLD = TODAY - dt.timedelta(days=40)
SESSION_FILTER = (("source:is:Google",), (("source", "is", ("Google",)),))


def test_numbers_survive_archive_and_purge(make_app):
    app = make_app(ANALYTICS_TIMEZONE=TIMEZONE)
    analytics = app.extensions["analytics_test"]
    events = seed_site(app, DAYS, DAYS[:4], OLD, seed=61)
    tz = current_state(app).settings.timezone
    every = DateRange(DAYS[0], TODAY)
    expected = reference(events, DAYS, tz, TIMEOUT)
    before = ask(app, NOW, every, limit=None)
    check(before, expected)
    with time_machine.travel(NOW, tick=False), app.app_context():
        archived = analytics.archive(older_than_days=2)
        assert archived.moved == sum(1 for e in events if e["created_at"] < _start(app, DAYS[3]))
        assert ask(app, NOW, every, limit=None) == before
        assert analytics.purge(older_than_days=2).deleted == archived.moved
    assert ask(app, NOW, every, limit=None) == before
    assert ask(app, NOW, DateRange(DAYS[0], DAYS[2]), limit=None).site.visitors > 20

    # Filtered questions read raw events: refused where they are gone, answered after.
    given, spec = SESSION_FILTER
    with pytest.raises(RawDataMissing, match="Page experience reports read raw events"):
        ask(app, NOW, every, given)
    kept = DateRange(DAYS[3], TODAY)
    check(ask(app, NOW, kept, given, limit=None), reference(events, DAYS[3:], tz, TIMEOUT, spec))

    # Sunday as if aggregated before the table existed: computed from its raw events.
    _drop_rows(app, DAYS[3])
    assert ask(app, NOW, every, limit=None) == before
    # Such a day whose raw events are gone cannot be answered.
    _drop_rows(app, DAYS[1])
    with pytest.raises(RawDataMissing, match="Page experience reports read raw events"):
        ask(app, NOW, every)
    with pytest.raises(RawDataMissing):
        ask(app, NOW, DateRange(OLD, OLD))
    check(
        ask(app, NOW, DateRange(DAYS[2], TODAY), limit=None),
        reference(events, DAYS[2:], tz, TIMEOUT),
    )

    # Today, while a run of it started in the last 30 minutes, is read from that run's
    # rows, as every panel reads it: an event stored since shows after the next run.
    recent = DateRange(DAYS[4], TODAY)
    want = ask(app, NOW, recent, limit=None)
    with time_machine.travel(NOW, tick=False), app.app_context():
        analytics.aggregate(TODAY)
        assert stored_rows(app, TODAY) != {}
        late = make_row(
            NOW.replace(tzinfo=None), 9, name="web_vitals", props={"lcp": 1}, path="/late"
        )
        insert(analytics, [late])
    assert ask(app, NOW, recent, limit=None) == want
    assert "/late" in {r.path for r in ask(app, NOW, recent, limit=None, raw=True).rows}
    with time_machine.travel(NOW, tick=False), app.app_context():
        analytics.aggregate(TODAY)
    assert "/late" in {r.path for r in ask(app, NOW, recent, limit=None).rows}


def _start(app, day: dt.date) -> dt.datetime:
    return day_bounds(current_state(app).settings.timezone, day)[0]


def _drop_rows(app, day: dt.date) -> None:
    table = current_state(app).models.DailyPageExperience.__table__
    with app.app_context(), current_state(app).engine().begin() as conn:
        conn.execute(sa.delete(table).where(table.c.date == day))
    assert stored_rows(app, day) == {}
