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
    bytes, enums, JSON props (``None`` is SQL NULL, as the direct path writes it, never
    a JSON ``null``), and the custom columns of a subclassed event model. A
    value the codec cannot represent exactly makes that request write directly instead.
    Entries of the first format (JSON rows) are still read.

Modules
    :mod:`.scripts` the Lua scripts; :mod:`.codec` column codecs (COPY text, JSON);
    :mod:`.rows` whole rows (:class:`RowCodec`); :mod:`.client` the stream
    (:class:`RedisBuffer`); :mod:`.flusher` the flush loop; :mod:`.writers` one batch to
    the database; :mod:`.inserts` COPY and INSERT; :mod:`.sink` the pipeline's sink.
"""

from __future__ import annotations

from .client import (
    CONSUMER_IDLE_MS,
    FORMAT,
    GROUP,
    RETRY_AFTER,
    Appended,
    BufferInfo,
    DeadRow,
    Entry,
    RedisBuffer,
)
from .codec import Codec, TextCodec, column_codec, copy_escape, copy_unescape, text_codec
from .context import BufferContext, BufferUnavailable, get_buffer
from .flusher import WRITERS, consumer_name, flush, flush_loop
from .inserts import UNIQUE_VIOLATION
from .results import BatchResult, FlushResult
from .rows import COLUMN_WISE_FROM, RowCodec
from .scripts import APPEND_SCRIPT, CLEANUP_SCRIPT, REQUEUE_SCRIPT
from .writers import write_batch, write_entries

__all__ = [
    "APPEND_SCRIPT",
    "CLEANUP_SCRIPT",
    "COLUMN_WISE_FROM",
    "CONSUMER_IDLE_MS",
    "FORMAT",
    "GROUP",
    "REQUEUE_SCRIPT",
    "RETRY_AFTER",
    "UNIQUE_VIOLATION",
    "WRITERS",
    "Appended",
    "BatchResult",
    "BufferContext",
    "BufferInfo",
    "BufferUnavailable",
    "Codec",
    "DeadRow",
    "Entry",
    "FlushResult",
    "RedisBuffer",
    "RowCodec",
    "TextCodec",
    "column_codec",
    "consumer_name",
    "copy_escape",
    "copy_unescape",
    "flush",
    "flush_loop",
    "get_buffer",
    "text_codec",
    "write_batch",
    "write_entries",
]
