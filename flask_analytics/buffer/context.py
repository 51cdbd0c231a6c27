"""What the buffer's flushers need from the app's state, as a protocol."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..core.context import Context
from ..errors import AnalyticsError

if TYPE_CHECKING:
    from .client import RedisBuffer


class BufferContext(Context, Protocol):
    """One app's :class:`Context` plus its Redis buffer (None: events go direct)."""

    buffer: RedisBuffer | None


class BufferUnavailable(AnalyticsError):
    """The ingest buffer is not configured, or its Redis cannot be reached."""


def get_buffer(state: BufferContext) -> RedisBuffer:
    """The app's buffer, or a clear error when ``ANALYTICS_INGEST_BUFFER`` is not "redis"."""
    if state.buffer is None:
        raise BufferUnavailable(
            "ANALYTICS_INGEST_BUFFER is 'direct': events are written to the database as they "
            "arrive, so there is nothing to flush. Set it to 'redis' to buffer them."
        )
    return state.buffer
