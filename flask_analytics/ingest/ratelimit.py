"""Rate limit of the collect endpoint per network, with a burst allowance, on ``limits``.

The key is a keyed hash of the anonymized address (the /24 of IPv4, the /48 of IPv6: the
prefix the visitor hash uses), never the user agent, so a client cannot get more room by
rotating user agents. It is never stored; in Redis it expires with its window. Each
event of a batch counts as one hit, and a batch is accepted or refused whole.

Two sliding windows: ``ANALYTICS_RATE_LIMIT`` is the sustained rate; an event over it
may still pass on ``ANALYTICS_RATE_LIMIT_BURST``, a larger allowance over a longer
window (a returning visitor replaying its offline queue, an office behind one NAT).
So at any moment one prefix may have at most limit + burst events accepted. Refused
events count against neither window: a client that stops flooding gets its room back.

Counters live in Redis (shared by every process) when ``ANALYTICS_RATE_LIMIT_STORAGE``
or, by default, ``ANALYTICS_REDIS_URL`` names one; in memory (per process) otherwise
(``config.load_settings`` resolves which).

When those counters live in the Redis of the ingest buffer, the buffered collect path
counts them in the same round trip as its append (:meth:`CollectLimiter.charge` says
which keys and windows; ``buffer.scripts`` runs the library's own sliding-window script
on them inside the append script), so a buffered request makes one Redis round trip.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from limits import RateLimitItem, parse, storage, strategies
from limits.errors import ConfigurationError

from ..errors import AnalyticsError, ConfigError

if TYPE_CHECKING:
    from ..config import Settings

#: Namespaces of the two windows' counters.
_SUSTAINED = "flask-analytics"
_BURST = "flask-analytics-burst"


def _parse(key: str, rate: str) -> RateLimitItem:
    try:
        return parse(rate)
    except ValueError as exc:
        raise ConfigError(f"{key} {rate!r} is not a rate such as '300/minute'.") from exc


#: The ``limits`` library's sliding-window acquire script (KEYS: previous and current
#: window; ARGV: limit, expiry in seconds, amount), as its Redis storage runs it.
_ACQUIRE: str | bytes = storage.RedisStorage.SCRIPT_ACQUIRE_SLIDING_WINDOW
ACQUIRE_SLIDING_WINDOW_LUA: str = _ACQUIRE.decode() if isinstance(_ACQUIRE, bytes) else _ACQUIRE


@dataclass(frozen=True)
class RateCharge:
    """One request's count against the limits, for a sink that makes it in the same
    round trip as its write: the library's sliding-window keys and windows."""

    limiter: CollectLimiter
    #: The network's key (:meth:`CollectLimiter.network_key`).
    key: str
    #: Events counted (a batch is accepted or refused whole).
    cost: int
    #: (previous window key, current window key, limit, expiry seconds): the sustained
    #: window, then the burst window when there is one.
    windows: tuple[tuple[str, str, int, int], ...]


class RateLimited(AnalyticsError):
    """A sink refused a request's rows: its network is over the rate limit."""

    def __init__(self, charge: RateCharge) -> None:
        super().__init__(f"rate limit of {charge.limiter.describe()} exceeded")
        self.charge = charge


class CollectLimiter:
    """``ANALYTICS_RATE_LIMIT`` (+ ``ANALYTICS_RATE_LIMIT_BURST``) events per network."""

    def __init__(
        self,
        rate: str,
        storage_uri: str,
        burst: str | None = None,
        namespace: str = "",
        *,
        setting: str = "ANALYTICS_RATE_LIMIT",
    ) -> None:
        self.item: RateLimitItem = _parse(setting, rate)
        self.burst: RateLimitItem | None = (
            _parse("ANALYTICS_RATE_LIMIT_BURST", burst) if burst else None
        )
        try:
            self._storage = storage.storage_from_string(storage_uri)
        except (ConfigurationError, ImportError, ValueError) as exc:
            raise ConfigError(
                f"ANALYTICS_RATE_LIMIT_STORAGE {storage_uri!r} cannot be used: {exc}"
            ) from exc
        self.shared = not storage_uri.startswith("memory")
        self._limiter = strategies.SlidingWindowCounterRateLimiter(self._storage)
        # Memory counters mean nothing outside this process, so a random key will do.
        # With Redis every process of the deployment must derive the same keys: from the
        # URI and the namespace (the app's queue), so apps sharing a Redis stay apart.
        self._key = (
            hashlib.blake2b(f"{storage_uri}\x00{namespace}".encode(), digest_size=16).digest()
            if self.shared
            else os.urandom(16)
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> CollectLimiter | None:
        """The app's limiter, or None when ``ANALYTICS_RATE_LIMIT`` is off."""
        if not settings.rate_limit:
            return None
        return cls(
            settings.rate_limit,
            settings.rate_limit_storage,
            settings.rate_limit_burst,
            namespace=settings.queue,
        )

    def network_key(self, anon_ip: str) -> str:
        """The counter key of an anonymized address (a keyed hash: no address in Redis)."""
        digest = hashlib.blake2b(anon_ip.encode(), key=self._key, digest_size=12)
        return digest.hexdigest()

    def describe(self) -> str:
        """The limits in words, for the 429 answer."""
        text = f"{self.item} per network"
        return f"{text} (+ a burst of {self.burst})" if self.burst is not None else text

    def hit(self, key: str, cost: int) -> bool:
        """Count ``cost`` events for ``key``; False when that goes over limit and burst."""
        if self._limiter.hit(self.item, _SUSTAINED, key, cost=cost):
            return True
        return self.burst is not None and bool(
            self._limiter.hit(self.burst, _BURST, key, cost=cost)
        )

    def redis_kwargs(self) -> dict[str, Any] | None:
        """The connection settings of the Redis holding the counters (None: not Redis)."""
        if not isinstance(self._storage, storage.RedisStorage):
            return None
        client: Any = self._storage.get_connection()
        kwargs: dict[str, Any] = client.connection_pool.connection_kwargs
        return kwargs

    def charge(self, key: str, cost: int) -> RateCharge:
        """What :meth:`hit` would count, as keys and windows of the library's Redis
        sliding-window counters (the same keys its own script uses)."""
        return RateCharge(self, key, cost, self._windows(key))

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one limiter per app, kept for its life
    def _windows(self, key: str) -> tuple[tuple[str, str, int, int], ...]:
        # A network's keys repeat from request to request: built once each (the cache
        # holds keyed hashes, never an address).
        redis_storage = self._storage
        assert isinstance(redis_storage, storage.RedisStorage)
        items = [(self.item, _SUSTAINED)]
        if self.burst is not None:
            items.append((self.burst, _BURST))
        windows = []
        for item, namespace in items:
            counter = item.key_for(namespace, key)
            windows.append((
                redis_storage.prefixed_key(redis_storage._previous_window_key(counter)),
                redis_storage.prefixed_key(redis_storage._current_window_key(counter)),
                item.amount,
                item.get_expiry(),
            ))  # fmt: skip
        return tuple(windows)

    def retry_after(self, key: str) -> int:
        """Seconds until the sustained window has room again (at least 1)."""
        reset, _remaining = self._limiter.get_window_stats(self.item, _SUSTAINED, key)
        return max(1, int(reset - time.time()) + 1)


try:  # Redis storage raises the driver's errors when the server is unreachable.
    from redis.exceptions import RedisError as RedisError
except ImportError:  # pragma: no cover - the redis extra is not installed

    class RedisError(Exception):  # type: ignore[no-redef]
        """Stand-in when the redis package is absent (never raised)."""
