"""``flask analytics ...`` commands: thin wrappers over the public functions.

With ``ANALYTICS_REDIS_URL`` set, ``aggregate``, ``backfill``, ``archive`` and ``purge``
queue RQ jobs (deterministic ids: a day is never queued twice) unless ``--sync``; without
it they run inline with a progress bar. Errors exit with status 1 and a clear message.

One module per command group: :mod:`.days` (aggregate, backfill, demo-data),
:mod:`.retention` (archive, purge), :mod:`.buffer` (flush), :mod:`.workers` (worker,
scheduler), :mod:`.status` and :mod:`.partitions`; :mod:`.common` holds what they share.
"""

from __future__ import annotations

from flask.cli import AppGroup

from .buffer import flush_command
from .days import aggregate_command, backfill_command, demo_data_command
from .partitions import partitions_cli
from .retention import archive_command, purge_command
from .status import status_command
from .workers import scheduler_command, worker_command

__all__ = ["analytics_cli"]

analytics_cli = AppGroup(
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
    ],
)
