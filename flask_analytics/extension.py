"""The ``Analytics`` Flask extension and its per-app state."""

from __future__ import annotations

import datetime as dt
import functools
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from flask import Flask, current_app, has_request_context, request

from .config import DEFAULTS, Settings, load_settings, load_spam_list
from .dimensions import DailyAggregation, Dimension, check_dimension
from .errors import ConfigError, InvalidEvent
from .ingest import pipeline
from .ingest.geo import CountryReader, open_database
from .ingest.insert import EventInserter
from .ingest.payload import (
    ENGAGEMENT_MAX_MS,
    SCREEN_MAX,
    IncomingEvent,
    Limits,
    check_event_id,
    check_int,
    check_name,
    check_props,
    check_referrer,
    split_url,
)
from .ingest.privacy import SALT_KEEP_DAYS, RedisSaltMirror, SaltStore
from .ingest.useragent import UserAgentInfo, parse_user_agent
from .models import EventMixin, Models, build_models
from .ratelimit import CollectLimiter

if TYPE_CHECKING:
    from .buffer import RedisBuffer

F = TypeVar("F", bound=Callable[..., Any])

#: Largest clock skew tolerated for an explicit ``track()`` timestamp in the future.
FUTURE_SKEW = dt.timedelta(minutes=5)


def utcnow() -> dt.datetime:
    """Naive UTC now: every stored time is naive UTC."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class AnalyticsState:
    """Everything the extension keeps for one app, at ``app.extensions["analytics"]``."""

    def __init__(self, ext: Analytics, app: Flask, settings: Settings) -> None:
        self.ext = ext
        self.settings = settings
        self.models: Models = ext.models
        self.db = ext.db
        self.steps: tuple[pipeline.Step, ...] = pipeline.STEPS
        self.enrichers = ext._enrichers
        self.parse_user_agent: Callable[[str], UserAgentInfo] = functools.lru_cache(
            maxsize=settings.ua_cache_size
        )(parse_user_agent)
        self.geo_reader: CountryReader | None = (
            open_database(settings.geoip_database) if settings.geoip_database else None
        )
        self.salts = SaltStore(self.models.Salt, self.engine, self.today, utcnow)
        self.limits = Limits(
            max_offset_ms=settings.max_offset_ms,
            client_fields=_client_field_types(self.models.Event, settings.client_fields),
        )
        self.limiter: CollectLimiter | None = (
            CollectLimiter(settings.rate_limit, settings.rate_limit_storage)
            if settings.rate_limit
            else None
        )
        self.spam_domains: frozenset[str] = (
            load_spam_list(settings.referrer_spam_list)
            if settings.referrer_spam_list
            else frozenset()
        )
        self.drops: Counter[str] = Counter()
        self.buffer: RedisBuffer | None = None
        if settings.ingest_buffer == "redis":
            try:
                from .buffer import RedisBuffer
            except ImportError as exc:
                raise ConfigError(
                    f"ANALYTICS_INGEST_BUFFER = 'redis' needs the redis package ({exc.name} "
                    "is not installed): pip install 'flask-analytics[redis]'."
                ) from exc
            self.buffer = RedisBuffer(settings, self.models.Event.__table__)
            # Collect must not need the database in buffered mode, not even for a salt.
            self.salts.mirror = RedisSaltMirror(
                self.buffer.redis, f"{settings.buffer_stream}:salt", self._salt_expiry
            )
        self._autocommit: weakref.WeakKeyDictionary[sa.Engine, sa.Engine] = (
            weakref.WeakKeyDictionary()
        )
        self._inserters: weakref.WeakKeyDictionary[sa.Engine, EventInserter] = (
            weakref.WeakKeyDictionary()
        )
        self._drops_lock = threading.Lock()

    def engine(self) -> sa.Engine:
        """The engine of the event tables (the host's default bind)."""
        engine: sa.Engine = self.db.engine
        return engine

    def autocommit_engine(self) -> sa.Engine:
        """The events engine in autocommit mode (same pool), for single-statement writes."""
        engine = self.engine()
        cached = self._autocommit.get(engine)
        if cached is None:
            cached = self._autocommit[engine] = engine.execution_options(
                isolation_level="AUTOCOMMIT"
            )
        return cached

    def inserter(self, engine: sa.Engine) -> EventInserter:
        """The direct ingest path's writer of the event table on ``engine``."""
        inserter = self._inserters.get(engine)
        if inserter is None:
            inserter = self._inserters[engine] = EventInserter(self.models.Event.__table__, engine)
        return inserter

    def _salt_expiry(self, day: dt.date) -> dt.datetime:
        """When the salt of local ``day`` must be gone: the end of the next local day."""
        return dt.datetime.combine(
            day + dt.timedelta(days=SALT_KEEP_DAYS + 1), dt.time(0), tzinfo=self.settings.timezone
        )

    def local_date(self, utc: dt.datetime) -> dt.date:
        """Local date (``ANALYTICS_TIMEZONE``) of a naive UTC time."""
        return utc.replace(tzinfo=dt.timezone.utc).astimezone(self.settings.timezone).date()

    def today(self) -> dt.date:
        return self.local_date(utcnow())

    def count_drops(self, dropped: Mapping[str, int]) -> None:
        if dropped:
            with self._drops_lock:
                self.drops.update(dropped)


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


def _client_field_types(event_model: Any, names: tuple[str, ...]) -> dict[str, Any]:
    table: sa.Table = event_model.__table__
    builtin = set(EventMixin.__annotations__)
    types = {}
    for name in names:
        if name in builtin or name not in table.c:
            raise ConfigError(
                f"ANALYTICS_CLIENT_FIELDS names {name!r}, which is not a custom column of "
                f"{event_model.__name__} (declare it on your EventMixin subclass)."
            )
        types[name] = table.c[name].type
    return types


class Analytics:
    """Privacy-first, cookieless web analytics for a Flask app.

    ``Analytics(app, db=db)`` or, with the factory pattern, ``Analytics(db=db)`` then
    ``analytics.init_app(app)``. ``event_model`` is an ``EventMixin`` subclass adding
    custom columns; the default model has only the built-in ones.
    """

    def __init__(
        self, app: Flask | None = None, *, db: Any = None, event_model: Any = None
    ) -> None:
        if db is None:
            raise TypeError(
                "Analytics needs your Flask-SQLAlchemy instance: Analytics(app, db=db)."
            )
        self.db: Any = db
        self.models = build_models(db, event_model)
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
        self.DailyDimension = self.models.DailyDimension
        self._enrichers: list[Callable[[dict[str, Any], Any], None]] = []
        self._access: Callable[[], bool] | None = None
        #: Custom columns shown as breakdowns, in declaration order.
        self.dimensions: list[Dimension] = []
        #: Host functions run inside every day's aggregation transaction.
        self.daily_aggregations: list[DailyAggregation] = []
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the collect endpoint, script, dashboard and CLI on ``app``."""
        if "analytics" in app.extensions:
            raise RuntimeError("Analytics is already registered on this app.")
        registered: Any = app.extensions.get("sqlalchemy")
        if registered is not self.db:
            raise RuntimeError(
                "Call db.init_app(app) with the same SQLAlchemy instance given to "
                "Analytics(db=...) before analytics.init_app(app)."
            )
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value.copy() if isinstance(value, list) else value)
        settings = load_settings(app.config)
        app.extensions["analytics"] = AnalyticsState(self, app, settings)
        if settings.sqlite_wal:
            with app.app_context():
                _use_sqlite_wal(self.db.engine)

        from . import collect, dashboard
        from .cli import analytics_cli
        from .tracker import analytics_script

        app.register_blueprint(collect.make_blueprint(settings))
        app.register_blueprint(dashboard.make_blueprint(settings))
        app.add_template_global(analytics_script, "analytics_script")
        app.cli.add_command(analytics_cli)
        csrf = app.extensions.get("csrf")
        if csrf is not None and hasattr(csrf, "exempt"):
            csrf.exempt("flask_analytics.collect.collect")

    def state(self, app: Flask | None = None) -> AnalyticsState:
        """The per-app state of ``app`` (default: the current app)."""
        app = app or current_app._get_current_object()  # type: ignore[attr-defined]
        try:
            state: AnalyticsState = app.extensions["analytics"]
        except KeyError:
            raise RuntimeError(
                "Analytics is not registered on this app. Did you forget to call init_app?"
            ) from None
        if state.ext is not self:
            raise RuntimeError("This app is registered with another Analytics instance.")
        return state

    # -- host callbacks ------------------------------------------------------------------

    def enrich(self, func: F) -> F:
        """Register ``func(event: dict, request)`` to fill in fields of every event."""
        self._enrichers.append(func)
        return func

    def dimension(self, name: str, *, label: str | None = None) -> None:
        """Declare custom event column ``name`` a dimension: daily rollups in
        ``analytics_daily_dimension``, a dashboard panel and an API/CSV breakdown."""
        check_dimension(self.Event, name)
        if any(d.name == name for d in self.dimensions):
            raise ValueError(f"dimension({name!r}) is already declared.")
        self.dimensions.append(Dimension(name, label or name.replace("_", " ").capitalize()))

    def daily_aggregation(self, func: F) -> F:
        """Register ``func(conn, day, events)`` to maintain the host's own daily tables.

        It runs inside each day's aggregation transaction with ``events``, that day's
        raw + archived events (all columns) as a subquery, and must delete and rewrite
        its rows for ``day`` so that re-running a day stays idempotent.
        """
        self.daily_aggregations.append(func)
        return func

    def dashboard_access(self, func: F) -> F:
        """Register the callback deciding who may see the dashboard (closed without one)."""
        self._access = func
        return func

    # -- jobs, inline ---------------------------------------------------------------------

    def aggregate(self, day: dt.date, *, force: bool = False) -> Any:
        """Recompute every daily table for local ``day`` (idempotent, one transaction)."""
        from .aggregate import aggregate_day

        return aggregate_day(self.state(), day, force=force)

    def aggregate_range(
        self,
        start: dt.date,
        end: dt.date,
        *,
        force: bool = False,
        progress: Callable[[dt.date], None] | None = None,
    ) -> list[Any]:
        """Aggregate every local day from ``start`` to ``end`` inclusive."""
        from .aggregate import aggregate_range

        return aggregate_range(self.state(), start, end, force=force, progress=progress)

    def archive(
        self,
        older_than_days: int | None = None,
        *,
        batch_size: int = 10_000,
        dry_run: bool = False,
    ) -> Any:
        """Move aggregated raw events older than the retention into the archive."""
        from .archive import archive

        return archive(
            self.state(), older_than_days=older_than_days, batch_size=batch_size, dry_run=dry_run
        )

    def purge(self, older_than_days: int | None = None, *, dry_run: bool = False) -> Any:
        """Delete archived events older than ``ANALYTICS_ARCHIVE_RETENTION_DAYS``."""
        from .archive import purge

        return purge(self.state(), older_than_days=older_than_days, dry_run=dry_run)

    # -- server-side tracking ------------------------------------------------------------

    def track(
        self,
        name: str,
        *,
        url: str,
        referrer: str | None = None,
        ip: str | None = None,
        user_agent: str | None = None,
        timestamp: dt.datetime | None = None,
        props: Mapping[str, Any] | None = None,
        event_id: str | None = None,
        **fields: Any,
    ) -> Any:
        """Record an event from Python through the same pipeline as the collect endpoint.

        Returns the stored event (a detached model instance), or None when it was dropped
        (bot, excluded, duplicate event id...). Invalid input raises ``InvalidEvent``.
        ``fields`` may set ``screen_width``, ``engagement_ms``, ``scroll_depth`` and any
        custom column of the event model.
        """
        state = self.state()
        now = utcnow()
        if timestamp is None:
            created_at = now
        else:
            if timestamp.tzinfo is not None:
                timestamp = timestamp.astimezone(dt.timezone.utc).replace(tzinfo=None)
            if timestamp > now + FUTURE_SKEW:
                raise InvalidEvent("timestamp is in the future")
            created_at = timestamp
        hostname, path, utm, click_ids = split_url(url, "url")
        event = IncomingEvent(
            name=check_name(name, "name"),
            hostname=hostname,
            path=path,
            created_at=created_at,
            event_id=check_event_id(event_id, "event_id") if event_id is not None else _uuid(),
            referrer=check_referrer(referrer, "referrer"),
            utm=utm,
            click_ids=click_ids,
            props=check_props(dict(props) if props is not None else None, "props"),
        )
        table: sa.Table = self.Event.__table__
        for key, value in fields.items():
            if key in ("screen_width", "engagement_ms", "scroll_depth"):
                high = {
                    "screen_width": SCREEN_MAX,
                    "engagement_ms": ENGAGEMENT_MAX_MS,
                    "scroll_depth": 100,
                }[key]
                setattr(event, key, None if value is None else check_int(value, key, 0, high))
            elif key in table.c and key not in EventMixin.__annotations__:
                event.extra[key] = value
            else:
                raise TypeError(f"track() got an unexpected field {key!r}")
        info = pipeline.RequestInfo(
            ip=ip,
            user_agent=user_agent,
            from_browser=False,
            request=request._get_current_object() if has_request_context() else None,  # type: ignore[attr-defined]
        )
        result = pipeline.process(state, [event], info)
        if not result.stored:
            return None
        row = result.stored[0]
        return self.Event(**{k: v for k, v in row.items() if k in table.c})


def _uuid() -> str:
    import uuid

    return str(uuid.uuid4())
