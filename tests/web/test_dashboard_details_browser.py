"""Flags in a real headless chromium, at 390 and 1440 pixels: every flag image loads and
draws (they are SVG files, so no emoji font is needed), under the dashboard's CSP, and
no page holds an emoji flag. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import time_machine

from ..conftest import LiveServer, build_app, release_app
from ..support.browser import recording_page
from ..support.details import NOW, WIDE_COUNTRIES, seed_details
from ..support.schema import SchemaKeeper
from ..support.seeded_stats import TIMEZONE

pytestmark = pytest.mark.browser

#: Pages that show countries (the realtime feed too).
PAGES = ("/analytics/?period=7d", "/analytics/locations?period=7d", "/analytics/realtime")

#: Each flag image: loaded, its intrinsic and shown sizes, and for France the colour drawn
#: at a third of its width (the blue band), read back through a canvas.
FLAGS_JS = """() => [...document.querySelectorAll('img.fa-flag')].map((img) => {
  let blue = null;
  if (img.src.endsWith('/fr.svg') && img.complete) {
    const c = document.createElement('canvas'); c.width = 48; c.height = 36;
    const x = c.getContext('2d'); x.drawImage(img, 0, 0, 48, 36);
    blue = Array.from(x.getImageData(8, 18, 1, 1).data);
  }
  const box = img.getBoundingClientRect();
  return {src: img.getAttribute('src'), complete: img.complete, natural: img.naturalWidth,
          width: box.width, height: box.height, alt: img.alt, blue};
})"""


@pytest.fixture(scope="module")
def module_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite only: layout and clicks do not depend on the database, and the numbers
    these pages show are checked on both databases by tests/web/test_dashboard_details.py."""
    return f"sqlite:///{tmp_path_factory.mktemp('module-db') / 'analytics.db'}"


@pytest.fixture(scope="module")
def server(module_database_url: str, schemas: SchemaKeeper) -> Iterator[LiveServer]:
    with time_machine.travel(NOW, tick=False):
        app, db = build_app(
            module_database_url, schemas, "details_browser", ANALYTICS_TIMEZONE=TIMEZONE
        )
        seed_details(app)
        live = LiveServer(app).start()
        yield live
        live.stop()
        release_app(app, db, schemas)


def check_flags(flags: list[dict[str, Any]], where: str) -> None:
    assert flags, where
    for item in flags:
        assert item["complete"], (where, item)
        assert item["natural"] > 0, (where, item)
        assert item["width"] == pytest.approx(16, abs=0.5), (where, item)
        assert item["height"] == pytest.approx(12, abs=0.5), (where, item)
        assert item["alt"] == "", (where, item)


def test_flags_render_at_390_and_1440_pixels(browser: Any, server: Any) -> None:
    with recording_page(browser, viewport={"width": 1440, "height": 900}) as page:
        for path in PAGES:
            response = page.goto(server.url + path)
            assert response.status == 200, path
            assert not any(0x1F1E6 <= ord(ch) <= 0x1F1FF for ch in page.content()), path
            check_flags(page.evaluate(FLAGS_JS), path)
        # The Locations page grown to every country, at both widths: each flag drawn.
        page.goto(server.url + "/analytics/locations?period=7d&more=country&limit=100")
        for width in (1440, 390):
            page.set_viewport_size({"width": width, "height": 900})
            flags = page.evaluate(FLAGS_JS)
            check_flags(flags, f"locations at {width}")
            shown = {item["src"].rsplit("/", 1)[1] for item in flags}
            assert {f"{code.lower()}.svg" for code in WIDE_COUNTRIES} <= shown
            france = next(item for item in flags if item["src"].endswith("/fr.svg"))
            assert france["blue"][:3] == [0, 0, 145]  # France's blue, #000091
            # The page fits its width, flags included.
            assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert page.dialogs == []
        assert page.errors == []  # CSP violations and failed images among them
