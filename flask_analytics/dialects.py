"""Every SQL dialect difference of the package, in one place."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa


def insert_ignore(table: sa.Table, dialect: str, conflict_columns: Sequence[str]) -> Any:
    """``INSERT`` that silently skips rows violating the unique ``conflict_columns``."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing(
            index_elements=list(conflict_columns)
        )
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(conflict_columns))
    if dialect in ("mysql", "mariadb"):
        return sa.insert(table).prefix_with("IGNORE")
    raise NotImplementedError(f"flask-analytics does not support the {dialect!r} database yet.")
