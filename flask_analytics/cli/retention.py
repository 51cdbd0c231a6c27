"""``archive`` and ``purge``: raw events past the retention go to the archive table, and
archived events past theirs are deleted."""

from __future__ import annotations

import click

from ..core.runs import DayState
from ..lifecycle.archive import archive, purge
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


def _report_skipped(days: list[DayState]) -> None:
    if not days:
        return
    click.echo(
        f"Left raw: {plural(len(days), 'day')} not aggregated since their latest events "
        "(aggregate them, then archive again):"
    )
    for day in days:
        click.echo(f"  {day.day.isoformat()}  {day.status}  {plural(day.raw_events, 'raw event')}")


@app_command("archive")
@click.option(
    "--retention-days",
    type=click.IntRange(min=0),
    default=None,
    help="Archive local days older than this (default: ANALYTICS_RETENTION_DAYS).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Events moved per transaction.",
)
@click.option("--dry-run", is_flag=True, help="Report what would move; change nothing.")
@click.option("--sync", is_flag=True, help=SYNC_HELP)
def archive_command(retention_days: int | None, batch_size: int, dry_run: bool, sync: bool) -> None:
    """Move raw events of aggregated days past the retention into the archive table."""
    state = app_state()
    with click_errors():
        if queueing.uses_queue(state, sync) and not dry_run:
            with redis_extra():
                from ..tasks.enqueue import enqueue_archive
            report_enqueued(
                enqueue_archive(state, older_than_days=retention_days, batch_size=batch_size)
            )
            return
        plan = archive(state, older_than_days=retention_days, dry_run=True)
        if dry_run:
            click.echo(
                f"Dry run: would archive {plural(plan.planned, 'event')} of "
                f"{plural(len(plan.days), 'day')} before {plan.cutoff.isoformat()} "
                f"({state.settings.timezone.key})."
            )
            for day in plan.days:
                click.echo(f"  {day.day.isoformat()}  {plural(day.raw_events, 'event')}")
            _report_skipped(plan.skipped)
            return
        with click.progressbar(length=max(plan.planned, 1), label="Archiving") as bar:
            result = archive(
                state,
                older_than_days=retention_days,
                batch_size=batch_size,
                progress=bar.update,
            )
        click.echo(
            f"Archived {plural(result.moved, 'event')} of {plural(len(result.days), 'day')} "
            f"before {result.cutoff.isoformat()} ({state.settings.timezone.key}) "
            f"in {plural(result.batches, 'batch')}."
        )
        if result.conflicts:
            click.echo(
                f"Left raw: {plural(result.conflicts, 'event')} whose id or event_id is already "
                "used by another archived event."
            )
        _report_skipped(result.skipped)


@app_command("purge")
@click.option(
    "--retention-days",
    type=click.IntRange(min=0),
    default=None,
    help="Purge local days older than this (default: ANALYTICS_ARCHIVE_RETENTION_DAYS).",
)
@click.option("--dry-run", is_flag=True, help="Report what would be deleted; change nothing.")
@click.option("--sync", is_flag=True, help=SYNC_HELP)
def purge_command(retention_days: int | None, dry_run: bool, sync: bool) -> None:
    """Delete archived events older than ANALYTICS_ARCHIVE_RETENTION_DAYS (daily rows stay)."""
    state = app_state()
    with click_errors():
        # Check the retention here, so a refusal is immediate rather than a failed job.
        plan = purge(state, older_than_days=retention_days, dry_run=True)
        if dry_run:
            click.echo(
                f"Dry run: would purge {plural(plan.planned, 'archived event')} of "
                f"{plural(len(plan.days), 'day')} before {plan.cutoff.isoformat()} "
                f"({state.settings.timezone.key})."
            )
            for day, count in plan.days:
                click.echo(f"  {day.isoformat()}  {plural(count, 'event')}")
            return
        if queueing.uses_queue(state, sync):
            with redis_extra():
                from ..tasks.enqueue import enqueue_purge
            report_enqueued(enqueue_purge(state, older_than_days=retention_days))
            return
        with click.progressbar(length=max(plan.planned, 1), label="Purging") as bar:
            result = purge(state, older_than_days=retention_days, progress=bar.update)
        click.echo(
            f"Purged {plural(result.deleted, 'archived event')} of "
            f"{plural(len(result.days), 'day')} "
            f"before {result.cutoff.isoformat()} ({state.settings.timezone.key})."
        )
