"""What a flush pass and the write of one batch did: :class:`FlushResult`, :class:`BatchResult`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .client import DeadRow


@dataclass
class FlushResult:
    """What one :func:`~.flusher.flush` pass did."""

    #: Stream entries (buffered requests) read and acknowledged.
    entries: int = 0
    #: Rows in those entries.
    rows: int = 0
    #: Rows inserted (the others were duplicates of stored event ids).
    inserted: int = 0
    duplicates: int = 0
    #: Rows the database refused, moved to the dead-letter stream.
    dead: int = 0
    #: Entries taken over from flushers that died or stalled.
    reclaimed: int = 0
    #: Database transactions (bulk writes) committed.
    batches: int = 0
    seconds: float = 0.0

    def add(self, other: FlushResult) -> None:
        """Add ``other``'s counts to these (a pass sums its batches, a loop its passes)."""
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class BatchResult:
    """What writing one batch did, and the rows to dead-letter when it is acknowledged."""

    summary: FlushResult
    dead_rows: list[DeadRow] = field(default_factory=list)
