"""``aggregate``, ``backfill`` and ``demo-data``: the commands that aggregate local days."""

from __future__ import annotations

import datetime as dt

import click

from ..core.runs import day_state
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
@click.option("--from", "start", required=True, type=DAY, help="First local day (YYYY-MM-DD).")
@click.option(
    "--to", "end", default="yesterday", show_default=True, type=DAY, help="Last local day."
)
@click.option(
    "--force", is_flag=True, help="Recompute even days whose events were purged, wholly or partly."
)
@click.option("--sync", is_flag=True, help=SYNC_HELP)
def backfill_command(start: str, end: str, force: bool, sync: bool) -> None:
    """Aggregate every local day from --from to --to inclusive."""
    state = app_state()
    with click_errors():
        first = resolve_day(state, start, "--from")
        last = resolve_day(state, end, "--to")
        if last < first:
            raise click.ClickException(
                f"--to {last.isoformat()} is before --from {first.isoformat()}."
            )
        _aggregate_days(state, first, last, sync, force=force)


def _aggregate_days(
    state: AppState, first: dt.date, last: dt.date, sync: bool, *, force: bool = False
) -> None:
    """Aggregate ``first``..``last``: queued per day with Redis, else inline with a bar."""
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    if queueing.uses_queue(state, sync):
        _queue_days(state, days, force=force)
        return
    done = 0
    try:
        with click.progressbar(length=len(days), label="Aggregating") as counter:

            def advance(_day: dt.date) -> None:
                nonlocal done
                done += 1
                counter.update(1)

            aggregation.aggregate_range(state, first, last, force=force, progress=advance)
    except aggregation.AggregationRefused as exc:
        # A purged day (wholly or partly) stops the range: say where, and what is done.
        raise aggregation.AggregationRefused(
            f"{exc} Stopped at {days[done]}: {plural(done, 'day')} before it aggregated, "
            f"{plural(len(days) - done - 1, 'day')} after it not."
        ) from exc
    click.echo(f"Aggregated {plural(len(days), 'day')}: {first} to {last}.")


def _queue_days(state: AppState, days: list[dt.date], *, force: bool) -> None:
    """Queue one aggregation job per day, over one Redis connection."""
    with redis_extra():
        from ..tasks.enqueue import enqueue_aggregate, redis_connection
    connection = redis_connection(state)
    created = 0
    with click.progressbar(days, label="Queueing") as bar:
        for day in bar:
            created += enqueue_aggregate(state, day, force=force, connection=connection).created
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
