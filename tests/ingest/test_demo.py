"""Demo traffic: realistic, through the real pipeline, deterministic with a seed."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from flask_analytics.ingest import demo

NOW = dt.datetime(2026, 6, 10, 15, 30)


def daily_snapshot(app):
    ext = app.extensions["analytics_test"]
    out = {}
    with app.app_context(), ext.db.engine.connect() as conn:
        for name, model in ext.models.daily.items():
            table = model.__table__
            cols = [c for c in table.c if c.name != "id"]
            out[name] = sorted(
                (tuple(r) for r in conn.execute(sa.select(*cols))), key=lambda r: tuple(map(str, r))
            )
    return out


def run(app, days=3, seed=1):
    ext = app.extensions["analytics_test"]
    with app.app_context():
        result = demo.generate(ext.state(), days=days, seed=seed, now=NOW, visits_per_day=40)
        end = NOW.date()
        ext.aggregate_range(end - dt.timedelta(days=days - 1), end)
    return result


def test_demo_data_is_realistic_and_goes_through_the_pipeline(make_app):
    app = make_app(ANALYTICS_TIMEZONE="Europe/Berlin")
    ext = app.extensions["analytics_test"]
    result = run(app)
    assert result.days == 3
    # NOW is 17:30 in Berlin: the three local days end on NOW's date.
    assert (result.first_day, result.last_day) == (dt.date(2026, 6, 8), dt.date(2026, 6, 10))
    assert result.dropped["bot"] > 0  # crawlers were sent and dropped
    with app.app_context():
        s = ext.db.session
        E = ext.Event
        assert s.query(E).count() == result.events
        assert s.query(E).filter(E.created_at > NOW).count() == 0
        names = set(s.scalars(sa.select(E.name).distinct()))
        assert {"pageview", "engagement"} <= names
        channels = set(s.scalars(sa.select(E.channel).distinct()))
        assert {"Direct", "Organic Search"} <= channels
        assert len(channels) >= 5
        assert len(set(s.scalars(sa.select(E.country).distinct()))) >= 8
        assert set(s.scalars(sa.select(E.device_type).distinct())) == {
            "desktop",
            "mobile",
            "tablet",
        }
        summary = s.scalars(sa.select(ext.DailySummary)).all()
        assert len(summary) == 3
        for row in summary:
            assert 0 < row.bounces < row.sessions
            assert row.visitors <= row.sessions <= row.pageviews


def test_same_seed_gives_identical_daily_tables(make_app):
    app = make_app()
    run(app, seed=7)
    first = daily_snapshot(app)
    with pytest.raises(demo.DemoDataExists, match="seed 7 already exist"):
        run(app, seed=7)  # same event ids: nothing stored twice
    assert daily_snapshot(app) == first
    fresh = make_app()  # a new, empty database
    run(fresh, seed=7)
    assert daily_snapshot(fresh) == first
    other = make_app()
    run(other, seed=8)
    assert daily_snapshot(other) != first


def test_demo_paths_hold_no_query_string(make_app):
    app = make_app()
    ext = app.extensions["analytics_test"]
    run(app, days=1)
    table = ext.Event.__table__
    with app.app_context(), ext.db.engine.connect() as conn:
        paths = set(conn.scalars(sa.select(table.c.path).distinct()))
        routed_utm = conn.scalar(
            sa.select(sa.func.count()).where(
                table.c.path.like("%#%"), table.c.utm_source.is_not(None)
            )
        )
    assert "/app#/dashboard" in paths
    assert not [p for p in paths if "?" in p]
    assert routed_utm is not None
