"""The Goals and Funnels pages in a real headless chromium at 1440 and 390 px: the numbers
they show are the JSON API's for the same URL, goal rows and the goal and funnel pickers
work, untrusted strings stay text, nothing overflows or overlaps. Screenshots go to
test-artifacts/ (goals-1440.png, goals-390.png, funnels-1440.png, funnels-390.png).

Runs on SQLite and PostgreSQL behind a real HTTP server and drives Debian's chromium
through Playwright (skipped with the reason when either is missing). The API's numbers
are checked against the reference in tests/reports/test_goals.py and test_funnels.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlencode, urlsplit

import pytest
from flask import Flask

from flask_analytics import Analytics

from ..conftest import LiveServer, build_app, release_app
from ..reports.test_funnels import FUNNELS
from ..reports.test_goals import GOALS
from ..support.browser import recording_page
from ..support.schema import SchemaKeeper
from ..support.seeded_stats import TIMEZONE, XSS_IMG, XSS_SCRIPT, Seeded, insert, make_row, seed

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

#: The visitor whose visit is made of untrusted strings.
HOSTILE = 4_242
#: Labels that may be cut at the end but should keep at least a few letters.
SQUEEZABLE = "main .fa-key__label, main .fa-chip, .fa-funnel__label > span"
#: The Goals page's panels for the selected goal.
PANELS = ("source", "channel", "utm_campaign", "page", "entry_page", "country", "device_type")

#: Text and picture boxes of a page that overlap (by more than a few pixels, so that the
#: glyph boxes of two wrapped lines do not count), each cut to what its scrolling or
#: clipping ancestors show: a clipped, ellipsed label counts as its visible part.
OVERLAPS_JS = """
(selector) => {
  const cut = (a, b) => ({left: Math.max(a.left, b.left), top: Math.max(a.top, b.top),
    right: Math.min(a.right, b.right), bottom: Math.min(a.bottom, b.bottom)});
  const clipOf = (el) => {
    let box = {left: -1e9, top: -1e9, right: 1e9, bottom: 1e9};
    for (let a = el; a && a !== document.body; a = a.parentElement) {
      const s = getComputedStyle(a);
      if (s.overflowX !== "visible" || s.overflowY !== "visible") box = cut(box, a.getBoundingClientRect());
    }
    return box;
  };
  const boxes = [];
  for (const root of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
      const node = walker.currentNode;
      const el = node.parentElement;
      if (!node.data.trim() || el.closest("svg, script, style")) continue;
      if (getComputedStyle(el).visibility !== "visible") continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      const clip = clipOf(el);
      for (const rect of range.getClientRects()) {
        const box = cut(rect, clip);
        if (box.right - box.left > 1 && box.bottom - box.top > 1) {
          boxes.push({node, box, text: node.data.trim().slice(0, 40)});
        }
      }
    }
  }
  // Pictures count as solid boxes too (funnel bars, icons), but not the bars behind a
  // table row's text, which are drawn to be under it.
  for (const root of document.querySelectorAll(selector)) {
    for (const svg of root.querySelectorAll("svg:not(.fa-bar)")) {
      const box = cut(svg.getBoundingClientRect(), clipOf(svg.parentElement));
      if (box.right - box.left > 1 && box.bottom - box.top > 1) {
        boxes.push({node: svg, box, text: "<svg " + svg.getAttribute("class") + ">"});
      }
    }
  }
  const found = [];
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i], b = boxes[j];
      if (a.node === b.node) continue;
      const w = Math.min(a.box.right, b.box.right) - Math.max(a.box.left, b.box.left);
      const h = Math.min(a.box.bottom, b.box.bottom) - Math.max(a.box.top, b.box.top);
      if (w > 2 && h > 4) found.push([a.text, b.text]);
    }
  }
  return found;
}
"""


@pytest.fixture(scope="module")
def module_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite only: layout and clicks do not depend on the database, and the numbers
    these pages show are checked on both databases by tests/web/test_goals_web.py."""
    return f"sqlite:///{tmp_path_factory.mktemp('module-db') / 'analytics.db'}"


@pytest.fixture(scope="module")
def site(module_database_url: str, schemas: SchemaKeeper) -> Iterator[tuple[Flask, Seeded]]:
    """An open dashboard with goals and funnels over the seeded week, one per database
    for the module's tests (which only read). Each signup is followed by a purchase (the
    Checkout funnel's last step), paid in EUR, USD or without revenue in turn, so that
    revenue cells show in both currencies; a visit made of untrusted strings signs up and
    buys; aggregated days are aggregated again."""
    app, db = build_app(
        module_database_url,
        schemas,
        "goals_browser",
        ANALYTICS_TIMEZONE=TIMEZONE,
        ANALYTICS_GOALS=GOALS,
        ANALYTICS_FUNNELS=FUNNELS,
    )
    analytics: Analytics = app.extensions["analytics_test"]
    analytics.dashboard_access(lambda: True)
    seeded = seed(app, analytics, visitors=30)
    signups = [e for e in seeded.events if e["name"] == "signup"]
    currencies = ("EUR", "USD", None)
    purchases = [
        make_row(
            e["created_at"] + dt.timedelta(seconds=20),
            e["visitor_id"],
            name="purchase",
            path=e["path"],
            revenue_amount=Decimal(1999 + 1000 * n) / 100 if currencies[n % 3] else None,
            revenue_currency=currencies[n % 3],
            **{k: e[k] for k in ("device_type", "browser", "os", "country")},
        )
        for n, e in enumerate(signups)
    ]
    assert len(purchases) >= 4
    with app.app_context():
        insert(analytics, purchases)
        insert(analytics, hostile_visit(seeded))
        for day in seeded.aggregated:
            analytics.aggregate(day)
    yield app, seeded
    release_app(app, db, schemas)


def hostile_visit(seeded: Seeded) -> list[dict[str, Any]]:
    """A visit whose source, campaign, landing page and plan are markup, an hour ago."""
    start = seeded.now - dt.timedelta(hours=1)
    at = lambda seconds: start + dt.timedelta(seconds=seconds)  # noqa: E731
    landing = {
        "source": XSS_IMG,
        "referrer_host": "evil.example",
        "channel": "Referral",
        "utm_source": XSS_IMG,
        "utm_campaign": XSS_SCRIPT,
    }
    return [
        make_row(at(0), HOSTILE, path=f"/q/{XSS_SCRIPT}", **landing),
        make_row(at(10), HOSTILE, path="/pricing", channel="Direct"),
        make_row(at(20), HOSTILE, name="signup", path="/pricing", props={"plan": XSS_SCRIPT}),
        make_row(
            at(30),
            HOSTILE,
            name="purchase",
            path="/pricing",
            revenue_amount=Decimal("12.50"),
            revenue_currency="EUR",
        ),
    ]


@pytest.fixture(scope="module")
def live_server(site: tuple[Flask, Seeded]) -> Iterator[LiveServer]:
    server = LiveServer(site[0]).start()
    yield server
    server.stop()


@pytest.fixture
def page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """A browser page that records dialogs and console errors (CSP violations among them)."""
    with recording_page(browser, viewport={"width": 1440, "height": 900}) as tab:
        yield tab


def url(path: str, seeded: Seeded, *filters: str, days: int | None = None, **params: str) -> str:
    """A page of the seeded days (the last ``days`` of them), named explicitly: a test
    running over midnight reads the same."""
    start = seeded.days[-days] if days else seeded.days[0]
    pairs = [("start", start.isoformat()), ("end", seeded.today.isoformat()), *params.items()]
    return f"{path}?{urlencode([*pairs, *(('filter', f) for f in filters)])}"


def query_of(page_url: str) -> str:
    return urlsplit(page_url).query


def filters_of(page_url: str) -> list[str]:
    return parse_qs(query_of(page_url)).get("filter", [])


def chips(page: Any) -> list[str]:
    return [text.strip() for text in page.locator(".fa-chip__label").all_inner_texts()]


def api(app: Flask, path: str, query: str) -> Any:
    response = app.test_client().get(f"{path}?{query}")
    assert response.status_code == 200, response.text
    return response.get_json()


def revenue_text(revenue: list[dict[str, Any]]) -> str:
    return "; ".join(f"{r['amount']} {r['currency']}" for r in revenue)


def table_rows(section: Any) -> dict[str, dict[str, Any]]:
    """A goal table's rows: key -> its cells' data-value attributes and revenue text."""
    return section.locator("tbody tr").evaluate_all(
        """rows => Object.fromEntries(rows.map(tr => [tr.dataset.key, {
            conversions: Number(tr.querySelector('[data-col="conversions"]').dataset.value),
            events: Number(tr.querySelector('[data-col="events"]').dataset.value),
            conversion_rate: Number(tr.querySelector('[data-col="conversion_rate"]').dataset.value),
            revenue: (tr.querySelector("[data-revenue]") || {}).textContent || "",
        }]))"""
    )


def api_table(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {
        "" if r[key] is None else str(r[key]): {
            "conversions": r["conversions"],
            "events": r["events"],
            "conversion_rate": r["conversion_rate"],
            "revenue": revenue_text(r["revenue"]),
        }
        for r in rows
    }


def assert_goals_page_is_the_api(
    page: Any, app: Flask, dimensions: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The Goals page's summary and the selected goal's panels of ``dimensions``
    against /api/goals and /api/breakdown/<dimension>?goal=NAME for the page's query;
    returns the API's goal rows."""
    query = query_of(page.url)
    body = api(app, "/analytics/api/goals", query)
    assert table_rows(page.locator('[data-goals] section[data-dimension="goal"]')) == api_table(
        body["rows"], "goal"
    )
    goal = page.locator("[data-goal]").get_attribute("data-goal")
    panels = page.locator("[data-goal] section[data-dimension]")
    assert panels.count() == 7
    for dimension in dimensions:
        params = [(k, v) for k, v in parse_qsl(query) if k != "goal"]
        asked = urlencode([*params, ("goal", goal), ("limit", "8")])
        want = api(app, f"/analytics/api/breakdown/{dimension}", asked)["rows"]
        panel = page.locator(f'[data-goal] section[data-dimension="{dimension}"]')
        assert table_rows(panel) == api_table(want, dimension), dimension
    rows: list[dict[str, Any]] = body["rows"]
    return rows


def funnel_shown(page: Any) -> list[dict[str, Any]]:
    return page.locator(".fa-funnel__step").evaluate_all(
        """steps => steps.map(li => ({
            step: Number(li.dataset.step),
            goal: li.dataset.goal,
            visitors: Number(li.dataset.visitors),
            dropoff: Number(li.dataset.dropoff),
            dropoff_rate: li.dataset.dropoffRate === "" ? null : Number(li.dataset.dropoffRate),
            conversion_rate: li.dataset.conversionRate === "" ? null : Number(li.dataset.conversionRate),
            previous: li.dataset.previousVisitors === undefined ? null : Number(li.dataset.previousVisitors),
        }))"""
    )


def funnel_of_api(app: Flask, name: str, query: str) -> list[dict[str, Any]]:
    body = api(app, f"/analytics/api/funnel/{quote(name)}", query)
    previous = body["previous"]["steps"] if body["previous"] else [None] * len(body["steps"])
    return [
        {**step, "previous": before["visitors"] if before else None}
        for step, before in zip(body["steps"], previous, strict=True)
    ]


def assert_laid_out(page: Any, width: int, name: str) -> None:
    """Nothing wider than the screen, every panel shown inside it, no text on text."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width, name
    panels = page.locator("main .fa-panel, .fa-goal-picker, .fa-pagehead")
    assert panels.count() > 0
    for n in range(panels.count()):
        panel = panels.nth(n)
        assert panel.is_visible(), (name, n)
        box = panel.bounding_box()
        assert box is not None
        assert box["width"] > 100, (name, n, box)
        assert box["height"] > 20, (name, n, box)
        assert box["x"] >= 0, (name, n, box)
        assert box["x"] + box["width"] <= width + 0.5, (name, n, box)
    assert page.evaluate(OVERLAPS_JS, "main") == [], name
    # Every number in sight: no table scrolls sideways inside its panel.
    scrolled = page.locator("main .fa-table-scroll").evaluate_all(
        "els => els.filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.closest('[data-dimension]').dataset.dimension)"
    )
    assert scrolled == [], name
    # Names are not squeezed to a letter or two by what shares their line.
    squeezed = page.locator(SQUEEZABLE).evaluate_all(
        "els => els.filter(e => e.clientWidth < Math.min(e.scrollWidth, 40)).map(e => e.textContent)"
    )
    assert squeezed == [], name


def test_goals_page_numbers_clicks_and_layout(
    page: Any, live_server: LiveServer, site: tuple[Flask, Seeded], artifacts_dir: Path
) -> None:
    app, seeded = site
    page.goto(live_server.url + url("/analytics/goals", seeded, goal="Purchase"))
    assert page.locator("[data-goal]").get_attribute("data-goal") == "Purchase"
    assert_goals_page_is_the_api(page, app, PANELS)
    # Revenue shows in both currencies, in the goal's row and in its panels' rows.
    purchase = page.locator('[data-goals] tr[data-key="Purchase"] [data-revenue]')
    assert "EUR" in purchase.inner_text()
    assert "USD" in purchase.inner_text()
    assert page.locator("[data-goal] [data-revenue]").count() >= 7
    # Untrusted strings of sources, campaigns, pages and props are text, never markup.
    for dimension, text in (
        ("goal", f"event signup (plan = {XSS_SCRIPT})"),
        ("source", XSS_IMG),
        ("utm_campaign", XSS_SCRIPT),
        ("entry_page", f"/q/{XSS_SCRIPT}"),
    ):
        section = page.locator(f'section[data-dimension="{dimension}"]')
        expect(section.get_by_text(text, exact=True)).to_be_visible()
    assert page.locator("img:not(.fa-flag)").count() == 0
    assert page.locator("script").count() == 1
    # Laid out at 1440 and 390 pixels wide (the same page, resized).
    for width, height in ((1440, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        assert_laid_out(page, width, "goals")
        page.screenshot(path=str(artifacts_dir / f"goals-{width}.png"), full_page=True)
    # The picker selects another goal; the selected one is marked.
    picker = page.locator('nav.fa-goal-picker[aria-label="Goal"]')
    picker.get_by_role("link", name="Pricing", exact=True).click()
    page.wait_for_url(lambda u: parse_qs(query_of(u)).get("goal") == ["Pricing"])
    assert page.locator("[data-goal]").get_attribute("data-goal") == "Pricing"
    expect(picker.locator('.fa-chip[aria-current="true"]')).to_have_text("Pricing")
    assert_goals_page_is_the_api(page, app, ("entry_page",))
    # A goal row, clicked on its numbers, filters the view on the goal.
    row = page.locator('[data-goals] tr[data-key="Signup"]')
    row.locator('td[data-col="conversions"]').click()
    page.wait_for_url(lambda u: filters_of(u) == ["goal:is:Signup"])
    assert chips(page) == ["Goal is Signup"]
    assert parse_qs(query_of(page.url))["goal"] == ["Pricing"]
    expect(page.locator('[data-goals] tr[data-key="Signup"] a[aria-current]')).to_have_count(1)
    rows = assert_goals_page_is_the_api(page, app, ())
    # The filter keeps the sessions that converted: every visitor of the view did.
    signup = next(r for r in rows if r["goal"] == "Signup")
    assert signup["conversions"] == signup["visitors"] > 0
    # The overview's Goals panel: the same rows as the API's.
    page.goto(live_server.url + url("/analytics/", seeded))
    shown = page.locator('section[data-dimension="goal"] tbody tr').evaluate_all(
        """rows => Object.fromEntries(rows.map(tr => [tr.dataset.key, [
            Number(tr.querySelector('[data-col="conversions"]').dataset.value),
            Number(tr.querySelector('[data-col="events"]').dataset.value)]]))"""
    )
    body = api(app, "/analytics/api/goals", query_of(page.url))
    assert shown == {r["goal"]: [r["conversions"], r["events"]] for r in body["rows"]}
    assert page.dialogs == []
    assert page.errors == []


def test_funnels_page_numbers_picker_and_layout(
    page: Any, live_server: LiveServer, site: tuple[Flask, Seeded], artifacts_dir: Path
) -> None:
    app, seeded = site
    # Yesterday and today against the two days before (aggregated days, raw events kept).
    page.goto(live_server.url + url("/analytics/funnels", seeded, days=2, compare="previous"))
    picker = page.locator('nav.fa-goal-picker[aria-label="Funnel"]')
    reached = []
    for funnel in FUNNELS:
        if funnel is not FUNNELS[0]:
            picker.get_by_role("link", name=funnel["name"], exact=True).click()
            page.wait_for_url(
                lambda u, f=funnel: parse_qs(query_of(u)).get("funnel") == [f["name"]]
            )
        assert page.locator("[data-funnel]").get_attribute("data-funnel") == funnel["name"]
        expect(picker.locator('.fa-chip[aria-current="true"]')).to_have_text(funnel["name"])
        shown = funnel_shown(page)
        assert shown == funnel_of_api(app, funnel["name"], query_of(page.url))
        assert [s["goal"] for s in shown] == funnel["steps"]
        reached.append((shown[-1]["visitors"], shown[0]["previous"]))
        if funnel["name"] == "Blog to pro":
            for width, height in ((1440, 900), (390, 844)):
                page.set_viewport_size({"width": width, "height": height})
                assert_laid_out(page, width, "funnels")
                page.screenshot(path=str(artifacts_dir / f"funnels-{width}.png"), full_page=True)
    # Checkout goes all the way for some visitors (each signup here has its purchase);
    # the days before have numbers of their own.
    assert reached[0][0] > 0
    assert all(previous > 0 for _, previous in reached)
    # Under a filter: the filtered numbers.
    page.goto(
        live_server.url
        + url("/analytics/funnels", seeded, "device_type:is_not:tablet", funnel="Checkout")
    )
    assert chips(page) == ["Device is not tablet"]
    assert funnel_shown(page) == funnel_of_api(app, "Checkout", query_of(page.url))
    assert page.dialogs == []
    assert page.errors == []
