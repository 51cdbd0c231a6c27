"""The one-transaction migration of both event tables to monthly partitions.

The SQL is generated from the live tables (their columns, custom ones included, their
indexes, foreign keys and check constraints), so a subclassed event model keeps its
columns.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ...core.runs import counts
from .months import add_months, check_months_ahead, current_utc_month
from .schema import (
    ARCHIVE,
    DEDUPE_FUNCTION_SQL,
    DEDUPE_TRIGGER_SQL,
    DEFAULT_MONTHS_AHEAD,
    EVENT,
    EVENT_IDS,
    LOCK_TIMEOUT,
    MIN_SERVER_VERSION,
    PartitioningError,
    create_partition_sql,
    database_errors,
    live_columns,
    quote_identifier,
    require_postgresql,
    table_exists,
    table_kind,
)

if TYPE_CHECKING:
    from ...core.context import Context


@dataclass(frozen=True)
class _TableShape:
    """What the migration reads from one live, unpartitioned table."""

    table: str
    columns: list[str]
    statements_before: list[str]  # renames of the old table, its indexes and constraints
    statements_after: list[str]  # keys, indexes and constraints of the partitioned twin
    sequence: str | None


def _rename_index_aside_sql(conn: sa.Connection, index: str, table: str) -> str:
    """Rename an index of ``table`` as the table steps aside (its constraint follows)."""
    renamed = index.replace(table, f"{table}_old", 1) if table in index else f"{index}_old"
    return (
        f"ALTER INDEX {quote_identifier(conn, index)} "
        f"RENAME TO {quote_identifier(conn, renamed[:63])}"
    )


def _read_shape(conn: sa.Connection, table: str) -> _TableShape:
    """The statements that move ``table`` aside and give its partitioned twin the same
    keys, indexes and constraints; :class:`PartitioningError` when one cannot be kept."""
    quoted = quote_identifier(conn, table)
    columns = live_columns(conn, table)
    if any(identity for name, _, identity in columns if name == "id"):
        raise PartitioningError(
            f"{table}.id is an identity column: only serial ids (SQLAlchemy's default) can "
            "be migrated."
        )
    referenced = conn.exec_driver_sql(
        "SELECT conname, conrelid::regclass::text FROM pg_constraint "
        "WHERE confrelid = to_regclass(%(t)s)",
        {"t": table},
    ).all()
    if referenced:
        raise PartitioningError(
            f"Foreign keys reference {table} ({', '.join(f'{n} on {t}' for n, t in referenced)}): "
            "drop them first; a partitioned table cannot be referenced by its id alone."
        )
    before = [f"ALTER TABLE {quoted} RENAME TO {quote_identifier(conn, table + '_old')}"]
    after: list[str] = []
    constraints = conn.exec_driver_sql(
        "SELECT c.conname, c.contype, pg_get_constraintdef(c.oid), "
        "ARRAY(SELECT a.attname::text FROM unnest(c.conkey) k "
        "      JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k), "
        "c.conindid::regclass::text "
        "FROM pg_constraint c WHERE c.conrelid = to_regclass(%(t)s) ORDER BY c.conname",
        {"t": table},
    ).all()
    event_id_index = (
        f"CREATE INDEX {quote_identifier(conn, f'ix_{table}_event_id')} ON {quoted} (event_id)"
    )
    constraint_indexes = set()
    for name, kind, definition, keys, index in constraints:
        quoted_name = quote_identifier(conn, name)
        if kind in ("p", "u", "x"):
            constraint_indexes.add(index)
            before.append(_rename_index_aside_sql(conn, index, table))
        if kind == "p":
            if list(keys) != ["id"] and "created_at" not in keys:
                raise PartitioningError(
                    f"{table}'s primary key is ({', '.join(keys)}), not (id): not migrated."
                )
            pk = "id, created_at" if "created_at" not in keys else ", ".join(keys)
            after.append(f"ALTER TABLE {quoted} ADD CONSTRAINT {quoted_name} PRIMARY KEY ({pk})")
        elif kind == "u" and list(keys) == ["event_id"]:
            # Unique through analytics_event_id and the trigger; a plain index for lookups.
            after.append(event_id_index)
        elif kind == "u" and "created_at" in keys:
            after.append(f"ALTER TABLE {quoted} ADD CONSTRAINT {quoted_name} {definition}")
        elif kind in ("u", "x"):
            raise PartitioningError(
                f"{table} has the constraint {name} ({definition}), which a table partitioned "
                "by created_at cannot keep (it would have to include created_at): drop it or "
                "add created_at to it first."
            )
        elif kind == "f":
            after.append(f"ALTER TABLE {quoted} ADD CONSTRAINT {quoted_name} {definition}")
        # Check constraints come with LIKE ... INCLUDING CONSTRAINTS; NOT NULL always does.
    indexes = conn.exec_driver_sql(
        "SELECT ic.relname, pg_get_indexdef(i.indexrelid), i.indisunique, "
        "ARRAY(SELECT a.attname::text FROM unnest(i.indkey) k "
        "      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k) "
        "FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
        "WHERE i.indrelid = to_regclass(%(t)s) ORDER BY ic.relname",
        {"t": table},
    ).all()
    for name, definition, unique, keys in indexes:
        if name in constraint_indexes:
            continue
        if unique and list(keys) == ["event_id"]:
            after.append(event_id_index)
        elif unique and "created_at" not in keys:
            raise PartitioningError(
                f"{table} has the unique index {name}, which a table partitioned by "
                "created_at cannot keep: drop it or add created_at to it first."
            )
        else:
            # The definition names the table, which is the partitioned twin by then.
            after.append(definition)
        before.append(_rename_index_aside_sql(conn, name, table))
    sequence = conn.exec_driver_sql(
        "SELECT pg_get_serial_sequence(%(t)s, 'id')", {"t": table}
    ).scalar()
    return _TableShape(table, [c[0] for c in columns], before, after, sequence)


@dataclass
class MigrationResult:
    """What :func:`migrate` did (or, with ``dry_run``, would do)."""

    dry_run: bool
    #: The statements, in order, run in one transaction.
    statements: list[str]
    #: First and last month given a partition (UTC months).
    first_month: dt.date
    last_month: dt.date
    raw_events: int
    archived_events: int
    #: False when the tables were partitioned already (nothing to do).
    migrated: bool = True


def _month_span(
    conn: sa.Connection, months_ahead: int, this_month: dt.date
) -> tuple[dt.date, dt.date]:
    """From the oldest event's month to ``months_ahead`` after this one (or the newest
    event's, if later): no existing row lands in a default partition."""
    low, high = conn.exec_driver_sql(
        f"SELECT least((SELECT min(created_at) FROM {EVENT}), "
        f"             (SELECT min(created_at) FROM {ARCHIVE})), "
        f"greatest((SELECT max(created_at) FROM {EVENT}), (SELECT max(created_at) FROM {ARCHIVE}))"
    ).one()
    first = low.date().replace(day=1) if low is not None else this_month
    last = add_months(this_month, months_ahead)
    if high is not None:
        last = max(last, high.date().replace(day=1))
    return min(first, this_month), last


def _check_migratable(conn: sa.Connection) -> None:
    """Raise :class:`PartitioningError` unless the server and tables can be migrated."""
    version = int(conn.exec_driver_sql("SHOW server_version_num").scalar() or 0)
    if version < MIN_SERVER_VERSION:
        raise PartitioningError(
            f"Partitioning needs PostgreSQL 13 or later (this server is {version})."
        )
    kinds = {t: table_kind(conn, t) for t in (EVENT, ARCHIVE)}
    if "missing" in kinds.values():
        raise PartitioningError(
            f"{EVENT} or {ARCHIVE} does not exist: create the tables first "
            "(db.create_all() or your migrations)."
        )
    if "partitioned" in kinds.values():
        raise PartitioningError(f"{EVENT} is {kinds[EVENT]}, {ARCHIVE} is {kinds[ARCHIVE]}.")
    for leftover in (EVENT_IDS, f"{EVENT}_old", f"{ARCHIVE}_old"):
        if table_exists(conn, leftover):
            raise PartitioningError(
                f"The table {leftover} exists already (left by an earlier migration?): "
                "drop or rename it first."
            )


def migration_sql(
    state: Context, *, months_ahead: int = DEFAULT_MONTHS_AHEAD, keep_old: bool = False
) -> tuple[list[str], dt.date, dt.date]:
    """The migration's statements for the live tables, with the first and last month."""
    check_months_ahead(months_ahead)
    engine = require_postgresql(state)
    with engine.connect() as conn:
        _check_migratable(conn)
        event, archive = _read_shape(conn, EVENT), _read_shape(conn, ARCHIVE)
        id_type = {n: t for n, t, _ in live_columns(conn, EVENT)}["event_id"]
        first, last = _month_span(conn, months_ahead, current_utc_month(state))
        statements = [
            f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'",
            # 1. Event ids get a table of their own (see the package docstring).
            f"CREATE TABLE {EVENT_IDS} (event_id {id_type} PRIMARY KEY, "
            "created_at timestamp NOT NULL)",
            f"CREATE INDEX ix_{EVENT_IDS}_created_at ON {EVENT_IDS} (created_at)",
            DEDUPE_FUNCTION_SQL,
            # 2. The old tables step aside, their indexes too (the new ones keep the names).
            *event.statements_before,
            *archive.statements_before,
        ]
        for shape in (event, archive):
            # 3. Partitioned twins with the same columns (custom ones included).
            old = quote_identifier(conn, shape.table + "_old")
            new = quote_identifier(conn, shape.table)
            statements.append(
                f"CREATE TABLE {new} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
                "INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMMENTS) "
                "PARTITION BY RANGE (created_at)"
            )
            if shape.sequence is not None:
                statements.append(f"ALTER SEQUENCE {shape.sequence} OWNED BY {new}.id")
            statements.extend(shape.statements_after)
            default = quote_identifier(conn, shape.table + "_default")
            statements.append(f"CREATE TABLE {default} PARTITION OF {new} DEFAULT")
        # 4. Monthly partitions (UTC months).
        month = first
        while month <= last:
            statements.append(create_partition_sql(conn, EVENT, month))
            statements.append(create_partition_sql(conn, ARCHIVE, month))
            month = add_months(month, 1)
        # 5. Copy (ids and times kept), record the ids, then switch the trigger on.
        for shape in (event, archive):
            cols = ", ".join(quote_identifier(conn, c) for c in shape.columns)
            statements.append(
                f"INSERT INTO {quote_identifier(conn, shape.table)} ({cols}) "
                f"SELECT {cols} FROM {quote_identifier(conn, shape.table + '_old')}"
            )
        statements.append(
            f"INSERT INTO {EVENT_IDS} (event_id, created_at) "
            f"SELECT event_id, created_at FROM {EVENT}_old UNION ALL "
            f"SELECT event_id, created_at FROM {ARCHIVE}_old ON CONFLICT (event_id) DO NOTHING"
        )
        statements.append(DEDUPE_TRIGGER_SQL)
        # 6. Nothing is dropped unless every row made it.
        checks = " OR ".join(
            f"(SELECT count(*) FROM {t}) <> (SELECT count(*) FROM {t}_old)"
            for t in (EVENT, ARCHIVE)
        )
        statements.append(
            f"DO $$ BEGIN IF {checks} THEN "
            "RAISE EXCEPTION 'row counts differ after the copy: rolled back'; END IF; END $$"
        )
        if not keep_old:
            statements.append(f"DROP TABLE {EVENT}_old, {ARCHIVE}_old")
    return statements, first, last


def migrate(
    state: Context,
    *,
    months_ahead: int = DEFAULT_MONTHS_AHEAD,
    dry_run: bool = False,
    keep_old: bool = False,
    vacuum: bool = True,
) -> MigrationResult:
    """Partition ``analytics_event`` and ``analytics_event_archive`` by UTC month.

    One transaction: the event-id table and dedupe trigger, partitioned twins of both
    tables (same columns, indexes and constraints), partitions from the oldest event's
    month to ``months_ahead`` months ahead, default partitions, every row copied and the
    counts compared; then the old tables are dropped (renamed ``*_old`` and kept with
    ``keep_old``). ``dry_run`` returns the statements without running them. Already
    partitioned tables are left alone (``migrated`` is False). Stop the writers (or the
    buffer's flushers) for the duration: the tables are locked.
    """
    engine = require_postgresql(state)
    with engine.connect() as conn:
        kinds = {table_kind(conn, t) for t in (EVENT, ARCHIVE)}
    if kinds == {"partitioned"}:
        this_month = current_utc_month(state)
        return MigrationResult(dry_run, [], this_month, this_month, 0, 0, migrated=False)
    statements, first, last = migration_sql(state, months_ahead=months_ahead, keep_old=keep_old)
    before = counts(state)
    result = MigrationResult(dry_run, statements, first, last, before["raw"], before["archived"])
    if dry_run:
        return result
    with database_errors("The migration"), engine.begin() as conn:
        for statement in statements:
            # The driver reads % as a placeholder mark; reflected definitions may hold one.
            conn.exec_driver_sql(statement.replace("%", "%%"))
    if vacuum:
        # Sets the visibility maps (index-only day scans) and the planner's statistics.
        with state.autocommit_engine().connect() as conn:
            conn.exec_driver_sql(f"VACUUM (ANALYZE) {EVENT}, {ARCHIVE}, {EVENT_IDS}")
    return result
