"""Redis-buffered ingestion: the collect endpoint appends, a flusher writes in bulk.

With ``ANALYTICS_INGEST_BUFFER = "redis"`` the collect endpoint runs the pipeline as
usual, then appends the surviving rows of the request to a Redis Stream (one entry per
request) instead of inserting them. :func:`flush` moves them to ``analytics_event`` in
bulk: PostgreSQL ``COPY`` into a temporary table, then one ``INSERT ... SELECT ... ON
CONFLICT (event_id) DO NOTHING``; SQLite an ``executemany`` of ``INSERT OR IGNORE``.

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
    Entries are JSON, driven by the event table's column types, so every value comes back
    as the type it went in as: datetimes, dates, times, decimals, UUIDs, intervals, bytes,
    enums, JSON props (``None`` stays distinct from a JSON ``null`` only where the column
    keeps them apart), and the custom columns of a subclassed event model. A value the
    codec cannot represent makes that request write directly instead.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import enum
import json
import logging
import os
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
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from .dialects import insert_ignore
from .errors import AnalyticsError

if TYPE_CHECKING:
    from .config import Settings
    from .extension import AnalyticsState

log = logging.getLogger(__name__)

#: Consumer group every flusher reads through.
GROUP = "flask_analytics"

#: Version of the entry format, stored in every entry (``v``).
FORMAT = b"1"

#: Seconds the endpoint skips Redis after a failure (writing directly meanwhile).
RETRY_AFTER = 1.0

#: Consumers that own nothing and were idle this long are removed from the group.
CONSUMER_IDLE_MS = 3600 * 1000

#: Appends the rows of one request (one entry), in one round trip:
#: KEYS = stream, flush-request flag, then one dedupe key per row when ARGV[2] > 0.
#: ARGV = max_len (0: none), dedupe ttl (0: off), flush threshold (0: none), flag ttl ms,
#:        columns JSON, then one JSON row each.
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
  id = redis.call('XADD', KEYS[1], '*', 'v', '1', 'c', ARGV[5], 'r', table.concat(kept, '\\n'))
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


class BufferUnavailable(AnalyticsError):
    """The ingest buffer is not configured, or its Redis cannot be reached."""


# -- serialization ------------------------------------------------------------------------


Codec = tuple[Callable[[Any], Any] | None, Callable[[Any], Any] | None]

#: Values every column type may carry as themselves (JSON-native scalars).
_SCALARS = (str, int, float)
_PLAIN_TYPES = frozenset({str, int, float, bool, type(None)})

#: Compact and ASCII-only, so a row never contains a newline (rows are newline-separated)
#: and PostgreSQL can COPY it as one CSV field; no NaN, which PostgreSQL's JSON refuses.
#: A JSONEncoder holds no per-call state: one shared instance saves building one per row.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


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
    """(encode, decode) of one column's Python values; ``None`` means "JSON scalar as is"."""
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


def _scalar_default(column: sa.Column[Any]) -> Any:
    default = column.default
    if isinstance(default, ScalarElementColumnDefault):
        return default.arg
    return None


class RowCodec:
    """Lossless JSON for the rows of one event table (column-type driven)."""

    def __init__(self, table: sa.Table) -> None:
        self.table = table
        self.columns = {c.name: c for c in table.columns if c.name != "id"}
        self.codecs = {name: column_codec(c) for name, c in self.columns.items()}
        self.defaults = {name: _scalar_default(c) for name, c in self.columns.items()}

    def encode(self, rows: Sequence[Mapping[str, Any]]) -> tuple[bytes, list[bytes]]:
        """(columns JSON, one JSON array per row). Raises TypeError/ValueError if lossy.

        Every row gets every column any row of the request has; a key some rows lack gets
        the column's scalar default, as the direct multi-row ``INSERT`` does.
        """
        names = sorted({k for row in rows for k in row if k in self.columns})
        defaults = [(name, self.defaults[name]) for name in names]
        special = []
        plain = []
        for i, name in enumerate(names):
            encode = self.codecs[name][0]
            if encode is None:
                plain.append(i)
            else:
                special.append((i, encode))
        to_json = _ENCODER.encode
        encoded = []
        for row in rows:
            values = [row.get(name, default) for name, default in defaults]
            for i, encode in special:
                if values[i] is not None:
                    values[i] = encode(values[i])
            if not {type(values[i]) for i in plain} <= _PLAIN_TYPES:
                self._check_plain(names, values, plain)
            encoded.append(to_json(values).encode("ascii"))
        return json.dumps(names).encode(), encoded

    @staticmethod
    def _check_plain(names: Sequence[str], values: list[Any], plain: list[int]) -> None:
        for i in plain:
            value = values[i]
            if value is not None and not isinstance(value, _SCALARS):
                raise TypeError(
                    f"column {names[i]!r}: cannot buffer a {type(value).__name__} value"
                )

    def names(self, columns: bytes) -> tuple[str, ...]:
        """The column names of an entry's header, checked against the table."""
        names = tuple(json.loads(columns))
        unknown = [n for n in names if n not in self.columns]
        if unknown:
            raise ValueError(f"unknown columns {unknown} (was the event model changed?)")
        return names

    def decode(self, columns: bytes, rows: bytes) -> tuple[tuple[str, ...], list[list[Any]]]:
        """Column names and Python rows of one entry (the inverse of :meth:`encode`)."""
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


# -- the buffer (per app, in AnalyticsState) ------------------------------------------------


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
            *encoded,
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
        cursor_text = next_cursor.decode() if isinstance(next_cursor, bytes) else next_cursor
        return str(cursor_text), entries

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
                {"v": FORMAT, "c": row.columns, "r": row.row, "entry": row.entry_id,
                 "error": row.error[:2000]},
            )  # fmt: skip
        if ids:
            pipe.xack(self.stream, GROUP, *ids)
            pipe.xdel(self.stream, *ids)
        pipe.execute()

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
        text = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        return cls(text, {_b(k): _b(v) for k, v in fields.items()})


def _b(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


@dataclass(frozen=True)
class DeadRow:
    """A row the database refused (or an entry that cannot be read), to be dead-lettered."""

    entry_id: str
    columns: bytes
    #: One JSON row, or all the rows of an unreadable entry (``whole_entry``).
    row: bytes
    error: str
    whole_entry: bool = False


def _unreadable(entry_id: str, columns: bytes, raw: bytes, exc: Exception) -> DeadRow:
    """An entry not written by this version of the package (or corrupted), set aside."""
    return DeadRow(entry_id, columns, raw, f"unreadable entry: {exc!r}", whole_entry=True)


# -- appending (called by the pipeline) -----------------------------------------------------


def append(state: AnalyticsState, rows: Sequence[Mapping[str, Any]]) -> Appended | None:
    """Buffer the rows of one request; None when the caller must write them directly."""
    buffer = state.buffer
    if buffer is None:
        return None
    appended = buffer.append(rows)
    if appended is not None and appended.flush_due:
        _request_flush(state)
    return appended


def _request_flush(state: AnalyticsState) -> None:
    """Queue a flush job now (the stream passed ``ANALYTICS_BUFFER_FLUSH_THRESHOLD``)."""
    from . import jobs

    try:
        jobs.enqueue_flush(state)
    except jobs.JobsUnavailable as exc:
        log.warning("analytics buffer: could not queue a flush: %s", exc)


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


def get_buffer(state: AnalyticsState) -> RedisBuffer:
    """The app's buffer, or a clear error when ``ANALYTICS_INGEST_BUFFER`` is not "redis"."""
    if state.buffer is None:
        raise BufferUnavailable(
            "ANALYTICS_INGEST_BUFFER is 'direct': events are written to the database as they "
            "arrive, so there is nothing to flush. Set it to 'redis' to buffer them."
        )
    return state.buffer


def flush(
    state: AnalyticsState,
    *,
    consumer: str | None = None,
    max_seconds: float | None = None,
    stop: threading.Event | None = None,
    on_batch: Callable[[FlushResult], None] | None = None,
) -> FlushResult:
    """Move buffered rows to the database until the stream has nothing left to read.

    Order: this consumer's own unacknowledged entries (a previous write failed), entries
    other consumers left pending too long (they died), then new ones. Each batch of
    ``ANALYTICS_BUFFER_BATCH`` entries is one database transaction, acknowledged after
    its commit. Stops early after ``max_seconds`` or when ``stop`` is set (between
    batches). Redis and database connection errors propagate; entries being written stay
    pending and are retried by the next pass.
    """
    buffer = get_buffer(state)
    consumer = consumer or consumer_name()
    started = time.perf_counter()
    total = FlushResult()
    count = state.settings.buffer_batch
    buffer.ensure_group()
    sources: list[Callable[[], list[Entry]]] = [lambda: buffer.read_own(consumer, count)]
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

    sources.append(reclaim)
    sources.append(lambda: buffer.read_new(consumer, count))
    try:
        for index, source in enumerate(sources):
            while True:
                if stop is not None and stop.is_set():
                    break
                if max_seconds is not None and time.perf_counter() - started > max_seconds:
                    break
                batch_started = time.perf_counter()
                entries = source()
                if not entries:
                    break
                result = write_entries(state, entries)
                buffer.ack(entries, result.dead_rows)
                batch = result.summary
                batch.seconds = time.perf_counter() - batch_started
                if index == 1:
                    batch.reclaimed = len(entries)
                total.add(batch)
                if on_batch is not None:
                    on_batch(batch)
                if index == 1 and cursor == "0-0":
                    break
    finally:
        total.seconds = time.perf_counter() - started  # the batches' and the reads in between
    try:
        buffer.cleanup(consumer)
    except RedisError as exc:  # housekeeping only: the next pass does it
        log.warning("analytics buffer: consumer cleanup failed: %s", exc)
    return total


def flush_loop(
    state: AnalyticsState,
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
    #: (entry id, its rows as stored: JSON arrays separated by newlines).
    entries: list[tuple[str, bytes]] = field(default_factory=list)
    rows: int = 0


def write_entries(state: AnalyticsState, entries: Sequence[Entry]) -> BatchResult:
    """Write the rows of ``entries`` in one transaction (row by row on a data error)."""
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
            group = groups[columns] = _Group(names, columns)
        group.entries.append((entry.id, raw))
        group.rows += raw.count(b"\n") + 1
    summary.rows = sum(g.rows for g in groups.values())
    engine = state.engine()
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
            n, rows_refused = _write_one_by_one(state, group, dead)
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
    conn: sa.Connection, state: AnalyticsState, group: _Group, serial: int, dead: list[DeadRow]
) -> int:
    table: sa.Table = state.models.Event.__table__
    if _can_copy(conn, table, group.columns):
        exprs = _json_columns(table, group.columns, conn.dialect)
        if exprs is not None:
            return _copy_json(conn, table, group, exprs, f"fa_flush_{serial}")
    rows = []
    for entry_id, raw in group.entries:
        try:
            rows.extend(get_buffer(state).codec.decode(group.encoded_columns, raw)[1])
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            dead.append(_unreadable(entry_id, group.encoded_columns, raw, exc))
    return _insert(conn, state, group.columns, rows, serial)


def _refused(exc: sa.exc.StatementError) -> bool:
    """Whether the database (or a bind processor) refused the *data*, not the connection."""
    if isinstance(exc, sa.exc.DataError | sa.exc.IntegrityError):
        return True
    return not isinstance(exc, sa.exc.DBAPIError)  # e.g. a bind processor's TypeError


def _write_one_by_one(state: AnalyticsState, group: _Group, dead: list[DeadRow]) -> tuple[int, int]:
    """Each row of ``group`` in a transaction of its own; refused rows join ``dead``."""
    inserted = refused = 0
    engine = state.engine()
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
    state: AnalyticsState,
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
        return _copy_rows(conn, table, columns, rows, f"fa_flush_{serial}")
    # As the direct path: SQLAlchemy fills in Python-side column defaults row by row.
    stmt = insert_ignore(table, conn.dialect.name, ["event_id"]).execution_options(
        preserve_rowcount=True  # SQLAlchemy drops an INSERT's row count unless asked
    )
    result = conn.execute(stmt, [dict(zip(columns, row, strict=True)) for row in rows])
    return max(int(result.rowcount), 0)


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
    """``INSERT INTO event (columns) SELECT ... ON CONFLICT (event_id) DO NOTHING``.

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


def _json_columns(
    table: sa.Table, columns: tuple[str, ...], dialect: sa.Dialect
) -> list[str] | None:
    """SQL reading each column from a buffered JSON row ``j`` (jsonb) / ``rj`` (json).

    None when a column's type needs Python to convert its value (enums, UUIDs, bytes,
    intervals, type decorators...): those batches take :func:`_copy_rows`.
    Strings are left as text, so a value too long for its ``VARCHAR(n)`` is refused by
    the INSERT exactly as the direct path's is (an explicit cast would truncate it).
    """
    from sqlalchemy.dialects import postgresql

    exprs = []
    for i, name in enumerate(columns):
        kind = table.c[name].type
        if isinstance(kind, sa.types.TypeDecorator | sa.Enum | sa.Interval):
            return None
        if isinstance(kind, postgresql.JSONB):
            expr = f"(j->{i})"
        elif isinstance(kind, sa.JSON):
            # The json text itself (key order kept); None is JSON null unless none_as_null.
            expr = f"(rj->{i})"
        elif isinstance(kind, sa.String):
            expr = f"(j->>{i})"
        elif isinstance(kind, sa.Boolean | sa.Integer | sa.Float):
            expr = f"(j->>{i})::{kind.compile(dialect=dialect)}"
        elif isinstance(kind, sa.Numeric):
            expr = f"COALESCE(j->{i}->>'d', j->>{i})::numeric"
        elif isinstance(kind, sa.DateTime | sa.Date | sa.Time):
            expr = f"(j->>{i})::{kind.compile(dialect=dialect)}"
        else:
            return None
        if isinstance(kind, sa.JSON) and kind.none_as_null:
            expr = f"NULLIF({expr}::text, 'null')::{kind.compile(dialect=dialect)}"
        exprs.append(expr)
    return exprs


def _copy_json(
    conn: sa.Connection, table: sa.Table, group: _Group, exprs: list[str], tmp: str
) -> int:
    """COPY the buffered JSON rows as they are; PostgreSQL converts them in one INSERT.

    No per-row Python: each stored row is one CSV field (the rows are ASCII JSON without
    control characters, so delimiter \x02 and quote \x01 never occur in them), and
    ``INSERT ... SELECT`` reads the columns out of ``jsonb``, parsed once per row
    (``OFFSET 0`` keeps the planner from parsing it once per column).
    """
    copy_sql = f"COPY {tmp} (r) FROM STDIN WITH (FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')"

    def load(cur: Any) -> None:
        cur.execute(f"CREATE TEMPORARY TABLE {tmp} (r text) ON COMMIT DROP")
        with cur.copy(copy_sql) as copy:
            copy.write(b"\n".join(raw for _, raw in group.entries) + b"\n")

    _on_driver(conn, copy_sql, load)
    json_text = ", r::json AS rj" if any("rj->" in e for e in exprs) else ""
    rows = sa.text(f"(SELECT r::jsonb AS j{json_text} FROM {tmp} OFFSET 0) AS buffered")
    source: Any = sa.select(*(sa.literal_column(e) for e in exprs)).select_from(rows)
    return _insert_from(conn, table, group.columns, source)


def _copy_rows(
    conn: sa.Connection,
    table: sa.Table,
    columns: tuple[str, ...],
    rows: list[list[Any]],
    tmp: str,
) -> int:
    """COPY Python rows into a temporary table, then one INSERT ... SELECT ON CONFLICT.

    The temporary table has the event table's column types (``CREATE TABLE AS ... WITH NO
    DATA``) and no constraints, so COPY never fails on a duplicate; the ``INSERT`` skips
    event ids already stored, and within the batch keeps the first row of an id. Values
    go through the columns' bind processors, as in the direct path.
    """
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
    prep = dialect.identifier_preparer
    column_list = ", ".join(prep.quote(c) for c in columns)
    copy_sql = f"COPY {tmp} ({column_list}) FROM STDIN"

    def load(cur: Any) -> None:
        cur.execute(
            f"CREATE TEMPORARY TABLE {tmp} ON COMMIT DROP AS "
            f"SELECT {column_list} FROM {prep.format_table(table)} WITH NO DATA"
        )
        with cur.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row(row)

    _on_driver(conn, copy_sql, load)
    source = sa.table(tmp, *(sa.column(c) for c in columns))
    return _insert_from(conn, table, columns, sa.select(*source.c))


def _on_driver(conn: sa.Connection, statement: str, load: Callable[[Any], None]) -> None:
    """Run ``load(cursor)`` on the psycopg connection (for COPY).

    COPY is psycopg's own API, outside SQLAlchemy: its errors are wrapped here the way
    SQLAlchemy wraps them (DataError, OperationalError...), and a dead connection is
    invalidated so the pool does not hand it out again.
    """
    driver: Any = conn.connection.driver_connection
    dbapi: Any = conn.dialect.loaded_dbapi
    try:
        with driver.cursor() as cur:
            load(cur)
    except dbapi.Error as exc:
        if conn.dialect.is_disconnect(exc, driver, None):
            conn.invalidate(exc)
        raise sa.exc.DBAPIError.instance(statement, None, exc, dbapi.Error) from exc
