"""Shared fixtures: apps on SQLite and PostgreSQL, clients, factories, live servers,
private Redis and PostgreSQL servers.

Every test that takes ``app`` runs once per database. PostgreSQL tests use a database
of their own created for this test session (so parallel runs never collide) on the
server named by ``ANALYTICS_TEST_POSTGRES_URL`` (default: the local ``test`` database);
they are skipped with the reason when that server cannot be reached.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_analytics import Analytics, EventMixin
from flask_analytics.core.clock import day_bounds
from flask_analytics.state import current_state

from .support.schema import SchemaKeeper
from .support.servers import PrivatePostgres, PrivateRedis, Unavailable

#: The frozen clock: ``frozen_clock``, the ``clock`` marker and ``--frozen-at``.
pytest_plugins = ["tests.clock", "flask_analytics.testing"]

POSTGRES_ADMIN_URL = os.environ.get(
    "ANALYTICS_TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("ANALYTICS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CHROMIUM = os.environ.get("ANALYTICS_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

DESKTOP_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
MOBILE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)


# -- Parallel runs: a module's shared data set is built on one worker ----------------


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group the tests that share a module-scoped fixture (per parameter, e.g. database),
    so that ``--dist loadgroup`` sends each group to one worker, which builds the data set
    once instead of once per worker; other tests are spread one by one as before."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        shared = sorted(
            name for name, defs in info.name2fixturedefs.items() if defs[-1].scope == "module"
        )
        if not shared:
            continue
        params = getattr(getattr(item, "callspec", None), "params", {})
        key = [item.module.__name__ if item.module else item.nodeid.split("::")[0]]
        key += [f"{name}={params[name]}" for name in shared if name in params]
        item.add_marker(pytest.mark.xdist_group("|".join(key)))


# -- PostgreSQL: one throwaway database per test session --------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database for this session (dropped at the end)."""
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"fa_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            # A throwaway database: skipping the fsync of every commit (and of every
            # test's CREATE/DROP TABLE) keeps the suite fast; durability is not tested here.
            conn.execute(sa.text(f'ALTER DATABASE "{name}" SET synchronous_commit TO off'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc.orig}")
    url = sa.engine.make_url(POSTGRES_ADMIN_URL).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL: a file SQLite database, or the session's PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'analytics.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


# -- Apps ----------------------------------------------------------------------------


AppFactory = Callable[..., Flask]


@pytest.fixture(scope="session")
def schemas() -> SchemaKeeper:
    """Empty analytics tables for each app (PostgreSQL's are emptied, not rebuilt)."""
    return SchemaKeeper()


@pytest.fixture(autouse=True)
def no_kept_schema(request: pytest.FixtureRequest, schemas: SchemaKeeper) -> None:
    """A test that uses the session's database without ``make_app`` finds no analytics
    tables left by an earlier test, as when each test dropped its own."""
    names = request.fixturenames
    if "make_app" in names or "module_database_url" in names:
        return  # their apps get a fresh schema from the keeper
    if "database_url" in names or "postgres_url" in names:
        schemas.drop_kept()


def build_app(
    database_url: str,
    schemas: SchemaKeeper,
    name: str,
    *,
    event_model: Callable[[SQLAlchemy], Any] | None = None,
    daily_models: Callable[[SQLAlchemy], list[Any]] | None = None,
    **config: Any,
) -> tuple[Flask, SQLAlchemy]:
    """An app with ``Analytics`` on a fresh schema of ``database_url`` (see ``make_app``);
    hand it to :func:`release_app` when done."""
    app = Flask(name)
    app.config.update(
        TESTING=True,
        SQLALCHEMY_DATABASE_URI=database_url,
        SECRET_KEY="test",
        ANALYTICS_TEST_DATABASE=database_url,
    )
    app.config.update(config)
    db = SQLAlchemy()
    db.init_app(app)
    model = event_model(db) if event_model is not None else None
    daily = daily_models(db) if daily_models is not None else []
    analytics = Analytics(app, db=db, event_model=model, daily_models=daily)
    app.extensions["analytics_test"] = analytics
    with app.app_context():
        schemas.fresh(db)
    return app, db


def release_app(app: Flask, db: SQLAlchemy, schemas: SchemaKeeper) -> None:
    with app.app_context():
        schemas.release(db)
        db.engine.dispose()


@pytest.fixture
def make_app(database_url: str, schemas: SchemaKeeper) -> Iterator[AppFactory]:
    """Build an app with ``Analytics`` on a fresh schema; config overrides as kwargs.

    ``event_model`` may be a callable ``(db) -> model class`` for a subclassed model.
    """
    created: list[tuple[Flask, SQLAlchemy]] = []

    def factory(*, event_model: Callable[[SQLAlchemy], Any] | None = None, **config: Any) -> Flask:
        app, db = build_app(
            database_url, schemas, f"test_app_{len(created)}", event_model=event_model, **config
        )
        created.append((app, db))
        return app

    yield factory
    for app, db in created:
        release_app(app, db, schemas)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """``database_url`` for one app that a module's tests share (built with
    :func:`build_app` by a module-scoped fixture): a SQLite file of its own, or the
    session's PostgreSQL database, which no other app uses while the module runs."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('module-db') / 'analytics.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app()


@pytest.fixture
def analytics(app: Flask) -> Analytics:
    ext: Analytics = app.extensions["analytics_test"]
    return ext


@pytest.fixture
def db(app: Flask) -> SQLAlchemy:
    ext: Analytics = app.extensions["analytics_test"]
    return ext.db


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> Any:
    return app.test_cli_runner()


def custom_event_model(db: SQLAlchemy) -> Any:
    """A host-style subclassed event model with two custom columns."""

    class PlanEvent(EventMixin, db.Model):  # type: ignore[name-defined, misc]
        plan = db.Column(db.String(32))
        ab_variant = db.Column(db.String(16))

    return PlanEvent


# -- Factories -----------------------------------------------------------------------


def collect_payload(**overrides: Any) -> dict[str, Any]:
    """A valid browser event for the test client's host (``localhost``)."""
    event: dict[str, Any] = {"name": "pageview", "url": "http://localhost/", "screen_width": 1280}
    event.update(overrides)
    return event


@pytest.fixture
def post_event(client: Any) -> Callable[..., Any]:
    """POST a payload to the collect endpoint with a real-browser user agent."""

    def post(payload: Any, *, ip: str = "203.0.113.7", ua: str = DESKTOP_UA, **kwargs: Any) -> Any:
        headers = {"User-Agent": ua, **kwargs.pop("headers", {})}
        return client.post(
            "/_analytics/collect",
            json=payload,
            headers=headers,
            environ_base={"REMOTE_ADDR": ip},
            **kwargs,
        )

    return post


@pytest.fixture
def make_event(app: Flask, analytics: Analytics) -> Callable[..., Any]:
    """Insert a raw event row directly (bypassing the pipeline) with sane defaults."""

    def make(**overrides: Any) -> Any:
        values: dict[str, Any] = {
            "event_id": str(uuid.uuid4()),
            "created_at": dt.datetime(2026, 1, 15, 12, 0, 0),
            "name": "pageview",
            "hostname": "example.com",
            "path": "/",
            "channel": "Direct",
            "device_type": "desktop",
            "browser": "Chrome",
            "os": "Windows",
            "visitor_id": 1,
        }
        values.update(overrides)
        with app.app_context():
            event = analytics.Event(**values)
            analytics.db.session.add(event)
            analytics.db.session.commit()
            analytics.db.session.refresh(event)
            analytics.db.session.expunge(event)
        return event

    return make


def moments_ago(app: Flask, seconds: float) -> dt.datetime:
    """Naive UTC ``seconds`` before now, but never before today's local midnight (the
    app's time zone): a test that runs just after midnight still puts it in "today"."""
    state = current_state(app)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    midnight = day_bounds(state.settings.timezone, state.local_date(now))[0]
    return max(now - dt.timedelta(seconds=seconds), midnight)


def all_rows(app: Flask) -> list[tuple[str, dict[str, Any]]]:
    """Every row of every table of the app's database, as (table, row) pairs."""
    rows = []
    ext: Analytics = app.extensions["analytics_test"]
    with app.app_context():
        engine = ext.db.engine
        with engine.connect() as conn:
            for table in ext.db.metadata.sorted_tables:
                for row in conn.execute(sa.select(table)).mappings():
                    rows.append((table.name, dict(row)))
    return rows


def redis_or_skip(url: str = REDIS_URL) -> Any:
    """A client of the Redis server at ``url``, or a skip naming it when it is down."""
    from redis import Redis
    from redis.exceptions import RedisError

    connection = Redis.from_url(url)
    try:
        connection.ping()
    except RedisError as exc:
        pytest.skip(f"Redis is not reachable at {url}: {exc}")
    return connection


@pytest.fixture
def redis_app(make_app: AppFactory) -> Iterator[Flask]:
    """An app whose jobs go to a queue of its own on the shared Redis (deleted after)."""
    from .support.redis_keys import delete_queue_keys  # redis is an optional extra

    connection = redis_or_skip()
    queue = f"test-{uuid.uuid4().hex[:12]}"
    app: Flask = make_app(ANALYTICS_REDIS_URL=REDIS_URL, ANALYTICS_QUEUE=queue)
    try:
        yield app
    finally:
        delete_queue_keys(connection, queue)
        connection.close()


ServerT = TypeVar("ServerT", PrivatePostgres, PrivateRedis)


def _private_server(kind: type[ServerT]) -> Iterator[ServerT]:
    """Start a server of this test's own, skip when the machine has none, remove it after."""
    try:
        server = kind()
    except Unavailable as exc:
        pytest.skip(str(exc))
    try:
        yield server.start()
    finally:
        server.remove()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of this test's own (on a unix socket) that it may stop and start."""
    yield from _private_server(PrivatePostgres)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A redis-server of this test's own (on a unix socket) that it may stop and start."""
    yield from _private_server(PrivateRedis)


# -- Live server and browser -----------------------------------------------------------


class LiveServer:
    """A real HTTP server running the app in a background thread."""

    def __init__(self, app: Flask) -> None:
        from werkzeug.serving import make_server

        self.app = app
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self._server.port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> LiveServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    """The ``app`` fixture served over real HTTP on 127.0.0.1 (random port)."""
    server = LiveServer(app).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Any]:
    """The one Playwright driver of the test session (skipped when chromium or playwright
    is missing). Playwright's sync API allows one driver at a time in a process, so every
    browser fixture launches from this one."""
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as driver:
        yield driver


#: Chromium flags for a sandbox without network: no background connections, no GPU.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)


@pytest.fixture(scope="session")
def browser(playwright: Any) -> Iterator[Any]:
    """A headless Debian chromium driven by Playwright."""
    instance = playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
    yield instance
    instance.close()


@pytest.fixture
def artifacts_dir() -> Path:
    """Folder for screenshots and other files a person may want to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
