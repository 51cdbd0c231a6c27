"""The pipeline's sink in buffered mode: rows go to the Redis stream, or direct."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..ingest.ratelimit import RateCharge, RateLimited
from ..ingest.sinks import Sink, Written
from .client import RedisBuffer


class BufferSink:
    """Appends a request's rows to the app's Redis buffer.

    When Redis cannot take them (unreachable, full, a value it cannot encode) they go to
    ``fallback``, the direct sink, so an event is never lost for want of Redis.
    A ``charge`` (the rate limit, when its counters live in this Redis) is counted in
    the same round trip as the append, also for a request with no row left to store;
    :class:`RateLimited` when it is refused (nothing appended).
    ``request_flush()`` is called when the stream passes
    ``ANALYTICS_BUFFER_FLUSH_THRESHOLD``; the app passes one that queues a flush job.
    """

    def __init__(
        self, buffer: RedisBuffer, fallback: Sink, request_flush: Callable[[], None]
    ) -> None:
        self.buffer = buffer
        self.fallback = fallback
        self.request_flush = request_flush

    def write(self, rows: list[dict[str, Any]], charge: RateCharge | None = None) -> Written:
        appended = self.buffer.append(rows, charge)
        if appended is not None and appended.limited:
            assert charge is not None
            raise RateLimited(charge)
        if not rows:
            return Written()
        if appended is None:
            return self.fallback.write(rows)
        if appended.flush_due:
            self.request_flush()
        # Rows Redis remembered as buffered already (only with ANALYTICS_BUFFER_DEDUPE_TTL).
        seen_before = set(appended.duplicates)
        return Written(
            stored=[row for i, row in enumerate(rows) if i not in seen_before],
            duplicates=len(seen_before),
        )
