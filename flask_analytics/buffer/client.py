"""The Redis Stream between the collect endpoint and the flushers: :class:`RedisBuffer`.

The endpoint appends the rows of each request as one entry (:meth:`RedisBuffer.append`);
flushers read entries through the consumer group :data:`GROUP`, acknowledge them once
their rows are committed, and dead-letter the rows the database refuses. The reply
types (:class:`Appended`, :class:`BufferInfo`, :class:`Entry`, :class:`DeadRow`) are
plain values, so the writers never see a Redis reply.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError
from redis.retry import Retry

from .durability import check_at_start
from .rows import RowCodec, is_json_header
from .scripts import APPEND_SCRIPT, CLEANUP_SCRIPT, REQUEUE_SCRIPT

if TYPE_CHECKING:
    from ..config import Settings
    from ..ingest.ratelimit import CollectLimiter, RateCharge

log = logging.getLogger(__name__)

#: Consumer group every flusher reads through.
GROUP = "flask_analytics"

#: Version of the entry format, stored in every entry (``v``): 2, rows as COPY text
#: lines; 1 (still read), rows as JSON arrays.
FORMAT = b"2"

#: Seconds the endpoint skips Redis after a failure (writing directly meanwhile).
RETRY_AFTER = 1.0

#: Consumers that own nothing and were idle this long are removed from the group.
CONSUMER_IDLE_MS = 3600 * 1000


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
    #: The rate limit refused the request: nothing was appended.
    limited: bool = False


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
        self._append_script = self.redis.register_script(APPEND_SCRIPT)
        self._cleanup_script = self.redis.register_script(CLEANUP_SCRIPT)
        self._requeue_script = self.redis.register_script(REQUEUE_SCRIPT)
        #: The server's persistence and eviction settings, read once at start-up
        #: (None with ``ANALYTICS_BUFFER_DURABILITY = "off"``); may raise ConfigError.
        self.durability = check_at_start(self.redis, settings.buffer_durability, self.where)
        #: Until when (monotonic) the endpoint writes directly without trying Redis. One
        #: float, replaced whole: no lock needed between request threads.
        self._skip_until = 0.0

    @property
    def where(self) -> str:
        """The buffer's Redis, for messages (no password)."""
        kwargs = self.redis.connection_pool.connection_kwargs
        if "path" in kwargs:
            return f"unix://{kwargs['path']} db {kwargs.get('db', 0)}"
        return f"redis://{kwargs.get('host')}:{kwargs.get('port')}/{kwargs.get('db', 0)}"

    # -- endpoint side --------------------------------------------------------------------

    def dedupe_key(self, event_id: str) -> str:
        """The key remembering a buffered event id (``ANALYTICS_BUFFER_DEDUPE_TTL``)."""
        return f"{self.stream}:seen:{event_id}"

    def shares_redis_with(self, limiter: CollectLimiter | None) -> bool:
        """Whether ``limiter`` counts in this buffer's Redis (then :meth:`append` counts
        the rate limit in its own round trip)."""
        kwargs = limiter.redis_kwargs() if limiter is not None else None
        if kwargs is None:
            return False
        mine = self.redis.connection_pool.connection_kwargs
        fields = ("host", "port", "path", "db", "username", "password")
        return all(kwargs.get(f) == mine.get(f) for f in fields)

    def append(
        self, rows: Sequence[Mapping[str, Any]], charge: RateCharge | None = None
    ) -> Appended | None:
        """Buffer the rows of one request, counting ``charge`` against the rate limit in
        the same round trip; None when they must be written directly (the rate limit
        counted when Redis could be reached, as it is best effort)."""
        if time.monotonic() < self._skip_until:
            return None
        encoded: list[bytes] | None
        columns = b""
        try:
            columns, encoded = self.codec.encode(rows) if rows else (b"", [])
        except (TypeError, ValueError) as exc:
            log.warning("analytics buffer: writing directly, a value cannot be buffered: %s", exc)
            if charge is None:
                return None
            encoded = None  # the rate limit is still counted, alone
        settings = self.settings
        ttl = settings.buffer_dedupe_ttl
        keys = [self.stream, self.flag_key]
        windows = charge.windows if charge is not None else ()
        limit_args: list[Any] = [charge.cost if charge is not None else 0, len(windows)]
        for previous, current, amount, expiry in windows:
            keys += [previous, current]
            limit_args += [amount, expiry]
        if ttl and encoded:
            keys += [self.dedupe_key(row["event_id"]) for row in rows]
        threshold = settings.buffer_flush_threshold if settings.redis_url else 0
        args: list[Any] = [
            settings.buffer_max_len or 0,
            ttl,
            threshold,
            max(1, int(settings.buffer_flush_interval * 1000)),
            columns,
            *limit_args,
        ]
        if encoded:
            # Without early dedupe no row is dropped: the rows go joined, as one argument
            # (the script keeps it whole), sparing the per-argument work on both sides.
            args += encoded if ttl else [b"\n".join(encoded)]
        try:
            entry_id, length, due, dups, limited = self._append_script(keys=keys, args=args)
        except (OSError, RedisError) as exc:
            self._skip_until = time.monotonic() + RETRY_AFTER
            log.warning("analytics buffer: Redis unavailable, writing directly (%s)", exc)
            return None
        if limited:
            return Appended(entry_id=None, duplicates=(), length=0, flush_due=False, limited=True)
        if encoded is None:
            return None  # counted; the rows go direct
        if entry_id is None and not dups and encoded:  # the stream is full: nobody flushes
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
        length, dead, groups = _execute_allowing_missing_stream(pipe)
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
        entries, deleted = self._entries_of_reply(
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
        return _reply_text(next_cursor), entries

    def read_new(self, consumer: str, count: int) -> list[Entry]:
        """Entries no consumer has read yet (``>``)."""
        entries, _ = self._entries_of_reply(
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
                {"v": b"1" if is_json_header(row.columns) else FORMAT, "c": row.columns,
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
            n, scanned, last = self._requeue_script(
                keys=[self.dead_stream, self.stream], args=[chunk, start]
            )
            moved += int(n)
            if int(scanned) < chunk:
                return moved
            start = "(" + _reply_text(last)

    def cleanup(self, consumer: str) -> int:
        """Remove ``consumer`` if it owns nothing, and long-idle empty consumers."""
        return int(
            self._cleanup_script(keys=[self.stream], args=[GROUP, CONSUMER_IDLE_MS, consumer])
        )

    @staticmethod
    def _entries_of_reply(reply: Any) -> tuple[list[Entry], list[Any]]:
        entries: list[Entry] = []
        deleted: list[Any] = []
        for _stream, items in reply or []:
            for entry_id, fields in items:
                if fields:
                    entries.append(Entry.of(entry_id, fields))
                else:
                    deleted.append(entry_id)
        return entries, deleted


def _execute_allowing_missing_stream(pipe: Any) -> list[Any]:
    """The pipeline's replies, an error reply (of a command on no stream) as no items."""
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
        """The entry of a Redis reply (ids and fields as bytes or text)."""
        return cls(
            _reply_text(entry_id), {_reply_bytes(k): _reply_bytes(v) for k, v in fields.items()}
        )


def _reply_bytes(value: Any) -> bytes:
    """A Redis reply value (a field name or value) as bytes."""
    return value if isinstance(value, bytes) else str(value).encode()


def _reply_text(value: Any) -> str:
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

    @classmethod
    def unreadable(cls, entry_id: str, columns: bytes, raw: bytes, exc: Exception) -> DeadRow:
        """An entry not written by this version of the package (or corrupted), set aside."""
        return cls(entry_id, columns, raw, f"unreadable entry: {exc!r}", whole_entry=True)
