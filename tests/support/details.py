"""A dashboard whose lists are longer than their panels: the seeded data set plus today's
visits from many sources, countries, browsers, systems and UTM sources.

Shared by the dashboard details tests (flags, CSV numbers, headers, per-panel "Show
more") and their browser test.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa
from flask import Flask

from flask_analytics import Analytics
from flask_analytics.web.dashboard.format import FLAG_CODES

from .seeded_stats import Seeded, insert, make_row, seed

#: The frozen instant of the tests: a Wednesday afternoon in Paris.
NOW = dt.datetime(2026, 11, 18, 14, 0, tzinfo=dt.timezone.utc)
#: Visitors of the wide rows, each from its own source, country and so on.
WIDE = 60
#: Countries of the wide rows: more than the Locations page's 50 rows.
WIDE_COUNTRIES = sorted(code.upper() for code in FLAG_CODES)[:WIDE]


def seed_details(app: Flask) -> Seeded:
    """Seed ``app`` (time frozen at :data:`NOW` by the caller) and open its dashboard."""
    analytics: Analytics = app.extensions["analytics_test"]
    analytics.dashboard_access(lambda: True)
    seeded = seed(app, analytics, visitors=20, past_days=3)
    start = NOW.replace(tzinfo=None) - dt.timedelta(hours=3)
    wide = [
        make_row(
            start + dt.timedelta(seconds=20 * i),
            50_000 + i,
            path="/pricing",
            country=WIDE_COUNTRIES[i],
            channel="Referral",
            source=f"Site {i:02d}",
            referrer_host=f"site{i:02d}.example",
            browser=f"Browser {i % 14:02d}",
            os=f"System {i % 13:02d}",
            utm_source=f"src{i % 12:02d}",
            utm_medium="cpc",
            utm_campaign=f"c{i % 3}",
        )
        for i in range(WIDE)
    ]
    with app.app_context():
        insert(analytics, wide)
        with analytics.db.engine.connect() as conn:
            table = analytics.Event.__table__
            stored = [dict(r) for r in conn.execute(sa.select(table)).mappings()]
    return dataclasses.replace(seeded, events=stored)
