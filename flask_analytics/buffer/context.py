"""What the buffer's flushers need from the app's state, as a protocol."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..core.context import Context

if TYPE_CHECKING:
    from . import RedisBuffer


class BufferContext(Context, Protocol):
    """One app's :class:`Context` plus its Redis buffer (None: events go direct)."""

    buffer: RedisBuffer | None
