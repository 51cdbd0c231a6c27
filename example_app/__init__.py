"""A small real site using flask-analytics: `python -m example_app`.

Home, blog, pricing, a signup form, outbound links, a download and a small single-page
section, all tracked by the first-party script and by server-side pageviews; signups
tracked with ``analytics.track(request=...)`` and purchases from committed ``Order``
rows with ``analytics.track_model``; a subclassed event model with a ``plan`` column
filled by an enrich hook; the dashboard at /analytics behind a password login, rendered
inside the site's own admin layout. On first run with an empty database it creates its
tables and records 90 days of demo traffic, so the dashboard has something to show.
Its own tests (``example_app/tests``) use flask-analytics' pytest plugin.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from flask_analytics import Analytics, EventMixin

db = SQLAlchemy()
migrate = Migrate()


class SiteEvent(EventMixin, db.Model):  # type: ignore[name-defined, misc]
    """The site's events: the built-in columns plus the visitor's plan and A/B variant."""

    plan = db.Column(db.String(16))
    ab_variant = db.Column(db.String(8))


class Order(db.Model):  # type: ignore[name-defined, misc]
    """The site's own orders: each committed one is a tracked purchase with its revenue."""

    __tablename__ = "example_order"
    id = db.Column(db.Integer, primary_key=True)
    plan = db.Column(db.String(16), nullable=False)
    total = db.Column(db.Numeric(10, 2), nullable=False)
    currency = db.Column(db.String(3), nullable=False)


analytics = Analytics(db=db, event_model=SiteEvent)
# A purchase for every committed order (once per row, never for a rolled-back one),
# attributed to the visit of the request that placed it.
analytics.track_model(
    Order,
    name="purchase",
    revenue=lambda order: (order.total, order.currency),
    props=lambda order: {"plan": order.plan},
)
# Plans get daily rollups, a panel on the dashboard's Events page and an API breakdown.
analytics.dimension("plan", label="Plan")
analytics.dimension("ab_variant", label="A/B variant")
# Goals and a funnel: the dashboard's Goals and Funnels pages, goal=NAME breakdowns.
analytics.goal("Signup", event="signup")
analytics.goal("Pro or team plan", event="purchase")
analytics.goal("Pricing", page="/pricing")
analytics.goal("Read the blog", page="/blog/*")
analytics.funnel("Signup flow", steps=["Pricing", "Signup", "Pro or team plan"])


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The app factory."""
    app = Flask(__name__, instance_relative_config=True)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=os.environ.get(
            "DATABASE_URL", f"sqlite:///{Path(app.instance_path) / 'example.db'}"
        ),
        SECRET_KEY=os.environ.get("SECRET_KEY") or _instance_secret(app),
        ADMIN_PASSWORD=os.environ.get("ADMIN_PASSWORD", "admin"),
        ANALYTICS_TIMEZONE=os.environ.get("ANALYTICS_TIMEZONE", "Europe/Berlin"),
        ANALYTICS_REDIS_URL=os.environ.get("ANALYTICS_REDIS_URL"),
        ANALYTICS_BASE_TEMPLATE="admin/analytics_base.html",
        ANALYTICS_CLIENT_FIELDS=["ab_variant"],
        ANALYTICS_EXCLUDED_PATHS=["/login", "/logout"],
        # Pageviews recorded by the app itself (endpoint, status, response time); the
        # tracker's first pageview of each page is the same event.
        ANALYTICS_SERVER_PAGEVIEWS=True,
        EXAMPLE_DEMO_DAYS=int(os.environ.get("EXAMPLE_DEMO_DAYS", "90")),
        # False when the schema is managed with `flask db upgrade` (Flask-Migrate).
        EXAMPLE_CREATE_TABLES=os.environ.get("EXAMPLE_CREATE_TABLES", "1") != "0",
    )
    app.config.update(config or {})
    db.init_app(app)
    migrate.init_app(app, db)
    analytics.init_app(app)

    from . import views

    app.register_blueprint(views.bp)
    views.register_analytics_hooks(analytics)
    with app.app_context():
        _first_run(app)
    return app


def _instance_secret(app: Flask) -> str:
    path = Path(app.instance_path) / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


def _first_run(app: Flask) -> None:
    """Create the tables and, when there are no events yet, record demo traffic."""
    if not app.config["EXAMPLE_CREATE_TABLES"]:
        return
    db.create_all()
    days = app.config["EXAMPLE_DEMO_DAYS"]
    if not days or db.session.scalar(sa.select(SiteEvent.id).limit(1)) is not None:
        return
    from flask_analytics.ingest import demo

    state = analytics.state()
    app.logger.warning("Empty database: recording %s days of demo traffic...", days)
    recorded = demo.generate(state, days=days, seed=1, hostname="localhost", visits_per_day=100)
    # Every finished day, from the first one recorded ("today" may have moved on since).
    yesterday = state.today() - dt.timedelta(days=1)
    if recorded.first_day <= yesterday:
        analytics.aggregate_range(recorded.first_day, yesterday)
