"""The Page experience panel in real chromium under the dashboard's CSP, at 1440 and 390
pixels wide: its stylesheet applies (bar colours), paths stay text, the narrow page does
not scroll sideways (the table scrolls in its panel). Screenshots go to test-artifacts/."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flask_analytics import Analytics
from flask_analytics.state import current_state

from ..conftest import LiveServer, build_app, release_app
from ..support.experience import experience_rows
from ..support.schema import SchemaKeeper
from ..support.seeded_stats import TIMEZONE, XSS_SCRIPT, insert

pytestmark = pytest.mark.browser

DAYS = [dt.date(2026, 10, 20) + dt.timedelta(days=n) for n in range(4)]
URL = f"/analytics/engagement?period=custom&start={DAYS[0]}&end={DAYS[-1]}"


@pytest.fixture
def server(tmp_path: Path, schemas: SchemaKeeper) -> Iterator[LiveServer]:
    app, db = build_app(
        f"sqlite:///{tmp_path / 'xp.db'}", schemas, "xp_browser", ANALYTICS_TIMEZONE=TIMEZONE
    )
    analytics: Analytics = app.extensions["analytics_test"]
    analytics.dashboard_access(lambda: True)
    with app.app_context():
        insert(analytics, experience_rows(current_state(app).settings.timezone, DAYS))
    live = LiveServer(app).start()
    yield live
    live.stop()
    release_app(app, db, schemas)


@pytest.mark.parametrize("width", [1440, 390])
def test_the_panel_in_chromium(browser: Any, server: LiveServer, artifacts_dir: Path, width: int):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: msg.type in ("error", "warning") and problems.append(msg.text))
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("dialog", lambda dialog: (problems.append(dialog.message), dialog.dismiss()))
    assert page.goto(server.url + URL).status == 200
    panel = page.locator('[data-panel="experience"]')
    panel.scroll_into_view_if_needed()
    assert panel.is_visible()
    assert page.locator(".fa-xp__site").count() == 1
    assert page.locator(f'tr[data-path="/q/{XSS_SCRIPT}"] a').inner_text() == f"/q/{XSS_SCRIPT}"
    good = page.locator(".fa-xp__site .fa-xp__good").first
    # The theme's green (--fa-good: #0b7350 light, #34d399 dark).
    assert good.evaluate("e => getComputedStyle(e).fill") in (
        "rgb(11, 115, 80)",
        "rgb(52, 211, 153)",
    )
    bar = page.locator(".fa-xp__site .fa-xp__bar").first.bounding_box()
    assert bar is not None
    assert bar["width"] > 40
    assert 4 <= bar["height"] <= 8
    # The page itself never scrolls sideways; a narrow screen scrolls the table instead.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    panel.screenshot(path=str(artifacts_dir / f"experience-{width}.png"))
    assert problems == []
    context.close()
