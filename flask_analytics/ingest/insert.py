"""The hot write of the direct ingest path: one multi-row ``INSERT`` on the DBAPI connection.

Every collect request ends in one ``INSERT ... ON CONFLICT DO NOTHING RETURNING event_id,
id``. Through SQLAlchemy Core that statement costs about 0.5 ms of Python per request
(cache key, compilation lookup, execution context, result set-up), several times the
whole ingest pipeline. :class:`EventInserter` keeps what Core gives (each column type's
dialect bind processor, so JSON, dates and custom column types are stored exactly as
Core would store them; errors raised as SQLAlchemy's exception classes; broken
connections invalidated in the pool) and skips the rest: the SQL text is built once per
column set and row count, which also lets psycopg prepare it server-side after a few
uses, and runs on the pooled DBAPI connection in autocommit.

SQLAlchemy's cursor events (``before_cursor_execute``...) do not fire for this statement.
Tables with Python-side column defaults other than constants, and databases other than
PostgreSQL (psycopg) and SQLite (sqlite3), go through Core instead
(:meth:`EventInserter.supports`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.schema import ScalarElementColumnDefault

#: DBAPI drivers this module can run, and their placeholder style: psycopg's raw cursor
#: takes PostgreSQL's own ``$n`` (its ``%s`` queries are re-parsed on every execution once
#: longer than 4 kB, which a batch's statement is), sqlite3 takes ``?``.
_PLACEHOLDERS = {("postgresql", "psycopg"): "$", ("sqlite", "pysqlite"): "?"}


def scalar_default(column: sa.Column[Any]) -> Any:
    """A column's constant Python-side default, or None."""
    default = column.default
    if isinstance(default, ScalarElementColumnDefault):
        return default.arg
    return None


class EventInserter:
    """Inserts rows into one table of one engine, ignoring duplicate keys, returning
    ``(event_id, id)`` of the rows it inserted."""

    def __init__(self, table: sa.Table, engine: sa.Engine) -> None:
        self.table = table
        self.engine = engine
        dialect = engine.dialect
        self.placeholder = _PLACEHOLDERS.get((dialect.name, dialect.driver))
        #: Python-side defaults that are not constants (callables, sequences, SQL) need
        #: Core's execution context to be evaluated.
        self.core_defaults = any(
            c.default is not None and not isinstance(c.default, ScalarElementColumnDefault)
            for c in table.c
            if not c.primary_key
        )
        self.processors: dict[str, Callable[[Any], Any] | None] = {
            c.key: c.type.dialect_impl(dialect).bind_processor(dialect) for c in table.c
        }
        #: Columns with a constant default: always written, as Core would.
        self.defaults = {
            c.key: scalar_default(c)
            for c in table.c
            if isinstance(c.default, ScalarElementColumnDefault) and not c.primary_key
        }
        self._writable = frozenset(c.key for c in table.c if c.key != "id")
        self._sql: dict[tuple[tuple[str, ...], int], str] = {}
        self._steps: dict[tuple[str, ...], list[tuple[str, Callable[[Any], Any] | None, Any]]] = {}
        preparer = dialect.identifier_preparer
        self._quoted_table = preparer.format_table(table)
        self._quote = preparer.quote
        self._returning = f"{self._quote('event_id')}, {self._quote('id')}"

    def supports(self, rows: Sequence[Mapping[str, Any]]) -> bool:
        """Whether :meth:`insert` can write ``rows`` (else use Core)."""
        return (
            self.placeholder is not None
            and not self.core_defaults
            and 0 < len(rows) <= self.engine.dialect.insertmanyvalues_page_size
        )

    def columns(self, rows: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
        """The columns one multi-row ``VALUES`` must name: every key any row has (a row
        without it gets the column's constant default), plus constant defaults."""
        keys = set(self.defaults)
        for row in rows:
            keys.update(row.keys() & self._writable)
        return tuple(sorted(keys))

    def sql(self, columns: tuple[str, ...], count: int) -> str:
        key = (columns, count)
        sql = self._sql.get(key)
        if sql is None:
            width = len(columns)
            if self.placeholder == "$":
                values = ", ".join(
                    "(" + ", ".join(f"${i * width + j}" for j in range(1, width + 1)) + ")"
                    for i in range(count)
                )
            else:
                values = ", ".join(["(" + ", ".join(["?"] * width) + ")"] * count)
            names = ", ".join(self._quote(name) for name in columns)
            sql = (
                f"INSERT INTO {self._quoted_table} ({names}) VALUES {values}"
                f" ON CONFLICT DO NOTHING RETURNING {self._returning}"
            )
            if len(self._sql) > 256:  # row counts and column sets vary little; stay bounded
                self._sql.clear()
            self._sql[key] = sql
        return sql

    def params(self, columns: tuple[str, ...], rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        steps = self._steps.get(columns)
        if steps is None:
            if len(self._steps) > 256:  # column sets vary little; stay bounded
                self._steps.clear()
            steps = self._steps[columns] = [
                (name, self.processors[name], self.defaults.get(name)) for name in columns
            ]
        params: list[Any] = []
        append = params.append
        for row in rows:
            for name, process, default in steps:
                value = row.get(name, default)
                append(process(value) if process is not None and value is not None else value)
        return params

    def insert(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
        """Write ``rows`` in one statement; returns event_id -> id of the rows inserted."""
        columns = self.columns(rows)
        sql = self.sql(columns, len(rows))
        params = self.params(columns, rows)
        dialect = self.engine.dialect
        dbapi_error = dialect.loaded_dbapi.Error
        try:
            pooled = self.engine.raw_connection()
        except dbapi_error as exc:  # could not connect: what Core raises, e.g. OperationalError
            raise sa.exc.DBAPIError.instance(None, None, exc, dbapi_error) from exc
        try:
            conn = pooled.driver_connection
            autocommit = self.placeholder == "$"
            cursor = _raw_cursor(conn) if autocommit else pooled.cursor()
            try:
                if autocommit:
                    conn.autocommit = True  # type: ignore[union-attr]
                try:
                    cursor.execute(sql, params)
                    found = cursor.fetchall()
                    if not autocommit:
                        pooled.commit()
                finally:
                    if autocommit:
                        conn.autocommit = False  # type: ignore[union-attr]
            finally:
                cursor.close()
        except dbapi_error as exc:
            if dialect.is_disconnect(exc, pooled.dbapi_connection, None):
                pooled.invalidate(exc)
            else:
                try:
                    pooled.rollback()
                except dbapi_error:
                    pooled.invalidate(exc)
            raise sa.exc.DBAPIError.instance(sql, params, exc, dbapi_error) from exc
        finally:
            pooled.close()
        return dict(found)


def _raw_cursor(conn: Any) -> Any:
    import psycopg

    return psycopg.RawCursor(conn)
