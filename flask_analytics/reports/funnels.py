"""Funnels: how many visitors reach each step, in order, within one visit.

DESIGN.md "Funnels": a session reaches step k when it holds events matching the goals
of steps 1..k in that order, times non-decreasing. Computed in SQL, step by step, the
earliest way: ``t1`` is the session's first step-1 event, ``tk`` its first step-k event
at or after ``t(k-1)``; a session reaches step k when ``tk`` exists. Taking the earliest
match at each step never misses a way through (any later choice leaves fewer events
after it), so this is exact. One event may stand for two consecutive steps when it
matches both goals. Steps in different sessions of a visitor do not chain.

The steps are computed by window functions over the session's step events, one pass
per step (``t<k>``: the first step-k event at or after ``t<k-1>``), not by joining the
events to themselves per step.

Each step reports visitors (per day, summed over the range, like every visitor count)
whose sessions reached it, the drop-off from the step before and the rate from step 1.
The request's filters apply: only kept sessions, and only kept events can be steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .filters import goal_condition
from .totals import ratio

if TYPE_CHECKING:
    from ..goals import Funnel, Goal
    from .ranges import DateRange
    from .stats import Stats


@dataclass(frozen=True)
class FunnelStep:
    """One step of a funnel over a range."""

    #: 1-based position.
    step: int
    goal: Goal
    visitors: int
    #: Visitors of the step before who did not reach this one (0 for step 1).
    dropoff: int
    #: Visitors of step 1 (the base of :attr:`conversion_rate`).
    entered: int

    @property
    def conversion_rate(self) -> float | None:
        """Share of step 1's visitors who reached this step."""
        return ratio(self.visitors, self.entered)

    @property
    def dropoff_rate(self) -> float | None:
        """Share of the step before's visitors lost here."""
        return ratio(self.dropoff, self.visitors + self.dropoff) if self.step > 1 else None

    def as_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "goal": self.goal.name,
            "visitors": self.visitors,
            "dropoff": self.dropoff,
            "dropoff_rate": self.dropoff_rate,
            "conversion_rate": self.conversion_rate,
        }


def funnel_steps(
    stats: Stats, rng: DateRange, funnel: Funnel, goals: Mapping[str, Goal]
) -> list[FunnelStep]:
    """The steps of ``funnel`` over ``rng`` (see the module's docstring)."""
    stats.check_raw(rng, "Funnels")
    dialect = stats.conn.dialect.name
    steps = [goals[name] for name in funnel.steps]
    distinct = list(dict.fromkeys(steps))
    events = stats.filtered.events_of(
        rng,
        sessions=True,
        extra=("props",),
        wheres=[lambda c: sa.or_(*(goal_condition(g, c, dialect) for g in distinct))],
    ).cte("fa_step_events")
    e = events.c
    flags = {
        g.name: sa.case((goal_condition(g, e, dialect), 1), else_=0).label(f"m{i}")
        for i, g in enumerate(distinct)
    }
    layer: Any = sa.select(e.day, e.visitor_id, e.session_start, e.created_at, *flags.values()).cte(
        "fa_steps_0"
    )
    # One window pass per step over the session's step events (no self-join): ``t<k>``
    # is the time of the session's first step-k event at or after ``t<k-1>``. CTEs, not
    # nested subqueries: SQLite's parser has a depth limit.
    for k, goal in enumerate(steps):
        c = layer.c
        hit = c[flags[goal.name].name] == 1
        if k:
            hit = sa.and_(hit, c.created_at >= c[f"t{k - 1}"])
        reached = sa.func.min(sa.case((hit, c.created_at))).over(
            partition_by=(c.visitor_id, c.session_start)
        )
        layer = sa.select(*c, reached.label(f"t{k}")).cte(f"fa_steps_{k + 1}")
    c = layer.c
    per_visitor = (
        sa.select(
            *(
                sa.func.max(sa.case((c[f"t{k}"].is_not(None), 1), else_=0)).label(f"r{k}")
                for k in range(len(steps))
            )
        )
        .group_by(c.day, c.visitor_id)
        .subquery("fa_step_visitors")
    )
    v = per_visitor.c
    counts = [sa.func.coalesce(sa.func.sum(v[f"r{k}"]), 0) for k in range(len(steps))]
    visitors = [int(v or 0) for v in stats.conn.execute(sa.select(*counts)).one()]
    return [
        FunnelStep(k + 1, goal, visitors[k], visitors[k - 1] - visitors[k] if k else 0, visitors[0])
        for k, goal in enumerate(steps)
    ]
