"""``aggregate``, ``backfill`` and ``demo-data``: the commands that aggregate local days."""

from __future__ import annotations

import datetime as dt
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Final, NoReturn

import click

from ..core.runs import day_state, first_event_day
from ..ingest import demo
from ..lifecycle import aggregate as aggregation
from ..state import AppState
from ..tasks import queueing
from .common import (
    DAY,
    SYNC_HELP,
    app_command,
    app_state,
    click_errors,
    plural,
    redis_extra,
    report_enqueued,
    resolve_day,
)

#: Exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED: Final = 130


@app_command("aggregate")
@click.argument("day", required=False, default="yesterday", type=DAY)
@click.option(
    "--force", is_flag=True, help="Recompute even a day whose events were purged, wholly or partly."
)
@click.option("--sync", is_flag=True, help=SYNC_HELP)
def aggregate_command(day: str, force: bool, sync: bool) -> None:
    """Aggregate one local day: DATE (YYYY-MM-DD), today or yesterday (default)."""
    state = app_state()
    with click_errors():
        target = resolve_day(state, day)
        if queueing.uses_queue(state, sync):
            with redis_extra():
                from ..tasks.enqueue import enqueue_aggregate
            report_enqueued(enqueue_aggregate(state, target, force=force))
            return
        aggregation.aggregate_day(state, target, force=force)
        click.echo(
            f"Aggregated {target.isoformat()}: {plural(day_state(state, target).events, 'event')}."
        )


@app_command("backfill")
@click.option(
    "--from",
    "start",
    type=DAY,
    help="First local day (YYYY-MM-DD); default: the day of the oldest raw or archived event.",
)
@click.option(
    "--to", "end", default="yesterday", show_default=True, type=DAY, help="Last local day."
)
@click.option(
    "--force", is_flag=True, help="Recompute even days whose events were purged, wholly or partly."
)
@click.option("--sync", is_flag=True, help=SYNC_HELP)
def backfill_command(start: str | None, end: str, force: bool, sync: bool) -> None:
    """Aggregate every local day from --from (default: the first event's day) to --to.

    Ctrl-C stops between days: the day in progress is not written, and the command says
    the last finished day and how to resume.
    """
    state = app_state()
    with click_errors():
        last = resolve_day(state, end, "--to")
        if start is not None:
            first = resolve_day(state, start, "--from")
            if last < first:
                raise click.ClickException(
                    f"--to {last.isoformat()} is before --from {first.isoformat()}."
                )
        else:
            oldest = first_event_day(state)
            if oldest is None:
                click.echo("Nothing to backfill: there are no raw or archived events.")
                return
            if oldest > last:
                click.echo(
                    f"Nothing to backfill: the oldest event is on {oldest.isoformat()}, "
                    f"after --to {last.isoformat()}."
                )
                return
            first = oldest
            click.echo(f"Backfilling from {first.isoformat()}, the day of the oldest event.")
        _aggregate_days(state, first, last, sync, force=force)


def _resume_hint(next_day: dt.date, last: dt.date, force: bool) -> str:
    """The command that carries on from ``next_day``."""
    flags = " --force" if force else ""
    return f"flask analytics backfill --from {next_day.isoformat()} --to {last.isoformat()}{flags}"


def _interrupted(days: list[dt.date], done: int, verb: str, force: bool) -> NoReturn:
    """Say where a Ctrl-C stopped ``days`` (``done`` of them finished) and exit 130."""
    if done:
        last, count = days[done - 1].isoformat(), plural(len(days), "day")
        click.echo(f"\nInterrupted: the last {verb} day is {last} ({done:,} of {count}).", err=True)
    else:
        click.echo(f"\nInterrupted before any day was {verb}.", err=True)
    click.echo(f"Resume with: {_resume_hint(days[done], days[-1], force)}", err=True)
    raise click.exceptions.Exit(INTERRUPTED)


@contextmanager
def _interruptible() -> Iterator[Callable[[], None]]:
    """Ctrl-C raises KeyboardInterrupt at once, as by default, and is also remembered:
    the function given to the block raises it again between days. Python drops an
    exception raised in a garbage-collection callback ("Exception ignored in ..."), so
    an interrupt landing there would otherwise go unnoticed and the command run on."""
    requested = False

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        nonlocal requested
        requested = True
        raise KeyboardInterrupt

    def check() -> None:
        if requested:
            raise KeyboardInterrupt

    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:  # started with Ctrl-C ignored (nohup, a background job)
        yield check
        return
    try:
        signal.signal(signal.SIGINT, interrupt)
    except ValueError:  # not the main thread: signals are not ours to handle
        yield check
        return
    try:
        yield check
    finally:
        signal.signal(signal.SIGINT, previous)


def _aggregate_days(
    state: AppState, first: dt.date, last: dt.date, sync: bool, *, force: bool = False
) -> None:
    """Aggregate ``first``..``last``: queued per day with Redis, else inline with a bar.

    Ctrl-C (KeyboardInterrupt) inline stops the day in progress, whose transaction rolls
    back whole, and reports the last day finished.
    """
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    if queueing.uses_queue(state, sync):
        _queue_days(state, days, force=force)
        return
    done = 0
    try:
        with (
            _interruptible() as check_interrupt,
            click.progressbar(
                length=len(days), label="Aggregating", show_pos=True, item_show_func=_day_text
            ) as counter,
        ):
            counter.update(0, days[0])

            def advance(_day: dt.date) -> None:
                nonlocal done
                done += 1
                counter.update(1, days[done] if done < len(days) else None)
                check_interrupt()

            aggregation.aggregate_range(state, first, last, force=force, progress=advance)
    except KeyboardInterrupt:
        _interrupted(days, done, "aggregated", force)
    except aggregation.AggregationRefused as exc:
        # A purged day (wholly or partly) stops the range: say where, and what is done.
        raise aggregation.AggregationRefused(
            f"{exc} Stopped at {days[done]}: {plural(done, 'day')} before it aggregated, "
            f"{plural(len(days) - done - 1, 'day')} after it not."
        ) from exc
    click.echo(f"Aggregated {plural(len(days), 'day')}: {first} to {last}.")


def _day_text(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


def _queue_days(state: AppState, days: list[dt.date], *, force: bool) -> None:
    """Queue one aggregation job per day, over one Redis connection."""
    with redis_extra():
        from ..tasks.enqueue import enqueue_aggregate, redis_connection
    connection = redis_connection(state)
    created = done = 0
    try:
        with (
            _interruptible() as check_interrupt,
            click.progressbar(days, label="Queueing", show_pos=True) as bar,
        ):
            for day in bar:
                created += enqueue_aggregate(state, day, force=force, connection=connection).created
                done += 1
                check_interrupt()
    except KeyboardInterrupt:
        click.echo(f"Queued {plural(created, 'aggregation job')}.", err=True)
        _interrupted(days, done, "queued", force)
    click.echo(
        f"Queued {plural(created, 'aggregation job')} on queue {state.settings.queue!r} "
        f"({len(days) - created:,} already queued or running)."
    )


@app_command("demo-data")
@click.option("--days", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same traffic.")
@click.option("--hostname", default="localhost", show_default=True)
@click.option("--sync", is_flag=True, help=SYNC_HELP)
def demo_data_command(days: int, seed: int, hostname: str, sync: bool) -> None:
    """Record realistic traffic for the last N local days through the real pipeline."""
    state = app_state()
    with click_errors():
        with click.progressbar(length=days, label="Recording") as bar:
            result = demo.generate(
                state, days=days, seed=seed, hostname=hostname, progress=lambda _day: bar.update(1)
            )
        click.echo(
            f"Recorded {plural(result.events, 'event')} in {plural(result.visits, 'visit')} "
            f"over {plural(result.days, 'day')}."
        )
        # From the first day recorded: "today" may have moved on while recording.
        _aggregate_days(state, result.first_day, state.today(), sync)
