"""``import-log``: page views of a server access log (combined log format) through the
ingest pipeline, each with a stable event id, so importing a file again adds nothing."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import IO

import click
from flask import current_app

from ..ingest.accesslog import import_lines
from .common import app_command, app_state, plural


def _open(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return path.open(encoding="utf-8", errors="replace")


@app_command("import-log")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--hostname", required=True, help="The site the log is of (www.example.com).")
@click.option("--scheme", type=click.Choice(["https", "http"]), default="https", show_default=True)
def import_log_command(path: Path, hostname: str, scheme: str) -> None:
    """Import the page views of an access log (combined format; .gz read as gzip)."""
    app_state()  # the tables check
    track = current_app.extensions["analytics"].track
    with _open(path) as stream:
        result = import_lines(track, stream, hostname.lower(), scheme=scheme)
    click.echo(
        f"Read {plural(result.lines, 'line')}: stored {plural(result.stored, 'page view')}, "
        f"{result.dropped} dropped (imported before, bots, excluded), "
        f"{result.skipped} not page views, {result.invalid} invalid."
    )
    for error in result.first_errors:
        click.echo(f"  {error}")
