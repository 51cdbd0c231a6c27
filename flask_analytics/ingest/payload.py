"""Parse and validate collect payloads into typed :class:`IncomingEvent` values.

Everything a client sends is untrusted: every field is type-checked and bounded here, and
any invalid event rejects the whole request (nothing of it is stored) with a message
that names the offending field.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..errors import InvalidEvent
from ..models import HOST_MAX, NAME_MAX, PATH_MAX, URL_MAX, UTM_MAX

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
#: Ad click ids: their presence says "paid", their values are never kept.
CLICK_IDS = frozenset(
    {
        "gclid",
        "gbraid",
        "wbraid",
        "dclid",
        "msclkid",
        "fbclid",
        "ttclid",
        "twclid",
        "li_fat_id",
        "yclid",
        "epik",
        "rdt_cid",
        "sccid",
    }
)
PROPS_MAX_KEYS = 30
PROP_KEY_MAX = 300
PROP_VALUE_MAX = 2000
ENGAGEMENT_MAX_MS = 24 * 3600 * 1000
SCREEN_MAX = 100_000

#: Control characters (C0, DEL, C1) are never part of a legitimate name or URL.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: A UUID as the tracker sends it (``crypto.randomUUID()``): already in canonical form.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(slots=True)
class IncomingEvent:
    """One validated event, before the pipeline enriches it."""

    name: str
    hostname: str
    path: str
    created_at: dt.datetime
    event_id: str
    referrer: str | None = None
    utm: dict[str, str] = field(default_factory=dict)
    click_ids: frozenset[str] = frozenset()
    screen_width: int | None = None
    engagement_ms: int | None = None
    scroll_depth: int | None = None
    props: dict[str, str | int | float | bool] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_body(raw: bytes, max_batch: int) -> list[Any]:
    """The list of event objects in a request body (a JSON object or array)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent("body is not valid UTF-8") from exc
    if not text.strip():
        raise InvalidEvent("body is empty: send a JSON object or an array of objects")
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise InvalidEvent("body is nested too deeply") from exc
    except ValueError as exc:
        raise InvalidEvent(f"body is not valid JSON: {exc}") from exc
    items = data if isinstance(data, list) else [data]
    if not items:
        raise InvalidEvent("body is an empty array: send at least one event")
    if len(items) > max_batch:
        raise InvalidEvent(f"too many events in one request: {len(items)} > {max_batch}")
    return items


def check_text(value: Any, where: str, limit: int, *, allow_control: bool = False) -> str:
    """``value`` as a str within ``limit`` characters, encodable to UTF-8, without NULs."""
    if not isinstance(value, str):
        raise InvalidEvent(f"{where} must be a string")
    if len(value) > limit:
        raise InvalidEvent(f"{where} is longer than {limit} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidEvent(f"{where} contains invalid unicode (lone surrogates)") from exc
    if "\x00" in value or (not allow_control and _CONTROL.search(value)):
        raise InvalidEvent(f"{where} contains control characters")
    return value


def check_int(value: Any, where: str, low: int, high: int) -> int:
    """``value`` as an int in [low, high]; whole floats (``3.0``) are accepted."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEvent(f"{where} must be a number")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise InvalidEvent(f"{where} must be a whole number")
        value = int(value)
    if not low <= value <= high:
        raise InvalidEvent(f"{where} must be between {low} and {high}")
    return int(value)


def check_name(value: Any, where: str) -> str:
    name = check_text(value, where, NAME_MAX).strip()
    if not name:
        raise InvalidEvent(f"{where} must not be empty")
    return name


def check_event_id(value: Any, where: str) -> str:
    text = check_text(value, where, 64)
    if _CANONICAL_UUID.fullmatch(text):
        return text  # what str(uuid.UUID(text)) gives, ten times cheaper
    try:
        return str(uuid.UUID(text))
    except ValueError as exc:
        raise InvalidEvent(f"{where} must be a UUID") from exc


def check_props(value: Any, where: str) -> dict[str, str | int | float | bool] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidEvent(f"{where} must be an object")
    if len(value) > PROPS_MAX_KEYS:
        raise InvalidEvent(f"{where} has more than {PROPS_MAX_KEYS} keys")
    props: dict[str, str | int | float | bool] = {}
    for key, item in value.items():
        check_text(key, f"{where} key", PROP_KEY_MAX)
        if isinstance(item, str):
            props[key] = check_text(item, f"{where}.{key}", PROP_VALUE_MAX, allow_control=True)
        elif isinstance(item, bool):
            props[key] = item
        elif isinstance(item, int | float):
            if not math.isfinite(item) or abs(item) > 2**53:
                raise InvalidEvent(f"{where}.{key} must be a finite number below 2**53")
            props[key] = item
        else:
            raise InvalidEvent(f"{where}.{key} must be a string, number or boolean")
    return props or None


def split_url(
    value: Any, where: str, *, hash_routing: bool = False
) -> tuple[str, str, dict[str, str], frozenset[str]]:
    """(hostname, path, utm, click ids) of an absolute http(s) page URL.

    The query string is dropped except UTM parameters and the names of click ids; the
    fragment is dropped unless the site routes with it.
    """
    url = check_text(value, where, URL_MAX).strip()
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError as exc:
        raise InvalidEvent(f"{where} is not a valid URL") from exc
    if parts.scheme.lower() not in ("http", "https") or not hostname:
        raise InvalidEvent(f"{where} must be an absolute http(s) URL")
    hostname = hostname.rstrip(".")
    if not hostname or len(hostname) > HOST_MAX:
        raise InvalidEvent(f"{where} has an invalid hostname")
    path = parts.path or "/"
    if hash_routing and parts.fragment:
        path = f"{path}#{parts.fragment}"
    path = path[:PATH_MAX]
    utm: dict[str, str] = {}
    click_ids: set[str] = set()
    if parts.query:
        for key, val in parse_qsl(parts.query, keep_blank_values=False):
            lowered = key.lower()
            if lowered in UTM_KEYS and lowered not in utm:
                cleaned = _CONTROL.sub("", val).strip()[:UTM_MAX]
                if cleaned:
                    utm[lowered] = cleaned
            elif lowered in CLICK_IDS:
                click_ids.add(lowered)
    return hostname, path, utm, frozenset(click_ids)


def check_referrer(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    return check_text(value, where, URL_MAX).strip() or None


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds validation applies, from the app's settings."""

    max_offset_ms: int
    client_fields: Mapping[str, Any] = field(default_factory=dict)


def parse_event(obj: Any, where: str, limits: Limits, now: dt.datetime) -> IncomingEvent:
    """Validate one browser event object (``where`` names it in error messages)."""
    if not isinstance(obj, Mapping):
        raise InvalidEvent(f"{where} must be a JSON object")
    name = check_name(obj.get("name", "pageview"), f"{where}.name")
    hash_routing = obj.get("hash_routing", False)
    if not isinstance(hash_routing, bool):
        raise InvalidEvent(f"{where}.hash_routing must be a boolean")
    if "url" not in obj:
        raise InvalidEvent(f"{where}.url is required")
    hostname, path, utm, click_ids = split_url(
        obj["url"], f"{where}.url", hash_routing=hash_routing
    )
    offset = obj.get("offset_ms")
    created_at = now
    if offset is not None:
        created_at = now - dt.timedelta(
            milliseconds=check_int(offset, f"{where}.offset_ms", 0, limits.max_offset_ms)
        )
    event_id = obj.get("event_id")
    event = IncomingEvent(
        name=name,
        hostname=hostname,
        path=path,
        created_at=created_at,
        event_id=check_event_id(event_id, f"{where}.event_id")
        if event_id is not None
        else str(uuid.uuid4()),
        referrer=check_referrer(obj.get("referrer"), f"{where}.referrer"),
        utm=utm,
        click_ids=click_ids,
        props=check_props(obj.get("props"), f"{where}.props"),
    )
    for key, low, high in (
        ("screen_width", 0, SCREEN_MAX),
        ("engagement_ms", 0, ENGAGEMENT_MAX_MS),
        ("scroll_depth", 0, 100),
    ):
        value = obj.get(key)
        if value is not None:
            setattr(event, key, check_int(value, f"{where}.{key}", low, high))
    for key, column_type in limits.client_fields.items():
        if obj.get(key) is not None:
            event.extra[key] = check_custom(obj[key], f"{where}.{key}", column_type)
    return event


def check_custom(value: Any, where: str, column_type: Any) -> Any:
    """Validate a client-settable custom column value against the column's type."""
    python_type = getattr(column_type, "python_type", str)
    if python_type is bool:
        if not isinstance(value, bool):
            raise InvalidEvent(f"{where} must be a boolean")
        return value
    if python_type is int:
        return check_int(value, where, -(2**31), 2**31 - 1)
    if python_type is float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise InvalidEvent(f"{where} must be a finite number")
        return float(value)
    limit = getattr(column_type, "length", None) or PROP_VALUE_MAX
    return check_text(value, where, limit)


def parse_batch(items: Iterable[Any], limits: Limits, now: dt.datetime) -> list[IncomingEvent]:
    """Validate every event of a request; the first invalid one rejects them all."""
    return [parse_event(obj, f"events[{i}]", limits, now) for i, obj in enumerate(items)]
