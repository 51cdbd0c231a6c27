"""Every dashboard page in a real headless chromium at 390, 768 and 1440 pixels: no page
scrolls sideways, no key cell is cut without its full value in a title on a focusable
element, the tab bar says where it scrolls, secondary columns wait behind a toggle on a
phone; the world map renders, matches the reference and filters; columns sort on the
server (the order in the URL, aria-sort on the header, by keyboard); axe-core finds no
serious or critical violation, light or dark. Screenshots of every page at 390 and 1440
pixels, light and dark, go to $ANALYTICS_SCREENSHOTS (default: a pytest temporary
folder). SQLite only: layout does not depend on the database; the numbers shown are
checked on both databases by the dashboard and API tests."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine

from flask_analytics.reports import BREAKDOWNS, DateRange
from flask_analytics.web.dashboard.worldmap import shapes

from ..conftest import LiveServer, build_app, release_app
from ..support.browser import recording_page
from ..support.details import NOW, seed_details
from ..support.schema import SchemaKeeper
from ..support.seeded_stats import TIMEZONE, Seeded, expected_breakdown

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[2] / "tracker" / "node_modules" / "axe-core" / "axe.min.js"

#: Every page of the dashboard, by name.
PAGES = {
    "overview": "/analytics/?period=7d",
    "pages": "/analytics/pages?period=7d",
    "page-detail": "/analytics/pages/detail?period=7d&path=/pricing",
    "sources": "/analytics/sources?period=7d",
    "locations": "/analytics/locations?period=7d",
    "devices": "/analytics/devices?period=7d",
    "events": "/analytics/events?period=7d",
    "engagement": "/analytics/engagement?period=7d",
    "goals": "/analytics/goals?period=7d",
    "funnels": "/analytics/funnels?period=7d",
    "realtime": "/analytics/realtime",
}
WIDTHS = (1440, 768, 390)
#: Pages axe-core also checks in the dark theme (the themes share every rule but colours;
#: the overview holds cards, badges, the chart, tables and buttons).
DARK_AXE = ("overview",)

#: Key cells whose text is cut (wider or taller than shown), and whether the full text
#: is in the title of a focusable element of the cell.
CLIPPED_JS = """() => [...document.querySelectorAll('td.fa-key')].flatMap((cell) => {
  if (!cell.offsetParent) return [];
  return [...cell.querySelectorAll('.fa-key__text, .fa-key__label, .fa-event')].filter(
    (el) => el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1
  ).map((el) => {
    const holder = el.closest('[title]');
    const focusable = holder && (holder.matches('a[href], [tabindex]'));
    const text = el.textContent.trim();
    return {text, title: holder ? holder.getAttribute('title') : null, focusable: !!focusable,
            inCell: !!holder && cell.contains(holder)};
  });
})"""

NEXT_FRAME_JS = (
    "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"
)

#: The innermost elements reaching past the window's right edge (to say what overflows).
WIDEST_JS = """() => [...document.querySelectorAll('body *')].filter((el) =>
    el.getBoundingClientRect().right > innerWidth + 1 && el.children.length === 0)
  .slice(0, 5).map((el) => el.tagName.toLowerCase() + '.' + String(el.className.baseVal ?? el.className))"""

#: Widths of the shown key cells, and tables wider than their panel.
TABLES_JS = """() => ({
  keys: [...document.querySelectorAll('section[data-dimension] td.fa-key')]
    .filter((c) => c.offsetParent).map((c) => c.getBoundingClientRect().width),
  overflowing: [...document.querySelectorAll('section[data-dimension] .fa-table-scroll')]
    .filter((s) => s.scrollWidth > s.clientWidth + 1)
    .map((s) => s.closest('section').getAttribute('data-dimension')),
})"""

#: The focused element's outline, or an SVG link's stroke (the map's countries).
FOCUS_JS = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  const path = el.querySelector && el.querySelector('path');
  return {tag: el.tagName.toLowerCase(), text: (el.textContent || '').trim().slice(0, 40),
          outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0,
          stroke: path ? parseFloat(getComputedStyle(path).strokeWidth) : 0};
}"""


@pytest.fixture(scope="module")
def module_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('module-db') / 'analytics.db'}"


@pytest.fixture(scope="module")
def site(module_database_url: str, schemas: SchemaKeeper) -> Iterator[tuple[LiveServer, Seeded]]:
    with time_machine.travel(NOW, tick=False):
        app, db = build_app(
            module_database_url, schemas, "look_browser", ANALYTICS_TIMEZONE=TIMEZONE
        )
        seeded = seed_details(app)
        live = LiveServer(app).start()
        yield live, seeded
        live.stop()
        release_app(app, db, schemas)


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots go: $ANALYTICS_SCREENSHOTS, or a pytest temporary folder."""
    chosen = os.environ.get("ANALYTICS_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def seven_days(seeded: Seeded) -> DateRange:
    """The pages' period=7d."""
    return DateRange(seeded.today - dt.timedelta(days=6), seeded.today)


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated through the devtools protocol: the page's CSP does not apply.
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
    found = page.evaluate(
        # Rows after a table's tenth repeat its first ten's markup and styles: left out,
        # they would only make the scan slower.
        """async () => (await axe.run({exclude: [['tbody tr:nth-child(n+11)']]},
                                      {resultTypes: ['violations']})).violations
          .filter((v) => v.impact === 'serious' || v.impact === 'critical')
          .map((v) => ({id: v.id, impact: v.impact,
                        nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' '))}))"""
    )
    return list(found)


def test_every_page_fits_every_width(
    browser: Any, site: tuple[LiveServer, Seeded], screenshots: Path
) -> None:
    server, _seeded = site
    if not AXE.exists():
        pytest.skip(f"axe-core is not installed: (cd tracker && npm ci) puts it at {AXE}")
    violations: dict[str, list[dict[str, Any]]] = {}
    with recording_page(browser, viewport={"width": 1440, "height": 900}) as page:
        for name, path in PAGES.items():
            response = page.goto(server.url + path)
            assert response.status == 200, name
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 900})
                page.evaluate(NEXT_FRAME_JS)  # the page's resize handlers have run
                where = f"{name} at {width}"
                overflow = page.evaluate(
                    "() => [document.scrollingElement.scrollWidth, window.innerWidth]"
                )
                assert overflow[0] <= overflow[1], (where, overflow, page.evaluate(WIDEST_JS))
                for cut in page.evaluate(CLIPPED_JS):
                    assert cut["inCell"], (where, cut)
                    assert cut["focusable"], (where, cut)
                    assert cut["text"] in cut["title"], (where, cut)
                tables = page.evaluate(TABLES_JS)
                assert tables["overflowing"] == [], where
                if width == 390:
                    # The key column keeps room for 17 characters or so (of ~340 px).
                    assert all(w >= 135 for w in tables["keys"]), (where, tables["keys"])
                    tabs = page.evaluate(
                        """() => { const t = document.querySelector('.fa-tabs');
                          return {scrolls: t.scrollWidth > t.clientWidth,
                                  hint: t.classList.contains('has-after') || t.classList.contains('has-before'),
                                  current: (() => { const a = t.querySelector('[aria-current]'); if (!a) return null;
                                    const r = a.getBoundingClientRect(), b = t.getBoundingClientRect();
                                    return r.left >= b.left - 1 && r.right <= b.right + 1; })()}; }"""
                    )
                    assert tabs["scrolls"], (where, tabs)
                    assert tabs["hint"], (where, tabs)
                    assert tabs["current"] in (True, None), (where, tabs)
                if width in (390, 1440):
                    for scheme in ("light", "dark"):
                        page.emulate_media(color_scheme=scheme)
                        page.screenshot(
                            path=str(screenshots / f"{name}-{width}-{scheme}.png"), full_page=True
                        )
                    page.emulate_media(color_scheme="light")
            # Accessibility: every page light at 1440; the pages holding every kind of
            # element (cards, charts, tables, map, buttons) dark at 390 too.
            if name in DARK_AXE:
                page.emulate_media(color_scheme="dark")
                violations[f"{name} dark at 390"] = axe_violations(page)
                page.emulate_media(color_scheme="light")
            page.set_viewport_size({"width": 1440, "height": 900})
            violations[f"{name} light at 1440"] = axe_violations(page)
        failing = {where: found for where, found in violations.items() if found}
        assert failing == {}, "\n".join(
            f"{where}: {v['id']} ({v['impact']}) {v['nodes']}"
            for where, found in failing.items()
            for v in found
        )
        assert page.dialogs == []
        assert page.errors == []
    shots = sorted(p.name for p in screenshots.glob("*.png"))
    assert len(shots) == len(PAGES) * 4, shots


def test_secondary_columns_wait_behind_a_toggle(
    browser: Any, site: tuple[LiveServer, Seeded]
) -> None:
    server, _seeded = site
    with recording_page(browser, viewport={"width": 390, "height": 800}) as page:
        page.goto(server.url + PAGES["pages"])
        panel = page.locator('section[data-dimension="page"]')
        headers = panel.locator("thead th")
        visible = "ths => ths.filter((th) => th.offsetParent).map((th) => th.textContent.trim().toLowerCase())"
        # Page, Visitors, Pageviews; Entries, Exits and Time on page behind the toggle.
        assert headers.evaluate_all(visible) == ["page", "visitors", "pageviews"]
        toggle = panel.get_by_role("button", name="All columns")
        assert toggle.get_attribute("aria-pressed") == "false"
        toggle.focus()
        page.keyboard.press("Enter")
        assert toggle.get_attribute("aria-pressed") == "true"
        shown = headers.evaluate_all(visible)
        assert shown == ["page", "visitors", "pageviews", "entries", "exits", "time on page"]
        # Every column shown, the table scrolls inside its panel, not the page.
        assert page.evaluate("document.scrollingElement.scrollWidth <= innerWidth")
        # At 1440 the toggle is not offered: every column is shown.
        page.set_viewport_size({"width": 1440, "height": 900})
        assert not toggle.is_visible()
        assert page.errors == []


def test_world_map_matches_the_reference_and_filters(
    browser: Any, site: tuple[LiveServer, Seeded]
) -> None:
    server, seeded = site
    rng = seven_days(seeded)
    expected = expected_breakdown(seeded, BREAKDOWNS["country"], rng)
    mapped = {
        code: c["visitors"]
        for code, c in expected.items()
        if code in shapes().paths and c["visitors"]
    }
    with recording_page(browser, viewport={"width": 1440, "height": 900}) as page:
        page.goto(server.url + PAGES["locations"])
        countries = page.evaluate(
            """() => [...document.querySelectorAll('a.fa-map__country')].map((a) => {
              const box = a.getBoundingClientRect();
              return {code: a.dataset.country, visitors: Number(a.dataset.visitors),
                      shade: [...a.classList].find((c) => c.startsWith('fa-map__shade-')),
                      title: a.querySelector('title').textContent, href: a.getAttribute('href'),
                      fill: getComputedStyle(a.querySelector('path')).fill,
                      width: box.width, height: box.height}; })"""
        )
        assert {c["code"]: c["visitors"] for c in countries} == mapped
        top = max(mapped.values())
        for c in countries:
            assert c["width"] > 0, c
            assert c["height"] > 0, c
            assert c["title"].endswith(
                f"{c['visitors']:,} visitor{'s' if c['visitors'] != 1 else ''}"
            ), c
            assert parse_qs(urlsplit(c["href"]).query)["filter"] == [f"country:is:{c['code']}"]
        # Shades darken with visitors (a fuller country is never paler), from the top
        # country's darkest to a paler one for the fewest.
        by_visitors = sorted(countries, key=lambda c: c["visitors"])
        steps = [int(c["shade"].rsplit("-", 1)[1]) for c in by_visitors]
        assert steps == sorted(steps)
        assert steps[-1] == 5
        assert by_visitors[-1]["visitors"] == top
        assert 1 <= steps[0] < 5
        # Other land is drawn, not linked and hidden from assistive technology.
        assert page.locator(".fa-map__land path").count() == len(shapes().paths) - len(mapped)
        assert page.locator(".fa-map__land").get_attribute("aria-hidden") == "true"
        # France, by keyboard: its link filters the page on it.
        france = page.locator('a.fa-map__country[data-country="FR"]')
        france.focus()
        focus = page.evaluate(FOCUS_JS)
        assert focus["stroke"] >= 1.5, focus
        page.keyboard.press("Enter")
        page.wait_for_url("**filter=country*")
        assert parse_qs(urlsplit(page.url).query)["filter"] == ["country:is:FR"]
        rows = page.locator('section[data-dimension="country"] tbody tr').evaluate_all(
            "rows => rows.map((r) => r.dataset.key)"
        )
        assert rows == ["FR"]
        assert (
            page.locator('a.fa-map__country[aria-current="true"]').get_attribute("data-country")
            == "FR"
        )
        assert page.errors == []


def test_columns_sort_on_the_server(browser: Any, site: tuple[LiveServer, Seeded]) -> None:
    server, seeded = site
    rng = seven_days(seeded)
    expected = expected_breakdown(seeded, BREAKDOWNS["country"], rng)
    ascending = [
        k
        for k, _ in sorted(
            expected.items(), key=lambda i: (i[1]["visitors"], i[0] is None, i[0] or "")
        )
    ]
    descending = [
        k
        for k, _ in sorted(
            expected.items(), key=lambda i: (-i[1]["pageviews"], i[0] is None, i[0] or "")
        )
    ]
    keys_js = "rows => rows.map((r) => r.dataset.key)"
    with recording_page(browser, viewport={"width": 1440, "height": 900}) as page:
        page.goto(server.url + PAGES["locations"])
        table = page.locator('section[data-dimension="country"]')
        visitors = table.locator('th:has(a[data-sort="visitors"])')
        assert visitors.get_attribute("aria-sort") == "descending"  # the default order
        # By keyboard: Tab to the sorted header's link, Enter turns the order.
        link = visitors.locator("a")
        link.focus()
        assert page.evaluate(FOCUS_JS)["outline"]
        page.keyboard.press("Enter")
        page.wait_for_url("**order=visitors*")
        params = parse_qs(urlsplit(page.url).query)
        assert params["order"] == ["visitors:asc"]
        # Locations has several panels: the link opens the sorted one (more=, twice the rows).
        assert params["more"] == ["country"]
        assert visitors.get_attribute("aria-sort") == "ascending"
        shown = table.locator("tbody tr").evaluate_all(keys_js)
        assert shown == [k or "" for k in ascending[: len(shown)]]
        assert len(shown) == min(100, len(ascending))
        # Another column: largest first.
        table.locator('a[data-sort="pageviews"]').click()
        page.wait_for_url("**order=pageviews*")
        assert (
            table.locator('th:has(a[data-sort="pageviews"])').get_attribute("aria-sort")
            == "descending"
        )
        assert visitors.get_attribute("aria-sort") is None
        shown = table.locator("tbody tr").evaluate_all(keys_js)
        assert shown == [k or "" for k in descending[: len(shown)]]
        # A page of several panels: the link opens the sorted panel (more=), the others keep their order.
        page.goto(server.url + PAGES["devices"])
        page.locator('section[data-dimension="browser"] a[data-sort="sessions"]').click()
        page.wait_for_url("**order=sessions*")
        query = parse_qs(urlsplit(page.url).query)
        assert query["more"] == ["browser"]
        assert query["order"] == ["sessions:desc"]
        assert (
            page.locator('section[data-dimension="os"] th[aria-sort]')
            .locator("a")
            .get_attribute("data-sort")
            == "visitors"
        )
        assert page.errors == []


def test_keyboard_focus_is_visible(browser: Any, site: tuple[LiveServer, Seeded]) -> None:
    server, _seeded = site
    with recording_page(browser, viewport={"width": 1440, "height": 900}) as page:
        page.goto(server.url + PAGES["overview"])
        seen = []
        for _ in range(40):
            page.keyboard.press("Tab")
            focus = page.evaluate(FOCUS_JS)
            if focus["tag"] == "body":
                break
            seen.append(focus)
            assert focus["outline"] or focus["stroke"] >= 1.5, focus
        # The walk reached the tabs and the tables' row links.
        assert len(seen) == 40
        assert any(f["text"] == "Locations" for f in seen)
        assert page.errors == []
