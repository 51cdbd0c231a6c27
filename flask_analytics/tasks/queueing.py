"""What the CLI needs to choose between running work inline and queueing it on RQ.

Nothing here imports rq or redis, so commands that run inline work without the
``redis`` extra installed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from ..state import AppState

log = logging.getLogger(__name__)


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


def request_flush(state: AppState) -> None:
    """Queue a flush job now (the buffer passed ``ANALYTICS_BUFFER_FLUSH_THRESHOLD``);
    when jobs cannot be queued, the next scheduled or looping flush writes the rows."""
    from . import jobs

    try:
        jobs.enqueue_flush(state)
    except jobs.JobsUnavailable as exc:
        log.warning("analytics buffer: could not queue a flush: %s", exc)
