"""A fresh analytics schema for each test, without rebuilding it on PostgreSQL.

Dropping and creating the tables costs PostgreSQL about half a second a test; emptying
them costs milliseconds. So the tables of the last app built on a PostgreSQL database
are kept after its test, with a fingerprint of the database's catalog. The next app with
the same DDL gets them emptied (sequences restarted) when the catalog is still exactly as
created: no relation, column, constraint, trigger or function added, changed, dropped or
re-created since (a partitioning test, a custom model, a migration). Anything else drops
and creates the schema as before. A test that uses the database without ``make_app``
finds the kept tables dropped first, as the old per-test ``drop_all`` left it.

SQLite databases are a new file per test (``tmp_path``): built as before, and left with
the test's temporary directory instead of dropped table by table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy

#: The public schema's relations, columns, constraints, triggers and functions, with
#: oids: a table dropped and created again, or altered in place, changes it.
CATALOG = """
SELECT c.oid, c.relname, c.relkind, c.relispartition, c.reloptions::text,
       (SELECT string_agg(a.attname || ':' || a.atttypid || ':' || a.atttypmod || ':'
                          || a.attnotnull || ':' || a.atthasdef, ',' ORDER BY a.attnum)
          FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
           AND NOT a.attisdropped),
       (SELECT string_agg(o.oid || ':' || o.conname, ',' ORDER BY o.oid)
          FROM pg_constraint o WHERE o.conrelid = c.oid),
       (SELECT string_agg(t.oid || ':' || t.tgname, ',' ORDER BY t.oid)
          FROM pg_trigger t WHERE t.tgrelid = c.oid)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public'
UNION ALL
SELECT p.oid, p.proname, 'f', false, NULL, NULL, NULL, NULL
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'public'
ORDER BY 1
"""

SEQUENCES = """
SELECT quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind = 'S' ORDER BY 1
"""


def schema_ddl(metadata: sa.MetaData, engine: sa.Engine) -> str:
    """The statements ``create_all`` sends for ``metadata`` on ``engine``'s dialect."""
    statements: list[str] = []

    def record(sql: Any, *_args: Any, **_kwargs: Any) -> None:
        statements.append(str(sql.compile(dialect=engine.dialect)))

    mock = sa.create_mock_engine(engine.url, record)
    metadata.create_all(mock, checkfirst=False)
    return ";\n".join(statements)


def catalog(conn: sa.Connection) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in conn.exec_driver_sql(CATALOG)]


@dataclass
class KeptSchema:
    """The tables that one app's ``create_all`` made, still in the database."""

    url: sa.URL
    metadata: sa.MetaData
    ddl: str
    catalog: list[tuple[Any, ...]]
    sequences: list[str]


class SchemaKeeper:
    """Hands each app an empty schema, reusing PostgreSQL tables when they are unchanged."""

    def __init__(self) -> None:
        self._kept: dict[str, KeptSchema] = {}

    def fresh(self, db: SQLAlchemy) -> None:
        """Give ``db``'s app empty tables (call inside its app context)."""
        engine = db.engine
        if engine.dialect.name != "postgresql":
            db.drop_all()
            db.create_all()
            return
        key = engine.url.render_as_string(hide_password=False)
        ddl = schema_ddl(db.metadata, engine)
        kept = self._kept.pop(key, None)
        if kept is not None and kept.ddl == ddl:
            with engine.begin() as conn:
                if catalog(conn) == kept.catalog:
                    self._empty(conn, db.metadata, kept.sequences)
                    self._kept[key] = kept
                    return
        if kept is not None:
            kept.metadata.drop_all(engine)
        db.drop_all()
        db.create_all()
        with engine.connect() as conn:
            sequences = list(conn.scalars(sa.text(SEQUENCES)))
            self._kept[key] = KeptSchema(engine.url, db.metadata, ddl, catalog(conn), sequences)

    @staticmethod
    def _empty(conn: sa.Connection, metadata: sa.MetaData, sequences: list[str]) -> None:
        # One round trip: DELETE is far cheaper than TRUNCATE on small tables.
        statements = [f'DELETE FROM "{t.name}"' for t in reversed(metadata.sorted_tables)]
        statements += [f"ALTER SEQUENCE {name} RESTART" for name in sequences]
        conn.exec_driver_sql(";\n".join(statements))

    def release(self, db: SQLAlchemy) -> None:
        """After the test (inside the app context). PostgreSQL tables are kept for the
        next app; a SQLite file is the test's own (under ``tmp_path``), so its tables
        only go with a database that is not a file."""
        url = db.engine.url
        if url.get_backend_name() == "postgresql":
            return
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            return
        db.drop_all()

    def drop_kept(self) -> None:
        """Drop every kept schema (before a test that uses the database its own way)."""
        while self._kept:
            _key, kept = self._kept.popitem()
            engine = sa.create_engine(kept.url)
            try:
                kept.metadata.drop_all(engine)
            finally:
                engine.dispose()
