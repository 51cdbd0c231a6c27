"""Annotations in real chromium (SQLite: the forms and the chart do not depend on the
database, which tests/web/test_annotations.py covers on both): added with the page's
form under the dashboard's CSP, shown on the overview's chart, a script in the text
inert, then deleted."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flask_analytics import Analytics

from ..conftest import LiveServer, build_app, moments_ago, release_app
from ..support.schema import SchemaKeeper
from ..support.seeded_stats import XSS_IMG, insert, make_row

pytestmark = pytest.mark.browser


@pytest.fixture
def server(tmp_path: Path, schemas: SchemaKeeper) -> Iterator[LiveServer]:
    app, db = build_app(f"sqlite:///{tmp_path / 'notes.db'}", schemas, "annotations_browser")
    analytics: Analytics = app.extensions["analytics_test"]
    analytics.dashboard_access(lambda: True)
    with app.app_context():
        insert(analytics, [make_row(moments_ago(app, 60 + n), n) for n in range(3)])
    live = LiveServer(app).start()
    yield live
    live.stop()
    release_app(app, db, schemas)


def test_an_annotation_is_added_shown_and_deleted(browser: Any, server: LiveServer) -> None:
    context = browser.new_context()
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: msg.type in ("error", "warning") and problems.append(msg.text))
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("dialog", lambda dialog: (problems.append(dialog.message), dialog.dismiss()))
    page.goto(server.url + "/analytics/annotations?period=7d")
    form = page.locator("[data-annotation-new] form")
    today = form.locator("input[name=date]").input_value()
    assert dt.date.fromisoformat(today)
    form.locator("input[name=text]").fill(f"Launch {XSS_IMG}")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/analytics/annotations")
    assert page.locator("[data-annotations] li[data-annotation]").count() == 1
    page.goto(server.url + "/analytics/?period=7d")
    note = page.locator(".fa-chart__notes li")
    assert note.count() == 1
    assert note.inner_text().endswith(f"Launch {XSS_IMG}")  # text, not markup
    mark = page.locator(".fa-chart__note rect")
    assert mark.count() == 1
    # The last of seven columns: today.
    assert float(mark.get_attribute("x") or 0) == pytest.approx(6 * 1000 / 7, abs=0.01)
    page.goto(server.url + "/analytics/annotations?period=7d")
    page.locator("[data-annotations] li[data-annotation] form").nth(1).locator("button").click()
    page.wait_for_url("**/analytics/annotations")
    assert page.locator("[data-annotations] li[data-annotation]").count() == 0
    assert problems == []
    context.close()
