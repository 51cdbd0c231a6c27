"""``flask analytics ...`` commands (placeholder: lands with the jobs)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

analytics_cli = AppGroup("analytics", help="Aggregate, archive and inspect analytics data.")


@analytics_cli.command("status")
def status() -> None:
    """Show the state of the analytics data."""
    click.echo("not implemented yet")
