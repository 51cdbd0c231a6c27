"""The ``Analytics`` Flask extension: registration, host callbacks and the Python API."""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import flask
import sqlalchemy as sa
from flask import Flask, current_app, has_request_context
from werkzeug.urls import iri_to_uri

from .cli import analytics_cli
from .committed import CommittedRows, Revenue, TrackedModel
from .config import DEFAULTS, load_settings
from .core.clock import SYSTEM_CLOCK, Clock
from .core.dimensions import check_dimension
from .core.hooks import CustomDimension, DailyAggregation, Hooks
from .errors import ConfigError
from .goals import Funnel, Goal, GoalError, make_funnel, make_goal
from .ingest import pipeline, privacy
from .ingest.payload import check_name
from .ingest.track import build_event, check_ip, check_optional_text
from .lifecycle.aggregate import AggregationResult, aggregate_day, aggregate_range
from .lifecycle.archive import ArchiveResult, PurgeResult, archive, purge
from .migrate import install as install_render_item
from .models import EventMixin, build_models
from .state import AppState
from .web import collect, pageviews
from .web.dashboard import make_blueprint as dashboard_blueprint
from .web.tracker import analytics_script
from .web.widget import analytics_widget

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

F = TypeVar("F", bound=Callable[..., Any])

#: Columns of every event model, set by the pipeline: track() sets only custom ones.
_BUILTIN_COLUMNS = frozenset(EventMixin.__annotations__)


def _use_sqlite_wal(engine: sa.Engine) -> None:
    """WAL journal + a busy timeout on every new SQLite connection of ``engine``.

    WAL lets the dashboard read while the collect endpoint writes; the timeout makes
    concurrent writers queue instead of failing at once with "database is locked".
    """
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.close()

    sa.event.listen(engine, "connect", on_connect)


def _request_flush(state: AppState) -> None:
    """Queue a flush job (the buffer passed ``ANALYTICS_BUFFER_FLUSH_THRESHOLD``)."""
    from .tasks.enqueue import request_flush

    request_flush(state)


class Analytics:
    """Privacy-first, cookieless web analytics for a Flask app.

    ``Analytics(app, db=db)`` or, with the factory pattern, ``Analytics(db=db)`` then
    ``analytics.init_app(app)``. ``event_model`` is an ``EventMixin`` subclass adding
    custom columns; the default model has only the built-in ones. ``daily_models`` are
    subclasses of ``DailyPageMixin``, ``DailyPageReferrerMixin`` or ``DailyEventMixin``
    adding custom event columns to those daily tables as keys (README "Extending the
    event model"). ``dashboard=False``
    leaves the dashboard unmounted (the collect endpoint, script and commands stay).
    ``clock`` is where every "now" is read (default: the system clock).

    ``app.extensions["analytics"]`` is this object; each app's state hangs off it
    (:meth:`state`), so one instance serves several apps.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        db: SQLAlchemy | None = None,
        event_model: type[EventMixin] | None = None,
        daily_models: Sequence[type] = (),
        dashboard: bool = True,
        clock: Clock | None = None,
    ) -> None:
        if db is None:
            raise TypeError(
                "Analytics needs your Flask-SQLAlchemy instance: Analytics(app, db=db)."
            )
        self.db = db
        self.models = build_models(db, event_model, daily_models)
        self.Event = self.models.Event
        self.EventArchive = self.models.EventArchive
        self.Salt = self.models.Salt
        self.AggregationRun = self.models.AggregationRun
        self.DailySummary = self.models.daily["DailySummary"]
        self.DailyPage = self.models.daily["DailyPage"]
        self.DailyPageReferrer = self.models.daily["DailyPageReferrer"]
        self.DailyTrafficSource = self.models.daily["DailyTrafficSource"]
        self.DailyCountry = self.models.daily["DailyCountry"]
        self.DailyDevice = self.models.daily["DailyDevice"]
        self.DailyUtm = self.models.daily["DailyUtm"]
        self.DailySession = self.models.daily["DailySession"]
        self.DailyEvent = self.models.daily["DailyEvent"]
        self.DailyBrowserVersion = self.models.daily["DailyBrowserVersion"]
        self.DailyOsVersion = self.models.daily["DailyOsVersion"]
        self.DailyLocation = self.models.daily["DailyLocation"]
        self.DailyLanguage = self.models.daily["DailyLanguage"]
        self.DailyScreen = self.models.daily["DailyScreen"]
        self.DailyHostname = self.models.daily["DailyHostname"]
        self.DailyDimension = self.models.DailyDimension
        self.DailyPageExperience = self.models.DailyPageExperience
        self.Session = self.models.Session
        self.hooks = Hooks()
        self.clock = clock or SYSTEM_CLOCK
        self.mount_dashboard = dashboard
        self._states: weakref.WeakKeyDictionary[Flask, AppState] = weakref.WeakKeyDictionary()
        self._committed: CommittedRows | None = None
        if app is not None:
            self.init_app(app)

    @property
    def dimensions(self) -> list[CustomDimension]:
        """Custom columns shown as breakdowns, in declaration order."""
        return self.hooks.dimensions

    @property
    def daily_aggregations(self) -> list[DailyAggregation]:
        """Host functions run inside every day's aggregation transaction."""
        return self.hooks.daily_aggregations

    def init_app(self, app: Flask, *, dashboard: bool | None = None) -> None:
        """Register the collect endpoint, script, dashboard and CLI on ``app``.

        ``dashboard`` overrides, for this app, whether the dashboard is mounted.
        """
        if "analytics" in app.extensions:
            raise RuntimeError("Analytics is already registered on this app.")
        if app.extensions.get("sqlalchemy") is not self.db:
            raise RuntimeError(
                "Call db.init_app(app) with the same SQLAlchemy instance given to "
                "Analytics(db=...) before analytics.init_app(app)."
            )
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value.copy() if isinstance(value, list) else value)
        settings = load_settings(app.config)
        try:
            self.hooks.app_funnels(settings.funnels, self.hooks.app_goals(settings.goals))
        except GoalError as exc:
            raise ConfigError(str(exc)) from exc
        self._states[app] = AppState(
            app,
            db=self.db,
            models=self.models,
            settings=settings,
            hooks=self.hooks,
            clock=self.clock,
            request_flush=_request_flush,
        )
        app.extensions["analytics"] = self
        if settings.sqlite_wal:
            with app.app_context():
                _use_sqlite_wal(self.db.engine)

        app.register_blueprint(collect.make_blueprint(settings))
        if self.mount_dashboard if dashboard is None else dashboard:
            app.register_blueprint(dashboard_blueprint(settings))
        if settings.server_pageviews:
            pageviews.install(app)
        app.add_template_global(analytics_script, "analytics_script")
        app.add_template_global(analytics_widget, "analytics_widget")
        app.cli.add_command(analytics_cli)
        csrf = app.extensions.get("csrf")
        if csrf is not None and hasattr(csrf, "exempt"):
            csrf.exempt(f"{collect.__name__}.collect")
        # Flask-Migrate: generated migrations import the package's column types.
        migrate = app.extensions.get("migrate")
        if migrate is not None and isinstance(getattr(migrate, "configure_args", None), dict):
            install_render_item(migrate.configure_args)

    def state(self, app: Flask | None = None) -> AppState:
        """The per-app state of ``app`` (default: the current app)."""
        if app is None:
            app = current_app._get_current_object()  # type: ignore[attr-defined]
            assert app is not None
        state = self._states.get(app)
        if state is None:
            if app.extensions.get("analytics") is None:
                raise RuntimeError(
                    "Analytics is not registered on this app. Did you forget to call init_app?"
                )
            raise RuntimeError("This app is registered with another Analytics instance.")
        return state

    # -- host callbacks ------------------------------------------------------------------

    def enrich(self, func: F) -> F:
        """Register ``func(event: dict, request)`` to fill in fields of every event."""
        self.hooks.enrichers.append(func)
        return func

    def dimension(self, name: str, *, label: str | None = None) -> None:
        """Declare custom event column ``name`` a dimension: daily rollups in
        ``analytics_daily_dimension``, a dashboard panel and an API/CSV breakdown."""
        check_dimension(self.Event, name)
        if any(d.name == name for d in self.hooks.dimensions):
            raise ValueError(f"dimension({name!r}) is already declared.")
        label = label or name.replace("_", " ").capitalize()
        self.hooks.dimensions.append(CustomDimension(name, label))

    def goal(
        self,
        name: str,
        *,
        event: str | None = None,
        page: str | None = None,
        props: Mapping[str, str | int] | None = None,
    ) -> Goal:
        """Declare a goal: custom event ``event`` or a pageview whose path matches the
        glob ``page`` (``*``: any characters), with property values ``props`` if given.
        Its conversions, conversion rates and revenue are on the Goals panel, in
        ``goal=NAME`` breakdowns and behind ``filter=goal:is:NAME``."""
        goal = make_goal(name, event=event, page=page, props=props)
        if any(g.name == name for g in self.hooks.goals):
            raise GoalError(f"goal({name!r}) is already declared.")
        for state in self._states.values():
            self.hooks.app_goals((*state.settings.goals, goal))
        self.hooks.goals.append(goal)
        return goal

    def funnel(self, name: str, steps: list[str] | tuple[str, ...]) -> Funnel:
        """Declare a funnel: 2 to 8 goal names, in order (see README "Funnels")."""
        funnel = make_funnel(name, steps)
        if any(f.name == name for f in self.hooks.funnels):
            raise GoalError(f"funnel({name!r}) is already declared.")
        for state in self._states.values():
            goals = self.hooks.app_goals(state.settings.goals)
            self.hooks.app_funnels((*state.settings.funnels, funnel), goals)
        self.hooks.funnels.append(funnel)
        return funnel

    def daily_aggregation(self, func: F) -> F:
        """Register ``func(conn, day, events)`` to maintain the host's own daily tables.

        It runs inside each day's aggregation transaction with ``events``, that day's
        raw + archived events (all columns) as a subquery, and must delete and rewrite
        its rows for ``day`` so that re-running a day stays idempotent.
        """
        self.hooks.daily_aggregations.append(func)
        return func

    def dashboard_access(self, func: F) -> F:
        """Register the callback deciding who may see the dashboard (closed without one)."""
        self.hooks.access = func
        return func

    # -- jobs, inline ---------------------------------------------------------------------

    def aggregate(self, day: dt.date, *, force: bool = False) -> AggregationResult:
        """Recompute every daily table for local ``day`` (idempotent, one transaction)."""
        return aggregate_day(self.state(), day, force=force)

    def aggregate_range(
        self,
        start: dt.date,
        end: dt.date,
        *,
        force: bool = False,
        progress: Callable[[dt.date], None] | None = None,
    ) -> list[AggregationResult]:
        """Aggregate every local day from ``start`` to ``end`` inclusive."""
        return aggregate_range(self.state(), start, end, force=force, progress=progress)

    def archive(
        self,
        older_than_days: int | None = None,
        *,
        batch_size: int = 10_000,
        dry_run: bool = False,
    ) -> ArchiveResult:
        """Move aggregated raw events older than the retention into the archive."""
        return archive(
            self.state(), older_than_days=older_than_days, batch_size=batch_size, dry_run=dry_run
        )

    def purge(self, older_than_days: int | None = None, *, dry_run: bool = False) -> PurgeResult:
        """Delete archived events older than ``ANALYTICS_ARCHIVE_RETENTION_DAYS``."""
        return purge(self.state(), older_than_days=older_than_days, dry_run=dry_run)

    # -- server-side tracking ------------------------------------------------------------

    def track(
        self,
        name: str,
        *,
        url: str | None = None,
        referrer: str | None = None,
        ip: str | None = None,
        user_agent: str | None = None,
        timestamp: dt.datetime | None = None,
        props: Mapping[str, Any] | None = None,
        event_id: str | None = None,
        revenue: tuple[Decimal | int | str, str] | None = None,
        request: flask.Request | None = None,
        **fields: Any,
    ) -> EventMixin | None:
        """Record an event from Python through the same pipeline as the collect endpoint.

        Returns the stored event (a detached model instance), or None when it was dropped
        (bot, excluded, duplicate event id...). Invalid input raises ``InvalidEvent``: a
        wrong type, a value its column cannot hold (custom columns too), a timestamp that
        is not a ``datetime``, before 2000 or in the future beyond
        ``ingest.track.FUTURE_SKEW`` (5 minutes).
        ``revenue=(Decimal("12.50"), "EUR")`` records revenue: an exact amount (a Decimal,
        an int or a decimal string; a float raises, being inexact; negative for refunds)
        and an active ISO 4217 code in upper case.
        ``fields`` may set ``screen_width``, ``engagement_ms``, ``scroll_depth`` and any
        custom column of the event model.

        ``request=request`` (a server-side conversion: a purchase, a signup) takes the
        visitor from the request as the collect endpoint does (client IP through
        ``ANALYTICS_TRUSTED_PROXIES``, user agent, host: the same daily visitor hash as
        the browser's events, so the event falls in the visitor's current visit and is
        attributed to its source, channel, UTM and entry page) and honours its Do Not
        Track; ``url`` defaults to the request's URL. ``ip`` and ``user_agent`` given
        explicitly win over the request's.
        """
        state = self.state()
        table: sa.Table = self.Event.__table__
        dnt = False
        if request is not None:
            if url is None:
                url = iri_to_uri(request.url)
            if ip is None:
                settings = state.settings
                forwarded = (
                    request.environ.get("HTTP_X_FORWARDED_FOR")
                    if settings.trusted_proxies
                    else None
                )
                ip = privacy.client_ip(request.remote_addr, forwarded, settings.trusted_proxies)
            if user_agent is None:
                user_agent = request.environ.get("HTTP_USER_AGENT", "")
            environ = request.environ
            dnt = environ.get("HTTP_DNT") == "1" or environ.get("HTTP_SEC_GPC") == "1"
        event = build_event(
            table,
            _BUILTIN_COLUMNS,
            state.clock.utcnow(),
            name,
            url=url,
            referrer=referrer,
            timestamp=timestamp,
            props=props,
            event_id=event_id,
            fields=fields,
            revenue=revenue,
        )
        # The request being served (the one given, else Flask's current one), if any.
        current = (
            request
            if request is not None
            else flask.request._get_current_object()  # type: ignore[attr-defined]
            if has_request_context()
            else None
        )
        info = pipeline.RequestInfo(
            ip=check_ip(ip),
            user_agent=check_optional_text(user_agent, "user_agent"),
            dnt=dnt,
            # The language of the request being served, when there is one.
            accept_language=(
                current.environ.get("HTTP_ACCEPT_LANGUAGE") if current is not None else None
            ),
            from_browser=False,
            request=current,
        )
        result = pipeline.process(state, [event], info)
        if not result.stored:
            return None
        row = result.stored[0]
        stored: EventMixin = self.Event(**{k: v for k, v in row.items() if k in table.c})
        return stored

    def track_model(
        self,
        model: type[Any],
        *,
        name: str,
        revenue: Callable[[Any], Revenue] | None = None,
        props: Callable[[Any], Mapping[str, Any] | None] | Mapping[str, Any] | None = None,
        url: Callable[[Any], str] | str | None = None,
    ) -> None:
        """Track event ``name`` for every row of ``model`` committed through ``db.session``.

        ``analytics.track_model(Order, name="purchase",
        revenue=lambda o: (o.total, o.currency), props=lambda o: {"plan": o.plan})``:
        after the transaction that inserted the row commits (never for a rolled-back
        one), once per row: the event id is derived from the table and the primary key,
        so committing, re-saving or re-tracking the row never adds a second event.
        ``revenue`` and ``props`` are read from the row when it is flushed. The event
        takes its visitor and URL from the request that committed the row, when there is
        one (as ``track(request=...)``); ``url`` (a string or a function of the row)
        names the page otherwise (default: ``/`` on ``SERVER_NAME`` or localhost).
        """
        check_name(name, "name")
        if self._committed is None:
            self._committed = CommittedRows(self.db.session, self.track, _default_url)
        self._committed.add(TrackedModel(model, name, revenue, props, url))


def _default_url() -> str:
    return f"http://{current_app.config.get('SERVER_NAME') or 'localhost'}/"
