"""``partitions ...``: monthly partitions of the event tables (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from flask.cli import AppGroup

from ..lifecycle import partitions as partitioning
from .common import app_state, click_errors, plural


@click.group("partitions", cls=AppGroup)
def partitions_cli() -> None:
    """Monthly partitions of the raw and archive tables (PostgreSQL; docs/scaling.md)."""


MONTHS_AHEAD = click.option(
    "--months-ahead",
    type=click.IntRange(min=0),
    default=None,
    help="Monthly partitions kept ahead of the current UTC month (default: 3).",
)


def _months_ahead(value: int | None) -> int:
    return partitioning.DEFAULT_MONTHS_AHEAD if value is None else value


@partitions_cli.command("status")
def partitions_status_command() -> None:
    """Whether the event tables are partitioned, and their partitions."""
    state = app_state()
    with click_errors():
        report = partitioning.status(state)
    for table in report.tables:
        if table.kind != "partitioned":
            click.echo(f"{table.name}: {table.kind}, not partitioned.")
            continue
        months = table.months
        span = f"{months[0]:%Y-%m} to {months[-1]:%Y-%m}" if months else "none"
        default = "holds rows: add their months" if table.default_has_rows else "empty"
        click.echo(
            f"{table.name}: partitioned by month, {plural(len(months), 'monthly partition')} "
            f"({span}); default partition {default}."
        )
    if report.partitioned:
        click.echo(f"Dedupe trigger: {'on' if report.dedupe_trigger else 'MISSING'}.")
    else:
        click.echo("Partition them with `flask analytics partitions migrate` (docs/scaling.md).")


@partitions_cli.command("migrate")
@MONTHS_AHEAD
@click.option("--dry-run", is_flag=True, help="Print the SQL; change nothing.")
@click.option("--keep-old", is_flag=True, help="Keep the old tables as *_old after the copy.")
def partitions_migrate_command(months_ahead: int | None, dry_run: bool, keep_old: bool) -> None:
    """Partition analytics_event and analytics_event_archive by month (one transaction).

    Stop the writers first (or the buffer's flushers): the tables are locked meanwhile.
    """
    state = app_state()
    with click_errors():
        result = partitioning.migrate(
            state, months_ahead=_months_ahead(months_ahead), dry_run=dry_run, keep_old=keep_old
        )
    if not result.migrated:
        click.echo("The event tables are partitioned already: nothing to do.")
        return
    span = f"{result.first_month:%Y-%m} to {result.last_month:%Y-%m}"
    if dry_run:
        click.echo(f"-- Dry run: the migration (one transaction), monthly partitions {span}.")
        click.echo("BEGIN;")
        for statement in result.statements:
            click.echo(f"{statement};")
        click.echo("COMMIT;")
        return
    click.echo(
        f"Partitioned {plural(result.raw_events, 'raw event')} and "
        f"{plural(result.archived_events, 'archived event')}: monthly partitions {span}."
    )


@partitions_cli.command("add")
@MONTHS_AHEAD
def partitions_add_command(months_ahead: int | None) -> None:
    """Create the monthly partitions from this UTC month to --months-ahead (idempotent)."""
    state = app_state()
    with click_errors():
        result = partitioning.add_partitions(state, months_ahead=_months_ahead(months_ahead))
    span = f"{result.first_month:%Y-%m} to {result.last_month:%Y-%m}"
    if not result.created:
        click.echo(f"Every monthly partition from {span} exists: nothing added.")
        return
    click.echo(f"Added {plural(len(result.created), 'partition')} ({span}):")
    for name in result.created:
        click.echo(f"  {name}")


def _month_command(name: str, setting: str) -> Callable[[Callable[..., None]], Any]:
    """A ``partitions`` subcommand taking a UTC month and a retention override."""
    retention = click.option(
        "--retention-days",
        type=click.IntRange(min=0),
        default=None,
        help=f"Every local day of the month must be older (default: {setting}).",
    )

    def decorate(func: Callable[..., None]) -> Any:
        return partitions_cli.command(name)(click.argument("month")(retention(func)))

    return decorate


def _by_month(action: Callable[..., Any], month: str, retention_days: int | None) -> Any:
    state = app_state()
    with click_errors():
        return action(state, partitioning.parse_month(month), older_than_days=retention_days)


@_month_command("archive-month", "ANALYTICS_RETENTION_DAYS")
def partitions_archive_month_command(month: str, retention_days: int | None) -> None:
    """Move the raw events of a UTC month (YYYY-MM) to the archive, as a whole partition."""
    result = _by_month(partitioning.archive_month, month, retention_days)
    how = "the partition itself, no row copied" if result.moved_partition else "rows copied"
    if not result.events:
        how = "nothing to move"
    click.echo(f"Archived {result.month:%Y-%m}: {plural(result.events, 'event')} ({how}).")


@_month_command("purge-month", "ANALYTICS_ARCHIVE_RETENTION_DAYS")
def partitions_purge_month_command(month: str, retention_days: int | None) -> None:
    """Drop the archive partition of a UTC month (YYYY-MM); daily rows stay."""
    result = _by_month(partitioning.purge_month, month, retention_days)
    dropped = "partition dropped" if result.dropped_partition else "no partition"
    click.echo(
        f"Purged {result.month:%Y-%m}: {plural(result.deleted, 'archived event')} ({dropped})."
    )
