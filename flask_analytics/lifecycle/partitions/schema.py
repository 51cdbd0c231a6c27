"""The partitioned layout's names and SQL, and the checks every operation starts with.

Table and trigger names, the dedupe trigger's SQL, the errors, identifier quoting, the
live catalog reads (is a table partitioned, plain or missing; its columns; its rows) and
:func:`forget_event_ids`, which the row-by-row purge shares with the monthly one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ...errors import AnalyticsError
from .months import month_bounds, partition_name

if TYPE_CHECKING:
    from ...core.context import Context

EVENT = "analytics_event"
ARCHIVE = "analytics_event_archive"
#: The plain table holding every stored event id (see the package docstring, "Why a
#: trigger").
EVENT_IDS = "analytics_event_id"
DEDUPE_FUNCTION = "analytics_event_dedupe"
DEDUPE_TRIGGER = "analytics_event_dedupe"
#: Months of partitions kept ahead of the current UTC month.
DEFAULT_MONTHS_AHEAD = 3
#: How long DDL waits for a table lock before giving up (nothing is changed then).
LOCK_TIMEOUT = "10s"
MIN_SERVER_VERSION = 130000  # BEFORE row triggers on partitioned tables

DEDUPE_FUNCTION_SQL = f"""CREATE OR REPLACE FUNCTION {DEDUPE_FUNCTION}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {EVENT_IDS} (event_id, created_at)
    VALUES (NEW.event_id, NEW.created_at)
    ON CONFLICT (event_id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN NULL;  -- an event with this id is stored already: skip the row
    END IF;
    RETURN NEW;
END $$"""

DEDUPE_TRIGGER_SQL = (
    f"CREATE TRIGGER {DEDUPE_TRIGGER} BEFORE INSERT ON {EVENT} "
    f"FOR EACH ROW EXECUTE FUNCTION {DEDUPE_FUNCTION}()"
)


class PartitioningError(AnalyticsError):
    """Partitioning cannot be done: wrong database, unexpected schema, or refused."""


class PartitioningUnsupported(PartitioningError):
    """The database is not PostgreSQL."""


# -- SQL text ------------------------------------------------------------------------------


def quote_identifier(conn: sa.Connection, name: str) -> str:
    """``name`` quoted as a PostgreSQL identifier where it needs to be."""
    return str(conn.dialect.identifier_preparer.quote(name))


def timestamp_literal(value: dt.datetime) -> str:
    """A naive timestamp as an SQL literal (partition bounds cannot be parameters)."""
    return f"'{value.isoformat(sep=' ')}'"


def partition_bounds_sql(month: dt.date) -> str:
    """``FOR VALUES FROM (...) TO (...)`` of the partition of the UTC month of ``month``."""
    start, end = month_bounds(month)
    return f"FOR VALUES FROM ({timestamp_literal(start)}) TO ({timestamp_literal(end)})"


def create_partition_sql(conn: sa.Connection, parent: str, month: dt.date) -> str:
    """``CREATE TABLE`` of ``parent``'s partition of ``month``."""
    name = quote_identifier(conn, partition_name(parent, month))
    return (
        f"CREATE TABLE {name} PARTITION OF {quote_identifier(conn, parent)} "
        f"{partition_bounds_sql(month)}"
    )


@contextmanager
def database_errors(what: str) -> Iterator[None]:
    """Turn a failed statement into a :class:`PartitioningError` saying ``what`` was rolled
    back (a lost connection is raised as it is)."""
    try:
        yield
    except sa.exc.DBAPIError as exc:
        if exc.connection_invalidated:
            raise
        raise PartitioningError(
            f"{what} failed and was rolled back, nothing changed: {exc.orig}".strip()
        ) from exc


# -- database checks -----------------------------------------------------------------------


def require_postgresql(state: Context) -> sa.Engine:
    """The engine of the event tables; :class:`PartitioningUnsupported` unless PostgreSQL."""
    engine = state.engine()
    if engine.dialect.name != "postgresql":
        raise PartitioningUnsupported(
            "Partitioning is a PostgreSQL feature: this app's database is "
            f"{engine.dialect.name}. Archive and purge row by row with `flask analytics "
            "archive` and `flask analytics purge`."
        )
    return engine


def table_kind(conn: sa.Connection, table: str) -> str:
    """``partitioned``, ``plain`` or ``missing``."""
    relkind = conn.exec_driver_sql(
        "SELECT relkind FROM pg_class WHERE oid = to_regclass(%(t)s)", {"t": table}
    ).scalar()
    if relkind is None:
        return "missing"
    return "partitioned" if relkind == "p" else "plain"


def table_exists(conn: sa.Connection, table: str) -> bool:
    """Whether ``table`` exists (partitioned or not)."""
    return table_kind(conn, table) != "missing"


def is_partitioned(state: Context) -> bool:
    """Whether ``analytics_event`` is partitioned (always False on other databases than
    PostgreSQL, where nothing is)."""
    engine = state.engine()
    if engine.dialect.name != "postgresql":
        return False
    with engine.connect() as conn:
        return table_kind(conn, EVENT) == "partitioned"


def require_partitioned(conn: sa.Connection) -> None:
    """Raise :class:`PartitioningError` unless both event tables are partitioned."""
    kinds = {t: table_kind(conn, t) for t in (EVENT, ARCHIVE)}
    if set(kinds.values()) != {"partitioned"}:
        raise PartitioningError(
            f"{EVENT} is {kinds[EVENT]} and {ARCHIVE} is {kinds[ARCHIVE]}, not partitioned: "
            "run `flask analytics partitions migrate` first."
        )


def live_columns(conn: sa.Connection, table: str) -> list[tuple[str, str, str]]:
    """(name, type, identity) of the live columns of ``table``, in order."""
    return [
        (str(n), str(t), str(i))
        for n, t, i in conn.exec_driver_sql(
            "SELECT attname, format_type(atttypid, atttypmod), attidentity FROM pg_attribute "
            "WHERE attrelid = to_regclass(%(t)s) AND attnum > 0 AND NOT attisdropped "
            "ORDER BY attnum",
            {"t": table},
        )
    ]


def has_rows(conn: sa.Connection, table: str) -> bool:
    """Whether ``table`` exists and holds a row."""
    if not table_exists(conn, table):
        return False
    quoted = quote_identifier(conn, table)
    return bool(conn.exec_driver_sql(f"SELECT EXISTS (SELECT 1 FROM {quoted})").scalar())


def count_rows(conn: sa.Connection, table: str) -> int:
    """Rows of ``table``; 0 when it does not exist."""
    if not table_exists(conn, table):
        return 0
    quoted = quote_identifier(conn, table)
    return int(conn.exec_driver_sql(f"SELECT count(*) FROM {quoted}").scalar() or 0)


# -- event ids -----------------------------------------------------------------------------


def forget_event_ids(conn: sa.Connection, low: dt.datetime, high: dt.datetime) -> None:
    """Delete from ``analytics_event_id`` the ids of ``[low, high)`` that no raw event
    holds (ids of events that arrived raw meanwhile stay: a retry of those must remain a
    duplicate)."""
    conn.exec_driver_sql(
        f"DELETE FROM {EVENT_IDS} i WHERE i.created_at >= %(l)s AND i.created_at < %(h)s "
        f"AND NOT EXISTS (SELECT 1 FROM {EVENT} e WHERE e.event_id = i.event_id "
        "AND e.created_at >= %(l)s AND e.created_at < %(h)s)",
        {"l": low, "h": high},
    )
