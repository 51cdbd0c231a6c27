"""One app's state: settings, models, engines, the clock, the ingest pipeline's parts
and the Redis buffer, built once by ``Analytics.init_app``.

This is where the layers are put together: :class:`AppState` implements the protocols
the lower layers are written against (``core.context.Context``,
``ingest.context.IngestContext``, ``buffer.context.BufferContext``) and hands the
pipeline its sink. The web, task and CLI layers reach it through :func:`current_state`.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Flask, current_app, has_app_context

from .config import Settings, load_spam_list
from .core.clock import Clock, local_date
from .core.hooks import Hooks
from .errors import ConfigError
from .ingest import pipeline
from .ingest.endpoints import EndpointMatcher
from .ingest.geo import CountryReader, open_database
from .ingest.insert import EventInserter
from .ingest.payload import Limits
from .ingest.privacy import SALT_KEEP_DAYS, RedisSaltMirror, SaltStore
from .ingest.ratelimit import CollectLimiter
from .ingest.sinks import DirectSink, Sink
from .ingest.useragent import UserAgentInfo, parse_user_agent
from .models import EventMixin, Models

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

    from .buffer import RedisBuffer


class AppState:
    """Everything the extension keeps for one app (``analytics.state(app)``)."""

    def __init__(
        self,
        app: Flask,
        *,
        db: SQLAlchemy,
        models: Models,
        settings: Settings,
        hooks: Hooks,
        clock: Clock,
        request_flush: Callable[[AppState], None],
    ) -> None:
        self._app = weakref.ref(app)
        self.db = db
        self.models = models
        self.settings = settings
        self.hooks = hooks
        self.clock = clock
        self.steps: tuple[pipeline.Step, ...] = pipeline.STEPS
        self.match_endpoint: Callable[[str, str], str | None] = EndpointMatcher(app.url_map)
        self.parse_user_agent: Callable[[str], UserAgentInfo] = functools.lru_cache(
            maxsize=settings.ua_cache_size
        )(parse_user_agent)
        self.geo_reader: CountryReader | None = (
            open_database(settings.geoip_database) if settings.geoip_database else None
        )
        self.salts = SaltStore(self.models.Salt, self.engine, self.today, clock.utcnow)
        self.limits = Limits(
            max_offset_ms=settings.max_offset_ms,
            client_fields=_client_field_types(self.models.Event, settings.client_fields),
        )
        self.limiter = CollectLimiter.from_settings(settings)
        self.spam_domains: frozenset[str] = (
            load_spam_list(settings.referrer_spam_list)
            if settings.referrer_spam_list
            else frozenset()
        )
        self.drops: Counter[str] = Counter()
        self._drops_lock = threading.Lock()
        self._autocommit: weakref.WeakKeyDictionary[sa.Engine, sa.Engine] = (
            weakref.WeakKeyDictionary()
        )
        self._inserters: weakref.WeakKeyDictionary[sa.Engine, EventInserter] = (
            weakref.WeakKeyDictionary()
        )
        self.direct_sink: Sink = DirectSink(
            self.models.Event.__table__, self.engine, self.autocommit_engine, self.inserter
        )
        self.sink: Sink = self.direct_sink
        self.buffer: RedisBuffer | None = None
        #: The sink counts the rate limit in its own round trip (the limiter's counters
        #: live in the buffer's Redis): collect hands it the count instead of checking first.
        self.limit_in_sink = False
        if settings.ingest_buffer == "redis":
            self._use_buffer(request_flush)

    def _use_buffer(self, request_flush: Callable[[AppState], None]) -> None:
        try:
            from .buffer import RedisBuffer
            from .buffer.sink import BufferSink
        except ImportError as exc:
            raise ConfigError(
                f"ANALYTICS_INGEST_BUFFER = 'redis' needs the redis package ({exc.name} "
                "is not installed): pip install 'flask-analytics[redis]'."
            ) from exc
        self.buffer = RedisBuffer(self.settings, self.models.Event.__table__)
        self.sink = BufferSink(self.buffer, self.direct_sink, lambda: request_flush(self))
        self.limit_in_sink = self.buffer.shares_redis_with(self.limiter)
        # Collect must not need the database in buffered mode, not even for a salt.
        self.salts.mirror = RedisSaltMirror(
            self.buffer.redis,
            f"{self.settings.buffer_stream}:salt",
            self.salt_expiry,
            self.clock.now,
        )

    @property
    def app(self) -> Flask:
        """The app this state belongs to."""
        app = self._app()
        if app is None:  # pragma: no cover - the app owns its state
            raise RuntimeError("The app of this analytics state no longer exists.")
        return app

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

    def salt_expiry(self, day: dt.date) -> dt.datetime:
        """When the salt of local ``day`` must be gone: the end of the next local day."""
        return dt.datetime.combine(
            day + dt.timedelta(days=SALT_KEEP_DAYS + 1), dt.time(0), tzinfo=self.settings.timezone
        )

    def local_date(self, utc: dt.datetime) -> dt.date:
        """Local date (``ANALYTICS_TIMEZONE``) of a naive UTC time."""
        return local_date(utc, self.settings.timezone)

    def today(self) -> dt.date:
        """The current local date (``ANALYTICS_TIMEZONE``), from the app's clock."""
        return self.clock.today(self.settings.timezone)

    def count_drops(self, dropped: Mapping[str, int]) -> None:
        """Add dropped events to the per-reason counters."""
        if dropped:
            with self._drops_lock:
                self.drops.update(dropped)


def current_state(app: Flask | None = None) -> AppState:
    """The analytics state of ``app`` (default: the current app)."""
    if app is None:
        if not has_app_context():
            raise RuntimeError(
                "flask-analytics needs the Flask app here: push an app context "
                "(`with app.app_context():`), or run jobs with `flask analytics worker`."
            )
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    ext = app.extensions.get("analytics")
    if ext is None:
        raise RuntimeError(
            "Analytics is not registered on this app. Did you forget to call init_app?"
        )
    state: AppState = ext.state(app)
    return state


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
