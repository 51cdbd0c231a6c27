"""``status``: row counts, aggregation runs, days needing aggregation, the queue, where
countries come from (and how old that data is) and the ingest buffer."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import click

from ..ingest.geo import BUILTIN_PACKAGE, builtin_table, database_info
from ..tasks.status import status_report
from .common import app_command, app_state, click_errors, plural

if TYPE_CHECKING:
    from ..buffer import RedisBuffer
    from ..state import AppState


#: Days needing aggregation listed one by one; the rest are counted.
PENDING_SHOWN = 20

#: Country data older than this is worth updating (the built-in table is refreshed nightly).
GEO_DATA_STALE_DAYS = 180


@app_command("status")
@click.option(
    "--runs",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="How many of the most recent aggregation runs to list.",
)
def status_command(runs: int) -> None:
    """Show row counts, recent aggregation runs, days needing aggregation and the queue."""
    state = app_state()
    with click_errors():
        report = status_report(state, runs=runs)
    click.echo(
        f"Events: {report.raw_events:,} raw, {report.archived_events:,} archived "
        f"(time zone {state.settings.timezone.key})."
    )
    if state.settings.redis_url is None:
        click.echo("Jobs: inline (ANALYTICS_REDIS_URL is not set).")
    elif report.queue is not None:
        queue = report.queue
        click.echo(
            f"Queue {queue.name!r}: {queue.queued:,} queued, {queue.started:,} running, "
            f"{queue.failed:,} failed."
        )
        for jid, error in queue.failures:
            click.echo(f"  failed {jid}: {error}")
    if not report.run_count:
        click.echo("Aggregation runs: none.")
    elif len(report.runs) < report.run_count:
        click.echo(
            f"Aggregation runs: the last {len(report.runs):,} of {report.run_count:,} "
            "(--runs N lists more):"
        )
    else:
        click.echo(f"Aggregation runs: {report.run_count:,}, most recent first:")
    for run in report.runs:
        finished = f"{run.finished_at:%Y-%m-%d %H:%M:%S} UTC" if run.finished_at else "unfinished"
        events = "?" if run.source_events is None else f"{run.source_events:,}"
        click.echo(f"  {run.date.isoformat()}  {finished}  {events} events")
    if report.pending:
        click.echo(f"Days needing aggregation: {plural(len(report.pending), 'day')}:")
        for day in report.pending[-PENDING_SHOWN:]:
            detail = plural(day.events, "event")
            if day.run_events is not None:
                detail += f" now, {day.run_events:,} when aggregated"
            click.echo(f"  {day.day.isoformat()}  {day.status}: {detail}")
        hidden = report.pending[:-PENDING_SHOWN]
        if hidden:
            click.echo(
                f"  and {plural(len(hidden), 'earlier day')} ({hidden[0].day.isoformat()} to "
                f"{hidden[-1].day.isoformat()}): flask analytics backfill aggregates them."
            )
    else:
        click.echo("Days needing aggregation: none.")
    for line in countries_status(state):
        click.echo(line)
    if state.buffer is not None:
        _buffer_status(state.buffer)
    if report.redis_error is not None:
        raise click.ClickException(report.redis_error)


def countries_status(state: AppState) -> list[str]:
    """Where countries come from, in lookup order, with the age of their data."""
    settings = state.settings
    today = state.today()
    sources: list[str] = []
    notes: list[str] = []

    def dated(built: dt.date | None, update: str) -> str:
        if built is None:
            return "data date unknown"
        days = (today - built).days
        if days > GEO_DATA_STALE_DAYS:
            notes.append(f"  Its data is over {GEO_DATA_STALE_DAYS} days old: {update}.")
        return f"data of {built.isoformat()}, {plural(days, 'day')} old"

    if state.geo_reader is not None:
        info = database_info(state.geo_reader)
        kind = f"{info.database_type}, " if info.database_type else ""
        age = dated(info.built, "download a newer one")
        sources.append(f"the database {settings.geoip_database} ({kind}{age})")
    if settings.country_header:
        sources.append(f"the {settings.country_header} header")
    if state.geo_reader is None and settings.builtin_countries:
        table = builtin_table()
        if table.installed:
            age = dated(table.data_date, f"pip install -U {BUILTIN_PACKAGE}")
            sources.append(
                f"the built-in table ({BUILTIN_PACKAGE} {table.version}: the regional "
                f"internet registries' delegations, {age})"
            )
        else:
            notes.append(f"  The built-in table is not installed: pip install {BUILTIN_PACKAGE}.")
    if not sources:
        return ["Countries: unknown (no database, header or built-in table).", *notes]
    return [f"Countries: {', then '.join(sources)}.", *notes]


def _buffer_status(buffer: RedisBuffer) -> None:
    from redis.exceptions import RedisError

    from ..buffer.durability import check as check_durability

    try:
        info = buffer.info()
    except RedisError as exc:
        raise click.ClickException(f"Ingest buffer: Redis is not reachable ({exc}).") from exc
    click.echo(
        f"Ingest buffer {info.stream!r}: {plural(info.length, 'request')} waiting "
        f"({info.pending:,} being written by {plural(info.consumers, 'flusher')}), "
        f"{plural(info.dead, 'row')} refused by the database in {info.stream}:dead."
    )
    if info.dead:
        click.echo(
            "  Read them with XRANGE; once the cause is fixed, `flask analytics flush "
            "--requeue-dead` writes them."
        )
    durability = check_durability(buffer.redis)
    click.echo(f"Ingest buffer durability: {durability.describe()}.")
    for risk in durability.risks:
        click.echo(f"  - {risk}.")
    if durability.risks or durability.error is not None:
        click.echo(
            "  Acknowledged events are safe only with appendonly yes (appendfsync everysec) "
            "and maxmemory-policy noeviction: see docs/scaling.md."
        )
