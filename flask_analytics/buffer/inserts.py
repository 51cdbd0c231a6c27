"""Getting rows into the event table: COPY, executemany, ``INSERT ... ON CONFLICT``.

Every path ignores rows whose event id is stored already (the unique ``event_id``), so
a batch written twice stores its rows once. On PostgreSQL through psycopg 3 the rows
are COPYed (the stored COPY text lines as they are, or Python rows); SQLite and the
others get one ``executemany`` or SQLAlchemy's ``INSERT``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from ..core.dialects import insert_ignore

log = logging.getLogger(__name__)

#: SQLSTATE of a unique violation (a buffered event id already stored).
UNIQUE_VIOLATION = "23505"


def insert_rows(
    conn: sa.Connection,
    table: sa.Table,
    columns: tuple[str, ...],
    rows: list[list[Any]],
    serial: int,
) -> int:
    """Insert ``rows`` (Python values in ``columns`` order), ignoring known event ids.

    ``serial`` numbers the calls within one transaction (PostgreSQL temporary tables).
    """
    if not rows:
        return 0
    if can_copy(conn, table, columns):
        return _copy_rows(conn, table, columns, rows, serial)
    dialect = conn.dialect
    if dialect.positional and not any(
        c.default is not None for c in table.columns if c.name not in columns
    ):
        return _executemany(conn, table, columns, rows)
    # As the direct path: SQLAlchemy fills in Python-side column defaults row by row.
    stmt = insert_ignore(table, dialect.name, ["event_id"]).execution_options(
        preserve_rowcount=True  # SQLAlchemy drops an INSERT's row count unless asked
    )
    result = conn.execute(stmt, [dict(zip(columns, row, strict=True)) for row in rows])
    return max(int(result.rowcount), 0)


@functools.lru_cache(maxsize=32)
def _executemany_sql(
    table: sa.Table, dialect: sa.Dialect, columns: tuple[str, ...]
) -> tuple[str, list[int], list[tuple[int, Callable[[Any], Any]]]]:
    """SQL of :func:`_executemany`, the order of its parameters (indexes into
    ``columns``), and the bind processors of ``columns`` (by index)."""
    stmt = insert_ignore(table, dialect.name, ["event_id"])
    compiled = stmt.values({name: sa.bindparam(name) for name in columns}).compile(dialect=dialect)
    assert compiled.positiontup is not None  # a positional dialect
    order = [columns.index(name) for name in compiled.positiontup]
    processors: list[tuple[int, Callable[[Any], Any]]] = [
        (i, p)
        for i, name in enumerate(columns)
        if (p := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
    ]
    return compiled.string, order, processors


def _executemany(
    conn: sa.Connection, table: sa.Table, columns: tuple[str, ...], rows: list[list[Any]]
) -> int:
    """One ``executemany`` of the insert on the DBAPI cursor (SQLite, no Python-side
    default to compute): the values go through the columns' bind processors as with
    SQLAlchemy's own ``executemany``, without its work per row and value."""
    statement, order, processors = _executemany_sql(table, conn.dialect, columns)
    values: list[Sequence[Any]] = list(zip(*rows, strict=True))
    for i, process in processors:
        values[i] = list(map(process, values[i]))
    params = list(zip(*(values[i] for i in order), strict=True))
    counts: list[int] = []

    def load(cur: Any) -> None:
        cur.executemany(statement, params)
        counts.append(int(cur.rowcount))

    _run_on_driver_cursor(conn, statement, load)
    return max(counts[0], 0)


def can_copy(conn: sa.Connection, table: sa.Table, columns: tuple[str, ...]) -> bool:
    """PostgreSQL through psycopg 3, and no per-row Python default to compute.

    ``INSERT ... SELECT`` renders scalar and SQL column defaults of the columns it does
    not name, but would call a Python default function once for all rows.
    """
    dialect = conn.dialect
    if dialect.name != "postgresql" or dialect.driver != "psycopg":
        return False
    return not any(
        c.default is not None and c.default.is_callable
        for c in table.columns
        if c.name not in columns and c.name != "id"
    )


def _insert_from_select(
    conn: sa.Connection, table: sa.Table, columns: tuple[str, ...], source: Any
) -> int:
    """``INSERT INTO event (columns) SELECT ... ON CONFLICT DO NOTHING``.

    ``from_select`` adds the columns' scalar and SQL defaults for the ones not named, as
    the direct path's INSERT does; the rows of one batch are inserted in scan order, so
    of two rows with one event id the first is kept.
    """
    stmt = (
        insert_ignore(table, "postgresql", ["event_id"])
        .from_select(list(columns), source, include_defaults=True)
        .execution_options(preserve_rowcount=True)
    )
    return max(int(conn.execute(stmt).rowcount), 0)


# -- PostgreSQL: COPY ---------------------------------------------------------------------


def _copy_into(
    conn: sa.Connection,
    table: sa.Table,
    columns: tuple[str, ...],
    write: Callable[[Any], None],
    serial: int,
) -> int:
    """COPY rows (``write(copy)`` sends them) into the event table; returns rows stored.

    Optimistic: straight into ``analytics_event``, in a savepoint. Duplicates are rare
    (a retry that went direct while Redis was down, a batch written again after its
    flusher died between the commit and the acknowledgement, a client resending), and
    the unique ``event_id`` catches them: then the savepoint is rolled back and the
    batch goes through a temporary table and ``INSERT ... SELECT ... ON CONFLICT DO
    NOTHING``, which skips stored ids and keeps the first row of an id repeated in the
    batch. On a partitioned ``analytics_event`` (docs/scaling.md) the dedupe trigger
    skips such rows itself and the COPY's count excludes them. Columns left out that
    have a Python-side default need that ``INSERT`` too (COPY knows the table's own
    defaults only).
    """
    prep = conn.dialect.identifier_preparer
    column_list = ", ".join(prep.quote(c) for c in columns)
    target = prep.format_table(table)
    if not any(c.default is not None for c in table.columns if c.name not in columns):
        statement = f"COPY {target} ({column_list}) FROM STDIN"

        def load(cur: Any) -> None:
            with cur.copy(statement) as copy:
                write(copy)
            counts.append(int(cur.rowcount))

        counts: list[int] = []
        try:
            with conn.begin_nested():
                _run_on_driver_cursor(conn, statement, load)
            return counts[0]
        except sa.exc.IntegrityError as exc:
            if getattr(exc.orig, "sqlstate", None) != UNIQUE_VIOLATION:
                raise
            log.debug("analytics buffer: a batch holds stored event ids: %s", exc.orig)
    tmp = f"fa_flush_{serial}"
    statement = f"COPY {tmp} ({column_list}) FROM STDIN"

    def load_tmp(cur: Any) -> None:
        # The event table's column types, no constraints: COPY never fails on a duplicate.
        cur.execute(
            f"CREATE TEMPORARY TABLE {tmp} ON COMMIT DROP AS "
            f"SELECT {column_list} FROM {target} WITH NO DATA"
        )
        with cur.copy(statement) as copy:
            write(copy)

    _run_on_driver_cursor(conn, statement, load_tmp)
    source = sa.table(tmp, *(sa.column(c) for c in columns))
    return _insert_from_select(conn, table, columns, sa.select(*source.c))


def copy_text_lines(
    conn: sa.Connection, table: sa.Table, columns: tuple[str, ...], data: bytes, serial: int
) -> int:
    """COPY stored COPY text lines (``data``, each ending in a newline) as they are."""
    return _copy_into(conn, table, columns, lambda copy: copy.write(data), serial)


def _copy_rows(
    conn: sa.Connection,
    table: sa.Table,
    columns: tuple[str, ...],
    rows: list[list[Any]],
    serial: int,
) -> int:
    """COPY Python rows (values go through the columns' bind processors, as in the
    direct path): the rows of column types PostgreSQL cannot read from text as stored,
    entries of the first format, and rows written one by one."""
    dialect = conn.dialect
    processors = [
        (i, p)
        for i, name in enumerate(columns)
        if (p := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
    ]
    if processors:  # on copies: a failed batch is retried row by row from ``rows``
        processed = []
        for row in rows:
            row = list(row)
            for i, process in processors:
                row[i] = process(row[i])
            processed.append(row)
        rows = processed

    def write(copy: Any) -> None:
        for row in rows:
            copy.write_row(row)

    return _copy_into(conn, table, columns, write, serial)


def _run_on_driver_cursor(conn: sa.Connection, statement: str, load: Callable[[Any], None]) -> None:
    """Run ``load(cursor)`` on the DBAPI connection (psycopg's COPY, an executemany).

    Outside SQLAlchemy: the driver's errors are wrapped here the way SQLAlchemy wraps
    them (DataError, OperationalError...), and a dead connection is invalidated so the
    pool does not hand it out again.
    """
    driver: Any = conn.connection.driver_connection
    dbapi: Any = conn.dialect.loaded_dbapi
    try:
        with contextlib.closing(driver.cursor()) as cur:
            load(cur)
    except dbapi.Error as exc:
        if conn.dialect.is_disconnect(exc, driver, None):
            conn.invalidate(exc)
        raise sa.exc.DBAPIError.instance(statement, None, exc, dbapi.Error) from exc


def client_encoding_is_utf8(conn: sa.Connection) -> bool:
    """Whether the connection's client encoding is UTF-8, the stored lines' encoding.

    Else (a database in LATIN1, say, whose clients default to it) the lines are decoded
    and psycopg encodes the values, as it does on the direct path.
    """
    driver: Any = conn.connection.driver_connection
    return bool(driver.info.encoding == "utf-8")
