"""Where the pipeline's surviving events go: a sink it is handed, never one it picks.

:class:`DirectSink` inserts them into ``analytics_event`` at once (one multi-row
``INSERT`` that ignores duplicate event ids). The Redis buffer's sink
(``flask_analytics.buffer.sink``) appends them to a stream that a flusher writes in
bulk, and falls back to a direct sink when Redis cannot take them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa

from ..core.dialects import insert_ignore
from .insert import EventInserter, scalar_default
from .ratelimit import RateCharge, RateLimited


@dataclass
class Written:
    """What a sink did with the rows of one request."""

    #: Rows stored (or accepted for storage), in their original order.
    stored: list[dict[str, Any]] = field(default_factory=list)
    #: Rows dropped as duplicates of an event id already stored.
    duplicates: int = 0


class Sink(Protocol):
    """Stores the rows of one request; each row holds an ``event_id``.

    A ``charge`` is the request's rate-limit count, made by the sink before it stores
    anything (:class:`RateLimited` when refused), also when ``rows`` is empty.
    """

    def write(self, rows: list[dict[str, Any]], charge: RateCharge | None = None) -> Written: ...


class DirectSink:
    """Inserts rows into the event table at once, skipping event ids already stored.

    Each stored row gets its ``id``. ``engine`` and ``autocommit_engine`` are callables,
    since the host's engine is only known inside an app context.
    """

    def __init__(
        self,
        table: sa.Table,
        engine: Callable[[], sa.Engine],
        autocommit_engine: Callable[[], sa.Engine],
        inserter: Callable[[sa.Engine], EventInserter],
    ) -> None:
        self.table = table
        self.engine = engine
        self.autocommit_engine = autocommit_engine
        self.inserter = inserter

    def write(self, rows: list[dict[str, Any]], charge: RateCharge | None = None) -> Written:
        if charge is not None and not charge.limiter.hit(charge.key, charge.cost):
            raise RateLimited(charge)
        if not rows:
            return Written()
        inserted = self.insert(rows)
        written = Written()
        for row in rows:
            if row["event_id"] in inserted:
                row["id"] = inserted[row["event_id"]]
                written.stored.append(row)
            else:
                written.duplicates += 1
        return written

    def insert(self, rows: list[dict[str, Any]]) -> dict[str, int]:
        """Insert ``rows``, skipping event ids already stored; event_id -> id inserted."""
        table = self.table
        engine = self.engine()
        inserter = self.inserter(engine)
        if inserter.supports(rows):
            return inserter.insert(rows)
        # A multi-row VALUES needs the same keys in every row: a key some rows lack gets
        # the column's scalar default (enrich hooks may fill custom columns for some rows).
        keys = {key for row in rows for key in row if key in table.c and key != "id"}
        fallback = {key: scalar_default(table.c[key]) for key in keys}
        values = [{key: row.get(key, fallback[key]) for key in keys} for row in rows]
        stmt = insert_ignore(table, engine.dialect.name, ["event_id"]).returning(
            table.c.event_id, table.c.id
        )
        if len(values) <= engine.dialect.insertmanyvalues_page_size:
            # SQLAlchemy's "insertmanyvalues" turns this executemany into ONE multi-row
            # INSERT, atomic on its own: autocommit saves the BEGIN and COMMIT round trips.
            with self.autocommit_engine().connect() as conn:
                found = conn.execute(stmt, values).all()
        else:
            with engine.begin() as conn:
                found = conn.execute(stmt, values).all()
        return dict(found)
