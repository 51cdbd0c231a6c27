"""Fixtures of the tracker's browser tests: the test site served live, and chromium.

Test modules import the fixture functions (``site_fixture`` ...); pytest knows them by
their ``name`` (``site``, ``chromium``, ``context``, ``page``).

Results are read from the database (``analytics_event`` through ``analytics.Event``) and
from the request bodies the server received, never from the page's own JavaScript.
Waiting polls with a deadline while letting Playwright dispatch its events (route
handlers run only while Playwright is called), so nothing relies on a fixed sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, render_template
from flask_sqlalchemy import SQLAlchemy

from flask_analytics import Analytics

from ..conftest import CHROMIUM, CHROMIUM_ARGS, DESKTOP_UA, LiveServer, custom_event_model
from .tracker_app import CollectRecorder, create_app

#: Seconds a test waits for something the tracker should do.
DEADLINE = 15.0
#: Event columns the tests look at.
COLUMNS = (
    "event_id", "name", "hostname", "path", "referrer", "referrer_host",
    "screen_width", "engagement_ms", "scroll_depth", "props",
)  # fmt: skip
#: Custom columns of the fields site's event model (only ``ab_variant`` client-settable).
FIELD_COLUMNS = ("plan", "ab_variant")


@dataclass
class Site:
    """The test site (tests/web/tracker_app.py) served over real HTTP."""

    app: Flask
    url: str
    recorder: CollectRecorder
    #: Event columns :meth:`events` reads.
    columns: tuple[str, ...] = COLUMNS

    def options(self, **options: Any) -> None:
        """``analytics_script()`` options of the pages served from now on."""
        self.app.config["TRACKER_OPTIONS"] = {"allow_automation": True, **options}

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """Stored events (as dicts of :attr:`columns`), oldest first."""
        analytics = self.app.extensions["analytics_test"]
        model = analytics.Event
        query = sa.select(model).order_by(model.id)
        if name is not None:
            query = query.where(model.name == name)
        with self.app.app_context():
            rows = analytics.db.session.scalars(query).all()
            return [{column: getattr(row, column) for column in self.columns} for row in rows]

    def sent(self) -> list[dict[str, Any]]:
        """Every event object of every collect request the server received, in order."""
        return [
            event
            for _, body in self.recorder.bodies
            for event in (body if isinstance(body, list) else [body])
            if isinstance(event, dict)
        ]


def pump_until(
    page: Any, condition: Callable[[], Any], what: str, timeout: float = DEADLINE
) -> Any:
    """Poll ``condition`` until it returns something truthy, failing after ``timeout``.

    Each round lets Playwright run (``wait_for_timeout``) so route handlers and events
    are dispatched while we wait.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        page.wait_for_timeout(50)


def wait_for_events(
    site: Site, page: Any, predicate: Callable[[list[dict[str, Any]]], bool], what: str
) -> list[dict[str, Any]]:
    """Poll the database until ``predicate(events)``; returns those events."""
    found: list[dict[str, Any]] = []

    def check() -> bool:
        found[:] = site.events()
        return predicate(found)

    try:
        pump_until(page, check, what)
    except pytest.fail.Exception:
        summary = [(e["name"], e["path"], e["props"]) for e in found]
        pytest.fail(f"timed out waiting for {what}; stored events: {summary}")
    return found


def named(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [event for event in events if event["name"] == name]


def sentinel(
    site: Site, page: Any, path: str = "/page/sentinel", **options: Any
) -> list[dict[str, Any]]:
    """Load a tracked page and wait for its pageview: everything the previous page sent
    (its unload beacon included) has reached the server before it."""
    site.options(**options)
    page.goto(site.url + path)
    return wait_for_events(
        site, page, lambda events: any(e["path"] == path for e in events), f"pageview of {path}"
    )


def serve(app: Flask, columns: tuple[str, ...] = COLUMNS) -> Iterator[Site]:
    """``app`` served on 127.0.0.1 (random port) for the test, then stopped."""
    server = LiveServer(app).start()
    recorder = app.wsgi_app
    assert isinstance(recorder, CollectRecorder)
    yield Site(app=app, url=server.url, recorder=recorder, columns=columns)
    server.stop()
    with app.app_context():
        app.extensions["analytics_test"].db.engine.dispose()


@pytest.fixture(name="site")
def site_fixture(tmp_path: Path) -> Iterator[Site]:
    """The test site on a file SQLite database, served on 127.0.0.1 (random port)."""
    yield from serve(create_app(f"sqlite:///{tmp_path / 'tracker.db'}"))


def create_fields_app(database_uri: str) -> Flask:
    """A host whose event model has the custom columns ``plan`` and ``ab_variant``
    (``tests.conftest.custom_event_model``), of which only ``ab_variant`` is declared
    client-settable; its pages (``/page/<name>``) are the test site's."""
    app = Flask(__name__, template_folder="templates")
    app.config.update(
        TESTING=True,
        SQLALCHEMY_DATABASE_URI=database_uri,
        SECRET_KEY="test",
        TRACKER_OPTIONS={"allow_automation": True},
        ANALYTICS_CLIENT_FIELDS=["ab_variant"],
    )
    db = SQLAlchemy()
    db.init_app(app)
    analytics = Analytics(app, db=db, event_model=custom_event_model(db))
    app.extensions["analytics_test"] = analytics
    with app.app_context():
        db.create_all()

    @app.route("/page/<path:name>")
    def page(name: str) -> str:
        return render_template(
            "tracker/page.html", name=name, options=app.config["TRACKER_OPTIONS"]
        )

    app.wsgi_app = CollectRecorder(app.wsgi_app)  # type: ignore[method-assign]
    return app


@pytest.fixture(name="fields_site")
def fields_site_fixture(tmp_path: Path) -> Iterator[Site]:
    """:func:`create_fields_app` on a file SQLite database, served on 127.0.0.1."""
    app = create_fields_app(f"sqlite:///{tmp_path / 'fields.db'}")
    yield from serve(app, COLUMNS + FIELD_COLUMNS)


@pytest.fixture(name="chromium", scope="module")
def chromium_fixture(playwright: Any) -> Iterator[Any]:
    """Headless Debian chromium with a desktop Chrome user agent (one per test module),
    launched from the session's Playwright driver (``tests.conftest.playwright``).

    The user agent is set on the command line, not only on the context: requests that
    outlive a page (beacons, keepalive fetches sent while it unloads) are sent by the
    browser with its default user agent, which for headless chromium names
    "HeadlessChrome" and would be dropped by the endpoint as a bot.
    """
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, f"--user-agent={DESKTOP_UA}"]
    )
    yield browser
    browser.close()


@pytest.fixture(name="context")
def context_fixture(chromium: Any) -> Iterator[Any]:
    ctx = chromium.new_context(user_agent=DESKTOP_UA, viewport={"width": 1111, "height": 700})
    yield ctx
    ctx.close()


@pytest.fixture(name="page")
def page_fixture(context: Any) -> Iterator[Any]:
    """A page whose uncaught JavaScript errors fail the test: the tracker never throws."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    # A test's route handlers must not outlive it: closing the context sends the page's
    # unload beacon, whose handler would run (and fail on the closed context) during the
    # next test's setup.
    page.unroute_all(behavior="ignoreErrors")
    assert not errors, f"uncaught errors in the page: {errors}"
