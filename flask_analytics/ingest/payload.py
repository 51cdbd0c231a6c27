"""Parse and validate collect payloads into typed :class:`IncomingEvent` values.

Everything a client sends is untrusted: every field is type-checked and bounded here.
One bad event never costs the good ones of its request: an invalid event is rejected on
its own (:class:`Batch` keeps its index and the reason), and a prop or a client field
that breaks a limit is left out of its event with a warning. Server-side ``track()``
uses the same checks strictly: every problem raises :class:`InvalidEvent`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import sqlalchemy as sa

from ..errors import InvalidEvent
from ..models import HOST_MAX, NAME_MAX, PATH_MAX, URL_MAX, UTM_MAX
from .hosts import normalize_hostname
from .revenue import JsonFloat, collect_revenue

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

#: HTTP status codes a page may report (``status``: a 404 page's pageview).
STATUS_MIN = 100
STATUS_MAX = 599
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
    #: The page's id from its server pageview (``ANALYTICS_SERVER_PAGEVIEWS``): the event
    #: id is derived from it and the visitor (``pipeline.put_page_event_id``).
    page_id: str | None = None
    #: Other columns the event sets: custom columns, and ``revenue_amount`` with
    #: ``revenue_currency`` when it has revenue (rows without revenue leave them out).
    extra: dict[str, Any] = field(default_factory=dict)


#: How a check reports a problem it can repair (a prop or a client field left out, a lone
#: surrogate replaced): ``note(problem, what_was_done)``. :func:`strict` raises instead.
Note = Callable[[str, str], None]


def strict(problem: str, action: str) -> None:
    """The :data:`Note` of ``track()``: every problem is an error."""
    raise InvalidEvent(problem)


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
        # Numbers with a fraction or exponent keep their text: a revenue amount is read
        # from it exactly (ingest.revenue), never through a binary float.
        data = json.loads(text, parse_float=JsonFloat, parse_constant=_reject_constant)
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


def _unicode(value: str, where: str, note: Note) -> str:
    """``value`` with lone surrogates (which UTF-8 cannot encode) replaced by U+FFFD.

    A JavaScript ``slice`` can cut an emoji in half: the tracker's 120-character cut of
    an event name leaves such a half.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        note(f"{where} contains invalid unicode (lone surrogates)", "replaced by U+FFFD")
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def check_name(value: Any, where: str, note: Note = strict) -> str:
    """An event name: a string, lone surrogates replaced (``note``), stripped; blank,
    over :data:`NAME_MAX` characters or holding control characters is invalid."""
    if not isinstance(value, str):
        raise InvalidEvent(f"{where} must be a string")
    name = _unicode(value, where, note).strip()
    if not name:
        raise InvalidEvent(f"{where} must not be empty")
    if len(name) > NAME_MAX:
        raise InvalidEvent(f"{where} is longer than {NAME_MAX} characters")
    if _CONTROL.search(name):
        raise InvalidEvent(f"{where} contains control characters")
    return name


def check_event_id(value: Any, where: str) -> str:
    text = check_text(value, where, 64)
    if _CANONICAL_UUID.fullmatch(text):
        return text  # what str(uuid.UUID(text)) gives, ten times cheaper
    try:
        return str(uuid.UUID(text))
    except ValueError as exc:
        raise InvalidEvent(f"{where} must be a UUID") from exc


def _shown(key: str) -> str:
    """A prop key as error messages name it: at most 40 characters of it."""
    return key if len(key) <= 40 else key[:40] + "..."


def check_props(
    value: Any, where: str, note: Note = strict
) -> dict[str, str | int | float | bool] | None:
    """The props of an event: a flat object of strings, numbers and booleans.

    Each prop that breaks a limit is left out and reported to ``note``: past the first
    :data:`PROPS_MAX_KEYS` keys, a key over :data:`PROP_KEY_MAX` characters or with
    control characters, a string over :data:`PROP_VALUE_MAX` characters or with NULs
    (no database stores them), a number that is not finite or beyond ±2**53 (the
    integers a JavaScript number holds exactly), any other value. Lone surrogates are
    replaced by U+FFFD.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        note(f"{where} must be an object", "left out")
        return None
    props: dict[str, str | int | float | bool] = {}
    for index, (key, item) in enumerate(value.items()):
        if index == PROPS_MAX_KEYS:
            note(f"{where} has more than {PROPS_MAX_KEYS} keys", f"kept the first {PROPS_MAX_KEYS}")
            break
        if not isinstance(key, str):
            note(f"{where} key {key!r} must be a string", "left out")
            continue
        key = _unicode(key, f"{where} key {_shown(key)!r}", note)
        if len(key) > PROP_KEY_MAX:
            note(f"{where} key {_shown(key)!r} is longer than {PROP_KEY_MAX} chars", "left out")
            continue
        if _CONTROL.search(key):
            note(f"{where} key {_shown(key)!r} contains control characters", "left out")
            continue
        prop = f"{where}.{_shown(key)}"
        if isinstance(item, str):
            item = _unicode(item, prop, note)
            if len(item) > PROP_VALUE_MAX:
                note(f"{prop} is longer than {PROP_VALUE_MAX} characters", "left out")
            elif "\x00" in item:
                note(f"{prop} contains NUL characters", "left out")
            else:
                props[key] = item
        elif isinstance(item, bool):
            props[key] = item
        elif isinstance(item, int | float):
            if math.isfinite(item) and abs(item) <= 2**53:
                props[key] = item
            else:
                note(f"{prop} must be a finite number within ±2**53", "left out")
        else:
            note(f"{prop} must be a string, number or boolean", "left out")
    return props or None


def split_url(
    value: Any, where: str, *, hash_routing: bool = False
) -> tuple[str, str, dict[str, str], frozenset[str]]:
    """(hostname, path, utm, click ids) of an absolute http(s) page URL.

    The hostname is normalized (``ingest.hosts``); a port must be one of 1-65535. The
    query string is dropped except UTM parameters and the names of click ids; the
    fragment is dropped unless the site routes with it. A routed fragment's own query
    (``#/reset?token=...``) is a query string like the URL's: only its UTM parameters
    (after the URL's own) and click ids are kept, and a fragment that is nothing but
    parameters (``#access_token=...``, OAuth's implicit flow) names no route.
    """
    url = check_text(value, where, URL_MAX).strip()
    try:
        parts = urlsplit(url)
        raw_host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise InvalidEvent(f"{where} is not a valid URL") from exc
    if parts.scheme.lower() not in ("http", "https") or not raw_host:
        raise InvalidEvent(f"{where} must be an absolute http(s) URL")
    hostname = normalize_hostname(raw_host)
    if hostname is None or len(hostname) > HOST_MAX:
        raise InvalidEvent(f"{where} has an invalid hostname")
    if port == 0:
        raise InvalidEvent(f"{where} has an invalid port")
    path = parts.path or "/"
    queries = [parts.query]
    if hash_routing and parts.fragment:
        route, _, query = parts.fragment.partition("?")
        if "=" in route or "&" in route:
            route, query = "", parts.fragment
        if route:
            path = f"{path}#{route}"
        queries.append(query)
    path = path[:PATH_MAX]
    utm: dict[str, str] = {}
    click_ids: set[str] = set()
    for query in queries:
        if query:
            _read_query(query, utm, click_ids)
    return hostname, path, utm, frozenset(click_ids)


def _read_query(query: str, utm: dict[str, str], click_ids: set[str]) -> None:
    """Add the UTM parameters (the first of each wins) and click id names of ``query``."""
    for key, val in parse_qsl(query, keep_blank_values=False):
        lowered = key.lower()
        if lowered in UTM_KEYS and lowered not in utm:
            cleaned = _CONTROL.sub("", val).strip()[:UTM_MAX]
            if cleaned:
                utm[lowered] = cleaned
        elif lowered in CLICK_IDS:
            click_ids.add(lowered)


def check_referrer(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    return check_text(value, where, URL_MAX).strip() or None


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds validation applies, from the app's settings."""

    max_offset_ms: int
    client_fields: Mapping[str, Any] = field(default_factory=dict)


def parse_event(
    obj: Any, where: str, limits: Limits, now: dt.datetime, note: Note = strict
) -> IncomingEvent:
    """Validate one browser event object (``where`` names it in error messages).

    Raises :class:`InvalidEvent` for an event that cannot be stored; a prop or client
    field that cannot is left out and reported to ``note``.
    """
    if not isinstance(obj, Mapping):
        raise InvalidEvent(f"{where} must be a JSON object")
    name = check_name(obj.get("name", "pageview"), f"{where}.name", note)
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
        props=check_props(obj.get("props"), f"{where}.props", note),
    )
    for key, low, high in (
        ("screen_width", 0, SCREEN_MAX),
        ("engagement_ms", 0, ENGAGEMENT_MAX_MS),
        ("scroll_depth", 0, 100),
    ):
        value = obj.get(key)
        if value is not None:
            setattr(event, key, check_int(value, f"{where}.{key}", low, high))
    page_id = obj.get("page_id")
    if page_id is not None and name == "pageview":
        event.page_id = check_event_id(page_id, f"{where}.page_id")
    status = obj.get("status")
    if status is not None:
        event.extra["status"] = check_int(status, f"{where}.status", STATUS_MIN, STATUS_MAX)
    revenue = collect_revenue(obj.get("revenue"), f"{where}.revenue", note)
    if revenue is not None:
        event.extra["revenue_amount"], event.extra["revenue_currency"] = revenue
    for key, column_type in limits.client_fields.items():
        if obj.get(key) is not None:
            # The tracker sends its fields with every event: a value its column refuses
            # is left out of each, never a reason to lose the events.
            try:
                event.extra[key] = check_custom(obj[key], f"{where}.{key}", column_type)
            except InvalidEvent as exc:
                note(str(exc), "left out")
    return event


def _python_type(column_type: Any) -> Any:
    try:
        return column_type.python_type
    except (AttributeError, NotImplementedError):
        return None


def check_custom(value: Any, where: str, column_type: Any) -> Any:
    """``value`` if it fits a custom column of type ``column_type``, else InvalidEvent.

    Strings within the column's length (:data:`PROP_VALUE_MAX` without one), integers
    within the column's range, finite numbers, decimals within precision and scale,
    enum members, dates and datetimes; other types are passed through as they are.
    """
    if isinstance(column_type, sa.Enum):
        if value not in column_type.enums and not (
            column_type.enum_class is not None and isinstance(value, column_type.enum_class)
        ):
            raise InvalidEvent(f"{where} must be one of {', '.join(column_type.enums)}")
        return value
    python_type = _python_type(column_type)
    if python_type is bool:
        if not isinstance(value, bool):
            raise InvalidEvent(f"{where} must be a boolean")
        return value
    if python_type is int:
        bits = 64 if isinstance(column_type, sa.BigInteger) else 32
        if isinstance(column_type, sa.SmallInteger):
            bits = 16
        return check_int(value, where, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if python_type is float or isinstance(column_type, sa.Numeric):
        return _check_number(value, where, column_type)
    if python_type is dt.datetime or python_type is dt.date:
        # A datetime is a date too: a date column takes a date, not a datetime.
        if not isinstance(value, python_type) or (
            python_type is dt.date and isinstance(value, dt.datetime)
        ):
            raise InvalidEvent(f"{where} must be a {python_type.__name__}")
        return value
    if python_type is str or (python_type is None and isinstance(value, str)):
        limit = getattr(column_type, "length", None) or PROP_VALUE_MAX
        return check_text(value, where, limit)
    return value


def _check_number(value: Any, where: str, column_type: sa.Numeric[Any]) -> Any:
    """A finite number for a float or numeric column, within a numeric's precision."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise InvalidEvent(f"{where} must be a finite number")
    try:
        finite = Decimal(value).is_finite()
    except (InvalidOperation, ValueError):
        finite = False
    if not finite:
        raise InvalidEvent(f"{where} must be a finite number")
    if isinstance(column_type, sa.Float):
        return float(value)
    precision, scale = column_type.precision, column_type.scale or 0
    if precision is not None:
        integer_digits = len(str(int(abs(Decimal(value))))) if abs(Decimal(value)) >= 1 else 0
        if integer_digits > precision - scale:
            raise InvalidEvent(
                f"{where} must have at most {precision - scale} digits before the point"
            )
    return value


@dataclass
class Batch:
    """The events of one request: valid ones, and what was wrong with the others."""

    #: Valid events, in request order.
    events: list[IncomingEvent] = field(default_factory=list)
    #: ``{"index": I, "error": "..."}`` for each invalid event (I: its place in the request).
    rejected: list[dict[str, Any]] = field(default_factory=list)
    #: ``{"index": I, "warning": "..."}`` for each prop or field left out of a valid event.
    warnings: list[dict[str, Any]] = field(default_factory=list)


def parse_batch(items: Iterable[Any], limits: Limits, now: dt.datetime) -> Batch:
    """Validate each event of a request on its own: one bad event never costs the others."""
    batch = Batch()
    for index, obj in enumerate(items):
        notes: list[str] = []

        def note(problem: str, action: str, notes: list[str] = notes) -> None:
            notes.append(f"{problem}: {action}")

        try:
            event = parse_event(obj, f"events[{index}]", limits, now, note)
        except InvalidEvent as exc:
            batch.rejected.append({"index": index, "error": str(exc)})
            continue
        batch.events.append(event)
        batch.warnings.extend({"index": index, "warning": text} for text in notes)
    return batch
