"""Per-visitor rate limit of the collect endpoint, on the ``limits`` library.

The key is a keyed hash of the anonymized address and the user agent (never stored;
in Redis it expires with its window), so a flood from one client is cut off with 429
while everyone else is unaffected. Each event of a batch counts as one hit.
"""

from __future__ import annotations

import hashlib
import os
import time

from limits import RateLimitItem, parse, storage, strategies
from limits.errors import ConfigurationError

from ..errors import ConfigError


class CollectLimiter:
    """``ANALYTICS_RATE_LIMIT`` events per visitor, counted in ``ANALYTICS_RATE_LIMIT_STORAGE``."""

    def __init__(self, rate: str, storage_uri: str) -> None:
        try:
            self.item: RateLimitItem = parse(rate)
        except ValueError as exc:
            raise ConfigError(
                f"ANALYTICS_RATE_LIMIT {rate!r} is not a rate such as '300/minute'."
            ) from exc
        try:
            self._storage = storage.storage_from_string(storage_uri)
        except (ConfigurationError, ImportError, ValueError) as exc:
            raise ConfigError(
                f"ANALYTICS_RATE_LIMIT_STORAGE {storage_uri!r} cannot be used: {exc}"
            ) from exc
        self._limiter = strategies.FixedWindowRateLimiter(self._storage)
        # Per-process key: visitor keys mean nothing outside this deployment's processes
        # for memory storage; with Redis all processes must agree, so derive from the URI.
        self._key = (
            os.urandom(16)
            if storage_uri.startswith("memory")
            else hashlib.blake2b(storage_uri.encode(), digest_size=16).digest()
        )

    def visitor_key(self, anon_ip: str, user_agent: str) -> str:
        digest = hashlib.blake2b(
            f"{anon_ip}\x00{user_agent}".encode("utf-8", "surrogatepass"),
            key=self._key,
            digest_size=12,
        )
        return digest.hexdigest()

    def hit(self, key: str, cost: int) -> bool:
        """Count ``cost`` events for ``key``; False when that goes over the limit."""
        return bool(self._limiter.hit(self.item, "flask-analytics", key, cost=cost))

    def retry_after(self, key: str) -> int:
        """Seconds until ``key``'s window resets."""
        reset, _remaining = self._limiter.get_window_stats(self.item, "flask-analytics", key)
        return max(1, int(reset - time.time()) + 1)


try:  # Redis storage raises the driver's errors when the server is unreachable.
    from redis.exceptions import RedisError as RedisError
except ImportError:  # pragma: no cover - the redis extra is not installed

    class RedisError(Exception):  # type: ignore[no-redef]
        """Stand-in when the redis package is absent (never raised)."""
