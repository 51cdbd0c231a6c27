"""The example site: pages, login-protected dashboard, server-side signup with a plan."""

from __future__ import annotations

import html
import json
import re
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa

from .conftest import DESKTOP_UA
from .support.collect import answer


@pytest.fixture
def site(database_url, tmp_path):
    from example_app import analytics, create_app, db

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "EXAMPLE_DEMO_DAYS": 3,
            "TESTING": True,
            "SECRET_KEY": "test",
            "ADMIN_PASSWORD": "s3cret",
        }
    )
    yield app, analytics
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


def login(client, password):
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return client.post("/login?next=/analytics/pages", data={"csrf": token, "password": password})


def test_pages_render_with_the_tracker(site):
    app, _ = site
    client = app.test_client()
    for path in ["/", "/blog", "/blog/flask-tips", "/pricing", "/signup", "/app", "/app/settings"]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert "/_analytics/script.js" in response.text
    assert client.get("/blog/nope").status_code == 404
    with client.get("/download/guide.pdf") as download:
        assert download.data.startswith(b"%PDF")


def tracker_fields(page: str) -> dict:
    """The ``data-fields`` JSON of the page's tracker tag."""
    match = re.search(r'<script defer src="/_analytics/script\.js[^>]* data-fields="([^"]*)"', page)
    assert match, "no data-fields on the tracker tag"
    return json.loads(html.unescape(match.group(1)))


def test_pages_pass_the_visitors_ab_variant_to_the_tracker(site):
    app, analytics = site
    client = app.test_client()
    fields = tracker_fields(client.get("/").text)
    assert fields in ({"ab_variant": "A"}, {"ab_variant": "B"})
    # Kept in the site's own session cookie: every page of the visit carries the same.
    assert client.get_cookie("session") is not None
    for path in ["/blog", "/pricing", "/signup", "/app/settings"]:
        assert tracker_fields(client.get(path).text) == fields, path
    # ab_variant is client-settable: the endpoint stores what the tracker sends, and sets
    # no cookie of its own.
    event_id = str(uuid.uuid4())
    response = client.post(
        "/_analytics/collect",
        json={"url": "http://localhost/pricing", "event_id": event_id, **fields},
        headers={"User-Agent": DESKTOP_UA},
    )
    assert response.status_code == 202
    assert "Set-Cookie" not in response.headers
    with app.app_context():
        event = analytics.db.session.scalars(
            sa.select(analytics.Event).where(analytics.Event.event_id == event_id)
        ).one()
    assert event.ab_variant == fields["ab_variant"]


def test_dashboard_needs_the_password_and_shows_demo_data(site):
    app, analytics = site
    client = app.test_client()
    assert client.get("/analytics/api/stats").status_code == 403
    redirect = client.get("/analytics/", headers={"Accept": "text/html"})
    assert redirect.status_code == 302
    assert "/login" in redirect.headers["Location"]
    assert login(client, "wrong").status_code == 200
    assert client.get("/analytics/", headers={"Accept": "text/html"}).status_code == 302
    response = login(client, "s3cret")
    assert response.headers["Location"] == "/analytics/pages"
    overview = client.get("/analytics/?period=7d")
    assert overview.status_code == 200
    assert "Lumen" in overview.text  # rendered inside the site's admin layout
    with app.app_context():
        pageviews = analytics.db.session.scalar(
            sa.select(sa.func.sum(analytics.DailySummary.pageviews))
        )
    assert pageviews is not None
    assert pageviews > 0
    stats = client.get("/analytics/api/stats?period=7d").get_json()
    assert stats["totals"]["pageviews"] >= pageviews


def test_signup_is_tracked_server_side_with_the_plan(site):
    app, analytics = site
    client = app.test_client()

    admin = app.test_client()
    login(admin, "s3cret")

    def paid_goal() -> dict:
        goals = admin.get("/analytics/api/goals?period=today").get_json()["rows"]
        return next(r for r in goals if r["goal"] == "Pro or team plan")

    before = paid_goal()
    page = client.get("/signup")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    response = client.post(
        "/signup",
        data={"csrf": token, "email": "me@example.com", "plan": "pro"},
        headers={"User-Agent": DESKTOP_UA},
    )
    assert response.status_code == 302
    with app.app_context():
        event = analytics.db.session.scalars(
            sa.select(analytics.Event)
            .where(analytics.Event.name == "signup")
            .order_by(analytics.Event.id.desc())
        ).first()
    assert event.plan == "pro"
    assert event.props == {"plan": "pro"}
    assert "me@example.com" not in str(event.props)
    # The paid plan's purchase, with its revenue, is a conversion of the purchase goal.
    with app.app_context():
        purchase = analytics.db.session.scalars(
            sa.select(analytics.Event)
            .where(analytics.Event.name == "purchase")
            .order_by(analytics.Event.id.desc())
        ).first()
    assert (purchase.revenue_amount, purchase.revenue_currency) == (Decimal("12.00"), "EUR")
    after = paid_goal()
    assert after["events"] == before["events"] + 1

    def eur(row: dict) -> Decimal:
        return sum(
            (Decimal(r["amount"]) for r in row["revenue"] if r["currency"] == "EUR"), Decimal(0)
        )

    assert eur(after) == eur(before) + Decimal("12.00")


# Flask-Migrate's generated env.py still tries Flask-SQLAlchemy's deprecated get_engine first.
@pytest.mark.filterwarnings("ignore:'get_engine' is deprecated:DeprecationWarning")
def test_migration_from_the_example_models_upgrades_an_empty_database(database_url, tmp_path):
    """`flask db migrate` + `flask db upgrade` on the example's models, then the site works."""
    import flask_migrate

    from example_app import analytics, create_app, db

    engine = sa.create_engine(database_url)
    meta = sa.MetaData()
    meta.reflect(engine)
    meta.drop_all(engine)  # an empty database
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "EXAMPLE_CREATE_TABLES": False,
            "TESTING": True,
            "SECRET_KEY": "test",
            "ANALYTICS_RATE_LIMIT": None,
        }
    )
    directory = str(tmp_path / "migrations")
    try:
        with app.app_context():
            flask_migrate.init(directory=directory)
            flask_migrate.migrate(directory=directory, message="initial")
            flask_migrate.upgrade(directory=directory)
            columns = {
                c["name"] for c in sa.inspect(db.engine).get_columns("analytics_event_archive")
            }
            assert {"plan", "ab_variant"} <= columns
        client = app.test_client()
        response = client.post(
            "/_analytics/collect",
            json={"url": "http://localhost/pricing", "ab_variant": "B"},
            headers={"User-Agent": DESKTOP_UA},
        )
        assert response.get_json() == answer(1)
        with app.app_context():
            assert db.session.scalars(sa.select(analytics.Event.ab_variant)).all() == ["B"]
            db.session.remove()
    finally:
        with app.app_context():
            db.drop_all()
            with db.engine.begin() as conn:
                conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
            db.engine.dispose()
        engine.dispose()


def test_demo_signups_fill_the_plan_dimension(site):
    app, analytics = site
    event, table = analytics.Event, analytics.DailyDimension.__table__
    with app.app_context():
        state = analytics.state()
        days = sorted(
            {state.local_date(t) for t in analytics.db.session.scalars(sa.select(event.created_at))}
        )
        analytics.aggregate_range(days[0], days[-1])
        signup_plans = analytics.db.session.scalars(
            sa.select(event.plan).where(event.name == "signup")
        ).all()
        rolled_up = analytics.db.session.scalar(
            sa.select(sa.func.sum(table.c.events)).where(
                table.c.dimension == "plan", table.c.value.is_not(None)
            )
        )
    assert signup_plans
    assert set(signup_plans) <= {"free", "pro", "team"}
    # Only signups carry a plan in demo traffic: the rollup counts exactly them.
    assert rolled_up == len(signup_plans)


def test_posts_show_the_admin_widget_to_admins_only(site):
    app, _ = site
    client = app.test_client()
    assert 'class="fa-widget"' not in client.get("/blog/flask-tips").text
    login(client, "s3cret")
    page = client.get("/blog/flask-tips").text
    assert 'class="fa-widget"' in page
    assert '<code class="fa-widget__path" title="/blog/flask-tips">/blog/flask-tips</code>' in page
