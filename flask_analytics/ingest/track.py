"""Validation of server-side ``track()`` calls: every invalid input raises InvalidEvent.

``track()`` is called by the host's own code, so nothing is repaired or left out
quietly, as it is for browser events: a wrong type, a value its column cannot hold or a
timestamp outside :data:`EARLIEST_TIMESTAMP` .. now + :data:`FUTURE_SKEW` is an error
the caller sees (never a raw database error after the fact).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from ..errors import InvalidEvent
from . import privacy
from .payload import (
    ENGAGEMENT_MAX_MS,
    SCREEN_MAX,
    IncomingEvent,
    check_custom,
    check_event_id,
    check_int,
    check_name,
    check_props,
    check_referrer,
    split_url,
)
from .revenue import track_revenue

#: Largest clock skew tolerated for an explicit ``track()`` timestamp in the future (the
#: host's clock and the one of the process that calls track() may differ by this much).
FUTURE_SKEW = dt.timedelta(minutes=5)
#: Earliest explicit ``track()`` timestamp (UTC): nothing a site imports is older, and a
#: date before it is a default or a parsing mistake (``datetime(1, 1, 1)``).
EARLIEST_TIMESTAMP = dt.datetime(2000, 1, 1)
#: ``track()`` fields that are built-in integer columns, with their upper bounds.
INT_FIELDS = {"screen_width": SCREEN_MAX, "engagement_ms": ENGAGEMENT_MAX_MS, "scroll_depth": 100}


def check_timestamp(value: Any, now: dt.datetime) -> dt.datetime:
    """An explicit timestamp as naive UTC (a naive one is taken as UTC)."""
    if not isinstance(value, dt.datetime):
        raise InvalidEvent(
            f"timestamp must be a datetime.datetime, not {type(value).__name__}"
            " (parse strings first, e.g. datetime.fromisoformat)"
        )
    when: dt.datetime = value
    if when.tzinfo is not None:
        try:
            when = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
        except (OverflowError, ValueError) as exc:  # a year-1 or year-9999 edge
            raise InvalidEvent("timestamp is out of range") from exc
    if when < EARLIEST_TIMESTAMP:
        raise InvalidEvent(f"timestamp is before {EARLIEST_TIMESTAMP:%Y-%m-%d}")
    if when > now + FUTURE_SKEW:
        raise InvalidEvent("timestamp is in the future")
    return when


def check_optional_text(value: Any, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidEvent(f"{where} must be a string or None")
    return value


def check_ip(value: Any) -> str | None:
    """An IP address as given, or None; anything else is an error."""
    text = check_optional_text(value, "ip")
    if not text:
        return None
    if privacy.parse_ip(text) is None:
        raise InvalidEvent(f"ip {text[:60]!r} is not an IP address")
    return text


def build_event(
    table: sa.Table,
    builtin: frozenset[str],
    now: dt.datetime,
    name: Any,
    *,
    url: Any,
    referrer: Any,
    timestamp: Any,
    props: Any,
    event_id: Any,
    fields: Mapping[str, Any],
    revenue: Any = None,
) -> IncomingEvent:
    """The validated event of one ``track()`` call.

    ``fields`` may set the built-in integer fields (:data:`INT_FIELDS`) and custom
    columns of ``table`` (the names not in ``builtin``); another name is a TypeError,
    as an unknown keyword argument is. ``revenue`` is ``(amount, currency)`` or None
    (``ingest.revenue``: a Decimal, int or decimal string amount, never a float).
    """
    created_at = now if timestamp is None else check_timestamp(timestamp, now)
    hostname, path, utm, click_ids = split_url(url, "url")
    event = IncomingEvent(
        name=check_name(name, "name"),
        hostname=hostname,
        path=path,
        created_at=created_at,
        event_id=(
            check_event_id(event_id, "event_id") if event_id is not None else str(uuid.uuid4())
        ),
        referrer=check_referrer(referrer, "referrer"),
        utm=utm,
        click_ids=click_ids,
        props=check_props(props, "props"),
    )
    checked_revenue = track_revenue(revenue)
    if checked_revenue is not None:
        event.extra["revenue_amount"], event.extra["revenue_currency"] = checked_revenue
    for key, value in fields.items():
        if key in INT_FIELDS:
            checked = None if value is None else check_int(value, key, 0, INT_FIELDS[key])
            setattr(event, key, checked)
        elif key in table.c and key not in builtin:
            column = table.c[key]
            if value is not None:
                event.extra[key] = check_custom(value, key, column.type)
            elif not column.nullable and column.default is None and column.server_default is None:
                raise InvalidEvent(f"{key} must not be None")
        else:
            raise TypeError(f"track() got an unexpected field {key!r}")
    return event
