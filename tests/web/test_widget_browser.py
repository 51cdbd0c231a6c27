"""The admin widget in real chromium, on a host page served with the dashboard's CSP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Response, render_template_string

from flask_analytics import Analytics
from flask_analytics.web.dashboard import CONTENT_SECURITY_POLICY

from ..conftest import LiveServer, build_app, moments_ago, release_app
from ..support.schema import SchemaKeeper
from ..support.seeded_stats import XSS_SCRIPT, insert, make_row

pytestmark = pytest.mark.browser

PATH = f"/q/{XSS_SCRIPT}"
CMS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Edit page</title><link rel="icon" href="data:,"></head>
<body><main><h1>Edit page</h1><aside>{{ analytics_widget(path=path) }}</aside></main></body>
</html>"""


@pytest.fixture
def server(tmp_path: Path, schemas: SchemaKeeper) -> Iterator[LiveServer]:
    app, db = build_app(f"sqlite:///{tmp_path / 'widget.db'}", schemas, "widget_browser")
    analytics: Analytics = app.extensions["analytics_test"]
    analytics.dashboard_access(lambda: True)
    with app.app_context():
        insert(analytics, [make_row(moments_ago(app, 60 + n), n % 3, path=PATH) for n in range(5)])

    @app.route("/cms/edit")
    def edit() -> Response:
        response = Response(render_template_string(CMS_PAGE, path=PATH))
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response

    live = LiveServer(app).start()
    yield live
    live.stop()
    release_app(app, db, schemas)


def test_the_widget_renders_under_the_dashboard_csp(browser: Any, server: LiveServer):
    context = browser.new_context()
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: msg.type in ("error", "warning") and problems.append(msg.text))
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("dialog", lambda dialog: (problems.append(dialog.message), dialog.dismiss()))
    page.goto(server.url + "/cms/edit", wait_until="load")
    widget = page.locator(".fa-widget")
    assert widget.is_visible()
    assert page.locator(".fa-widget__day").count() == 30
    assert page.locator('[data-metric="pageviews"]').inner_text() == "5"
    assert page.locator('[data-metric="visitors"]').inner_text() == "3"
    assert page.locator(".fa-widget__path").inner_text() == PATH  # text, not markup
    # widget.css loaded (a same-origin stylesheet the CSP allows): the columns take its fill.
    fill = page.locator(".fa-widget__day").last.evaluate("e => getComputedStyle(e).fill")
    assert fill in ("rgb(79, 70, 229)", "rgb(129, 140, 248)")
    assert widget.evaluate("e => getComputedStyle(e).borderTopStyle") == "solid"
    assert problems == []
    context.close()
