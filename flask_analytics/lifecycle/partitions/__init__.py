"""Monthly range partitioning of ``analytics_event`` and its archive (PostgreSQL only).

Worth it past roughly 50-100 million raw + archived rows (docs/scaling.md, "When to
partition"): archiving a month becomes a metadata change and purging one a ``DROP TABLE``.

Layout after :func:`migrate`
    ``analytics_event`` and ``analytics_event_archive`` are partitioned by range of
    ``created_at``, one partition per UTC month (``analytics_event_2026_01``,
    ``analytics_event_archive_2026_01``) plus a ``_default`` partition each, which stays
    empty while partitions exist ahead of time (:func:`add_partitions`, monthly from the
    scheduler). Their primary keys become ``(id, created_at)``.

Why a trigger
    A partitioned table's unique indexes must contain the partition key, so
    ``UNIQUE (event_id)`` cannot exist on it, and ``(event_id, created_at)`` would not
    catch a retry (its ``created_at`` is computed again when it arrives). Event ids move to
    a plain table ``analytics_event_id (event_id PRIMARY KEY, created_at)``; a ``BEFORE
    INSERT`` row trigger on ``analytics_event`` inserts each row's id there and skips the
    row (returns NULL) when the id was already stored. Concurrent inserts of one id wait on
    that primary key, so it stays exactly-once, for ``INSERT`` and ``COPY`` alike, across
    months. Writers say ``ON CONFLICT DO NOTHING`` without a conflict target
    (``dialects.insert_ignore``), the only form PostgreSQL accepts here.

The SQL is generated from the live tables (their columns, custom ones included, their
indexes, foreign keys and check constraints), so a subclassed event model keeps its
columns. Every function here needs PostgreSQL 13 or later and says so elsewhere.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ...core.clock import day_bounds
from ...core.runs import DayState, counts, day_state
from ...errors import AnalyticsError
from ..retention import archive_retention, cutoff_day

if TYPE_CHECKING:
    from ...core.context import Context

EVENT = "analytics_event"
ARCHIVE = "analytics_event_archive"
#: The plain table holding every stored event id (see "Why a trigger").
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


# -- months --------------------------------------------------------------------------------


def parse_month(text: str) -> dt.date:
    """``YYYY-MM`` as the first day of that month."""
    match = re.fullmatch(r"\s*(\d{4})-(\d{2})\s*", text)
    if match is None or not 1 <= int(match[2]) <= 12:
        raise ValueError(f"{text!r} is not a month: use YYYY-MM.")
    return dt.date(int(match[1]), int(match[2]), 1)


def add_months(month: dt.date, count: int) -> dt.date:
    """First day of the month ``count`` months after ``month``'s."""
    index = month.year * 12 + month.month - 1 + count
    return dt.date(index // 12, index % 12 + 1, 1)


def month_bounds(month: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """Naive UTC ``[start, end)`` of the UTC month of ``month``."""
    first = month.replace(day=1)
    return dt.datetime.combine(first, dt.time()), dt.datetime.combine(
        add_months(first, 1), dt.time()
    )


def partition_name(parent: str, month: dt.date) -> str:
    return f"{parent}_{month:%Y_%m}"


def _literal(value: dt.datetime) -> str:
    return f"'{value.isoformat(sep=' ')}'"


def _utc_month(state: Context) -> dt.date:
    return state.clock.utcnow().date().replace(day=1)


# -- database checks -----------------------------------------------------------------------


def _postgresql(state: Context) -> sa.Engine:
    engine = state.engine()
    if engine.dialect.name != "postgresql":
        raise PartitioningUnsupported(
            "Partitioning is a PostgreSQL feature: this app's database is "
            f"{engine.dialect.name}. Archive and purge row by row with `flask analytics "
            "archive` and `flask analytics purge`."
        )
    return engine


def _kind(conn: sa.Connection, table: str) -> str:
    """``partitioned``, ``plain`` or ``missing``."""
    relkind = conn.exec_driver_sql(
        "SELECT relkind FROM pg_class WHERE oid = to_regclass(%(t)s)", {"t": table}
    ).scalar()
    if relkind is None:
        return "missing"
    return "partitioned" if relkind == "p" else "plain"


def _exists(conn: sa.Connection, table: str) -> bool:
    return _kind(conn, table) != "missing"


def is_partitioned(state: Context) -> bool:
    """Whether ``analytics_event`` is partitioned (always False on other databases than
    PostgreSQL, where nothing is)."""
    engine = state.engine()
    if engine.dialect.name != "postgresql":
        return False
    with engine.connect() as conn:
        return _kind(conn, EVENT) == "partitioned"


def _require_partitioned(conn: sa.Connection) -> None:
    kinds = {t: _kind(conn, t) for t in (EVENT, ARCHIVE)}
    if set(kinds.values()) != {"partitioned"}:
        raise PartitioningError(
            f"{EVENT} is {kinds[EVENT]} and {ARCHIVE} is {kinds[ARCHIVE]}, not partitioned: "
            "run `flask analytics partitions migrate` first."
        )


# -- status --------------------------------------------------------------------------------


_BOUND = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")


@dataclass(frozen=True)
class Partition:
    """One partition of a partitioned event table."""

    name: str
    #: UTC bounds ``[start, end)``; None for the default partition.
    start: dt.datetime | None
    end: dt.datetime | None
    #: PostgreSQL's estimate (``pg_class.reltuples``; -1 before the first ANALYZE).
    estimated_rows: int

    @property
    def default(self) -> bool:
        return self.start is None


@dataclass
class TableStatus:
    name: str
    kind: str
    partitions: list[Partition] = field(default_factory=list)
    #: Whether the default partition holds rows (it should stay empty).
    default_has_rows: bool = False

    @property
    def months(self) -> list[dt.date]:
        return sorted(p.start.date() for p in self.partitions if p.start is not None)


@dataclass
class PartitionStatus:
    """What :func:`status` found."""

    tables: list[TableStatus]
    dedupe_trigger: bool

    @property
    def partitioned(self) -> bool:
        return all(t.kind == "partitioned" for t in self.tables)


def _partitions(conn: sa.Connection, parent: str) -> list[Partition]:
    rows = conn.exec_driver_sql(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples::bigint "
        "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(%(p)s) ORDER BY c.relname",
        {"p": parent},
    ).all()
    found = []
    for name, bound, tuples in rows:
        match = _BOUND.search(bound or "")
        start = dt.datetime.fromisoformat(match[1]) if match else None
        end = dt.datetime.fromisoformat(match[2]) if match else None
        found.append(Partition(name, start, end, int(tuples)))
    return found


def _has_rows(conn: sa.Connection, table: str) -> bool:
    if not _exists(conn, table):
        return False
    return bool(conn.exec_driver_sql(f"SELECT EXISTS (SELECT 1 FROM {_q(conn, table)})").scalar())


def _q(conn: sa.Connection, name: str) -> str:
    return str(conn.dialect.identifier_preparer.quote(name))


def status(state: Context) -> PartitionStatus:
    """Whether the event tables are partitioned, and their partitions."""
    engine = _postgresql(state)
    with engine.connect() as conn:
        tables = []
        for name in (EVENT, ARCHIVE):
            table = TableStatus(name, _kind(conn, name))
            if table.kind == "partitioned":
                table.partitions = _partitions(conn, name)
                table.default_has_rows = _has_rows(conn, f"{name}_default")
            tables.append(table)
        trigger = conn.exec_driver_sql(
            "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = %(n)s "
            "AND tgrelid = to_regclass(%(t)s))",
            {"n": DEDUPE_TRIGGER, "t": EVENT},
        ).scalar()
    return PartitionStatus(tables, bool(trigger))


# -- migration -----------------------------------------------------------------------------


def _step_aside(conn: sa.Connection, index: str, table: str) -> str:
    """Rename an index of ``table`` as the table steps aside (its constraint follows)."""
    renamed = index.replace(table, f"{table}_old", 1) if table in index else f"{index}_old"
    return f"ALTER INDEX {_q(conn, index)} RENAME TO {_q(conn, renamed[:63])}"


@dataclass(frozen=True)
class _Shape:
    """What the migration reads from one live, unpartitioned table."""

    table: str
    columns: list[str]
    statements_before: list[str]  # renames of the old table, its indexes and constraints
    statements_after: list[str]  # keys, indexes and constraints of the partitioned twin
    sequence: str | None


def _columns(conn: sa.Connection, table: str) -> list[tuple[str, str, str]]:
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


def _shape(conn: sa.Connection, table: str) -> _Shape:
    q = _q(conn, table)
    columns = _columns(conn, table)
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
    before = [f"ALTER TABLE {q} RENAME TO {_q(conn, table + '_old')}"]
    after: list[str] = []
    constraints = conn.exec_driver_sql(
        "SELECT c.conname, c.contype, pg_get_constraintdef(c.oid), "
        "ARRAY(SELECT a.attname::text FROM unnest(c.conkey) k "
        "      JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k), "
        "c.conindid::regclass::text "
        "FROM pg_constraint c WHERE c.conrelid = to_regclass(%(t)s) ORDER BY c.conname",
        {"t": table},
    ).all()
    constraint_indexes = set()
    for name, kind, definition, keys, index in constraints:
        if kind in ("p", "u", "x"):
            constraint_indexes.add(index)
            before.append(_step_aside(conn, index, table))
        if kind == "p":
            if list(keys) != ["id"] and "created_at" not in keys:
                raise PartitioningError(
                    f"{table}'s primary key is ({', '.join(keys)}), not (id): not migrated."
                )
            pk = "id, created_at" if "created_at" not in keys else ", ".join(keys)
            after.append(f"ALTER TABLE {q} ADD CONSTRAINT {_q(conn, name)} PRIMARY KEY ({pk})")
        elif kind == "u" and list(keys) == ["event_id"]:
            # Unique through analytics_event_id and the trigger; a plain index for lookups.
            after.append(f"CREATE INDEX {_q(conn, f'ix_{table}_event_id')} ON {q} (event_id)")
        elif kind == "u" and "created_at" in keys:
            after.append(f"ALTER TABLE {q} ADD CONSTRAINT {_q(conn, name)} {definition}")
        elif kind in ("u", "x"):
            raise PartitioningError(
                f"{table} has the constraint {name} ({definition}), which a table partitioned "
                "by created_at cannot keep (it would have to include created_at): drop it or "
                "add created_at to it first."
            )
        elif kind == "f":
            after.append(f"ALTER TABLE {q} ADD CONSTRAINT {_q(conn, name)} {definition}")
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
            after.append(f"CREATE INDEX {_q(conn, f'ix_{table}_event_id')} ON {q} (event_id)")
        elif unique and "created_at" not in keys:
            raise PartitioningError(
                f"{table} has the unique index {name}, which a table partitioned by "
                "created_at cannot keep: drop it or add created_at to it first."
            )
        else:
            # The definition names the table, which is the partitioned twin by then.
            after.append(definition)
        before.append(_step_aside(conn, name, table))
    sequence = conn.exec_driver_sql(
        "SELECT pg_get_serial_sequence(%(t)s, 'id')", {"t": table}
    ).scalar()
    return _Shape(table, [c[0] for c in columns], before, after, sequence)


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


def _check_months_ahead(months_ahead: int) -> None:
    if isinstance(months_ahead, bool) or not isinstance(months_ahead, int) or months_ahead < 0:
        raise ValueError(f"months_ahead must be an integer >= 0, not {months_ahead!r}")


def _create_partition_sql(conn: sa.Connection, parent: str, month: dt.date) -> str:
    start, end = month_bounds(month)
    return (
        f"CREATE TABLE {_q(conn, partition_name(parent, month))} PARTITION OF {_q(conn, parent)} "
        f"FOR VALUES FROM ({_literal(start)}) TO ({_literal(end)})"
    )


def migration_sql(
    state: Context, *, months_ahead: int = DEFAULT_MONTHS_AHEAD, keep_old: bool = False
) -> tuple[list[str], dt.date, dt.date]:
    """The migration's statements for the live tables, with the first and last month."""
    _check_months_ahead(months_ahead)
    engine = _postgresql(state)
    with engine.connect() as conn:
        version = int(conn.exec_driver_sql("SHOW server_version_num").scalar() or 0)
        if version < MIN_SERVER_VERSION:
            raise PartitioningError(
                f"Partitioning needs PostgreSQL 13 or later (this server is {version})."
            )
        kinds = {t: _kind(conn, t) for t in (EVENT, ARCHIVE)}
        if "missing" in kinds.values():
            raise PartitioningError(
                f"{EVENT} or {ARCHIVE} does not exist: create the tables first "
                "(db.create_all() or your migrations)."
            )
        if "partitioned" in kinds.values():
            raise PartitioningError(f"{EVENT} is {kinds[EVENT]}, {ARCHIVE} is {kinds[ARCHIVE]}.")
        for leftover in (EVENT_IDS, f"{EVENT}_old", f"{ARCHIVE}_old"):
            if _exists(conn, leftover):
                raise PartitioningError(
                    f"The table {leftover} exists already (left by an earlier migration?): "
                    "drop or rename it first."
                )
        event, archive = _shape(conn, EVENT), _shape(conn, ARCHIVE)
        id_type = {n: t for n, t, _ in _columns(conn, EVENT)}["event_id"]
        first, last = _month_span(conn, months_ahead, _utc_month(state))
        q = _q
        statements = [
            f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'",
            # 1. Event ids get a table of their own (see "Why a trigger").
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
            old = q(conn, shape.table + "_old")
            new = q(conn, shape.table)
            statements.append(
                f"CREATE TABLE {new} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
                "INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMMENTS) "
                "PARTITION BY RANGE (created_at)"
            )
            if shape.sequence is not None:
                statements.append(f"ALTER SEQUENCE {shape.sequence} OWNED BY {new}.id")
            statements.extend(shape.statements_after)
            statements.append(
                f"CREATE TABLE {q(conn, shape.table + '_default')} PARTITION OF {new} DEFAULT"
            )
        # 4. Monthly partitions (UTC months).
        month = first
        while month <= last:
            statements.append(_create_partition_sql(conn, EVENT, month))
            statements.append(_create_partition_sql(conn, ARCHIVE, month))
            month = add_months(month, 1)
        # 5. Copy (ids and times kept), record the ids, then switch the trigger on.
        for shape in (event, archive):
            cols = ", ".join(q(conn, c) for c in shape.columns)
            statements.append(
                f"INSERT INTO {q(conn, shape.table)} ({cols}) "
                f"SELECT {cols} FROM {q(conn, shape.table + '_old')}"
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


@contextmanager
def _database_errors(what: str) -> Iterator[None]:
    try:
        yield
    except sa.exc.DBAPIError as exc:
        if exc.connection_invalidated:
            raise
        raise PartitioningError(
            f"{what} failed and was rolled back, nothing changed: {exc.orig}".strip()
        ) from exc


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
    engine = _postgresql(state)
    with engine.connect() as conn:
        kinds = {_kind(conn, t) for t in (EVENT, ARCHIVE)}
    if kinds == {"partitioned"}:
        this_month = _utc_month(state)
        return MigrationResult(dry_run, [], this_month, this_month, 0, 0, migrated=False)
    statements, first, last = migration_sql(state, months_ahead=months_ahead, keep_old=keep_old)
    before = counts(state)
    result = MigrationResult(dry_run, statements, first, last, before["raw"], before["archived"])
    if dry_run:
        return result
    with _database_errors("The migration"), engine.begin() as conn:
        for statement in statements:
            # The driver reads % as a placeholder mark; reflected definitions may hold one.
            conn.exec_driver_sql(statement.replace("%", "%%"))
    if vacuum:
        # Sets the visibility maps (index-only day scans) and the planner's statistics.
        with state.autocommit_engine().connect() as conn:
            conn.exec_driver_sql(f"VACUUM (ANALYZE) {EVENT}, {ARCHIVE}, {EVENT_IDS}")
    return result


# -- adding partitions ---------------------------------------------------------------------


def _ensure_partition(conn: sa.Connection, parent: str, month: dt.date) -> bool:
    """Create ``parent``'s partition of ``month`` unless it exists; True if created.

    Rows of that month waiting in the default partition (an import of old data) are
    moved into it: PostgreSQL refuses to create a partition whose rows sit in the default.
    """
    name = partition_name(parent, month)
    if _exists(conn, name):
        return False
    start, end = month_bounds(month)
    default = f"{parent}_default"
    params = {"s": start, "e": end}
    waiting = (
        _exists(conn, default)
        and conn.exec_driver_sql(
            f"SELECT EXISTS (SELECT 1 FROM {_q(conn, default)} "
            "WHERE created_at >= %(s)s AND created_at < %(e)s)",
            params,
        ).scalar()
    )
    if not waiting:
        conn.exec_driver_sql(_create_partition_sql(conn, parent, month))
        return True
    qn, qp, qd = _q(conn, name), _q(conn, parent), _q(conn, default)
    # A standalone table has no trigger: these rows' ids are stored already.
    conn.exec_driver_sql(f"CREATE TABLE {qn} (LIKE {qp} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    conn.exec_driver_sql(
        f"WITH moved AS (DELETE FROM {qd} WHERE created_at >= %(s)s AND created_at < %(e)s "
        f"RETURNING *) INSERT INTO {qn} SELECT * FROM moved",
        params,
    )
    conn.exec_driver_sql(
        f"ALTER TABLE {qp} ATTACH PARTITION {qn} "
        f"FOR VALUES FROM ({_literal(start)}) TO ({_literal(end)})"
    )
    return True


@dataclass
class AddResult:
    """What :func:`add_partitions` created (nothing when every month existed)."""

    first_month: dt.date
    last_month: dt.date
    created: list[str] = field(default_factory=list)


def add_partitions(
    state: Context,
    *,
    months_ahead: int = DEFAULT_MONTHS_AHEAD,
    first_month: dt.date | None = None,
) -> AddResult:
    """Create the monthly partitions of both tables from this UTC month (or
    ``first_month``) to ``months_ahead`` months ahead; existing ones are left alone."""
    _check_months_ahead(months_ahead)
    engine = _postgresql(state)
    this_month = _utc_month(state)
    first = (first_month or this_month).replace(day=1)
    last = add_months(this_month, months_ahead)
    result = AddResult(first, last)
    with _database_errors("Adding partitions"), engine.begin() as conn:
        _require_partitioned(conn)
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        month = first
        while month <= last:
            for parent in (EVENT, ARCHIVE):
                if _ensure_partition(conn, parent, month):
                    result.created.append(partition_name(parent, month))
            month = add_months(month, 1)
    return result


# -- archive and purge by month ------------------------------------------------------------


def touching_days(state: Context, month: dt.date) -> list[dt.date]:
    """Local days (``ANALYTICS_TIMEZONE``) with hours inside the UTC month of ``month``."""
    start, end = month_bounds(month)
    first = state.local_date(start)
    last = state.local_date(end - dt.timedelta(microseconds=1))
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def _past_retention(
    state: Context, days: Sequence[dt.date], older_than_days: int, what: str, setting: str
) -> None:
    cutoff = cutoff_day(state, older_than_days)
    if days[-1] >= cutoff:
        raise PartitioningError(
            f"{what}: its local day {days[-1].isoformat()} ({state.settings.timezone.key}) is "
            f"not older than {older_than_days} days ({setting}); the first day kept is "
            f"{cutoff.isoformat()}."
        )


def _count(conn: sa.Connection, table: str) -> int:
    if not _exists(conn, table):
        return 0
    return int(conn.exec_driver_sql(f"SELECT count(*) FROM {_q(conn, table)}").scalar() or 0)


@dataclass
class MonthArchiveResult:
    """What :func:`archive_month` did."""

    month: dt.date
    #: Raw events of the month when it was checked.
    events: int
    #: True when the partition itself changed tables (no row copied); False when the rows
    #: were copied into an archive partition that already held part of the month.
    moved_partition: bool
    days: list[DayState] = field(default_factory=list)


def archive_month(
    state: Context, month: dt.date, *, older_than_days: int | None = None
) -> MonthArchiveResult:
    """Move the raw events of a whole UTC month to the archive, as a partition.

    Refused (:class:`PartitioningError`) unless every local day touching that month is
    older than the retention (``older_than_days``, default ``ANALYTICS_RETENTION_DAYS``)
    and, if it has raw events, aggregated since its latest events (as
    ``flask analytics archive`` decides). The event partition is detached, renamed and
    attached to the archive in one transaction; an empty one takes its place, so late
    events of the month still have a partition (``flask analytics archive`` moves them).
    If part of the month was archived row by row before, the remaining rows are copied.
    """
    engine = _postgresql(state)
    month = month.replace(day=1)
    if older_than_days is None:
        older_than_days = state.settings.retention_days
    days = touching_days(state, month)
    what = f"{month:%Y-%m} cannot be archived as a whole month"
    _past_retention(state, days, older_than_days, what, "ANALYTICS_RETENTION_DAYS")
    with engine.connect() as conn:
        _require_partitioned(conn)
    states = [day_state(state, d) for d in days]
    pending = [d for d in states if d.raw_events and not d.fresh]
    if pending:
        listed = ", ".join(f"{d.day.isoformat()} ({d.status})" for d in pending)
        raise PartitioningError(
            f"{what}: local days not aggregated since their latest events: {listed}. "
            "Aggregate them (flask analytics backfill), then archive the month again."
        )
    event_part, archive_part = partition_name(EVENT, month), partition_name(ARCHIVE, month)
    start, end = month_bounds(month)
    bounds = f"FOR VALUES FROM ({_literal(start)}) TO ({_literal(end)})"
    with _database_errors(f"Archiving {month:%Y-%m}"), engine.begin() as conn:
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        _ensure_partition(conn, EVENT, month)
        _ensure_partition(conn, ARCHIVE, month)
        events = _count(conn, event_part)
        result = MonthArchiveResult(month, events, moved_partition=False, days=states)
        if events == 0:
            return result
        ev, ar = _q(conn, event_part), _q(conn, archive_part)
        if _count(conn, archive_part):
            cols = ", ".join(_q(conn, c) for c, _, _ in _columns(conn, EVENT))
            conn.exec_driver_sql(f"INSERT INTO {ar} ({cols}) SELECT {cols} FROM {ev}")
            conn.exec_driver_sql(f"TRUNCATE {ev}")
            return result
        # Archive before raw, as `flask analytics archive` takes them: no deadlock.
        conn.exec_driver_sql(f"LOCK TABLE {ARCHIVE}, {EVENT} IN ACCESS EXCLUSIVE MODE")
        conn.exec_driver_sql(f"DROP TABLE {ar}")
        conn.exec_driver_sql(f"ALTER TABLE {EVENT} DETACH PARTITION {ev}")
        conn.exec_driver_sql(f"ALTER TABLE {ev} ALTER COLUMN id DROP DEFAULT")
        for (index,) in conn.exec_driver_sql(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = to_regclass(%(t)s)",
            {"t": event_part},
        ).all():
            if index.startswith(event_part):
                renamed = (archive_part + index[len(event_part) :])[:63]
                conn.exec_driver_sql(f"ALTER INDEX {_q(conn, index)} RENAME TO {_q(conn, renamed)}")
        conn.exec_driver_sql(f"ALTER TABLE {ev} RENAME TO {ar}")
        conn.exec_driver_sql(f"ALTER TABLE {ARCHIVE} ATTACH PARTITION {ar} {bounds}")
        conn.exec_driver_sql(_create_partition_sql(conn, EVENT, month))
        result.moved_partition = True
    return result


@dataclass
class MonthPurgeResult:
    """What :func:`purge_month` deleted."""

    month: dt.date
    #: Archived events deleted: the month's partition, plus the hours of its edge local
    #: days that lie in the neighbouring months (so no local day is left half purged).
    deleted: int
    dropped_partition: bool


def purge_month(
    state: Context, month: dt.date, *, older_than_days: int | None = None
) -> MonthPurgeResult:
    """Drop the archive partition of a whole UTC month; daily rows are never touched.

    Refused (:class:`PartitioningError`) unless every local day touching the month is
    older than ``older_than_days`` (default ``ANALYTICS_ARCHIVE_RETENTION_DAYS``; None
    keeps the archive forever: ``ConfigError``) and has no raw events left (archive them
    first). The archived rows of those local days that lie in the neighbouring months
    are deleted too, in the same transaction; then the month's ids leave
    ``analytics_event_id``.
    """
    engine = _postgresql(state)
    month = month.replace(day=1)
    older_than_days = archive_retention(state, older_than_days)
    days = touching_days(state, month)
    what = f"{month:%Y-%m} cannot be purged"
    _past_retention(state, days, older_than_days, what, "ANALYTICS_ARCHIVE_RETENTION_DAYS")
    tz = state.settings.timezone
    low, high = day_bounds(tz, days[0])[0], day_bounds(tz, days[-1])[1]
    with engine.connect() as conn:
        _require_partitioned(conn)
        raw = int(
            conn.exec_driver_sql(
                f"SELECT count(*) FROM {EVENT} WHERE created_at >= %(l)s AND created_at < %(h)s",
                {"l": low, "h": high},
            ).scalar()
            or 0
        )
    if raw:
        raise PartitioningError(
            f"{what}: its local days {days[0].isoformat()} to {days[-1].isoformat()} still have "
            f"{raw:,} raw events; archive them first (flask analytics partitions archive-month "
            f"{month:%Y-%m}, or flask analytics archive)."
        )
    part = partition_name(ARCHIVE, month)
    with _database_errors(f"Purging {month:%Y-%m}"), engine.begin() as conn:
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        conn.exec_driver_sql(f"LOCK TABLE {ARCHIVE} IN ACCESS EXCLUSIVE MODE")
        deleted = _count(conn, part)
        dropped = _exists(conn, part)
        if dropped:
            conn.exec_driver_sql(f"DROP TABLE {_q(conn, part)}")
        # The edge days' hours in the neighbouring months (and any row of the month left
        # in the default partition).
        edges = conn.exec_driver_sql(
            f"DELETE FROM {ARCHIVE} WHERE created_at >= %(l)s AND created_at < %(h)s",
            {"l": low, "h": high},
        )
        deleted += int(edges.rowcount or 0)
    # The month's ids leave analytics_event_id (a transaction of its own: the archive's
    # lock is not held for it, and ids left behind only keep deduplicating). Ids of
    # events that arrived raw meanwhile stay: a retry of those must remain a duplicate.
    with engine.begin() as conn:
        forget_event_ids(conn, low, high)
    return MonthPurgeResult(month, deleted, dropped)


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
