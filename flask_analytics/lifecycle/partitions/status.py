"""What ``flask analytics partitions status`` reports: each event table's kind, its
partitions with their bounds and estimated rows, and whether the dedupe trigger exists."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa

from .schema import ARCHIVE, DEDUPE_TRIGGER, EVENT, has_rows, require_postgresql, table_kind

if TYPE_CHECKING:
    from ...core.context import Context

#: The bounds in ``pg_get_expr(relpartbound)`` of a range partition.
_RANGE_BOUNDS = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")


@dataclass(frozen=True)
class Partition:
    """One partition of a partitioned event table."""

    name: str
    #: UTC bounds ``[start, end)``; None for the default partition.
    start: dt.datetime | None
    end: dt.datetime | None
    #: PostgreSQL's estimate (``pg_class.reltuples``; -1 before the first ANALYZE).
    estimated_rows: int

    @property
    def default(self) -> bool:
        """Whether this is the table's default partition."""
        return self.start is None


@dataclass
class TableStatus:
    """One event table: ``partitioned``, ``plain`` or ``missing``, and its partitions."""

    name: str
    kind: str
    partitions: list[Partition] = field(default_factory=list)
    #: Whether the default partition holds rows (it should stay empty).
    default_has_rows: bool = False

    @property
    def months(self) -> list[dt.date]:
        """First days of the months that have a partition, oldest first."""
        return sorted(p.start.date() for p in self.partitions if p.start is not None)


@dataclass
class PartitionStatus:
    """What :func:`status` found."""

    tables: list[TableStatus]
    dedupe_trigger: bool

    @property
    def partitioned(self) -> bool:
        """Whether every event table is partitioned."""
        return all(t.kind == "partitioned" for t in self.tables)


def _list_partitions(conn: sa.Connection, parent: str) -> list[Partition]:
    rows = conn.exec_driver_sql(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples::bigint "
        "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(%(p)s) ORDER BY c.relname",
        {"p": parent},
    ).all()
    found = []
    for name, bound, tuples in rows:
        match = _RANGE_BOUNDS.search(bound or "")
        start = dt.datetime.fromisoformat(match[1]) if match else None
        end = dt.datetime.fromisoformat(match[2]) if match else None
        found.append(Partition(name, start, end, int(tuples)))
    return found


def status(state: Context) -> PartitionStatus:
    """Whether the event tables are partitioned, and their partitions."""
    engine = require_postgresql(state)
    with engine.connect() as conn:
        tables = []
        for name in (EVENT, ARCHIVE):
            table = TableStatus(name, table_kind(conn, name))
            if table.kind == "partitioned":
                table.partitions = _list_partitions(conn, name)
                table.default_has_rows = has_rows(conn, f"{name}_default")
            tables.append(table)
        trigger = conn.exec_driver_sql(
            "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = %(n)s "
            "AND tgrelid = to_regclass(%(t)s))",
            {"n": DEDUPE_TRIGGER, "t": EVENT},
        ).scalar()
    return PartitionStatus(tables, bool(trigger))
