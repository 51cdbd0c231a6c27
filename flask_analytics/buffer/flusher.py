"""The flush loop: move buffered rows from the Redis stream to the database in batches.

:func:`flush` is one pass (this consumer's own unacknowledged entries, entries other
consumers left pending too long, then new ones); :func:`flush_loop` repeats passes until
stopped, as ``flask analytics flush --loop`` does. The batches themselves are written by
:mod:`.writers`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

import sqlalchemy as sa
from redis.exceptions import RedisError

from .client import Entry
from .context import BufferContext, get_buffer
from .results import FlushResult
from .writers import write_batch

log = logging.getLogger(__name__)

#: Batches a flush writes at once on PostgreSQL when there is a backlog (one connection
#: and transaction each): one COPY keeps about one server core busy, the flusher itself
#: mostly waits.
WRITERS = 2


def consumer_name() -> str:
    """A consumer name unique to this process and call (host, pid, random)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def flush(
    state: BufferContext,
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
        result = write_batch(state, engine, entries)
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
    state: BufferContext,
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
