"""Every SQL dialect difference of the package, in one place."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignore(table: sa.Table, dialect: str, conflict_columns: Sequence[str]) -> Any:
    """``INSERT`` that silently skips rows violating the unique ``conflict_columns``."""
    if dialect == "postgresql":
        # No conflict target: the same on plain tables, and the only form PostgreSQL
        # accepts on a partitioned analytics_event (docs/scaling.md).
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(conflict_columns))
    if dialect in ("mysql", "mariadb"):
        return sa.insert(table).prefix_with("IGNORE")
    raise NotImplementedError(f"flask-analytics does not support the {dialect!r} database yet.")


#: SQLite's julianday() of 1970-01-01 00:00:00.
_UNIX_EPOCH_JULIAN_DAY = 2440587.5


def epoch_seconds(column: Any, dialect: str) -> Any:
    """Whole seconds since 1970-01-01 of a naive UTC ``DateTime`` column (fraction dropped).

    Truncating (rather than rounding) keeps both databases and Python in exact agreement:
    SQLite is given the ``YYYY-MM-DD HH:MM:SS`` prefix of SQLAlchemy's stored text only
    (its date functions round to the millisecond first). There ``julianday`` (whole
    milliseconds inside, so exact to far below half a second) rounded to an integer is
    about three times cheaper per row than ``strftime('%s', ...)``: it runs on every event
    of a day, twice in the session walk.
    """
    if dialect == "postgresql":
        # date_part is float8 (exact for whole seconds), far cheaper than numeric EXTRACT.
        seconds = sa.func.date_part("epoch", sa.func.date_trunc("second", column))
        return sa.cast(seconds, sa.BigInteger())
    if dialect == "sqlite":
        days = sa.func.julianday(sa.func.substr(column, 1, 19)) - _UNIX_EPOCH_JULIAN_DAY
        return sa.cast(days * 86400 + 0.5, sa.BigInteger())
    raise NotImplementedError(f"flask-analytics does not support the {dialect!r} database yet.")


def days_between(start: dt.date, column: Any, dialect: str) -> Any:
    """Whole days from ``start`` to a ``Date`` column's value (an SQL integer)."""
    if dialect == "postgresql":
        return sa.type_coerce(column - sa.literal(start, sa.Date()), sa.Integer())
    if dialect == "sqlite":
        days = sa.func.julianday(column) - sa.func.julianday(start.isoformat())
        return sa.cast(days, sa.Integer())
    raise NotImplementedError(f"flask-analytics does not support the {dialect!r} database yet.")


def lock_for_transaction(conn: sa.Connection, namespace: int, key: int) -> None:
    """Serialize transactions that pass the same ``(namespace, key)`` (held until commit).

    PostgreSQL: a transaction-scoped advisory lock, waited for without a time limit.
    SQLite has a single writer: a transaction whose *first* statement is a write takes the
    database's write lock right there, waiting through the busy handler like ``BEGIN
    IMMEDIATE`` would, whatever transaction mode the host gave the sqlite3 driver. So this
    is a no-op on SQLite and callers must write before they read (see
    :func:`sqlite_busy_timeout` for the wait).
    """
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(namespace, key)))
    elif dialect != "sqlite":
        raise NotImplementedError(f"flask-analytics does not support the {dialect!r} database yet.")


@contextmanager
def held_lock(conn: sa.Connection, namespace: int, key: int) -> Iterator[None]:
    """Hold the lock of ``(namespace, key)`` on ``conn`` across several transactions.

    PostgreSQL: a session-level advisory lock (the same lock space as
    :func:`lock_for_transaction`'s), taken and committed before the caller's
    transactions begin, so that their snapshots are taken once the lock is held;
    released at the end (a broken connection is discarded, which releases it too).
    SQLite: nothing (see :func:`lock_for_transaction`).
    """
    dialect = conn.dialect.name
    if dialect != "postgresql":
        if dialect != "sqlite":
            raise NotImplementedError(
                f"flask-analytics does not support the {dialect!r} database yet."
            )
        yield
        return
    conn.execute(sa.select(sa.func.pg_advisory_lock(namespace, key)))
    conn.commit()
    try:
        yield
    finally:
        try:
            if conn.in_transaction():
                conn.rollback()
            conn.execute(sa.select(sa.func.pg_advisory_unlock(namespace, key)))
            conn.commit()
        except sa.exc.DBAPIError:
            conn.invalidate()  # the server session ends, and its locks with it


def snapshot_isolation(conn: sa.Connection) -> None:
    """Make ``conn``'s next transactions read one snapshot taken at their first statement.

    PostgreSQL: REPEATABLE READ (until the connection goes back to the pool). SQLite
    (WAL) gives every transaction one snapshot already.
    """
    if conn.dialect.name == "postgresql":
        conn.execution_options(isolation_level="REPEATABLE READ")


#: Whether a transaction's temporary tables go with its rollback (PostgreSQL's DDL is
#: transactional; SQLite's temporary tables outlive the transaction that made them).
TEMP_TABLES_END_WITH_TRANSACTION = {"postgresql": True, "sqlite": False}


def begin_swap(conn: sa.Connection, compute: sa.RootTransaction) -> sa.RootTransaction:
    """The transaction that writes what ``compute`` read and computed.

    SQLite: ``compute`` is committed (a read transaction: it only wrote temporary
    tables, which stay) and a new transaction begins, whose first write takes the
    database's write lock. PostgreSQL: ``compute`` itself (one snapshot, one commit).
    """
    if conn.dialect.name != "sqlite":
        return compute
    compute.commit()
    return conn.begin()


def sqlite_busy_timeout(conn: sa.Connection, milliseconds: int | None) -> int | None:
    """Set SQLite's busy timeout on this connection; returns the previous one (None elsewhere).

    The sqlite3 driver waits 5 s for a lock by default, shorter than a big day's
    aggregation, so a second run of the same day would fail with "database is locked".
    Works on the driver connection, outside SQLAlchemy's transaction bookkeeping.
    """
    if conn.dialect.name != "sqlite" or milliseconds is None:
        return None
    raw: Any = conn.connection.driver_connection
    previous = int(raw.execute("PRAGMA busy_timeout").fetchone()[0])
    raw.execute(f"PRAGMA busy_timeout = {int(milliseconds)}")
    return previous


def sortable_number(value: Any, width: int, dialect: str) -> Any:
    """``value`` (an integer >= 0) as zero-padded text that sorts like the number.

    Compared with binary collation, so ``MAX(sortable_number(n) || text)`` picks the text
    of the row with the largest ``n`` (a portable arg-max) whatever the database's locale.
    """
    if dialect == "postgresql":
        padded = sa.func.lpad(sa.cast(value, sa.Text()), width, "0", type_=sa.Text())
        return sa.collate(padded, "C")
    if dialect == "sqlite":
        return sa.func.printf(f"%0{width}d", value, type_=sa.Text())
    raise NotImplementedError(f"flask-analytics does not support the {dialect!r} database yet.")


def tune_bulk_transaction(conn: sa.Connection, work_mem_mb: int) -> None:
    """Settings for one big aggregating transaction (PostgreSQL only; transaction-local).

    - ``work_mem`` of at least ``work_mem_mb``: a big day's sorts and hashes spill to
      disk at the 4 MB default, and the planner then avoids hash aggregation. A larger
      server setting is kept.
    - ``jit`` off: at a million events the statements pass the JIT cost thresholds, and
      compiling their many expressions took longer (seconds) than running them.
    """
    if conn.dialect.name != "postgresql":
        return
    wanted = work_mem_mb * 1024 * 1024
    current = conn.scalar(sa.text("SELECT pg_size_bytes(current_setting('work_mem'))"))
    if current is None or int(current) < wanted:
        conn.execute(sa.select(sa.func.set_config("work_mem", f"{work_mem_mb}MB", True)))
    conn.execute(sa.select(sa.func.set_config("jit", "off", True)))


def json_number(props: Any, key: str, dialect: str) -> Any:
    """Property ``key`` of a JSON ``props`` column as a float when it is a JSON number,
    else NULL (absent, a string, a boolean, ...): never a cast error on what a client sent."""
    if dialect == "postgresql":
        element = props.op("->")(sa.literal(key, sa.Text()))
        text = props.op("->>")(sa.literal(key, sa.Text()))
        return sa.case((sa.func.json_typeof(element) == "number", sa.cast(text, sa.Float())))
    if dialect == "sqlite":
        path = '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
        number = sa.func.json_type(props, path).in_(("integer", "real"))
        return sa.case((number, sa.cast(sa.func.json_extract(props, path), sa.Float())))
    raise NotImplementedError(f"flask-analytics does not support the {dialect!r} database yet.")
