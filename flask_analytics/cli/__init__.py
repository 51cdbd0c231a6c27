"""``flask analytics ...`` commands: thin wrappers over the public functions.

With ``ANALYTICS_REDIS_URL`` set, ``aggregate``, ``backfill``, ``archive`` and ``purge``
queue RQ jobs (deterministic ids: a day is never queued twice) unless ``--sync``; without
it they run inline with a progress bar. Errors exit with status 1 and a clear message.

One module per command group: :mod:`.days` (aggregate, backfill, demo-data),
:mod:`.retention` (archive, purge), :mod:`.buffer` (flush), :mod:`.workers` (worker,
scheduler), :mod:`.status`, :mod:`.partitions`, :mod:`.access` (share, token) and
:mod:`.imports` (import-log); :mod:`.common` holds what they share.

The group is also a ``flask.commands`` entry point, so ``flask analytics`` is found
without loading the app: an app whose configuration is wrong then fails inside the
group, with one line naming the key, as do commands run before the tables exist.
"""

from __future__ import annotations

from typing import Any

import click
from flask.cli import AppGroup

from .access import share_cli, token_cli
from .buffer import flush_command
from .common import setup_errors
from .days import aggregate_command, backfill_command, demo_data_command
from .imports import import_log_command
from .partitions import partitions_cli
from .retention import archive_command, purge_command
from .status import status_command
from .workers import scheduler_command, worker_command

__all__ = ["analytics_cli"]


class AnalyticsGroup(AppGroup):
    """The ``analytics`` group: errors of setting up (see :func:`.common.setup_errors`)
    are answered in one line, whichever command met them."""

    def invoke(self, ctx: click.Context) -> Any:
        with setup_errors():
            return super().invoke(ctx)


analytics_cli = AnalyticsGroup(
    "analytics",
    help="Aggregate, archive and inspect analytics data.",
    commands=[
        aggregate_command,
        backfill_command,
        demo_data_command,
        archive_command,
        purge_command,
        flush_command,
        worker_command,
        scheduler_command,
        status_command,
        partitions_cli,
        share_cli,
        token_cli,
        import_log_command,
    ],
)
