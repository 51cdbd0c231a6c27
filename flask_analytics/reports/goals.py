"""Goals: conversions, conversion rates and revenue, per goal and per breakdown row.

DESIGN.md "Goals": a conversion is an event matching a goal (:func:`~.filters.goal_condition`).
Per goal, or per breakdown row:

- ``conversions``: visitors with a matching event, distinct per day, summed over days
  (how every visitor count of a range adds up);
- ``events``: matching events;
- ``conversion_rate``: conversions / visitors of the same range, filters and row;
- ``revenue``: the sum of ``revenue_amount`` of the matching events, per currency (never
  converted), with the number of events carrying it and their average.

Goals read raw events: the request's kept sessions (its filters) joined to their events
(:meth:`~.filtered.FilteredEvents.events_of`), since a goal's page glob or property
values are in no daily table. A row's visitors, the rate's denominator, are visitors with
a session of that value for a session dimension (source, country...), and visitors with
a pageview of it for ``page`` (with any event of it for other event dimensions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa

from ..core.rollups import LANDING_COLUMNS, PAGEVIEW
from .filters import goal_condition, prop_value
from .props import PROP_TABLE
from .totals import ratio

if TYPE_CHECKING:
    from ..goals import Goal
    from .breakdowns import Breakdown
    from .ranges import DateRange
    from .stats import Stats

#: Event columns a goal's test and its revenue read.
GOAL_COLUMNS: Final = ("props", "revenue_amount", "revenue_currency")
#: Session columns a breakdown key may be (landing attributes, entry and exit pages).
_SESSION_KEYS: Final = frozenset({*LANDING_COLUMNS, "entry_path", "exit_path"})
#: Breakdowns whose key is a session column other than their table's key name.
_SESSION_KEY_OF: Final = {"entry_page": "entry_path", "exit_page": "exit_path"}


@dataclass(frozen=True)
class Revenue:
    """Revenue in one currency: the sum of the matching events' amounts."""

    currency: str
    amount: Decimal
    #: Matching events carrying an amount in this currency.
    events: int

    @property
    def average(self) -> Decimal:
        """Amount per event carrying revenue, rounded half-even to 6 decimal places."""
        return money(self.amount / self.events) if self.events else Decimal(0)

    def as_json(self) -> dict[str, Any]:
        """Amounts as strings (exact decimals: JSON numbers would go through floats)."""
        return {
            "currency": self.currency,
            "amount": str(money(self.amount)),
            "events": self.events,
            "average": str(self.average),
        }


def money(amount: Decimal) -> Decimal:
    """``amount`` at 6 decimal places at most, trailing zeros beyond the 2nd dropped."""
    rounded = amount.quantize(Decimal("0.000001"))
    text = f"{rounded:f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return Decimal(f"{whole}.{cents.ljust(2, '0')}")


@dataclass(frozen=True)
class Conversions:
    """One goal's numbers, or one breakdown row's for a goal."""

    #: The goal (goals panel) or the breakdown row's key.
    key: Any
    visitors: int
    conversions: int
    events: int
    revenue: tuple[Revenue, ...] = field(default=())

    @property
    def conversion_rate(self) -> float | None:
        return ratio(self.conversions, self.visitors)

    def as_json(self) -> dict[str, Any]:
        return {
            "visitors": self.visitors,
            "conversions": self.conversions,
            "events": self.events,
            "conversion_rate": self.conversion_rate,
            "revenue": [r.as_json() for r in self.revenue],
        }


def _flag(goal: Goal, columns: Any, dialect: str) -> Any:
    return sa.case((goal_condition(goal, columns, dialect), 1), else_=0)


def _with_revenue(events: Any) -> Any:
    """How many of ``events`` (a group of them) carry revenue."""
    carries = sa.and_(events.revenue_currency.is_not(None), events.revenue_amount.is_not(None))
    return sa.func.sum(sa.case((carries, 1), else_=0))


def _revenue(
    stats: Stats, events: Any, flags: Sequence[Any], key: Any = None
) -> dict[tuple[Any, int], list[Revenue]]:
    """Revenue per (key, flag index) and currency of ``events`` (a subquery)."""
    e = events.c
    keys = [key] if key is not None else []
    columns = [
        *keys,
        e.revenue_currency,
        *(
            part
            for flag in flags
            for part in (
                # Typed as the column: exact Decimals on both databases (SQLite
                # stores millionths, see models.RevenueAmount).
                sa.type_coerce(
                    sa.func.sum(sa.case((flag == 1, e.revenue_amount))), e.revenue_amount.type
                ),
                sa.func.sum(sa.case((flag == 1, 1), else_=0)),
            )
        ),
    ]
    query = (
        sa.select(*columns)
        .where(e.revenue_currency.is_not(None), e.revenue_amount.is_not(None))
        .group_by(*keys, e.revenue_currency)
    )
    found: dict[tuple[Any, int], list[Revenue]] = {}
    for record in stats.conn.execute(query):
        row_key = record[0] if key is not None else None
        offset = 1 if key is not None else 0
        currency = record[offset]
        for i in range(len(flags)):
            amount, count = record[offset + 1 + 2 * i], record[offset + 2 + 2 * i]
            if count:
                found.setdefault((row_key, i), []).append(
                    Revenue(currency, Decimal(amount), int(count))
                )
    for revenues in found.values():
        revenues.sort(key=lambda r: (-r.amount, r.currency))
    return found


def goal_totals(stats: Stats, rng: DateRange, goals: Sequence[Goal]) -> list[Conversions]:
    """Each goal's conversions, events, rate and revenue over ``rng`` (the request's
    filters apply: its kept sessions and events), in the order given."""
    if not goals:
        return []
    stats.check_raw(rng, "Goal reports")
    dialect = stats.conn.dialect.name
    visitors = stats.totals(rng).visitors
    events = stats.filtered.events_of(
        rng,
        extra=GOAL_COLUMNS,
        wheres=[lambda c: sa.or_(*(goal_condition(g, c, dialect) for g in goals))],
    ).subquery("fa_goal_events")
    e = events.c
    flags = [_flag(g, e, dialect) for g in goals]
    per_visitor = (
        sa.select(
            *(sa.func.max(f).label(f"c{i}") for i, f in enumerate(flags)),
            *(sa.func.sum(f).label(f"e{i}") for i, f in enumerate(flags)),
            _with_revenue(e).label("rv"),
        )
        .group_by(e.day, e.visitor_id)
        .subquery("fa_goal_visitors")
    )
    v = per_visitor.c
    sums = stats.conn.execute(
        sa.select(
            *(sa.func.coalesce(sa.func.sum(v[f"c{i}"]), 0) for i in range(len(goals))),
            *(sa.func.coalesce(sa.func.sum(v[f"e{i}"]), 0) for i in range(len(goals))),
            sa.func.coalesce(sa.func.sum(v.rv), 0),
        )
    ).one()
    # Revenue is read again only when a matching event carries some.
    revenue = _revenue(stats, events, flags) if sums[-1] else {}
    n = len(goals)
    return [
        Conversions(
            goal, visitors, int(sums[i]), int(sums[n + i]), tuple(revenue.get((None, i), ()))
        )
        for i, goal in enumerate(goals)
    ]


def _key_of(breakdown: Breakdown) -> tuple[str, str]:
    """("session", column), ("event", column) or ("prop", key): what the rows of
    ``breakdown`` are grouped by."""
    column = _SESSION_KEY_OF.get(breakdown.name, breakdown.key)
    if breakdown.table == PROP_TABLE:
        return "prop", str(dict(breakdown.where)["prop"])
    if breakdown.table == "DailyDimension":
        return "event", str(dict(breakdown.where)["dimension"])
    if column in _SESSION_KEYS and breakdown.table != "DailyPageReferrer":
        return "session", column
    return "event", column


def goal_breakdown(
    stats: Stats,
    breakdown: Breakdown,
    rng: DateRange,
    goal: Goal,
    *,
    limit: int | None = 10,
    offset: int = 0,
) -> tuple[list[Conversions], int]:
    """Rows of ``breakdown`` that converted on ``goal`` over ``rng``, most conversions
    first: each row's visitors, conversions, events, rate and revenue; and how many rows
    converted in all."""
    stats.check_raw(rng, "Goal reports")
    dialect = stats.conn.dialect.name
    side, column = _key_of(breakdown)
    filtered = stats.filtered
    events = filtered.events_of(
        rng,
        extra=(*GOAL_COLUMNS, *((column,) if side == "event" and column != "path" else ())),
        session_extra=(column,) if side == "session" else (),
        wheres=[lambda c: goal_condition(goal, c, dialect)],
    ).subquery("fa_goal_events")
    e = events.c
    key = _key(e, side, column, dialect)
    per_visitor = (
        sa.select(key.label("k"), sa.func.count().label("n"), _with_revenue(e).label("rv"))
        .group_by(key, e.day, e.visitor_id)
        .subquery("fa_goal_rows")
    )
    g = per_visitor.c
    converted = []
    with_revenue = 0
    for k, c, n, rv in stats.conn.execute(
        sa.select(g.k, sa.func.count(), sa.func.sum(g.n), sa.func.sum(g.rv)).group_by(g.k)
    ):
        converted.append((k, int(c), int(n)))
        with_revenue += int(rv or 0)
    converted.sort(key=lambda r: (-r[1], r[0] is None, str(r[0])))
    total = len(converted)
    page = converted[offset : None if limit is None else offset + limit]
    keys = [k for k, _, _ in page]
    visitors = _row_visitors(stats, rng, side, column, keys)
    revenue = _revenue(stats, events, [sa.literal(1)], key) if with_revenue else {}
    return [
        Conversions(k, visitors.get(k, 0), c, n, tuple(revenue.get((k, 0), ()))) for k, c, n in page
    ], total


def _key(columns: Any, side: str, column: str, dialect: str) -> Any:
    """The key expression of a row over ``columns`` (kept events, or kept sessions)."""
    if side == "prop":
        return prop_value(columns.props, column, dialect)
    return columns[f"session_{column}"] if side == "session" else columns[column]


def _row_visitors(
    stats: Stats, rng: DateRange, side: str, column: str, keys: Sequence[Any]
) -> dict[Any, int]:
    """Visitors (per day, summed) of each of ``keys``: with a session of that value, or
    with a pageview (``path``) or any event of it."""
    if not keys:
        return {}
    known = [k for k in keys if k is not None]
    if side == "session":
        rows = stats.filtered.sessions_of(rng)
        key = rows.c[column]
    else:
        extra = ("props",) if side == "prop" else () if column == "path" else (column,)
        rows = stats.filtered.events_of(
            rng,
            extra=extra,
            wheres=[lambda c: c.name == PAGEVIEW] if column == "path" else [],
        ).subquery("fa_row_events")
        key = _key(rows.c, side, column, stats.conn.dialect.name)
    wanted = []
    if known:
        wanted.append(key.in_(known))
    if len(known) < len(keys):
        wanted.append(key.is_(None))
    per_visitor = (
        sa.select(key.label("k"))
        .where(sa.or_(*wanted))
        .group_by(key, rows.c.day, rows.c.visitor_id)
        .subquery("fa_row_visitors")
    )
    v = per_visitor.c
    return {k: int(n) for k, n in stats.conn.execute(sa.select(v.k, sa.func.count()).group_by(v.k))}
