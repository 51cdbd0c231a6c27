"""Redis-buffered ingestion: the collect endpoint appends, a flusher writes in bulk.

With ``ANALYTICS_INGEST_BUFFER = "redis"`` the collect endpoint runs the pipeline as
usual, then appends the surviving rows of the request to a Redis Stream (one entry per
request) instead of inserting them. :func:`flush` moves them to ``analytics_event`` in
bulk: on PostgreSQL the rows are stored as ``COPY`` text and COPYed as they are straight
into the table (a batch holding an event id stored already is written again through a
temporary table and ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``); SQLite an
``executemany`` of ``INSERT ... ON CONFLICT DO NOTHING``.

Reliable delivery
    Flushers read through a consumer group (``XREADGROUP``): an entry read is *pending*
    until acknowledged, and it is acknowledged (``XACK`` + ``XDEL``) only after the
    database committed its rows. A flusher killed at any point leaves its entries
    pending; another flusher (or the same command restarted) takes them over with
    ``XAUTOCLAIM`` once they have been idle ``ANALYTICS_BUFFER_CLAIM_IDLE`` seconds and
    writes them again, and the unique ``event_id`` turns the second write of rows that
    had been committed into no-ops. So nothing is lost and nothing is counted twice.

Rows that can never be written
    A row the database refuses (a value too long for a custom column, a NOT NULL
    violated by an enrich hook) would block the buffer forever. When a batch fails with
    such a data error, it is written again row by row; rows that still fail are moved to
    the dead-letter stream ``<stream>:dead`` (with the error) and the rest are stored.
    Connection errors are never treated that way: the entries stay pending for a retry.

Fallback
    When Redis cannot be reached (or the stream holds more than
    ``ANALYTICS_BUFFER_MAX_LEN`` entries, i.e. no flusher is keeping up), the endpoint
    writes the request's rows directly, exactly as without a buffer. For one second after
    a Redis failure the endpoint does not try Redis again, so an outage costs each request
    nothing more than the direct write.

Duplicates
    The database's unique ``event_id`` decides at flush time, so the endpoint cannot
    report a buffered duplicate (``X-Analytics-Dropped: duplicate``) in its answer. With
    ``ANALYTICS_BUFFER_DEDUPE_TTL`` > 0 it remembers each buffered event id in Redis
    (``SET NX``, in the same round trip as the append) for that many seconds and reports
    repeats at once; the database still has the last word.

Serialization
    Each row is one line of PostgreSQL's ``COPY`` text format (the entry's header names
    the columns), written by codecs driven by the event table's column types, so every
    value comes back as the type it went in as when a line is read in Python (SQLite,
    rows written one by one): datetimes, dates, times, decimals, UUIDs, intervals,
    bytes, enums, JSON props (``None`` stays distinct from a JSON ``null`` only where the
    column keeps them apart), and the custom columns of a subclassed event model. A
    value the codec cannot represent exactly makes that request write directly instead.
    Entries of the first format (JSON rows) are still read.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import decimal
import enum
import functools
import itertools
import json
import logging
import math
import operator
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError
from redis.retry import Retry

from ..core.dialects import insert_ignore
from ..errors import AnalyticsError
from ..ingest.insert import scalar_default

if TYPE_CHECKING:
    from ..config import Settings
    from .context import BufferContext as Context

log = logging.getLogger(__name__)

#: Consumer group every flusher reads through.
GROUP = "flask_analytics"

#: Version of the entry format, stored in every entry (``v``): 2, rows as COPY text
#: lines; 1 (still read), rows as JSON arrays.
FORMAT = b"2"

#: SQLSTATE of a unique violation (a buffered event id already stored).
UNIQUE_VIOLATION = "23505"

#: Seconds the endpoint skips Redis after a failure (writing directly meanwhile).
RETRY_AFTER = 1.0

#: Consumers that own nothing and were idle this long are removed from the group.
CONSUMER_IDLE_MS = 3600 * 1000

#: Requests of this many rows or more are encoded column by column (else row by row).
COLUMN_WISE_FROM = 8

#: Batches a flush writes at once on PostgreSQL when there is a backlog (one connection
#: and transaction each): one COPY keeps about one server core busy, the flusher itself
#: mostly waits.
WRITERS = 2

#: Appends the rows of one request (one entry), in one round trip:
#: KEYS = stream, flush-request flag, then one dedupe key per row when ARGV[2] > 0.
#: ARGV = max_len (0: none), dedupe ttl (0: off), flush threshold (0: none), flag ttl ms,
#:        columns (tab-separated), then one COPY text line per row (dedupe on), or all the
#:        lines joined by newlines (dedupe off: no row is dropped).
#: Returns {entry id or false, stream length, flush due (0/1), {indexes of duplicates}}.
APPEND_SCRIPT = """
local len = redis.call('XLEN', KEYS[1])
local max_len = tonumber(ARGV[1])
if max_len > 0 and len >= max_len then
  return {false, len, 0, {}}
end
local ttl = tonumber(ARGV[2])
local kept = {}
local dups = {}
for i = 6, #ARGV do
  if ttl == 0 or redis.call('SET', KEYS[i - 3], '1', 'NX', 'EX', ttl) then
    kept[#kept + 1] = ARGV[i]
  else
    dups[#dups + 1] = i - 6
  end
end
local id = false
if #kept > 0 then
  id = redis.call('XADD', KEYS[1], '*', 'v', '2', 'c', ARGV[5], 'r', table.concat(kept, '\\n'))
  len = len + 1
end
local due = 0
local threshold = tonumber(ARGV[3])
if threshold > 0 and len >= threshold then
  if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[4]) then
    due = 1
  end
end
return {id, len, due, dups}
"""

#: Removes this group's consumers that own no pending entry and were idle ARGV[2] ms,
#: plus the consumer named ARGV[3] when it owns nothing. Atomic, so a consumer cannot
#: take an entry between the check and the removal (its entry would be orphaned).
CLEANUP_SCRIPT = """
local removed = 0
local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if not ok then
  return 0
end
for _, info in ipairs(consumers) do
  local c = {}
  for i = 1, #info, 2 do
    c[info[i]] = info[i + 1]
  end
  if c['pending'] == 0 and (c['idle'] >= tonumber(ARGV[2]) or c['name'] == ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], c['name'])
    removed = removed + 1
  end
end
return removed
"""


#: Moves the dead-lettered rows (KEYS[1]) after id ARGV[2] ("-": from the start), up to
#: ARGV[1] of them, back into the stream (KEYS[2]), oldest first, each as an entry of its
#: own; an entry missing a field stays where it is. Atomic: a row is in exactly one of
#: the two streams whatever happens. Returns {rows moved, entries scanned, last id}.
REQUEUE_SCRIPT = """
local moved, last = 0, false
local items = redis.call('XRANGE', KEYS[1], ARGV[2], '+', 'COUNT', ARGV[1])
for _, item in ipairs(items) do
  local f = {}
  for i = 1, #item[2], 2 do
    f[item[2][i]] = item[2][i + 1]
  end
  if f['v'] and f['c'] and f['r'] then
    redis.call('XADD', KEYS[2], '*', 'v', f['v'], 'c', f['c'], 'r', f['r'])
    redis.call('XDEL', KEYS[1], item[1])
    moved = moved + 1
  end
  last = item[1]
end
return {moved, #items, last}
"""


class BufferUnavailable(AnalyticsError):
    """The ingest buffer is not configured, or its Redis cannot be reached."""


# -- serialization ------------------------------------------------------------------------
#
# Rows are stored in PostgreSQL's COPY text format: one line per row, fields separated by
# tabs, backslash escapes (\\ \t \n \r), NULL as \N; the entry's header lists the columns
# (tab-separated). The flusher COPYs the lines as they are: no per-row Python on
# PostgreSQL. Other databases, and the rare paths (a row refused, a column type that
# needs Python), parse the lines back into the values that went in, driven by the column
# types. Entries of the first format (JSON arrays, header a JSON list) are still read.


Codec = tuple[Callable[[Any], Any] | None, Callable[[Any], Any] | None]

#: Values every column type may carry as themselves (JSON-native scalars).
_SCALARS = (str, int, float)

#: Compact and ASCII-only; no NaN (PostgreSQL's JSON refuses it). For the columns whose
#: values need Python (enums, type decorators...), and the first entry format.
#: A JSONEncoder holds no per-call state: one shared instance saves building one per row.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
#: JSON column values as PostgreSQL stores them: UTF-8 (fewer escapes than \uXXXX).
_JSON_TEXT = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False)

#: COPY's NULL marker (text format).
_NULL = "\\N"
_NULLS = {None: _NULL}
_FROM_NULL: dict[str, None] = {_NULL: None}
_FROM_NULL_OR_JSON_NULL: dict[str, None] = {_NULL: None, "null": None}
_NONE = type(None)
_STR: frozenset[type] = frozenset({str, _NONE})
_UNESCAPE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))", re.DOTALL)
_UNESCAPED = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_INTERVAL = re.compile(r"([+-]\d+) day ([+-]\d+) second ([+-]\d+) microsecond")


def _iso(kind: type[Any]) -> Callable[[Any], Any]:
    def encode(value: Any) -> Any:
        if type(value) is not kind:
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return value.isoformat()

    return encode


def _decimal_encode(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return {"d": str(value)}
    if isinstance(value, _SCALARS):
        return value
    raise TypeError(f"expected a number, got {type(value).__name__}")


def _decimal_decode(value: Any) -> Any:
    return decimal.Decimal(value["d"]) if isinstance(value, dict) else value


def _uuid_encode(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return {"u": str(value)}
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a UUID, got {type(value).__name__}")


def _uuid_decode(value: Any) -> Any:
    return uuid.UUID(value["u"]) if isinstance(value, dict) else value


def _bytes_encode(value: Any) -> Any:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"expected bytes, got {type(value).__name__}")
    return base64.b64encode(bytes(value)).decode("ascii")


def _interval_encode(value: Any) -> Any:
    if not isinstance(value, dt.timedelta):
        raise TypeError(f"expected a timedelta, got {type(value).__name__}")
    return [value.days, value.seconds, value.microseconds]


def _enum_codec(enum_class: type[enum.Enum]) -> Codec:
    def encode(value: Any) -> Any:
        if isinstance(value, enum_class):
            return {"e": value.name}
        if isinstance(value, str):
            return value
        raise TypeError(f"expected {enum_class.__name__}, got {type(value).__name__}")

    def decode(value: Any) -> Any:
        return enum_class[value["e"]] if isinstance(value, dict) else value

    return encode, decode


def _json_encode(value: Any) -> Any:
    return value  # nested JSON as is; json.dumps refuses what it cannot represent


def column_codec(column: sa.Column[Any]) -> Codec:
    """(encode, decode) of one column's values as JSON; ``None`` means "JSON scalar as is".

    The JSON form of the columns that need Python (:func:`text_codec`), and of the whole
    row in the first entry format.
    """
    kind: Any = column.type
    if isinstance(kind, sa.Interval):  # a TypeDecorator over DateTime: test it first
        return _interval_encode, lambda v: dt.timedelta(*v)
    if isinstance(kind, sa.types.TypeDecorator):
        kind = kind.impl_instance
    if isinstance(kind, sa.DateTime):
        return _iso(dt.datetime), dt.datetime.fromisoformat
    if isinstance(kind, sa.Date):
        return _iso(dt.date), dt.date.fromisoformat
    if isinstance(kind, sa.Time):
        return _iso(dt.time), dt.time.fromisoformat
    if isinstance(kind, sa.JSON):
        return _json_encode, None
    if isinstance(kind, sa.Enum) and kind.enum_class is not None:
        return _enum_codec(kind.enum_class)
    if isinstance(kind, sa.Numeric) and not isinstance(kind, sa.Float):
        return _decimal_encode, _decimal_decode
    if isinstance(kind, sa.Uuid):
        return _uuid_encode, _uuid_decode
    if isinstance(kind, sa.LargeBinary):
        return _bytes_encode, base64.b64decode
    return None, None


# -- COPY text: one codec per column type ------------------------------------------------


@dataclass(frozen=True)
class TextCodec:
    """How one column's values are written as COPY text, and read back."""

    #: Python value (not None) -> field text, unescaped; raises TypeError/ValueError for a
    #: value it cannot write exactly. None: the value must be of one of ``plain``'s types
    #: (None included), written as ``str(value)``.
    encode: Callable[[Any], str] | None
    #: Field text (unescaped, not \N) -> the Python value.
    decode: Callable[[str], Any]
    plain: frozenset[type] = frozenset()
    #: Text of a None (a JSON column that keeps None as JSON ``null``); None: NULL.
    none: str | None = None
    #: PostgreSQL reads the text as the column's value (False: the column's values need
    #: Python, e.g. bind processors; such rows are decoded before they are written).
    native: bool = True
    #: The text never holds a backslash, tab, newline or CR (never needs an escape).
    safe: bool = False


def _identity(text: str) -> Any:
    return text


def _bool_decode(text: str) -> bool:
    if text in ("True", "t", "true"):
        return True
    if text in ("False", "f", "false"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _float_text(value: Any) -> str:
    if type(value) is not float and (type(value) is not int):
        raise TypeError(f"expected a float, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"cannot buffer {value!r}")
    return repr(value)


def _numeric_text(value: Any) -> str:
    # Floats are refused: PostgreSQL converts a float8 parameter to numeric with 15
    # digits, Python's repr has up to 17; the direct path keeps them apart.
    if type(value) is decimal.Decimal and value.is_finite():
        return str(value)
    if type(value) is int:
        return str(value)
    raise TypeError(f"expected a Decimal, got {type(value).__name__}")


def _uuid_text(value: Any) -> str:
    if type(value) is not uuid.UUID:
        raise TypeError(f"expected a UUID, got {type(value).__name__}")
    return str(value)


def _str_text(value: Any) -> str:
    if type(value) is not str:
        raise TypeError(f"expected a str, got {type(value).__name__}")
    return value


def _bytes_text(value: Any) -> str:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"expected bytes, got {type(value).__name__}")
    return "\\x" + bytes(value).hex()


def _bytes_decode(text: str) -> bytes:
    if not text.startswith("\\x"):
        raise ValueError("bytea text without \\x")
    return bytes.fromhex(text[2:])


def _interval_text(value: Any) -> str:
    if type(value) is not dt.timedelta:
        raise TypeError(f"expected a timedelta, got {type(value).__name__}")
    # Explicit signs: read the same whatever the server's IntervalStyle.
    return f"{value.days:+d} day {value.seconds:+d} second {value.microseconds:+d} microsecond"


def _interval_decode(text: str) -> dt.timedelta:
    match = _INTERVAL.fullmatch(text)
    if match is None:
        raise ValueError(f"not an interval: {text!r}")
    days, seconds, microseconds = (int(g) for g in match.groups())
    return dt.timedelta(days=days, seconds=seconds, microseconds=microseconds)


def _json_text_codec(kind: sa.JSON) -> TextCodec:
    # None is JSON null (as the direct path writes it) unless the column says otherwise.
    return TextCodec(_JSON_TEXT.encode, json.loads, none=None if kind.none_as_null else "null")


def _python_codec(column: sa.Column[Any]) -> TextCodec:
    """A column whose values need Python to be written: JSON as in :func:`column_codec`."""
    encode, decode = column_codec(column)
    name = column.name

    def to_text(value: Any) -> str:
        if encode is not None:
            value = encode(value)
        elif not isinstance(value, _SCALARS):
            raise TypeError(f"column {name!r}: cannot buffer a {type(value).__name__} value")
        return str(_ENCODER.encode(value))

    def from_text(text: str) -> Any:
        value = json.loads(text)
        return value if decode is None or value is None else decode(value)

    return TextCodec(to_text, from_text, native=False)


def text_codec(column: sa.Column[Any]) -> TextCodec:
    """The COPY text codec of one column, by its type.

    Each accepts the Python types it can write exactly (a datetime column a datetime, an
    integer column an int...); anything else makes the request write directly, where the
    driver and SQLAlchemy convert it as they always do.
    """
    kind: Any = column.type
    if isinstance(kind, sa.Interval):  # a TypeDecorator: test it first
        if kind.native:
            return TextCodec(_interval_text, _interval_decode, safe=True)
        return _python_codec(column)
    if isinstance(kind, sa.types.TypeDecorator | sa.Enum):
        return _python_codec(column)
    if isinstance(kind, sa.JSON):
        return _json_text_codec(kind)
    if isinstance(kind, sa.String):
        return TextCodec(None, _identity, _STR)
    if isinstance(kind, sa.Boolean):
        return TextCodec(None, _bool_decode, frozenset({bool, _NONE}), safe=True)
    if isinstance(kind, sa.Integer):
        return TextCodec(None, int, frozenset({int, _NONE}), safe=True)
    if isinstance(kind, sa.Float):
        return TextCodec(_float_text, float, safe=True)
    if isinstance(kind, sa.Numeric):
        return TextCodec(_numeric_text, decimal.Decimal, safe=True)
    if isinstance(kind, sa.DateTime):
        return TextCodec(_iso(dt.datetime), dt.datetime.fromisoformat, safe=True)
    if isinstance(kind, sa.Date):
        return TextCodec(_iso(dt.date), dt.date.fromisoformat, safe=True)
    if isinstance(kind, sa.Time):
        return TextCodec(_iso(dt.time), dt.time.fromisoformat, safe=True)
    if isinstance(kind, sa.Uuid):
        if kind.as_uuid:
            return TextCodec(_uuid_text, uuid.UUID, safe=True)
        return TextCodec(_str_text, _identity)
    if isinstance(kind, sa.LargeBinary):
        return TextCodec(_bytes_text, _bytes_decode)
    return _python_codec(column)


def copy_escape(text: str) -> str:
    """``text`` as one field of a COPY text line (backslash, tab, newline, CR escaped)."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return (
            text.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return text


def _unescape_one(match: re.Match[str]) -> str:
    octal, hexa, char = match.groups()
    if octal is not None:
        return chr(int(octal, 8))
    if hexa is not None:
        return chr(int(hexa, 16))
    return _UNESCAPED.get(char, char)


@dataclass(frozen=True)
class _Step:
    """How one column of a column list is written."""

    name: str
    default: Any
    getter: Callable[[Mapping[str, Any]], Any]
    codec: TextCodec


@dataclass(frozen=True)
class _Plan:
    """How the rows of one column list are written (cached per column list)."""

    names: tuple[str, ...]
    #: Column by column.
    steps: list[_Step]
    #: Row by row: the values of a row that has every column, in order.
    getter: Callable[[Mapping[str, Any]], Sequence[Any]]
    defaults: list[tuple[str, Any]]
    #: (values getter, types allowed, indexes) of the columns written as ``str(value)``.
    checks: list[tuple[Callable[[Sequence[Any]], Sequence[Any]], frozenset[type], list[int]]]
    #: (index, encode, text of None) of the others.
    special: list[tuple[int, Callable[[Any], str], str | None]]


class RowCodec:
    """Lossless COPY text for the rows of one event table (column-type driven)."""

    def __init__(self, table: sa.Table) -> None:
        self.table = table
        self.columns = {c.name: c for c in table.columns if c.name != "id"}
        self.codecs = {name: column_codec(c) for name, c in self.columns.items()}
        self.text_codecs = {name: text_codec(c) for name, c in self.columns.items()}
        self.defaults = {name: scalar_default(c) for name, c in self.columns.items()}
        #: Columns with a Python-side scalar default are always written (the default
        #: filled in), so that COPY, which knows only the table's own defaults, can
        #: write the rows as they are.
        self.always = frozenset(
            name for name, c in self.columns.items() if self.defaults[name] is not None
        )
        self._plans: dict[tuple[str, ...], _Plan] = {}

    def _plan(self, names: tuple[str, ...]) -> _Plan:
        plan = self._plans.get(names)
        if plan is not None:
            return plan
        codecs = [self.text_codecs[n] for n in names]
        by_types: dict[frozenset[type], list[int]] = {}
        for i, codec in enumerate(codecs):
            if codec.encode is None:
                by_types.setdefault(codec.plain, []).append(i)
        plan = _Plan(
            names=names,
            steps=[
                _Step(n, self.defaults[n], operator.itemgetter(n), codec)
                for n, codec in zip(names, codecs, strict=True)
            ],
            getter=_getter(names),
            defaults=[(n, self.defaults[n]) for n in names],
            checks=[(_getter(idx), types, idx) for types, idx in by_types.items()],
            special=[
                (i, codec.encode, codec.none)
                for i, codec in enumerate(codecs)
                if codec.encode is not None
            ],
        )
        if len(self._plans) < 64:  # column lists are few; never grow without bound
            self._plans[names] = plan
        return plan

    def encode(self, rows: Sequence[Mapping[str, Any]]) -> tuple[bytes, list[bytes]]:
        """(header, one COPY text line per row). Raises TypeError/ValueError if lossy.

        Every row gets every column any row of the request has (and every column with a
        Python-side scalar default); a key some rows lack gets the column's scalar
        default, as the direct multi-row ``INSERT`` does.
        """
        keys = set().union(*rows)
        names = tuple(sorted((keys & self.columns.keys()) | self.always))
        plan = self._plan(names)
        # Every row has every key (the usual case): plain item lookups will do.
        complete = keys.issuperset(names) and set(map(len, rows)) == {len(keys)}
        if len(rows) < COLUMN_WISE_FROM:
            lines = self._row_lines(plan, rows, complete)
        else:
            try:
                lines = self._column_lines(plan, rows, complete, strict=False)
            except TypeError:  # a str column holds something else: check every value
                lines = self._column_lines(plan, rows, complete, strict=True)
        return "\t".join(names).encode(), list(map(str.encode, lines))

    def _row_lines(
        self, plan: _Plan, rows: Sequence[Mapping[str, Any]], complete: bool
    ) -> list[str]:
        """The rows' COPY text lines, row by row: for a few rows (a request's usual one)."""
        encoded = []
        lines = []
        nulls = 0
        for row in rows:
            if complete:
                values = list(plan.getter(row))
            else:
                values = [row.get(name, default) for name, default in plan.defaults]
            for getter, types, indexes in plan.checks:
                if not set(map(type, getter(values))) <= types:
                    for i in indexes:
                        values[i] = _plain_value(plan.names[i], values[i], types)
            for i, encode, none in plan.special:
                value = values[i]
                values[i] = none if value is None else encode(value)
            nulls += values.count(None)
            encoded.append(values)
            # \\N for None, str(value) (a str itself), at C speed.
            lines.append("\t".join(map(str, map(_NULLS.get, values, values))))
        if _need_escapes(lines, nulls, len(plan.names)):
            lines = [
                "\t".join([_NULL if v is None else copy_escape(str(v)) for v in values])
                for values in encoded
            ]
        return lines

    def _column_lines(
        self, plan: _Plan, rows: Sequence[Mapping[str, Any]], complete: bool, strict: bool
    ) -> list[str]:
        """The rows' COPY text lines, column by column with C-speed built-ins (``map``,
        ``str.join``): a few passes per column, no Python loop over every value. For
        many rows (a fixed cost per column).

        Not ``strict``, str columns are not type-checked: ``str.join`` raises TypeError
        when one holds anything but a str (or None, replaced by \\N before).
        """
        n = len(rows)
        texts: list[list[Any]] = []
        unsafe: list[tuple[int, list[Any]]] = []
        nulls = 0
        for i, step in enumerate(plan.steps):
            if complete:
                column = list(map(step.getter, rows))
            else:
                column = [row.get(step.name, step.default) for row in rows]
            codec = step.codec
            if codec.encode is not None:
                encode, none = codec.encode, codec.none
                column = [none if v is None else encode(v) for v in column]
            elif (strict or codec.plain is not _STR) and not set(map(type, column)) <= codec.plain:
                column = [_plain_value(step.name, v, codec.plain) for v in column]
            if not codec.safe:
                unsafe.append((i, column))
            k = column.count(None)
            nulls += k
            text = (
                column if k == 0 else [_NULL] * n if k == n else [*map(_NULLS.get, column, column)]
            )
            if codec.plain is not _STR and codec.encode is None:
                text = list(map(str, text))  # ints, booleans
            texts.append(text)
        lines = list(map("\t".join, zip(*texts, strict=True)))
        if _need_escapes(lines, nulls, len(plan.names)):
            for i, column in unsafe:
                texts[i] = [_NULL if v is None else copy_escape(v) for v in column]
            lines = list(map("\t".join, zip(*texts, strict=True)))
        return lines

    def names(self, columns: bytes) -> tuple[str, ...]:
        """The column names of an entry's header, checked against the table."""
        if _is_json_header(columns):
            names = tuple(json.loads(columns))
        else:
            names = tuple(columns.decode().split("\t"))
        unknown = [n for n in names if n not in self.columns]
        if unknown:
            raise ValueError(f"unknown columns {unknown} (was the event model changed?)")
        return names

    def native(self, names: Sequence[str]) -> bool:
        """Whether PostgreSQL can read every column of these rows from their text."""
        return all(self.text_codecs[name].native for name in names)

    def decode(self, columns: bytes, rows: bytes) -> tuple[tuple[str, ...], list[list[Any]]]:
        """Column names and Python rows of one entry (the inverse of :meth:`encode`)."""
        if _is_json_header(columns):
            return self._decode_json(columns, rows)
        names = self.names(columns)
        text = rows.decode()
        # Our lines escape nothing unless every backslash is that of a \\N (the usual case).
        escapes = text.count("\\") != text.count(_NULL)
        fields = list(map(str.split, text.split("\n"), itertools.repeat("\t")))
        if set(map(len, fields)) != {len(names)}:
            bad = next(len(row) for row in fields if len(row) != len(names))
            raise ValueError(f"a row has {bad} values for {len(names)} columns")
        n = len(fields)
        # Column by column, mostly with C-speed built-ins.
        columns_values: list[Sequence[Any]] = []
        for name, texts in zip(names, zip(*fields, strict=True), strict=True):
            codec = self.text_codecs[name]
            k = texts.count(_NULL)
            values: Sequence[Any]
            if escapes and "".join(texts).count("\\") != k:
                values = [
                    None if f == _NULL else _UNESCAPE.sub(_unescape_one, f) if "\\" in f else f
                    for f in texts
                ]
            elif codec.none is not None:  # JSON null is None too (as the direct path has it)
                values = [*map(_FROM_NULL_OR_JSON_NULL.get, texts, texts)]
            elif k == 0:
                values = texts
            elif k == n:
                values = [None] * n
            else:
                values = [*map(_FROM_NULL.get, texts, texts)]
            decode = codec.decode
            if decode is not _identity:
                if None in values:
                    values = [None if v is None else decode(v) for v in values]
                else:
                    values = list(map(decode, values))
            columns_values.append(values)
        return names, list(map(list, zip(*columns_values, strict=True)))

    def _decode_json(self, columns: bytes, rows: bytes) -> tuple[tuple[str, ...], list[list[Any]]]:
        """Entries of the first format: one JSON array per row."""
        names = self.names(columns)
        # json.dumps escapes control characters, so a newline only ever separates rows.
        values: list[list[Any]] = json.loads(b"[" + rows.replace(b"\n", b",") + b"]")
        decoders = []
        for i, name in enumerate(names):
            decode = self.codecs[name][1]
            if decode is not None:
                decoders.append((i, decode))
        for row in values:
            if len(row) != len(names):
                raise ValueError(f"a row has {len(row)} values for {len(names)} columns")
            for i, decode in decoders:
                if row[i] is not None:
                    row[i] = decode(row[i])
        return names, values


def _is_json_header(columns: bytes) -> bool:
    """Whether an entry is of the first format (header: a JSON list of names)."""
    return columns.startswith(b"[")


def _getter(keys: Sequence[Any]) -> Callable[[Any], Sequence[Any]]:
    """``operator.itemgetter`` that always returns a tuple."""
    if len(keys) == 1:
        key = keys[0]
        return lambda obj: (obj[key],)
    return operator.itemgetter(*keys)


def _plain_value(name: str, value: Any, types: frozenset[type]) -> Any:
    """``value`` as one of ``types`` exactly (the str of a str subclass...), or TypeError."""
    if type(value) in types:
        return value
    base = next((t for t in types if t is not _NONE and isinstance(value, t)), None)
    if base is None or (base is int and isinstance(value, bool)):
        raise TypeError(f"column {name!r}: cannot buffer a {type(value).__name__} value")
    return base(value) if base is not str else str.__str__(value)


def _need_escapes(lines: list[str], nulls: int, columns: int) -> bool:
    """Whether a field of ``lines`` holds a backslash, tab, newline or CR (one check for a
    whole request: the only backslashes must be the \\N, tabs only separate fields)."""
    text = "\n".join(lines)
    return (
        text.count("\\") != nulls
        or text.count("\t") != (columns - 1) * len(lines)
        or text.count("\n") != len(lines) - 1
        or "\r" in text
    )


# -- the buffer (per app, in Context) ------------------------------------------------


@dataclass(frozen=True)
class Appended:
    """What :meth:`RedisBuffer.append` did with a request's rows."""

    #: Stream id of the new entry (None when every row was an early-detected duplicate).
    entry_id: str | None
    #: Indexes (into the rows given) of rows already buffered (``ANALYTICS_BUFFER_DEDUPE_TTL``).
    duplicates: tuple[int, ...]
    #: Entries in the stream after the append.
    length: int
    #: The stream passed ``ANALYTICS_BUFFER_FLUSH_THRESHOLD`` and nobody asked for a flush yet.
    flush_due: bool


class RedisBuffer:
    """The Redis Stream between the collect endpoint and the flushers, for one app."""

    def __init__(self, settings: Settings, table: sa.Table) -> None:
        url = settings.buffer_redis_url
        assert url is not None  # load_settings guarantees it for the redis buffer
        self.settings = settings
        self.stream = settings.buffer_stream
        self.dead_stream = f"{self.stream}:dead"
        self.flag_key = f"{self.stream}:flush-requested"
        self.codec = RowCodec(table)
        # Short timeouts: the endpoint would rather write directly than wait for Redis.
        # One immediate retry reconnects a pooled connection the server closed; a retried
        # append that had in fact run only buffers a duplicate, which the flush drops.
        self.redis: Redis = Redis.from_url(
            url,
            socket_connect_timeout=1.0,
            socket_timeout=2.0,
            retry=Retry(NoBackoff(), 1),
            health_check_interval=30,
        )
        self._append = self.redis.register_script(APPEND_SCRIPT)
        self._cleanup = self.redis.register_script(CLEANUP_SCRIPT)
        self._requeue = self.redis.register_script(REQUEUE_SCRIPT)
        #: Until when (monotonic) the endpoint writes directly without trying Redis. One
        #: float, replaced whole: no lock needed between request threads.
        self._skip_until = 0.0

    # -- endpoint side --------------------------------------------------------------------

    def dedupe_key(self, event_id: str) -> str:
        return f"{self.stream}:seen:{event_id}"

    def append(self, rows: Sequence[Mapping[str, Any]]) -> Appended | None:
        """Buffer the rows of one request; None when they must be written directly."""
        if time.monotonic() < self._skip_until:
            return None
        try:
            columns, encoded = self.codec.encode(rows)
        except (TypeError, ValueError) as exc:
            log.warning("analytics buffer: writing directly, a value cannot be buffered: %s", exc)
            return None
        settings = self.settings
        ttl = settings.buffer_dedupe_ttl
        keys = [self.stream, self.flag_key]
        if ttl:
            keys += [self.dedupe_key(row["event_id"]) for row in rows]
        threshold = settings.buffer_flush_threshold if settings.redis_url else 0
        args: list[Any] = [
            settings.buffer_max_len or 0,
            ttl,
            threshold,
            max(1, int(settings.buffer_flush_interval * 1000)),
            columns,
            # Without early dedupe no row is dropped: the rows go joined, as one argument
            # (the script keeps it whole), sparing the per-argument work on both sides.
            *(encoded if ttl else [b"\n".join(encoded)]),
        ]
        try:
            entry_id, length, due, dups = self._append(keys=keys, args=args)
        except (OSError, RedisError) as exc:
            self._skip_until = time.monotonic() + RETRY_AFTER
            log.warning("analytics buffer: Redis unavailable, writing directly (%s)", exc)
            return None
        if entry_id is None and not dups:  # the stream is full: nobody is flushing
            self._skip_until = time.monotonic() + RETRY_AFTER
            log.warning(
                "analytics buffer: %s holds %d entries (ANALYTICS_BUFFER_MAX_LEN), "
                "writing directly; is `flask analytics flush --loop` running?",
                self.stream,
                length,
            )
            return None
        return Appended(
            entry_id=entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
            duplicates=tuple(int(i) for i in dups),
            length=int(length),
            flush_due=bool(due),
        )

    # -- flusher side ---------------------------------------------------------------------

    def ensure_group(self) -> None:
        """Create the consumer group (and the stream) unless they exist.

        From id 0, not ``$``: entries appended before the group existed are flushed too.
        """
        try:
            self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def backlog(self) -> int:
        """Entries in the stream: not flushed yet (new or pending)."""
        return int(self.redis.xlen(self.stream))

    def info(self) -> BufferInfo:
        """Entries waiting, pending (read by a flusher, not yet committed) and dead-lettered."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.xlen(self.stream)
        pipe.xlen(self.dead_stream)
        pipe.xinfo_groups(self.stream)
        length, dead, groups = _pipeline_results(pipe)
        pending = consumers = 0
        for group in groups if isinstance(groups, list) else []:
            name = group.get("name")
            if name in (GROUP, GROUP.encode()):
                pending = int(group.get("pending", 0))
                consumers = int(group.get("consumers", 0))
        return BufferInfo(
            stream=self.stream, length=int(length), pending=pending, consumers=consumers,
            dead=int(dead),
        )  # fmt: skip

    def read_own(self, consumer: str, count: int) -> list[Entry]:
        """Entries this consumer read before and has not acknowledged (a failed write)."""
        entries, deleted = self._entries(
            self.redis.xreadgroup(GROUP, consumer, {self.stream: "0"}, count=count)
        )
        if deleted:  # deleted while pending (by hand?): they cannot be read, forget them
            self.redis.xack(self.stream, GROUP, *deleted)
        return entries

    def claim(self, consumer: str, count: int, cursor: str = "0-0") -> tuple[str, list[Entry]]:
        """Take over entries other consumers left pending for ``ANALYTICS_BUFFER_CLAIM_IDLE``."""
        idle_ms = int(self.settings.buffer_claim_idle * 1000)
        reply = self.redis.xautoclaim(
            self.stream, GROUP, consumer, idle_ms, start_id=cursor, count=count
        )
        # Redis >= 7 drops ids deleted while pending from the PEL itself (reply[2]).
        next_cursor, claimed = reply[0], reply[1]
        entries = [Entry.of(i, f) for i, f in claimed if f]
        return _s(next_cursor), entries

    def read_new(self, consumer: str, count: int) -> list[Entry]:
        """Entries no consumer has read yet (``>``)."""
        entries, _ = self._entries(
            self.redis.xreadgroup(GROUP, consumer, {self.stream: ">"}, count=count)
        )
        return entries

    def ack(self, entries: Sequence[Entry], dead: Sequence[DeadRow] = ()) -> None:
        """Acknowledge and delete entries whose rows are committed; dead-letter refused rows.

        One MULTI: a crash leaves either all of it done or none (the entries are then
        written again, as duplicates, and dead-lettered again).
        """
        ids = [e.id for e in entries]
        pipe = self.redis.pipeline(transaction=True)
        for row in dead:
            pipe.xadd(
                self.dead_stream,
                {"v": b"1" if _is_json_header(row.columns) else FORMAT, "c": row.columns,
                 "r": row.row, "entry": row.entry_id,
                 "error": row.error[:2000]},
            )  # fmt: skip
        if ids:
            pipe.xack(self.stream, GROUP, *ids)
            pipe.xdel(self.stream, *ids)
        pipe.execute()

    def requeue_dead(self, chunk: int = 1000) -> int:
        """Move every dead-lettered row back into the stream; returns how many moved.

        For after the cause is fixed (a column widened, a constraint or an enrich hook
        corrected): the next flush writes them, and a row still refused goes back to the
        dead-letter stream. Event ids stay unique, so nothing is stored twice.
        """
        moved, start = 0, "-"
        while True:
            n, scanned, last = self._requeue(
                keys=[self.dead_stream, self.stream], args=[chunk, start]
            )
            moved += int(n)
            if int(scanned) < chunk:
                return moved
            start = "(" + _s(last)

    def cleanup(self, consumer: str) -> int:
        """Remove ``consumer`` if it owns nothing, and long-idle empty consumers."""
        return int(self._cleanup(keys=[self.stream], args=[GROUP, CONSUMER_IDLE_MS, consumer]))

    @staticmethod
    def _entries(reply: Any) -> tuple[list[Entry], list[Any]]:
        entries: list[Entry] = []
        deleted: list[Any] = []
        for _stream, items in reply or []:
            for entry_id, fields in items:
                if fields:
                    entries.append(Entry.of(entry_id, fields))
                else:
                    deleted.append(entry_id)
        return entries, deleted


def _pipeline_results(pipe: Any) -> list[Any]:
    results: list[Any] = pipe.execute(raise_on_error=False)
    # XINFO GROUPS on a missing stream is an error: no stream, no groups.
    return [[] if isinstance(r, ResponseError) else r for r in results]


@dataclass(frozen=True)
class BufferInfo:
    """The state of the buffer, for ``flask analytics status``."""

    stream: str
    length: int
    pending: int
    consumers: int
    dead: int


@dataclass(frozen=True)
class Entry:
    """One stream entry: the buffered rows of one request."""

    id: str
    fields: Mapping[bytes, bytes]

    @classmethod
    def of(cls, entry_id: Any, fields: Mapping[Any, Any]) -> Entry:
        return cls(_s(entry_id), {_b(k): _b(v) for k, v in fields.items()})


def _b(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _s(value: Any) -> str:
    """A Redis reply value (an id, a cursor) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class DeadRow:
    """A row the database refused (or an entry that cannot be read), to be dead-lettered."""

    entry_id: str
    columns: bytes
    #: One row as stored (a COPY text line; a JSON array in the first format), or all
    #: the rows of an unreadable entry (``whole_entry``).
    row: bytes
    error: str
    whole_entry: bool = False


def _unreadable(entry_id: str, columns: bytes, raw: bytes, exc: Exception) -> DeadRow:
    """An entry not written by this version of the package (or corrupted), set aside."""
    return DeadRow(entry_id, columns, raw, f"unreadable entry: {exc!r}", whole_entry=True)


# -- flushing -------------------------------------------------------------------------------


@dataclass
class FlushResult:
    """What one :func:`flush` pass did."""

    #: Stream entries (buffered requests) read and acknowledged.
    entries: int = 0
    #: Rows in those entries.
    rows: int = 0
    #: Rows inserted (the others were duplicates of stored event ids).
    inserted: int = 0
    duplicates: int = 0
    #: Rows the database refused, moved to the dead-letter stream.
    dead: int = 0
    #: Entries taken over from flushers that died or stalled.
    reclaimed: int = 0
    #: Database transactions (bulk writes) committed.
    batches: int = 0
    seconds: float = 0.0

    def add(self, other: FlushResult) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def consumer_name() -> str:
    """A consumer name unique to this process and call (host, pid, random)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def get_buffer(state: Context) -> RedisBuffer:
    """The app's buffer, or a clear error when ``ANALYTICS_INGEST_BUFFER`` is not "redis"."""
    if state.buffer is None:
        raise BufferUnavailable(
            "ANALYTICS_INGEST_BUFFER is 'direct': events are written to the database as they "
            "arrive, so there is nothing to flush. Set it to 'redis' to buffer them."
        )
    return state.buffer


def flush(
    state: Context,
    *,
    consumer: str | None = None,
    max_seconds: float | None = None,
    stop: threading.Event | None = None,
    on_batch: Callable[[FlushResult], None] | None = None,
) -> FlushResult:
    """Move buffered rows to the database until a read finds less than a full batch.

    A short read means the stream held nothing more at that moment; rows appended since
    wait for the next pass (``flush_loop`` starts one within the flush interval, or as
    soon as the threshold is reached), so a steady trickle is written in full batches.
    Order: this consumer's own unacknowledged entries (a previous write failed), entries
    other consumers left pending too long (they died), then new ones. Each batch of
    ``ANALYTICS_BUFFER_BATCH`` entries is one database transaction, acknowledged after
    its commit. On PostgreSQL, once a full batch of new entries shows a backlog,
    :data:`WRITERS` batches are written at once (each a transaction on a connection of
    its own). Stops early after ``max_seconds`` or when ``stop`` is set (between
    batches). Redis and database connection errors propagate; entries being written stay
    pending and are retried by the next pass.
    """
    buffer = get_buffer(state)
    consumer = consumer or consumer_name()
    started = time.perf_counter()
    total = FlushResult()
    count = state.settings.buffer_batch
    engine = state.engine()
    buffer.ensure_group()
    lock = threading.Lock()
    abort = threading.Event()  # a parallel writer failed: the others stop too

    def stopping() -> bool:
        return (
            abort.is_set()
            or (stop is not None and stop.is_set())
            or (max_seconds is not None and time.perf_counter() - started > max_seconds)
        )

    def write(read: Callable[[], list[Entry]], reclaimed: bool = False) -> int:
        """Read a batch and write it; its number of entries (0: nothing was left)."""
        batch_started = time.perf_counter()
        entries = read()
        if not entries:
            return 0
        result = _write_entries(state, engine, entries)
        buffer.ack(entries, result.dead_rows)
        batch = result.summary
        batch.seconds = time.perf_counter() - batch_started
        if reclaimed:
            batch.reclaimed = len(entries)
        with lock:
            total.add(batch)
            if on_batch is not None:
                on_batch(batch)
        return len(entries)

    cursor = "0-0"

    def reclaim() -> list[Entry]:
        nonlocal cursor
        entries: list[Entry] = []
        # XAUTOCLAIM scans the pending list in pages; go on until a page yields entries
        # or the scan is complete.
        while not entries:
            cursor, entries = buffer.claim(consumer, count, cursor)
            if cursor == "0-0":
                break
        return entries

    def read_new() -> list[Entry]:
        return buffer.read_new(consumer, count)

    def drain() -> None:
        # Until a read comes back short: the stream was empty then. Reading on would,
        # under a steady trickle of requests, write a tiny batch per loop (a commit and
        # an acknowledgement for every few rows) and never return to flush_loop's wait.
        while not stopping() and write(read_new) == count:
            pass

    try:
        while not stopping() and write(lambda: buffer.read_own(consumer, count)):
            pass
        while not stopping() and write(reclaim, reclaimed=True) and cursor != "0-0":
            pass
        first = 0 if stopping() else write(read_new)
        if first == count:
            if WRITERS > 1 and engine.dialect.name == "postgresql":
                _in_parallel(drain, WRITERS, abort)
            else:
                drain()
    finally:
        total.seconds = time.perf_counter() - started  # the batches' and the reads in between
    try:
        buffer.cleanup(consumer)
    except RedisError as exc:  # housekeeping only: the next pass does it
        log.warning("analytics buffer: consumer cleanup failed: %s", exc)
    return total


def _in_parallel(work: Callable[[], None], n: int, abort: threading.Event) -> None:
    """Run ``work`` in ``n`` threads (this one included); the first error is raised.

    A failing thread sets ``abort``, so that the others stop after their batch.
    """
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)
            abort.set()

    helpers = [
        threading.Thread(target=run, name=f"analytics-flush-{i}", daemon=True) for i in range(1, n)
    ]
    for helper in helpers:
        helper.start()
    try:
        work()
    except BaseException:
        abort.set()
        raise
    finally:
        for helper in helpers:
            helper.join()
    if errors:
        raise errors[0]


def flush_loop(
    state: Context,
    *,
    stop: threading.Event,
    interval: float | None = None,
    threshold: int | None = None,
    on_batch: Callable[[FlushResult], None] | None = None,
    on_error: Callable[[Exception], None] | None = None,
) -> FlushResult:
    """Flush every ``interval`` seconds, or as soon as ``threshold`` entries wait, until ``stop``.

    Redis or database outages are reported to ``on_error`` and retried after the
    interval: a flusher outlives the services it connects to.
    """
    buffer = get_buffer(state)
    interval = state.settings.buffer_flush_interval if interval is None else interval
    threshold = state.settings.buffer_flush_threshold if threshold is None else threshold
    consumer = consumer_name()
    total = FlushResult()
    poll = min(0.1, interval)
    while not stop.is_set():
        try:
            total.add(flush(state, consumer=consumer, stop=stop, on_batch=on_batch))
        except (OSError, RedisError, sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            if on_error is not None:
                on_error(exc)
            else:
                log.warning("analytics buffer: flush failed, retrying: %s", exc)
            stop.wait(interval)
            continue
        deadline = time.monotonic() + interval
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                if buffer.backlog() >= threshold:
                    break
            except RedisError:
                pass  # the next flush reports it
            stop.wait(min(poll, remaining))
    return total


# -- writing a batch ------------------------------------------------------------------------


@dataclass
class BatchResult:
    summary: FlushResult
    dead_rows: list[DeadRow] = field(default_factory=list)


@dataclass
class _Group:
    """The entries of one batch sharing a column list (usually the whole batch)."""

    columns: tuple[str, ...]
    encoded_columns: bytes
    #: (entry id, its rows as stored: lines separated by newlines).
    entries: list[tuple[str, bytes]] = field(default_factory=list)
    rows: int = 0
    #: The rows are COPY text that PostgreSQL reads as it is (else: decoded in Python).
    copy_text: bool = False


def write_entries(state: Context, entries: Sequence[Entry]) -> BatchResult:
    """Write the rows of ``entries`` in one transaction (row by row on a data error)."""
    return _write_entries(state, state.engine(), entries)


def _write_entries(state: Context, engine: sa.Engine, entries: Sequence[Entry]) -> BatchResult:
    """:func:`write_entries` with the engine given (parallel writers have no app context)."""
    buffer = get_buffer(state)
    summary = FlushResult(entries=len(entries), batches=1)
    dead: list[DeadRow] = []
    groups: dict[bytes, _Group] = {}
    for entry in entries:
        columns = entry.fields.get(b"c", b"")
        raw = entry.fields.get(b"r", b"")
        group = groups.get(columns)
        if group is None:
            try:
                names = buffer.codec.names(columns)
            except (ValueError, TypeError) as exc:
                dead.append(_unreadable(entry.id, columns, raw, exc))
                continue
            copy_text = not _is_json_header(columns) and buffer.codec.native(names)
            group = groups[columns] = _Group(names, columns, copy_text=copy_text)
        group.entries.append((entry.id, raw))
        group.rows += raw.count(b"\n") + 1
    summary.rows = sum(g.rows for g in groups.values())
    refused = 0
    try:
        with engine.begin() as conn:
            inserted = 0
            for serial, group in enumerate(groups.values()):
                inserted += _write_group(conn, state, group, serial, dead)
    except sa.exc.StatementError as exc:
        if not _refused(exc):
            raise
        # Some row is refused: find it (them) one row per transaction.
        dead[:] = [d for d in dead if d.whole_entry]
        inserted = 0
        for group in groups.values():
            n, rows_refused = _write_one_by_one(state, engine, group, dead)
            inserted += n
            refused += rows_refused
    summary.inserted = inserted
    # An unreadable entry counts as one dead row (its row count is unknown).
    summary.dead = len(dead)
    unreadable = {d.entry_id for d in dead if d.whole_entry}
    counted = sum(
        raw.count(b"\n") + 1 for g in groups.values() for i, raw in g.entries if i in unreadable
    )
    summary.duplicates = summary.rows - inserted - refused - counted
    return BatchResult(summary, dead)


def _write_group(
    conn: sa.Connection, state: Context, group: _Group, serial: int, dead: list[DeadRow]
) -> int:
    table: sa.Table = state.models.Event.__table__
    if group.copy_text and _can_copy(conn, table, group.columns) and _utf8(conn):
        # PostgreSQL reads the stored lines as they are: no per-row Python.
        data = b"\n".join(raw for _, raw in group.entries) + b"\n"
        return _copy(conn, table, group.columns, lambda copy: copy.write(data), serial)
    rows = []
    for entry_id, raw in group.entries:
        try:
            rows.extend(get_buffer(state).codec.decode(group.encoded_columns, raw)[1])
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            dead.append(_unreadable(entry_id, group.encoded_columns, raw, exc))
    return _insert(conn, state, group.columns, rows, serial)


def _utf8(conn: sa.Connection) -> bool:
    """Whether the connection's client encoding is UTF-8, the stored lines' encoding.

    Else (a database in LATIN1, say, whose clients default to it) the lines are decoded
    and psycopg encodes the values, as it does on the direct path.
    """
    driver: Any = conn.connection.driver_connection
    return bool(driver.info.encoding == "utf-8")


def _refused(exc: sa.exc.StatementError) -> bool:
    """Whether the database (or a bind processor) refused the *data*, not the connection."""
    if isinstance(exc, sa.exc.DataError | sa.exc.IntegrityError):
        return True
    return not isinstance(exc, sa.exc.DBAPIError)  # e.g. a bind processor's TypeError


def _write_one_by_one(
    state: Context, engine: sa.Engine, group: _Group, dead: list[DeadRow]
) -> tuple[int, int]:
    """Each row of ``group`` in a transaction of its own; refused rows join ``dead``."""
    inserted = refused = 0
    codec = get_buffer(state).codec
    unreadable = {d.entry_id for d in dead if d.whole_entry}
    for entry_id, raw in group.entries:
        if entry_id in unreadable:
            continue  # already set aside
        try:
            _, rows = codec.decode(group.encoded_columns, raw)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            dead.append(_unreadable(entry_id, group.encoded_columns, raw, exc))
            continue
        for row, line in zip(rows, raw.split(b"\n"), strict=True):
            try:
                with engine.begin() as conn:
                    inserted += _insert(conn, state, group.columns, [row], 0)
            except sa.exc.StatementError as exc:
                if not _refused(exc):
                    raise
                refused += 1
                dead.append(DeadRow(entry_id, group.encoded_columns, line, str(exc.orig or exc)))
    return inserted, refused


def _insert(
    conn: sa.Connection,
    state: Context,
    columns: tuple[str, ...],
    rows: list[list[Any]],
    serial: int,
) -> int:
    """Insert ``rows`` (Python values in ``columns`` order), ignoring known event ids.

    ``serial`` numbers the calls within one transaction (PostgreSQL temporary tables).
    """
    if not rows:
        return 0
    table: sa.Table = state.models.Event.__table__
    if _can_copy(conn, table, columns):
        return _copy_rows(conn, table, columns, rows, serial)
    dialect = conn.dialect
    if dialect.positional and not any(
        c.default is not None for c in table.columns if c.name not in columns
    ):
        return _executemany(conn, table, columns, rows)
    # As the direct path: SQLAlchemy fills in Python-side column defaults row by row.
    stmt = insert_ignore(table, dialect.name, ["event_id"]).execution_options(
        preserve_rowcount=True  # SQLAlchemy drops an INSERT's row count unless asked
    )
    result = conn.execute(stmt, [dict(zip(columns, row, strict=True)) for row in rows])
    return max(int(result.rowcount), 0)


@functools.lru_cache(maxsize=32)
def _insert_sql(
    table: sa.Table, dialect: sa.Dialect, columns: tuple[str, ...]
) -> tuple[str, list[int], list[tuple[int, Callable[[Any], Any]]]]:
    """SQL of :func:`_executemany`, the order of its parameters (indexes into
    ``columns``), and the bind processors of ``columns`` (by index)."""
    stmt = insert_ignore(table, dialect.name, ["event_id"])
    compiled = stmt.values({name: sa.bindparam(name) for name in columns}).compile(dialect=dialect)
    assert compiled.positiontup is not None  # a positional dialect
    order = [columns.index(name) for name in compiled.positiontup]
    processors: list[tuple[int, Callable[[Any], Any]]] = [
        (i, p)
        for i, name in enumerate(columns)
        if (p := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
    ]
    return compiled.string, order, processors


def _executemany(
    conn: sa.Connection, table: sa.Table, columns: tuple[str, ...], rows: list[list[Any]]
) -> int:
    """One ``executemany`` of the insert on the DBAPI cursor (SQLite, no Python-side
    default to compute): the values go through the columns' bind processors as with
    SQLAlchemy's own ``executemany``, without its work per row and value."""
    statement, order, processors = _insert_sql(table, conn.dialect, columns)
    values: list[Sequence[Any]] = list(zip(*rows, strict=True))
    for i, process in processors:
        values[i] = list(map(process, values[i]))
    params = list(zip(*(values[i] for i in order), strict=True))
    counts: list[int] = []

    def load(cur: Any) -> None:
        cur.executemany(statement, params)
        counts.append(int(cur.rowcount))

    _on_driver(conn, statement, load)
    return max(counts[0], 0)


def _can_copy(conn: sa.Connection, table: sa.Table, columns: tuple[str, ...]) -> bool:
    """PostgreSQL through psycopg 3, and no per-row Python default to compute.

    ``INSERT ... SELECT`` renders scalar and SQL column defaults of the columns it does
    not name, but would call a Python default function once for all rows.
    """
    dialect = conn.dialect
    if dialect.name != "postgresql" or dialect.driver != "psycopg":
        return False
    return not any(
        c.default is not None and c.default.is_callable
        for c in table.columns
        if c.name not in columns and c.name != "id"
    )


def _insert_from(
    conn: sa.Connection, table: sa.Table, columns: tuple[str, ...], source: Any
) -> int:
    """``INSERT INTO event (columns) SELECT ... ON CONFLICT DO NOTHING``.

    ``from_select`` adds the columns' scalar and SQL defaults for the ones not named, as
    the direct path's INSERT does; the rows of one batch are inserted in scan order, so
    of two rows with one event id the first is kept.
    """
    stmt = (
        insert_ignore(table, "postgresql", ["event_id"])
        .from_select(list(columns), source, include_defaults=True)
        .execution_options(preserve_rowcount=True)
    )
    return max(int(conn.execute(stmt).rowcount), 0)


# -- PostgreSQL: COPY -------------------------------------------------------------------------


def _copy(
    conn: sa.Connection,
    table: sa.Table,
    columns: tuple[str, ...],
    write: Callable[[Any], None],
    serial: int,
) -> int:
    """COPY rows (``write(copy)`` sends them) into the event table; returns rows stored.

    Optimistic: straight into ``analytics_event``, in a savepoint. Duplicates are rare
    (a retry that went direct while Redis was down, a batch written again after its
    flusher died between the commit and the acknowledgement, a client resending), and
    the unique ``event_id`` catches them: then the savepoint is rolled back and the
    batch goes through a temporary table and ``INSERT ... SELECT ... ON CONFLICT DO
    NOTHING``, which skips stored ids and keeps the first row of an id repeated in the
    batch. On a partitioned ``analytics_event`` (docs/scaling.md) the dedupe trigger
    skips such rows itself and the COPY's count excludes them. Columns left out that
    have a Python-side default need that ``INSERT`` too (COPY knows the table's own
    defaults only).
    """
    prep = conn.dialect.identifier_preparer
    column_list = ", ".join(prep.quote(c) for c in columns)
    target = prep.format_table(table)
    if not any(c.default is not None for c in table.columns if c.name not in columns):
        statement = f"COPY {target} ({column_list}) FROM STDIN"

        def load(cur: Any) -> None:
            with cur.copy(statement) as copy:
                write(copy)
            counts.append(int(cur.rowcount))

        counts: list[int] = []
        try:
            with conn.begin_nested():
                _on_driver(conn, statement, load)
            return counts[0]
        except sa.exc.IntegrityError as exc:
            if getattr(exc.orig, "sqlstate", None) != UNIQUE_VIOLATION:
                raise
            log.debug("analytics buffer: a batch holds stored event ids: %s", exc.orig)
    tmp = f"fa_flush_{serial}"
    statement = f"COPY {tmp} ({column_list}) FROM STDIN"

    def load_tmp(cur: Any) -> None:
        # The event table's column types, no constraints: COPY never fails on a duplicate.
        cur.execute(
            f"CREATE TEMPORARY TABLE {tmp} ON COMMIT DROP AS "
            f"SELECT {column_list} FROM {target} WITH NO DATA"
        )
        with cur.copy(statement) as copy:
            write(copy)

    _on_driver(conn, statement, load_tmp)
    source = sa.table(tmp, *(sa.column(c) for c in columns))
    return _insert_from(conn, table, columns, sa.select(*source.c))


def _copy_rows(
    conn: sa.Connection,
    table: sa.Table,
    columns: tuple[str, ...],
    rows: list[list[Any]],
    serial: int,
) -> int:
    """COPY Python rows (values go through the columns' bind processors, as in the
    direct path): the rows of column types PostgreSQL cannot read from text as stored,
    entries of the first format, and rows written one by one."""
    dialect = conn.dialect
    processors = [
        (i, p)
        for i, name in enumerate(columns)
        if (p := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
    ]
    if processors:  # on copies: a failed batch is retried row by row from ``rows``
        processed = []
        for row in rows:
            row = list(row)
            for i, process in processors:
                row[i] = process(row[i])
            processed.append(row)
        rows = processed

    def write(copy: Any) -> None:
        for row in rows:
            copy.write_row(row)

    return _copy(conn, table, columns, write, serial)


def _on_driver(conn: sa.Connection, statement: str, load: Callable[[Any], None]) -> None:
    """Run ``load(cursor)`` on the DBAPI connection (psycopg's COPY, an executemany).

    Outside SQLAlchemy: the driver's errors are wrapped here the way SQLAlchemy wraps
    them (DataError, OperationalError...), and a dead connection is invalidated so the
    pool does not hand it out again.
    """
    driver: Any = conn.connection.driver_connection
    dbapi: Any = conn.dialect.loaded_dbapi
    try:
        with contextlib.closing(driver.cursor()) as cur:
            load(cur)
    except dbapi.Error as exc:
        if conn.dialect.is_disconnect(exc, driver, None):
            conn.invalidate(exc)
        raise sa.exc.DBAPIError.instance(statement, None, exc, dbapi.Error) from exc
