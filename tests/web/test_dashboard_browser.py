"""dashboard in a real headless chromium: untrusted strings stay text, screenshots.

Runs the ``app`` fixture (SQLite: see ``module_database_url``) behind a real HTTP server and drives
Debian's chromium through Playwright (skipped with the reason when either is missing).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_analytics import Analytics
from flask_analytics.core.clock import utcnow

from ..conftest import LiveServer, build_app, moments_ago, release_app
from ..support.browser import recording_page
from ..support.schema import SchemaKeeper
from ..support.seeded_stats import XSS_IMG, XSS_SCRIPT, insert, make_row, seed

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

PAGES = {
    "overview": "/analytics/",
    "pages": "/analytics/pages",
    "page-detail": "/analytics/pages/detail?path=/pricing",
    "sources": "/analytics/sources",
    "locations": "/analytics/locations",
    "devices": "/analytics/devices",
    "events": "/analytics/events",
    "engagement": "/analytics/engagement",
    "realtime": "/analytics/realtime",
}


@pytest.fixture(scope="module")
def module_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite only: what the browser renders and does does not depend on the database;
    the numbers these pages show, and untrusted strings stored on PostgreSQL, are
    checked on both databases by the dashboard's and the API's tests."""
    return f"sqlite:///{tmp_path_factory.mktemp('module-db') / 'analytics.db'}"


@pytest.fixture(scope="module")
def dashboard(module_database_url: str, schemas: SchemaKeeper) -> Iterator[Flask]:
    """An app with an open dashboard and a week of hostile-looking traffic, shared by the
    module's tests on each database: seeding 35 days (34 of them aggregated) took 4-11 s,
    once per test. The one test that writes removes its row again."""
    app, db = build_app(module_database_url, schemas, "dashboard_browser")
    analytics: Analytics = app.extensions["analytics_test"]
    analytics.dashboard_access(lambda: True)
    seed(app, analytics, visitors=40, past_days=35)
    hostile = [
        make_row(
            moments_ago(app, 120),
            77,
            path=f"/p/{XSS_IMG}",
            referrer_host=XSS_SCRIPT,
            source=XSS_SCRIPT,
            channel=XSS_IMG,
            utm_source=XSS_IMG,
            utm_medium=XSS_SCRIPT,
            utm_campaign=XSS_IMG,
            browser=XSS_SCRIPT,
            os=XSS_IMG,
            browser_version="<b>1",
            os_version="<i>2",
            language="<b>",
            region="<i>x",
            city=XSS_SCRIPT,
            screen=XSS_IMG,
            utm_term=XSS_SCRIPT,
            utm_content=XSS_IMG,
        ),
        make_row(
            moments_ago(app, 60),
            77,
            name=XSS_SCRIPT,
            path=f"/p/{XSS_IMG}",
            props={XSS_IMG: XSS_SCRIPT, "plan": XSS_IMG},
        ),
    ]
    with app.app_context():
        insert(analytics, hostile)
    yield app
    release_app(app, db, schemas)


@pytest.fixture(scope="module")
def live_server(dashboard: Flask) -> Iterator[LiveServer]:
    """The shared dashboard app over real HTTP, one server for the module's tests."""
    server = LiveServer(dashboard).start()
    yield server
    server.stop()


@pytest.fixture
def page(browser: Any, live_server: Any, dashboard: Flask) -> Iterator[Any]:
    """A browser page that records dialogs and console errors (CSP violations among them)."""
    with recording_page(browser, viewport={"width": 1280, "height": 900}) as tab:
        yield tab


def database_name(app: Flask) -> str:
    return "sqlite" if app.config["ANALYTICS_TEST_DATABASE"].startswith("sqlite") else "postgresql"


def test_untrusted_strings_are_shown_as_text(page: Any, live_server: Any) -> None:
    expected_text = {
        "overview": [XSS_SCRIPT],
        "pages": [f"/p/{XSS_IMG}"],
        "sources": [XSS_SCRIPT, XSS_IMG],
        "locations": [XSS_SCRIPT, "<i>x", "<b>"],
        "devices": [XSS_SCRIPT, XSS_IMG, f"{XSS_SCRIPT} <b>1", f"{XSS_IMG} <i>2"],
        "events": [XSS_IMG, XSS_SCRIPT],
        "realtime": [f"/p/{XSS_IMG}", XSS_SCRIPT],
    }
    urls = dict(PAGES)
    urls["hostile-detail"] = f"/analytics/pages/detail?path={quote('/p/' + XSS_IMG)}"
    urls["hostile-error"] = f"/analytics/?period={quote(XSS_IMG)}"
    for name, url in urls.items():
        response = page.goto(live_server.url + url)
        assert response.status == (400 if name == "hostile-error" else 200), name
        page.wait_for_load_state("networkidle")
        for text in expected_text.get(name, []):
            assert page.get_by_text(text, exact=False).first.is_visible(), (name, text)
        # Nothing from the data became markup: no <img> but flags, no injected <script>.
        assert page.locator("img:not(.fa-flag)").count() == 0, name
        assert page.locator("script").count() == 1, name
    page.goto(live_server.url + urls["hostile-detail"])
    assert page.locator("h1[data-path]").inner_text() == f"/p/{XSS_IMG}"
    page.goto(live_server.url + urls["hostile-error"])
    assert XSS_IMG in page.locator(".fa-error__message").inner_text()
    assert page.dialogs == []
    # The only console errors: chromium reporting the 400 answers asked for above.
    assert [e for e in page.errors if "status of 400" not in e] == []


def test_every_page_renders_and_is_screenshotted(
    page: Any, live_server: Any, dashboard: Flask, artifacts_dir: Path
) -> None:
    db = database_name(dashboard)
    # goto() returns at the load event, with every style and script in: the dashboard's
    # script requests nothing before 5 s, so waiting for an idle network (half a second
    # a page) would show nothing more.
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for name, url in PAGES.items():
            response = page.goto(live_server.url + url)
            assert response.status == 200, name
            assert page.locator(".fa-header").is_visible()
            assert page.locator("nav.fa-tabs a[aria-current=page]").count() == 1, name
            path = artifacts_dir / f"dashboard-{db}-{name}-{scheme}.png"
            page.screenshot(path=str(path), full_page=True)
            assert path.stat().st_size > 10_000
    page.set_viewport_size({"width": 390, "height": 844})
    page.emulate_media(color_scheme="light")
    for name in ("overview", "realtime", "devices", "locations"):
        page.goto(live_server.url + PAGES[name])
        # Nothing wider than the phone screen.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, name
        page.screenshot(
            path=str(artifacts_dir / f"dashboard-{db}-{name}-mobile.png"), full_page=True
        )
    assert page.dialogs == []
    assert page.errors == []


def test_chart_switch_works_without_javascript(
    browser: Any, live_server: Any, dashboard: Flask
) -> None:
    context = browser.new_context(java_script_enabled=False)
    tab = context.new_page()
    try:
        tab.goto(live_server.url + "/analytics/?period=7d")
        assert "Unique visitors" in tab.locator(".fa-chart-meta__title").inner_text()
        tab.locator('a.fa-kpi[data-metric="pageviews"]').click()
        tab.wait_for_url("**metric=pageviews**")
        assert "Pageviews" in tab.locator(".fa-chart-meta__title").inner_text()
        # The period menu is a <details>: it opens without a script too.
        tab.locator("details.fa-menu summary").first.click()
        tab.get_by_role("link", name="Last 90 days").click()
        tab.wait_for_url("**period=90d**")
        assert "metric=pageviews" in tab.url
        assert tab.locator(".fa-chart__point title").count() == 90
    finally:
        context.close()


def test_realtime_count_updates_without_reload(
    page: Any, live_server: Any, dashboard: Flask
) -> None:
    page.goto(live_server.url + "/analytics/realtime")
    count = page.locator(".fa-realtime__count")
    before = int(count.inner_text())
    page.evaluate("window.__notReloaded = true")
    analytics: Analytics = dashboard.extensions["analytics_test"]
    table = analytics.Event.__table__
    with dashboard.app_context():
        insert(analytics, [make_row(utcnow(), 123_456_789, path="/new")])
    try:
        # Polled by Playwright (the dashboard's CSP forbids eval'd predicates).
        expect(count).to_have_text(str(before + 1), timeout=20_000)
        assert page.evaluate("window.__notReloaded") is True
    finally:  # the module's other tests share the data set
        with dashboard.app_context(), analytics.db.engine.begin() as conn:
            conn.execute(sa.delete(table).where(table.c.visitor_id == 123_456_789))


def test_menus_close_on_escape_and_outside_click(page: Any, live_server: Any) -> None:
    page.goto(live_server.url + "/analytics/")
    menu = page.locator("details.fa-menu").first
    menu.locator("summary").click()
    assert menu.get_attribute("open") is not None
    page.keyboard.press("Escape")
    expect(page.locator("details.fa-menu[open]")).to_have_count(0)
    menu.locator("summary").click()
    expect(page.locator("details.fa-menu[open]")).to_have_count(1)
    page.locator(".fa-title").click()
    expect(page.locator("details.fa-menu[open]")).to_have_count(0)
