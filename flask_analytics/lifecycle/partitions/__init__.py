"""Monthly range partitioning of ``analytics_event`` and its archive (PostgreSQL only).

Worth it past roughly 50-100 million raw + archived rows (docs/scaling.md, "When to
partition"): archiving a month becomes a metadata change and purging one a ``DROP TABLE``.

Layout after :func:`migrate`
    ``analytics_event`` and ``analytics_event_archive`` are partitioned by range of
    ``created_at``, one partition per UTC month (``analytics_event_2026_01``,
    ``analytics_event_archive_2026_01``) plus a ``_default`` partition each, which stays
    empty while partitions exist ahead of time (:func:`add_partitions`, monthly from the
    scheduler). Their primary keys become ``(id, created_at)``.

Why a trigger
    A partitioned table's unique indexes must contain the partition key, so
    ``UNIQUE (event_id)`` cannot exist on it, and ``(event_id, created_at)`` would not
    catch a retry (its ``created_at`` is computed again when it arrives). Event ids move to
    a plain table ``analytics_event_id (event_id PRIMARY KEY, created_at)``; a ``BEFORE
    INSERT`` row trigger on ``analytics_event`` inserts each row's id there and skips the
    row (returns NULL) when the id was already stored. Concurrent inserts of one id wait on
    that primary key, so it stays exactly-once, for ``INSERT`` and ``COPY`` alike, across
    months. Writers say ``ON CONFLICT DO NOTHING`` without a conflict target
    (``dialects.insert_ignore``), the only form PostgreSQL accepts here.

The SQL is generated from the live tables (their columns, custom ones included, their
indexes, foreign keys and check constraints), so a subclassed event model keeps its
columns. Every function here needs PostgreSQL 13 or later and says so elsewhere.

Modules: :mod:`.months` (UTC month arithmetic), :mod:`.schema` (names, SQL, errors,
catalog checks), :mod:`.status`, :mod:`.migrate`, :mod:`.monthly` (partitions ahead,
archive and purge of whole months).
"""

from __future__ import annotations

from .migrate import MigrationResult, migrate, migration_sql
from .monthly import (
    AddResult,
    MonthArchiveResult,
    MonthPurgeResult,
    add_partitions,
    archive_month,
    purge_month,
)
from .months import add_months, month_bounds, parse_month, partition_name, touching_days
from .schema import (
    ARCHIVE,
    DEFAULT_MONTHS_AHEAD,
    EVENT,
    EVENT_IDS,
    PartitioningError,
    PartitioningUnsupported,
    forget_event_ids,
    is_partitioned,
)
from .status import Partition, PartitionStatus, TableStatus, status

__all__ = [
    "ARCHIVE",
    "DEFAULT_MONTHS_AHEAD",
    "EVENT",
    "EVENT_IDS",
    "AddResult",
    "MigrationResult",
    "MonthArchiveResult",
    "MonthPurgeResult",
    "Partition",
    "PartitionStatus",
    "PartitioningError",
    "PartitioningUnsupported",
    "TableStatus",
    "add_months",
    "add_partitions",
    "archive_month",
    "forget_event_ids",
    "is_partitioned",
    "migrate",
    "migration_sql",
    "month_bounds",
    "parse_month",
    "partition_name",
    "purge_month",
    "status",
    "touching_days",
]
