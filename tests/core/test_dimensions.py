"""Custom dimensions and host aggregations: rolled up with the day, live and archived."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict

import pytest
import sqlalchemy as sa

from flask_analytics.core import dimensions

from ..conftest import custom_event_model

DAY = dt.date(2026, 1, 15)


def inserter(app):
    """Insert raw events into ``app``'s (subclassed) event table."""
    analytics = app.extensions["analytics_test"]

    def make(**values):
        row = {
            "event_id": str(uuid.uuid4()),
            "name": "pageview",
            "hostname": "example.com",
            "path": "/",
            "device_type": "desktop",
            **values,
        }
        with app.app_context(), analytics.db.engine.begin() as conn:
            conn.execute(sa.insert(analytics.Event.__table__), row)

    return make


def events_for(make_event):
    """A day of events with plans; returns the raw rows as dicts for the reference."""
    spec = [
        # visitor, minute, name, plan
        (1, 0, "pageview", "pro"), (1, 5, "signup", "pro"), (2, 1, "pageview", "free"),
        (2, 2, "pageview", "free"), (3, 3, "pageview", None), (4, 4, "pageview", "pro"),
        (4, 50, "pageview", "team"), (5, 7, "outbound", "free"),
    ]  # fmt: skip
    rows = []
    for visitor, minute, name, plan in spec:
        at = dt.datetime(2026, 1, 15, 10, minute)
        make_event(visitor_id=visitor, created_at=at, name=name, plan=plan)
        rows.append({"visitor_id": visitor, "name": name, "plan": plan})
    # Another day's event must not count.
    make_event(visitor_id=9, created_at=dt.datetime(2026, 1, 16, 10), plan="pro")
    return rows


def reference(rows):
    """Independent rollup: per plan, distinct visitors, pageviews, other events."""
    out = defaultdict(lambda: {"visitors": set(), "pageviews": 0, "events": 0})
    for r in rows:
        entry = out[r["plan"]]
        entry["visitors"].add(r["visitor_id"])
        entry["pageviews" if r["name"] == "pageview" else "events"] += 1
    return {k: (len(v["visitors"]), v["pageviews"], v["events"]) for k, v in out.items()}


def stored(app, analytics):
    table = analytics.DailyDimension.__table__
    with app.app_context(), analytics.db.engine.connect() as conn:
        result = conn.execute(
            sa.select(table.c.value, table.c.visitors, table.c.pageviews, table.c.events).where(
                table.c.date == DAY, table.c.dimension == "plan"
            )
        )
        return {value: (v, p, e) for value, v, p, e in result}


@pytest.fixture
def plan_app(make_app):
    app = make_app(event_model=custom_event_model)
    app.extensions["analytics_test"].dimension("plan", label="Plan")
    return app


def test_dimension_rollup_matches_an_independent_count(plan_app):
    analytics = plan_app.extensions["analytics_test"]
    rows = events_for(inserter(plan_app))
    with plan_app.app_context():
        result = analytics.aggregate(DAY)
    expected = reference(rows)
    assert stored(plan_app, analytics) == expected
    assert result.rows["DailyDimension"] == len(expected)
    # Idempotent.
    with plan_app.app_context():
        analytics.aggregate(DAY)
    assert stored(plan_app, analytics) == expected


def test_live_dimension_rows_equal_the_aggregated_ones(plan_app):
    analytics = plan_app.extensions["analytics_test"]
    rows = events_for(inserter(plan_app))
    with plan_app.app_context(), analytics.db.engine.connect() as conn:
        select = dimensions.dimension_selects(analytics.state(), DAY)
        live = {r.value: (r.visitors, r.pageviews, r.events) for r in conn.execute(select)}
    assert live == reference(rows)


def test_archived_day_gives_the_same_dimension_rows(plan_app):
    analytics = plan_app.extensions["analytics_test"]
    rows = events_for(inserter(plan_app))
    event, archive = analytics.Event.__table__, analytics.EventArchive.__table__
    with plan_app.app_context(), analytics.db.engine.begin() as conn:
        conn.execute(sa.insert(archive).from_select(list(event.c.keys()), sa.select(event)))
        conn.execute(sa.delete(event))
    with plan_app.app_context():
        analytics.aggregate(DAY)
    assert stored(plan_app, analytics) == reference(rows)


def test_declaring_a_builtin_or_unknown_column_fails(make_app):
    analytics = make_app(event_model=custom_event_model).extensions["analytics_test"]
    with pytest.raises(ValueError, match="not a custom column"):
        analytics.dimension("path")
    with pytest.raises(ValueError, match="not a custom column"):
        analytics.dimension("nope")
    analytics.dimension("plan")
    with pytest.raises(ValueError, match="already declared"):
        analytics.dimension("plan")


def host_models(db):
    """The host's event model plus a daily table of its own."""

    class HostDailyPlanSignup(db.Model):
        __tablename__ = "host_daily_plan_signup"
        id = db.Column(db.Integer, primary_key=True)
        date = db.Column(db.Date, nullable=False)
        plan = db.Column(db.String(16))
        signups = db.Column(db.Integer, nullable=False)

    model = custom_event_model(db)
    model.host_table = HostDailyPlanSignup.__table__
    return model


def test_host_aggregation_runs_in_the_same_transaction(make_app):
    app = make_app(event_model=host_models)
    make_event = inserter(app)
    analytics = app.extensions["analytics_test"]
    table = analytics.Event.host_table

    @analytics.daily_aggregation
    def signups_per_plan(conn, day, events):
        conn.execute(sa.delete(table).where(table.c.date == day))
        conn.execute(
            sa.insert(table).from_select(
                ["date", "plan", "signups"],
                sa.select(sa.literal(day, sa.Date()), events.c.plan, sa.func.count())
                .where(events.c.name == "signup")
                .group_by(events.c.plan),
            )
        )

    events_for(make_event)
    make_event(visitor_id=7, created_at=dt.datetime(2026, 1, 15, 11), name="signup", plan="team")
    with app.app_context():
        analytics.aggregate(DAY)
        analytics.aggregate(DAY)  # idempotent through the host's delete

        def rows():
            return sorted(
                analytics.db.session.execute(sa.select(table.c.plan, table.c.signups)).all()
            )

        assert rows() == [("pro", 1), ("team", 1)]

    # A failing host aggregation rolls the whole day back: daily rows stay as they were.
    @analytics.daily_aggregation
    def broken(conn, day, events):
        raise RuntimeError("host bug")

    make_event(visitor_id=8, created_at=dt.datetime(2026, 1, 15, 12), name="signup", plan="pro")
    with app.app_context():
        before = analytics.db.session.scalar(sa.select(analytics.DailySummary.events))
        with pytest.raises(RuntimeError, match="host bug"):
            analytics.aggregate(DAY)
        analytics.db.session.rollback()
        assert analytics.db.session.scalar(sa.select(analytics.DailySummary.events)) == before
        assert rows() == [("pro", 1), ("team", 1)]
