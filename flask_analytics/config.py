"""Default values of every ``ANALYTICS_*`` configuration key.

Each key is documented by the ``#:`` comment above it. ``init_app`` applies these with
``app.config.setdefault`` and validates the result once, so mistakes fail at start-up.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from limits import parse as parse_rate

from .errors import ConfigError
from .goals import Funnel, Goal, GoalError, funnels_from_config, goals_from_config

DEFAULTS: dict[str, Any] = {
    #: IANA time zone name; the day boundary of every daily row.
    "ANALYTICS_TIMEZONE": "UTC",
    #: URL path of the collect endpoint the tracker posts to.
    "ANALYTICS_COLLECT_URL": "/_analytics/collect",
    #: URL path the tracker script is served from.
    "ANALYTICS_SCRIPT_URL": "/_analytics/script.js",
    #: Serve the readable tracker.js instead of tracker.min.js (also when app.debug is on).
    "ANALYTICS_TRACKER_DEBUG": False,
    #: URL prefix of the admin dashboard.
    "ANALYTICS_DASHBOARD_URL": "/analytics",
    #: Template the dashboard layout extends (put the dashboard inside your admin chrome).
    "ANALYTICS_BASE_TEMPLATE": "analytics/base.html",
    #: Content-Security-Policy of dashboard responses: None is the built-in strict policy,
    #: "" sends none (e.g. when your own base template needs inline scripts).
    "ANALYTICS_DASHBOARD_CSP": None,
    #: Seconds today's live dashboard numbers are reused across requests (0: never).
    "ANALYTICS_DASHBOARD_LIVE_TTL": 30,
    #: Redis URL for RQ jobs; unset means every job runs inline.
    "ANALYTICS_REDIS_URL": None,
    #: RQ queue name the jobs are enqueued on.
    "ANALYTICS_QUEUE": "analytics",
    #: Days raw events are kept before they are archived.
    "ANALYTICS_RETENTION_DAYS": 90,
    #: Days archived events are kept before they are purged; None keeps them forever.
    "ANALYTICS_ARCHIVE_RETENTION_DAYS": None,
    #: Seconds of inactivity that end a session (visit).
    "ANALYTICS_SESSION_TIMEOUT": 1800,
    #: Event names that do not end a bounce: a one-page visit whose other events all
    #: have these names is still a bounce (``engagement`` is interactive unless listed).
    "ANALYTICS_NON_INTERACTIVE_EVENTS": ["web_vitals"],
    #: Record a pageview of every HTML GET the app answers with 2xx or 404, in
    #: ``after_request`` (endpoint, status and response time included); the tracker's
    #: first pageview of such a page carries the same event id, so it counts once.
    "ANALYTICS_SERVER_PAGEVIEWS": False,
    #: Do not record requests that send ``DNT: 1`` or ``Sec-GPC: 1``.
    "ANALYTICS_RESPECT_DNT": True,
    #: Page paths never recorded: exact paths or globs such as ``/admin/*``.
    "ANALYTICS_EXCLUDED_PATHS": [],
    #: Client networks never recorded, as CIDRs (``203.0.113.0/24``) or single addresses.
    "ANALYTICS_EXCLUDED_IPS": [],
    #: Number of reverse proxies in front of the app whose X-Forwarded-For is trusted.
    "ANALYTICS_TRUSTED_PROXIES": 0,
    #: Path of a MaxMind/DB-IP country ``.mmdb`` file (needs the ``geo`` extra).
    "ANALYTICS_GEOIP_DATABASE": None,
    #: Request header holding an ISO country code set by your CDN (e.g. ``CF-IPCountry``).
    "ANALYTICS_COUNTRY_HEADER": None,
    #: Without ANALYTICS_GEOIP_DATABASE, countries the header does not give come from the
    #: built-in table (iptocc: the RIRs' delegations); False leaves them unknown.
    "ANALYTICS_BUILTIN_COUNTRIES": True,
    #: What the visitor hash takes of the page's host: "hostname" (a visitor of
    #: a.example.com and of b.example.com counts twice) or "registrable_domain" (the
    #: domain under its public suffix, example.com: one visitor across subdomains).
    "ANALYTICS_VISITOR_HOST": "hostname",
    #: Goals, as data: a list of ``{"name", "event" or "page", "props"}`` mappings, the
    #: keywords of ``analytics.goal`` (see README "Goals and funnels").
    "ANALYTICS_GOALS": [],
    #: Funnels, as data: a list of ``{"name", "steps": [goal names]}`` mappings.
    "ANALYTICS_FUNNELS": [],
    #: Hostnames whose pages the endpoint records (``*.example.com`` allowed); None means
    #: only the host the collect request was sent to.
    "ANALYTICS_ALLOWED_HOSTS": None,
    #: Origins allowed to post to the collect endpoint cross-origin (``*`` for any).
    "ANALYTICS_CORS_ORIGINS": [],
    #: Events one network (the anonymized IP prefix: an IPv4 /24, an IPv6 /48) may send,
    #: sustained, over a sliding window, e.g. "600/minute"; None: no rate limit.
    "ANALYTICS_RATE_LIMIT": "600/minute",
    #: Events over ANALYTICS_RATE_LIMIT a network may still send, over this longer sliding
    #: window (a burst: limit + burst at most at any moment); None: no burst.
    "ANALYTICS_RATE_LIMIT_BURST": "300/hour",
    #: Where rate-limit counters live: None uses ANALYTICS_REDIS_URL (shared by every
    #: process) when set, else "memory://" (per process); or a "redis://" URL.
    "ANALYTICS_RATE_LIMIT_STORAGE": None,
    #: Origins allowed to call ``/analytics/api/*`` from a browser with an API token
    #: (CORS), e.g. ``["https://status.example.com"]``; "*" allows any.
    "ANALYTICS_API_CORS_ORIGINS": [],
    #: Requests one API token may make over a sliding window; None: no limit. Counted in
    #: ANALYTICS_RATE_LIMIT_STORAGE's storage.
    "ANALYTICS_API_RATE_LIMIT": "600/minute",
    #: A referrer-spam list file, one domain per line (e.g. Matomo's referrer-spam-list
    #: spammers.txt, kept up to date by you); events referred from those domains are dropped.
    "ANALYTICS_REFERRER_SPAM_LIST": None,
    #: Custom event columns the browser may set (anything else it sends is ignored).
    "ANALYTICS_CLIENT_FIELDS": [],
    #: Maximum events in one collect request.
    "ANALYTICS_MAX_BATCH": 50,
    #: Maximum collect request body size in bytes (413 above it).
    "ANALYTICS_MAX_BODY_BYTES": 64 * 1024,
    #: Largest ``offset_ms`` a queued browser event may carry (milliseconds).
    "ANALYTICS_MAX_OFFSET_MS": 24 * 3600 * 1000,
    #: Put SQLite databases in WAL mode (readers never block the writer; the embedded default).
    "ANALYTICS_SQLITE_WAL": True,
    #: Size of the in-process user agent parse cache (entries).
    "ANALYTICS_UA_CACHE_SIZE": 4096,
    #: Where the collect endpoint puts events: "direct" (INSERT per request) or "redis"
    #: (a Redis Stream, bulk-written by `flask analytics flush --loop` or the flush job).
    "ANALYTICS_INGEST_BUFFER": "direct",
    #: Redis URL of the ingest buffer; None uses ANALYTICS_REDIS_URL.
    "ANALYTICS_BUFFER_REDIS_URL": None,
    #: Redis key of the buffer's stream (``<key>:dead`` holds rows the database refused).
    "ANALYTICS_BUFFER_STREAM": "flask_analytics:buffer",
    #: Buffered requests (stream entries) written per flush transaction.
    "ANALYTICS_BUFFER_BATCH": 1000,
    #: Seconds between flushes of `flask analytics flush --loop`.
    "ANALYTICS_BUFFER_FLUSH_INTERVAL": 2.0,
    #: Buffered requests that trigger a flush before the interval ends.
    "ANALYTICS_BUFFER_FLUSH_THRESHOLD": 1000,
    #: Seconds a flusher's unacknowledged entries wait before another flusher takes them
    #: over (the first one died or stalled); set it above your slowest flush.
    "ANALYTICS_BUFFER_CLAIM_IDLE": 60,
    #: Stream entries above which the endpoint writes directly (no flusher keeps up);
    #: None: no limit.
    "ANALYTICS_BUFFER_MAX_LEN": 1_000_000,
    #: Seconds Redis remembers a buffered event id to answer duplicates at once; 0: off
    #: (the database still drops them at flush time).
    "ANALYTICS_BUFFER_DEDUPE_TTL": 0,
    #: At start-up, when the buffer's Redis may lose acknowledged events (no AOF, or a
    #: maxmemory-policy other than noeviction): "warn" (log it), "refuse" (raise), "off".
    "ANALYTICS_BUFFER_DURABILITY": "warn",
}

#: Values of ``ANALYTICS_INGEST_BUFFER``.
INGEST_BUFFERS = ("direct", "redis")
#: Values of ``ANALYTICS_BUFFER_DURABILITY``.
BUFFER_DURABILITY = ("warn", "refuse", "off")
#: Values of ``ANALYTICS_VISITOR_HOST``.
VISITOR_HOSTS = ("hostname", "registrable_domain")


@dataclass(frozen=True)
class Settings:
    """The validated ``ANALYTICS_*`` configuration of one app."""

    timezone: ZoneInfo
    collect_url: str
    script_url: str
    dashboard_url: str
    base_template: str
    redis_url: str | None
    queue: str
    retention_days: int
    archive_retention_days: int | None
    session_timeout: int
    #: ``ANALYTICS_NON_INTERACTIVE_EVENTS``: stripped, de-duplicated, sorted.
    non_interactive_events: tuple[str, ...]
    respect_dnt: bool
    server_pageviews: bool
    excluded_paths: tuple[str, ...]
    excluded_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    trusted_proxies: int
    geoip_database: str | None
    country_header: str | None
    builtin_countries: bool
    visitor_host: str
    allowed_hosts: tuple[str, ...] | None
    cors_origins: tuple[str, ...]
    client_fields: tuple[str, ...]
    max_batch: int
    max_body_bytes: int
    max_offset_ms: int
    ua_cache_size: int
    sqlite_wal: bool
    rate_limit: str | None
    rate_limit_burst: str | None
    #: ``ANALYTICS_API_CORS_ORIGINS`` and ``ANALYTICS_API_RATE_LIMIT`` (API tokens).
    api_cors_origins: tuple[str, ...]
    api_rate_limit: str | None
    referrer_spam_list: str | None
    #: ``ANALYTICS_RATE_LIMIT_STORAGE``, else the Redis of ``ANALYTICS_REDIS_URL`` or
    #: ``ANALYTICS_BUFFER_REDIS_URL``, else "memory://" (a ``limits`` storage URI).
    rate_limit_storage: str
    ingest_buffer: str
    #: ``ANALYTICS_BUFFER_REDIS_URL``, else ``ANALYTICS_REDIS_URL`` (set when buffering).
    buffer_redis_url: str | None
    buffer_stream: str
    buffer_batch: int
    buffer_flush_interval: float
    buffer_flush_threshold: int
    buffer_claim_idle: float
    buffer_max_len: int | None
    buffer_dedupe_ttl: int
    buffer_durability: str
    #: ``ANALYTICS_GOALS`` and ``ANALYTICS_FUNNELS`` (``analytics.goal``/``funnel`` add more).
    goals: tuple[Goal, ...] = ()
    funnels: tuple[Funnel, ...] = ()


def _int(config: Mapping[str, Any], key: str, low: int, *, optional: bool = False) -> Any:
    value = config[key]
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{key} must be an integer >= {low}, not {value!r}.")
    return value


def _str_list(config: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = config[key]
    if isinstance(value, str):
        value = [v for v in value.replace(",", " ").split() if v]
    if not isinstance(value, list | tuple | set | frozenset) or not all(
        isinstance(v, str) for v in value
    ):
        raise ConfigError(f"{key} must be a list of strings, not {value!r}.")
    return tuple(value)


def _event_names(config: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """A list of event names (a string: names separated by commas, as from the
    environment); ``pageview`` is not an event name here."""
    value = config[key]
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple | set | frozenset) or not all(
        isinstance(v, str) for v in value
    ):
        raise ConfigError(f"{key} must be a list of event names, not {value!r}.")
    names = {v.strip() for v in value} - {""}
    if "pageview" in names:
        raise ConfigError(f"{key} lists 'pageview': it takes custom event names only.")
    return tuple(sorted(names))


def _url_path(config: Mapping[str, Any], key: str) -> str:
    value = config[key]
    if not isinstance(value, str) or not value.startswith("/"):
        raise ConfigError(f"{key} must be a URL path starting with '/', not {value!r}.")
    return value.rstrip("/") or "/"


def _seconds(config: Mapping[str, Any], key: str) -> float:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"{key} must be a number of seconds > 0, not {value!r}.")
    return float(value)


def _buffer_settings(config: Mapping[str, Any], redis_url: str | None) -> dict[str, Any]:
    mode = config["ANALYTICS_INGEST_BUFFER"]
    if mode not in INGEST_BUFFERS:
        raise ConfigError(f"ANALYTICS_INGEST_BUFFER must be 'direct' or 'redis', not {mode!r}.")
    url = config["ANALYTICS_BUFFER_REDIS_URL"] or None
    if url is not None and not isinstance(url, str):
        raise ConfigError(f"ANALYTICS_BUFFER_REDIS_URL must be a redis:// URL, not {url!r}.")
    url = url or redis_url
    if mode == "redis" and url is None:
        raise ConfigError(
            "ANALYTICS_INGEST_BUFFER = 'redis' needs a Redis server: set "
            "ANALYTICS_BUFFER_REDIS_URL (or ANALYTICS_REDIS_URL), e.g. 'redis://localhost:6379/0'."
        )
    durability = config["ANALYTICS_BUFFER_DURABILITY"]
    if durability not in BUFFER_DURABILITY:
        raise ConfigError(
            f"ANALYTICS_BUFFER_DURABILITY must be 'warn', 'refuse' or 'off', not {durability!r}."
        )
    stream = config["ANALYTICS_BUFFER_STREAM"]
    if not isinstance(stream, str) or not stream:
        raise ConfigError(f"ANALYTICS_BUFFER_STREAM must be a Redis key name, not {stream!r}.")
    return {
        "ingest_buffer": mode,
        "buffer_redis_url": url,
        "buffer_stream": stream,
        "buffer_batch": _int(config, "ANALYTICS_BUFFER_BATCH", 1),
        "buffer_flush_interval": _seconds(config, "ANALYTICS_BUFFER_FLUSH_INTERVAL"),
        "buffer_flush_threshold": _int(config, "ANALYTICS_BUFFER_FLUSH_THRESHOLD", 1),
        "buffer_claim_idle": _seconds(config, "ANALYTICS_BUFFER_CLAIM_IDLE"),
        "buffer_max_len": _int(config, "ANALYTICS_BUFFER_MAX_LEN", 1, optional=True),
        "buffer_dedupe_ttl": _int(config, "ANALYTICS_BUFFER_DEDUPE_TTL", 0),
        "buffer_durability": durability,
    }


def _rate_limit_storage(config: Mapping[str, Any], redis_url: str | None) -> str:
    """``ANALYTICS_RATE_LIMIT_STORAGE``, else the app's Redis (shared), else memory."""
    value = config["ANALYTICS_RATE_LIMIT_STORAGE"] or redis_url
    if value is None:
        return "memory://"
    if not isinstance(value, str):
        raise ConfigError(f"ANALYTICS_RATE_LIMIT_STORAGE must be a storage URI, not {value!r}.")
    # redis-py spells unix sockets "unix://", the limits library "redis+unix://".
    return "redis+unix://" + value.removeprefix("unix://") if value.startswith("unix://") else value


def _optional_path(config: Mapping[str, Any], key: str) -> str | None:
    value = config[key]
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike):
        raise ConfigError(f"{key} must be a file path, not {value!r}.")
    return os.fspath(value)


def load_spam_list(path: str) -> frozenset[str]:
    """The domains of a referrer-spam list file (blank lines and ``#`` comments skipped)."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"ANALYTICS_REFERRER_SPAM_LIST {path!r} cannot be read: {exc}") from exc
    domains = (line.split("#", 1)[0].strip().lower().rstrip(".") for line in lines)
    return frozenset(d.removeprefix("www.") for d in domains if d)


def _goal_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    try:
        goals = goals_from_config("ANALYTICS_GOALS", config["ANALYTICS_GOALS"])
        funnels = funnels_from_config("ANALYTICS_FUNNELS", config["ANALYTICS_FUNNELS"])
    except GoalError as exc:
        raise ConfigError(str(exc)) from exc
    return {"goals": goals, "funnels": funnels}


def _rate(config: Mapping[str, Any], key: str) -> str | None:
    value = config[key] or None
    if value is None:
        return None
    try:
        parse_rate(value)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{key} {value!r} is not a rate such as '600/minute'.") from exc
    return str(value)


def load_settings(config: Mapping[str, Any]) -> Settings:
    """Validate the app's ``ANALYTICS_*`` keys, failing early with an actionable message."""
    tz_name = config["ANALYTICS_TIMEZONE"]
    try:
        timezone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"ANALYTICS_TIMEZONE {tz_name!r} is not a known time zone "
            "(use an IANA name such as 'Europe/Paris')."
        ) from exc
    networks = []
    for entry in _str_list(config, "ANALYTICS_EXCLUDED_IPS"):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ConfigError(
                f"ANALYTICS_EXCLUDED_IPS entry {entry!r} is not an IP address or CIDR "
                "(e.g. '203.0.113.0/24')."
            ) from exc
    allowed = config["ANALYTICS_ALLOWED_HOSTS"]
    allowed_hosts = None
    if allowed is not None:
        allowed_hosts = tuple(
            h.lower().rstrip(".") for h in _str_list(config, "ANALYTICS_ALLOWED_HOSTS")
        )
    header = config["ANALYTICS_COUNTRY_HEADER"]
    if header is not None and (not isinstance(header, str) or not header):
        raise ConfigError(f"ANALYTICS_COUNTRY_HEADER must be a header name, not {header!r}.")
    visitor_host = config["ANALYTICS_VISITOR_HOST"]
    if visitor_host not in VISITOR_HOSTS:
        raise ConfigError(
            f"ANALYTICS_VISITOR_HOST must be one of {', '.join(map(repr, VISITOR_HOSTS))}, "
            f"not {visitor_host!r}."
        )
    geoip = config["ANALYTICS_GEOIP_DATABASE"]
    if geoip is not None and not isinstance(geoip, str | os.PathLike):
        raise ConfigError(f"ANALYTICS_GEOIP_DATABASE must be a file path, not {geoip!r}.")
    redis_url = config["ANALYTICS_REDIS_URL"] or None
    if redis_url is not None and not isinstance(redis_url, str):
        raise ConfigError(f"ANALYTICS_REDIS_URL must be a redis:// URL, not {redis_url!r}.")
    base_template = config["ANALYTICS_BASE_TEMPLATE"]
    if not isinstance(base_template, str) or not base_template:
        raise ConfigError("ANALYTICS_BASE_TEMPLATE must be a template name.")
    queue = config["ANALYTICS_QUEUE"]
    if not isinstance(queue, str) or not queue:
        raise ConfigError("ANALYTICS_QUEUE must be a queue name.")
    buffer = _buffer_settings(config, redis_url)
    return Settings(
        timezone=timezone,
        collect_url=_url_path(config, "ANALYTICS_COLLECT_URL"),
        script_url=_url_path(config, "ANALYTICS_SCRIPT_URL"),
        dashboard_url=_url_path(config, "ANALYTICS_DASHBOARD_URL"),
        base_template=base_template,
        redis_url=redis_url,
        queue=queue,
        retention_days=_int(config, "ANALYTICS_RETENTION_DAYS", 1),
        archive_retention_days=_int(config, "ANALYTICS_ARCHIVE_RETENTION_DAYS", 1, optional=True),
        session_timeout=_int(config, "ANALYTICS_SESSION_TIMEOUT", 1),
        non_interactive_events=_event_names(config, "ANALYTICS_NON_INTERACTIVE_EVENTS"),
        respect_dnt=bool(config["ANALYTICS_RESPECT_DNT"]),
        server_pageviews=bool(config["ANALYTICS_SERVER_PAGEVIEWS"]),
        excluded_paths=_str_list(config, "ANALYTICS_EXCLUDED_PATHS"),
        excluded_networks=tuple(networks),
        trusted_proxies=_int(config, "ANALYTICS_TRUSTED_PROXIES", 0),
        geoip_database=os.fspath(geoip) if geoip is not None else None,
        country_header=header,
        builtin_countries=bool(config["ANALYTICS_BUILTIN_COUNTRIES"]),
        visitor_host=visitor_host,
        allowed_hosts=allowed_hosts,
        cors_origins=_str_list(config, "ANALYTICS_CORS_ORIGINS"),
        client_fields=_str_list(config, "ANALYTICS_CLIENT_FIELDS"),
        max_batch=_int(config, "ANALYTICS_MAX_BATCH", 1),
        max_body_bytes=_int(config, "ANALYTICS_MAX_BODY_BYTES", 256),
        max_offset_ms=_int(config, "ANALYTICS_MAX_OFFSET_MS", 0),
        ua_cache_size=_int(config, "ANALYTICS_UA_CACHE_SIZE", 0),
        sqlite_wal=bool(config["ANALYTICS_SQLITE_WAL"]),
        rate_limit=config["ANALYTICS_RATE_LIMIT"] or None,
        referrer_spam_list=_optional_path(config, "ANALYTICS_REFERRER_SPAM_LIST"),
        rate_limit_burst=config["ANALYTICS_RATE_LIMIT_BURST"] or None,
        api_cors_origins=_str_list(config, "ANALYTICS_API_CORS_ORIGINS"),
        api_rate_limit=_rate(config, "ANALYTICS_API_RATE_LIMIT"),
        **buffer,
        **_goal_settings(config),
        rate_limit_storage=_rate_limit_storage(config, redis_url or buffer["buffer_redis_url"]),
    )
