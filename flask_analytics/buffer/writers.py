"""Writing one batch of stream entries to the database, and setting refused rows aside.

A batch is one transaction. When the database refuses the *data* of some row (a value
too long for a custom column, a NOT NULL violated by an enrich hook), the batch is
written again one row per transaction, and the rows still refused become
:class:`~.client.DeadRow` s for the dead-letter stream. Connection errors propagate: the
entries stay pending for a retry. How rows get into the table is :mod:`.inserts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from .client import DeadRow, Entry
from .context import BufferContext, get_buffer
from .inserts import can_copy, client_encoding_is_utf8, copy_text_lines, insert_rows
from .results import BatchResult, FlushResult
from .rows import is_json_header


@dataclass
class EntryGroup:
    """The entries of one batch sharing a column list (usually the whole batch)."""

    columns: tuple[str, ...]
    encoded_columns: bytes
    #: (entry id, its rows as stored: lines separated by newlines).
    entries: list[tuple[str, bytes]] = field(default_factory=list)
    rows: int = 0
    #: The rows are COPY text that PostgreSQL reads as it is (else: decoded in Python).
    copy_text: bool = False


def write_entries(state: BufferContext, entries: Sequence[Entry]) -> BatchResult:
    """Write the rows of ``entries`` in one transaction (row by row on a data error)."""
    return write_batch(state, state.engine(), entries)


def write_batch(state: BufferContext, engine: sa.Engine, entries: Sequence[Entry]) -> BatchResult:
    """:func:`write_entries` with the engine given (parallel writers have no app context)."""
    buffer = get_buffer(state)
    summary = FlushResult(entries=len(entries), batches=1)
    dead: list[DeadRow] = []
    groups: dict[bytes, EntryGroup] = {}
    for entry in entries:
        columns = entry.fields.get(b"c", b"")
        raw = entry.fields.get(b"r", b"")
        group = groups.get(columns)
        if group is None:
            try:
                names = buffer.codec.names(columns)
            except (ValueError, TypeError) as exc:
                dead.append(DeadRow.unreadable(entry.id, columns, raw, exc))
                continue
            copy_text = not is_json_header(columns) and buffer.codec.native(names)
            group = groups[columns] = EntryGroup(names, columns, copy_text=copy_text)
        group.entries.append((entry.id, raw))
        group.rows += raw.count(b"\n") + 1
    summary.rows = sum(g.rows for g in groups.values())
    refused = 0
    try:
        with engine.begin() as conn:
            inserted = 0
            for serial, group in enumerate(groups.values()):
                inserted += write_group(conn, state, group, serial, dead)
    except sa.exc.StatementError as exc:
        if not _data_refused(exc):
            raise
        # Some row is refused: find it (them) one row per transaction.
        dead[:] = [d for d in dead if d.whole_entry]
        inserted = 0
        for group in groups.values():
            n, rows_refused = _write_one_by_one(state, engine, group, dead)
            inserted += n
            refused += rows_refused
    summary.inserted = inserted
    # An unreadable entry counts as one dead row (its row count is unknown).
    summary.dead = len(dead)
    unreadable = {d.entry_id for d in dead if d.whole_entry}
    counted = sum(
        raw.count(b"\n") + 1 for g in groups.values() for i, raw in g.entries if i in unreadable
    )
    summary.duplicates = summary.rows - inserted - refused - counted
    return BatchResult(summary, dead)


def write_group(
    conn: sa.Connection,
    state: BufferContext,
    group: EntryGroup,
    serial: int,
    dead: list[DeadRow],
) -> int:
    """Insert the rows of ``group`` on ``conn``; returns rows stored.

    Entries that cannot be decoded join ``dead``; ``serial`` numbers the groups of one
    transaction (PostgreSQL temporary tables).
    """
    table: sa.Table = state.models.Event.__table__
    if group.copy_text and can_copy(conn, table, group.columns) and client_encoding_is_utf8(conn):
        # PostgreSQL reads the stored lines as they are: no per-row Python.
        data = b"\n".join(raw for _, raw in group.entries) + b"\n"
        return copy_text_lines(conn, table, group.columns, data, serial)
    rows = []
    for entry_id, raw in group.entries:
        try:
            rows.extend(get_buffer(state).codec.decode(group.encoded_columns, raw)[1])
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            dead.append(DeadRow.unreadable(entry_id, group.encoded_columns, raw, exc))
    return insert_rows(conn, table, group.columns, rows, serial)


def _data_refused(exc: sa.exc.StatementError) -> bool:
    """Whether the database (or a bind processor) refused the *data*, not the connection."""
    if isinstance(exc, sa.exc.DataError | sa.exc.IntegrityError):
        return True
    return not isinstance(exc, sa.exc.DBAPIError)  # e.g. a bind processor's TypeError


def _write_one_by_one(
    state: BufferContext, engine: sa.Engine, group: EntryGroup, dead: list[DeadRow]
) -> tuple[int, int]:
    """Each row of ``group`` in a transaction of its own; refused rows join ``dead``."""
    inserted = refused = 0
    codec = get_buffer(state).codec
    table: sa.Table = state.models.Event.__table__
    unreadable = {d.entry_id for d in dead if d.whole_entry}
    for entry_id, raw in group.entries:
        if entry_id in unreadable:
            continue  # already set aside
        try:
            _, rows = codec.decode(group.encoded_columns, raw)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            dead.append(DeadRow.unreadable(entry_id, group.encoded_columns, raw, exc))
            continue
        for row, line in zip(rows, raw.split(b"\n"), strict=True):
            try:
                with engine.begin() as conn:
                    inserted += insert_rows(conn, table, group.columns, [row], 0)
            except sa.exc.StatementError as exc:
                if not _data_refused(exc):
                    raise
                refused += 1
                dead.append(DeadRow(entry_id, group.encoded_columns, line, str(exc.orig or exc)))
    return inserted, refused
