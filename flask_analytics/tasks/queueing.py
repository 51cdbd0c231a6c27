"""What the CLI needs to choose between running work inline and queueing it on RQ, and
what queueing answers (:class:`Enqueued`, :class:`JobsUnavailable`).

Nothing here imports rq or redis, so commands that run inline work without the
``redis`` extra installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from ..errors import AnalyticsError

if TYPE_CHECKING:
    from ..state import AppState


class JobsUnavailable(AnalyticsError):
    """Jobs cannot be queued: Redis is not configured or not reachable."""


def uses_queue(state: AppState, sync: bool) -> bool:
    """Whether work is queued on Redis (``ANALYTICS_REDIS_URL`` set and no ``--sync``)."""
    return state.settings.redis_url is not None and not sync


def safe_url(url: str) -> str:
    """``url`` with its password masked, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


@dataclass(frozen=True)
class Enqueued:
    """The outcome of an enqueue: a new job, or the one already waiting for that work."""

    job_id: str
    description: str
    queue: str
    #: False when a job with this id was already queued or running (nothing added).
    created: bool
    status: str
