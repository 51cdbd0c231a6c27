"""``flush``: write the events buffered in Redis to the database."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from ..state import AppState
from ..tasks import queueing
from .common import (
    SYNC_HELP,
    app_command,
    app_state,
    click_errors,
    plural,
    redis_extra,
    report_enqueued,
)

if TYPE_CHECKING:
    from ..buffer import FlushResult


def _describe_flush(result: FlushResult) -> str:
    text = (
        f"{plural(result.rows, 'event')} from {plural(result.entries, 'buffered request')}: "
        f"{result.inserted:,} stored, {result.duplicates:,} duplicate"
    )
    if result.reclaimed:
        text += f", {result.reclaimed:,} requests taken over from a stopped flusher"
    if result.dead:
        text += f", {result.dead:,} refused by the database (see the :dead stream)"
    return text


@contextmanager
def _buffer_redis_errors(state: AppState) -> Iterator[None]:
    from redis.exceptions import RedisError

    try:
        yield
    except RedisError as exc:
        url = queueing.safe_url(state.settings.buffer_redis_url or "")
        raise click.ClickException(
            f"Redis is not reachable at {url} ({exc}): the buffered events wait there."
        ) from exc


@app_command("flush")
@click.option(
    "--loop",
    is_flag=True,
    help="Keep flushing: every ANALYTICS_BUFFER_FLUSH_INTERVAL seconds, or as soon as "
    "ANALYTICS_BUFFER_FLUSH_THRESHOLD requests wait. Stops cleanly on SIGTERM/Ctrl-C.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds between flushes with --loop (default: ANALYTICS_BUFFER_FLUSH_INTERVAL).",
)
@click.option(
    "--requeue-dead",
    is_flag=True,
    help="First move the rows the database refused (the :dead stream) back into the "
    "buffer, once their cause is fixed; a row still refused goes back there.",
)
@click.option("--sync", is_flag=True, help=SYNC_HELP)
def flush_command(loop: bool, interval: float | None, requeue_dead: bool, sync: bool) -> None:
    """Write the events buffered in Redis (ANALYTICS_INGEST_BUFFER = "redis") in bulk."""
    state = app_state()
    if state.buffer is None:  # said before importing the buffer, which needs the redis extra
        raise click.ClickException(
            "ANALYTICS_INGEST_BUFFER is 'direct': events are written to the database as they "
            "arrive, so there is nothing to flush. Set it to 'redis' to buffer them."
        )
    from .. import buffer

    with click_errors(), _buffer_redis_errors(state):
        if requeue_dead:
            moved = state.buffer.requeue_dead()
            click.echo(f"Moved {plural(moved, 'refused row')} back into the buffer.")
        if not loop:
            if queueing.uses_queue(state, sync):
                with redis_extra():
                    from ..tasks.enqueue import enqueue_flush
                report_enqueued(enqueue_flush(state))
                return
            result = buffer.flush(state)
            click.echo(f"Flushed {_describe_flush(result)} in {result.seconds:.2f} s.")
            return
        stop = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        click.echo(f"Flushing {state.settings.buffer_stream!r} until SIGTERM or Ctrl-C.")
        try:
            buffer.flush_loop(
                state,
                stop=stop,
                interval=interval,
                on_batch=lambda r: click.echo(
                    f"Flushed {_describe_flush(r)} in {r.seconds:.2f} s."
                ),
                on_error=lambda exc: click.echo(f"Flush failed, retrying: {exc}", err=True),
            )
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
        click.echo("Stopped.")
