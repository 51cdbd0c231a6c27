"""Exceptions raised by flask-analytics."""

from __future__ import annotations

import re


class AnalyticsError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(AnalyticsError, ValueError):
    """An ``ANALYTICS_*`` setting is invalid; the message says which and how to fix it."""


class InvalidEvent(AnalyticsError, ValueError):
    """An event was rejected by validation; the message is safe to show to the client."""


#: What a :class:`DropEvent` reason may be: it is a key of the answer and a header value.
_REASON = re.compile(r"[a-z][a-z0-9_]{0,31}")


class DropEvent(Exception):
    """Raised by an ``@analytics.enrich`` hook to leave the event out.

    The event is not stored; it is counted under ``reason`` in the collect answer's
    ``dropped`` (and the ``X-Analytics-Dropped`` header) and sent as
    ``signals.event_dropped``, as the built-in reasons are. ``track()`` returns None.
    ``reason`` is a short name in lower case (letters, digits, ``_``), ``"excluded"`` by
    default, e.g. ``raise DropEvent("staff")``.
    """

    def __init__(self, reason: str = "excluded") -> None:
        if not isinstance(reason, str) or not _REASON.fullmatch(reason):
            raise ValueError(
                f"DropEvent reason must be 1-32 lower-case letters, digits or '_' starting "
                f"with a letter (it is sent in a header), not {reason!r}."
            )
        super().__init__(reason)
        self.reason = reason
