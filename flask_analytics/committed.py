"""Conversions from committed rows: ``analytics.track_model(Order, name="purchase", ...)``.

SQLAlchemy session events of the host's ``db.session``: after each flush, the new rows
of a tracked model are noted with what their event needs (its name, revenue and props,
read while the row is loaded, and the request that made it); after the transaction
commits they are tracked, and a rollback forgets them. The event id is a UUID derived
from the table and the primary key (:func:`row_event_id`), so a row is tracked once
however often it is committed, flushed or re-saved, and re-running a commit hook never
duplicates it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import has_request_context, request

from .errors import InvalidEvent

log = logging.getLogger(__name__)

#: Namespace of the event ids of committed rows.
ROW_NAMESPACE = uuid.UUID("6f1f5c0e-3c1a-5b9e-9a43-5d2f0a8f6b21")
#: Where a session keeps the rows waiting for its commit.
_PENDING = "flask_analytics_pending"

Revenue = tuple[Decimal | int | str, str] | None
#: What ``track()`` is: the extension's bound method.
Track = Callable[..., Any]


@dataclass(frozen=True)
class TrackedModel:
    """One ``track_model`` declaration."""

    model: type[Any]
    name: str
    revenue: Callable[[Any], Revenue] | None
    props: Callable[[Any], Mapping[str, Any] | None] | Mapping[str, Any] | None
    url: Callable[[Any], str] | str | None


@dataclass(frozen=True)
class _Pending:
    event_id: str
    name: str
    revenue: Revenue
    props: Mapping[str, Any] | None
    url: str | None
    request: Any


def row_event_id(table: str, key: tuple[Any, ...]) -> str:
    """The event id of the row of ``table`` with primary key ``key``."""
    text = table + ":" + ":".join(str(part) for part in key)
    return str(uuid.uuid5(ROW_NAMESPACE, text))


class CommittedRows:
    """The session listeners of every ``track_model`` of one ``db``."""

    def __init__(self, session: Any, track: Track, default_url: Callable[[], str]) -> None:
        self.tracked: list[TrackedModel] = []
        self.track = track
        self.default_url = default_url
        sa.event.listen(session, "after_flush", self._after_flush)
        sa.event.listen(session, "after_commit", self._after_commit)
        sa.event.listen(session, "after_rollback", self._forget)
        sa.event.listen(session, "after_soft_rollback", self._after_soft_rollback)

    def add(self, tracked: TrackedModel) -> None:
        self.tracked.append(tracked)

    def _after_flush(self, session: sa.orm.Session, _context: Any) -> None:
        pending: list[_Pending] = session.info.setdefault(_PENDING, [])
        current = request._get_current_object() if has_request_context() else None  # type: ignore[attr-defined]
        for obj in session.new:
            for tracked in self.tracked:
                if isinstance(obj, tracked.model):
                    pending.append(self._pending(tracked, obj, current))

    def _pending(self, tracked: TrackedModel, obj: Any, current: Any) -> _Pending:
        mapper = sa.inspect(obj).mapper
        key = tuple(mapper.primary_key_from_instance(obj))
        props = tracked.props(obj) if callable(tracked.props) else tracked.props
        url = tracked.url(obj) if callable(tracked.url) else tracked.url
        return _Pending(
            event_id=row_event_id(mapper.persist_selectable.name, key),
            name=tracked.name,
            revenue=tracked.revenue(obj) if tracked.revenue is not None else None,
            props=props,
            url=url,
            request=current,
        )

    def _after_commit(self, session: sa.orm.Session) -> None:
        pending: list[_Pending] = session.info.pop(_PENDING, [])
        for item in pending:
            url = item.url
            if url is None and item.request is None:
                url = self.default_url()
            try:
                self.track(
                    item.name,
                    url=url,
                    event_id=item.event_id,
                    revenue=item.revenue,
                    props=item.props,
                    request=item.request,
                )
            except InvalidEvent:
                # The row is committed: a bad revenue or props callable must not make
                # the host's commit look failed.
                log.exception("flask-analytics: %s event %s not tracked", item.name, item.event_id)

    def _forget(self, session: sa.orm.Session) -> None:
        session.info.pop(_PENDING, None)

    def _after_soft_rollback(self, session: sa.orm.Session, _previous: Any) -> None:
        if not session.in_transaction():
            self._forget(session)
