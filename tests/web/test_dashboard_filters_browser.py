"""dashboard filters in a real headless chromium: click-to-filter, chips, the back button,
CSV with filters, the filter menu and its suggestions, screenshots at 1440 and 390 px.

Runs the ``app`` fixture (SQLite: see ``module_database_url``) behind a real HTTP server and drives
Debian's chromium through Playwright (skipped with the reason when either is missing).
The numbers a filtered page shows are compared with the JSON API's answer to the same
filters (which ``test_dashboard_filters`` checks against the reference).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask import Flask

from flask_analytics import Analytics
from flask_analytics.reports import DateRange

from ..conftest import LiveServer, build_app, release_app
from ..support.browser import recording_page
from ..support.schema import SchemaKeeper
from ..support.seeded_stats import XSS_IMG, XSS_SCRIPT, Seeded, seed

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

COUNTS = ("visitors", "sessions", "pageviews")
GOOGLE = "source:is:Google"
PRICING = "page:is:/pricing"


@pytest.fixture(scope="module")
def module_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite only: what the browser renders and does does not depend on the database;
    the numbers these pages show, and untrusted strings stored on PostgreSQL, are
    checked on both databases by the dashboard's and the API's tests."""
    return f"sqlite:///{tmp_path_factory.mktemp('module-db') / 'analytics.db'}"


@pytest.fixture(scope="module")
def app(module_database_url: str, schemas: SchemaKeeper) -> Iterator[Flask]:
    """One app per database for the module's tests, which only read its data (a fresh
    app and seed per test cost 1-3 s of setup each)."""
    app, db = build_app(module_database_url, schemas, "dashboard_filters_browser")
    yield app
    release_app(app, db, schemas)


@pytest.fixture(scope="module")
def seeded(app: Flask) -> Seeded:
    """An open dashboard over a week of traffic."""
    analytics: Analytics = app.extensions["analytics_test"]
    analytics.dashboard_access(lambda: True)
    return seed(app, analytics, visitors=30, past_days=6)


@pytest.fixture(scope="module")
def live_server(app: Flask) -> Iterator[LiveServer]:
    """The shared app over real HTTP, one server for the module's tests."""
    server = LiveServer(app).start()
    yield server
    server.stop()


@pytest.fixture
def rng(seeded: Seeded) -> DateRange:
    """The seeded days, named explicitly: a test running over midnight reads the same."""
    return DateRange(seeded.days[0], seeded.today)


@pytest.fixture
def page(browser: Any, live_server: Any, seeded: Seeded) -> Iterator[Any]:
    """A browser page that records dialogs and console errors (CSP violations among them)."""
    with recording_page(
        browser, viewport={"width": 1440, "height": 900}, accept_downloads=True
    ) as tab:
        yield tab


def view(rng: DateRange, *filters: str, **params: str) -> str:
    pairs = [("start", rng.start.isoformat()), ("end", rng.end.isoformat()), *params.items()]
    return urlencode([*pairs, *(("filter", f) for f in filters)])


def filters_of(url: str) -> list[str]:
    return parse_qs(urlsplit(url).query).get("filter", [])


def wait_for_filters(page: Any, *filters: str) -> None:
    page.wait_for_url(lambda url: filters_of(url) == list(filters))


def shown(page: Any) -> dict[str, int]:
    """The cards' numbers (their data-value attributes)."""
    return {
        name: int(page.locator(f'a.fa-kpi[data-metric="{name}"]').get_attribute("data-value"))
        for name in COUNTS
    }


def api_totals(app: Flask, query: str) -> dict[str, int]:
    body = app.test_client().get(f"/analytics/api/stats?{query}").get_json()
    return {name: body["totals"][name] for name in COUNTS}


def chips(page: Any) -> list[str]:
    return [text.strip() for text in page.locator(".fa-chip__label").all_inner_texts()]


def test_click_to_filter_chips_and_the_back_button(
    page: Any, live_server: Any, app: Flask, rng: DateRange
) -> None:
    page.goto(f"{live_server.url}/analytics/?{view(rng)}")
    unfiltered = shown(page)
    assert chips(page) == []
    assert page.locator("[data-filtered]").count() == 0
    # A source row, from the keyboard: its key is a link.
    link = page.locator(
        'section[data-dimension="source"] tr[data-key="Google"] a[data-filter-link]'
    )
    link.focus()
    page.keyboard.press("Enter")
    wait_for_filters(page, GOOGLE)
    assert chips(page) == ["Source is Google"]
    expect(page.locator("[data-filtered]")).to_contain_text(
        "Filtered: Source is Google · numbers read from raw events"
    )
    google = shown(page)
    assert google == api_totals(app, view(rng, GOOGLE))
    assert 0 < google["sessions"] < unfiltered["sessions"]
    # A page row, clicked on its numbers: the whole row filters, the source filter stays.
    pricing_row = page.locator('section[data-dimension="page"] tr[data-key="/pricing"]')
    pricing_row.locator('td[data-col="pageviews"]').click()
    wait_for_filters(page, GOOGLE, PRICING)
    assert chips(page) == ["Source is Google", "Page is /pricing"]
    both = shown(page)
    assert both == api_totals(app, view(rng, GOOGLE, PRICING))
    assert both["pageviews"] < google["pageviews"]
    # The row of the active filter is marked; its detail is one click away, filtered.
    active = page.locator('section[data-dimension="page"] a[data-filter-link][aria-current]')
    expect(active).to_have_count(1)
    page.locator('tr[data-key="/pricing"] a.fa-key__detail').click()
    page.wait_for_url("**/analytics/pages/detail?**")
    assert parse_qs(urlsplit(page.url).query)["path"] == ["/pricing"]
    assert filters_of(page.url) == [GOOGLE, PRICING]
    assert page.locator("h1[data-path]").inner_text() == "/pricing"
    assert chips(page) == ["Source is Google", "Page is /pricing"]
    page.go_back()
    wait_for_filters(page, GOOGLE, PRICING)
    # Remove the source chip: the page filter stays.
    page.locator(f'.fa-chip[data-filter="{GOOGLE}"] .fa-chip__remove').click()
    wait_for_filters(page, PRICING)
    assert chips(page) == ["Page is /pricing"]
    assert shown(page) == api_totals(app, view(rng, PRICING))
    # Back: the filtered view as it was, then the source alone.
    page.go_back()
    wait_for_filters(page, GOOGLE, PRICING)
    assert chips(page) == ["Source is Google", "Page is /pricing"]
    assert shown(page) == both
    page.go_back()
    wait_for_filters(page, GOOGLE)
    assert shown(page) == google
    # Clear all keeps the period.
    page.locator(".fa-chip-clear").click()
    wait_for_filters(page)
    assert shown(page) == unfiltered
    assert parse_qs(urlsplit(page.url).query)["start"] == [rng.start.isoformat()]
    assert page.dialogs == []
    assert page.errors == []


def test_csv_download_holds_only_filtered_rows(
    page: Any, live_server: Any, app: Flask, rng: DateRange
) -> None:
    query = view(rng, GOOGLE, PRICING)
    page.goto(f"{live_server.url}/analytics/?{query}")
    csv_link = page.locator('section[data-dimension="page"] a.fa-panel__action')
    with page.expect_download() as info:
        csv_link.click()
    with open(info.value.path(), newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [r["page"] for r in rows] == ["/pricing"]
    assert int(rows[0]["pageviews"]) == api_totals(app, query)["pageviews"]
    # Sources under the source filter: Google only, its visits those of the cards.
    page.goto(f"{live_server.url}/analytics/sources?{view(rng, GOOGLE)}")
    with page.expect_download() as info:
        page.locator('section[data-dimension="source"] a.fa-panel__action').click()
    with open(info.value.path(), newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [(r["source"], int(r["sessions"])) for r in rows] == [
        ("Google", api_totals(app, view(rng, GOOGLE))["sessions"])
    ]
    assert page.errors == []


def test_filter_menu_with_a_suggestion_adds_a_filter(
    page: Any, live_server: Any, app: Flask, rng: DateRange
) -> None:
    page.goto(f"{live_server.url}/analytics/?{view(rng, GOOGLE)}")
    menu = page.locator("details[data-filter-menu]")
    expect(menu).to_be_visible()
    menu.locator("summary").click()
    form = menu.locator("form[data-filter-form]")
    form.locator('[data-filter-field="dimension"]').select_option("country")
    value = form.locator('[data-filter-field="value"]')
    value.fill("f")
    # Suggestions come from /api/suggest: countries of Google visits holding "f", any case.
    suggested = page.locator("#fa-filter-values option")
    expect(suggested).to_have_count(1)
    assert suggested.first.get_attribute("value") == "FR"
    value.fill(suggested.first.get_attribute("value"))
    form.locator('button[type="submit"]').click()
    wait_for_filters(page, GOOGLE, "country:is:FR")
    assert chips(page) == ["Source is Google", "Country is FR"]
    assert shown(page) == api_totals(app, view(rng, GOOGLE, "country:is:FR"))
    # The menu again: another country replaces the first; a property is typed in.
    menu.locator("summary").click()
    form.locator('[data-filter-field="dimension"]').select_option("country")
    form.locator('[data-filter-field="op"]').select_option("is_not")
    value.fill("DE|(none)")
    value.press("Enter")
    wait_for_filters(page, GOOGLE, "country:is_not:DE|(none)")
    menu.locator("summary").click()
    key = form.locator('[data-filter-field="key"]')
    expect(key).to_be_hidden()
    form.locator('[data-filter-field="dimension"]').select_option("prop:")
    expect(key).to_be_visible()
    key.fill("plan")
    value.fill("pro")
    value.press("Enter")
    wait_for_filters(page, GOOGLE, "country:is_not:DE|(none)", "prop:plan:is:pro")
    assert chips(page)[-1] == "Property plan is pro"
    assert page.errors == []


def test_filters_without_javascript(browser: Any, live_server: Any, rng: DateRange) -> None:
    context = browser.new_context(java_script_enabled=False)
    tab = context.new_page()
    try:
        tab.goto(f"{live_server.url}/analytics/devices?{view(rng)}")
        # The menu needs the script, so it stays hidden; rows and chips are links.
        expect(tab.locator("details[data-filter-menu]")).to_be_hidden()
        tab.locator('section[data-dimension="browser"] tr[data-key="Firefox"] a').first.click()
        wait_for_filters(tab, "browser:is:Firefox")
        assert chips(tab) == ["Browser is Firefox"]
        tab.locator('section[data-dimension="os"] a[data-filter-link]').first.click()
        wait_for_filters(tab, "browser:is:Firefox", "os:is:Linux")
        tab.locator('.fa-chip[data-filter="browser:is:Firefox"] .fa-chip__remove').click()
        wait_for_filters(tab, "os:is:Linux")
        # The custom range form carries the filter too.
        tab.locator("details.fa-menu summary").first.click()
        tab.get_by_role("button", name="Apply").click()
        wait_for_filters(tab, "os:is:Linux")
        tab.go_back()
        wait_for_filters(tab, "os:is:Linux")
    finally:
        context.close()


def test_chips_show_hostile_values_as_text(page: Any, live_server: Any, rng: DateRange) -> None:
    page.goto(f"{live_server.url}/analytics/?{view(rng, f'source:is:{XSS_SCRIPT}|{XSS_IMG}')}")
    assert chips(page) == [f"Source is {XSS_SCRIPT} or {XSS_IMG}"]
    assert page.locator("img:not(.fa-flag)").count() == 0
    assert page.locator("script").count() == 1
    assert page.dialogs == []
    assert page.errors == []


def test_screenshots_at_1440_and_390(
    page: Any, live_server: Any, app: Flask, rng: DateRange, artifacts_dir: Path
) -> None:
    db = "sqlite" if app.config["ANALYTICS_TEST_DATABASE"].startswith("sqlite") else "postgresql"
    query = view(rng, GOOGLE, PRICING, "country:is_not:US|(none)")
    for width, height in ((1440, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        for name, path in (("", "/analytics/"), ("-pages", "/analytics/pages")):
            page.goto(f"{live_server.url}{path}?{query}")
            assert len(chips(page)) == 3
            shot = artifacts_dir / f"filters{name}-{db}-{width}.png"
            page.screenshot(path=str(shot), full_page=True)
            # Nothing wider than the screen.
            assert page.evaluate("document.documentElement.scrollWidth") <= width, (width, path)
        page.goto(f"{live_server.url}/analytics/?{query}")
        page.locator("details[data-filter-menu] summary").click()
        page.locator('[data-filter-field="value"]').fill("G")
        expect(page.locator("#fa-filter-values option").first).to_be_attached()
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        panel = page.locator("details[data-filter-menu] .fa-menu__panel").bounding_box()
        assert panel["x"] >= 0
        assert panel["x"] + panel["width"] <= width
        page.screenshot(path=str(artifacts_dir / f"filters-menu-{db}-{width}.png"))
    assert page.errors == []
