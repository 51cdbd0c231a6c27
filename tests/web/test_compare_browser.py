"""Like-for-like comparisons in a real headless chromium: the overview's partial bucket
drawn dashed, the legend naming the cut, and page detail's changes, comparison line,
previous pages and CSV, under the dashboard's CSP. SQLite only: what a page draws does
not depend on the database (the numbers are checked on both by test_compare.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine

from ..conftest import LiveServer, build_app, release_app
from ..support.browser import recording_page
from ..support.compare import NOW, TZ, seed_compare
from ..support.schema import SchemaKeeper

pytestmark = pytest.mark.browser

#: The partial segment's drawing: its dash pattern and its place after the line's end.
PARTIAL_JS = """() => {
  const partial = document.querySelector('path.fa-chart__partial');
  const line = document.querySelector('path.fa-chart__line');
  if (!partial || !line) return null;
  const style = getComputedStyle(partial);
  const end = line.getPointAtLength(line.getTotalLength());
  const start = partial.getPointAtLength(0);
  return {dash: style.strokeDasharray, shown: style.display !== 'none' &&
          partial.getBoundingClientRect().width > 0, joins: Math.abs(end.x - start.x) < 0.5};
}"""


@pytest.fixture(scope="module")
def module_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('module-db') / 'analytics.db'}"


@pytest.fixture(scope="module")
def server(module_database_url: str, schemas: SchemaKeeper) -> Iterator[LiveServer]:
    with time_machine.travel(NOW.replace(tzinfo=dt.timezone.utc), tick=False):
        app, db = build_app(
            module_database_url, schemas, "compare_browser", ANALYTICS_TIMEZONE=str(TZ)
        )
        app.extensions["analytics_test"].dashboard_access(lambda: True)
        seed_compare(app)
        live = LiveServer(app).start()
        yield live
        live.stop()
        release_app(app, db, schemas)


def test_partial_bucket_and_page_detail_comparison(browser: Any, server: Any) -> None:
    with recording_page(browser, viewport={"width": 1440, "height": 900}) as page:
        page.goto(server.url + "/analytics/?period=7d")
        drawn = page.evaluate(PARTIAL_JS)
        assert drawn is not None
        assert drawn["dash"] not in ("", "none")
        assert drawn["shown"]
        assert drawn["joins"]
        assert "until 14:30" in page.inner_text(".fa-legend")

        page.goto(server.url + "/analytics/pages/detail?path=/pricing&period=7d")
        assert page.locator(".fa-kpi .fa-change").count() >= 4
        assert page.locator("path.fa-chart__previous").count() == 1
        assert page.locator("path.fa-chart__partial").count() == 1
        referrers = page.locator('section[data-dimension="page_referrer"]')
        labels = referrers.locator("[data-previous-page]").all_inner_texts()
        assert labels
        assert all(text.startswith("from /") for text in labels)
        csv_url = page.get_attribute("a[href*='api/page'][href*='format=csv']", "href")
        assert csv_url is not None
        answer = page.request.get(server.url + csv_url)
        assert answer.status == 200
        assert answer.text().splitlines()[0].startswith("period,start,end,visitors")

        page.goto(server.url + "/analytics/pages/detail?path=/pricing&period=7d&compare=year")
        assert page.locator(".fa-change--none").count() == 6
        assert page.locator("path.fa-chart__previous").count() == 0
        assert page.errors == []
