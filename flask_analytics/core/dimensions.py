"""Custom dimensions and host aggregations, run inside the day's aggregation transaction.

A custom column of the event model declared with ``analytics.dimension("plan")`` gets
daily rollups in ``analytics_daily_dimension`` (one row per dimension and value), a
dashboard panel and an API/CSV breakdown, with no code of the host's own. Rollups are
event-level: a value's ``visitors`` are the day's visitors with an event carrying it,
``pageviews`` and ``events`` (everything but pageviews) count those events.

Hosts that need more register ``@analytics.daily_aggregation`` functions
``fn(conn, day, events)``: ``events`` is the day's raw + archived events (every column,
custom ones included) as a subquery; the function deletes and re-inserts its own rows
for ``day`` on ``conn``, inside the same transaction as the built-in tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..models import UTM_MAX, EventMixin, Models
from .clock import day_bounds
from .hooks import CustomDimension, DailyAggregation

if TYPE_CHECKING:
    from .context import Context


def check_dimension(event_model: Any, name: str) -> None:
    """Raise ``ValueError`` unless ``name`` is a custom column of ``event_model``."""
    table: sa.Table = event_model.__table__
    if name in EventMixin.__annotations__ or name not in table.c:
        raise ValueError(
            f"dimension({name!r}): not a custom column of {event_model.__name__}. Declare "
            "the column on your EventMixin subclass (built-in columns have their own panels)."
        )


def day_events(models: Models, start: dt.datetime, end: dt.datetime) -> sa.CompoundSelect[Any]:
    """Raw + archived events with ``start <= created_at < end``, every column."""
    names = [col.name for col in models.Event.__table__.c]
    parts = []
    for model in (models.Event, models.EventArchive):
        table: sa.Table = model.__table__
        parts.append(
            sa.select(*(table.c[n] for n in names)).where(
                table.c.created_at >= start, table.c.created_at < end
            )
        )
    return sa.union_all(*parts)


def _local_day_events(state: Context, day: dt.date) -> sa.CompoundSelect[Any]:
    """:func:`day_events` of local ``day``."""
    return day_events(state.models, *day_bounds(state.settings.timezone, day))


def dimension_select(day: dt.date, name: str, events: sa.FromClause) -> sa.Select[Any]:
    """The ``analytics_daily_dimension`` rows of one dimension for ``day``."""
    e = events.c
    pageview = sa.case((e.name == "pageview", 1), else_=0)
    value = sa.cast(e[name], sa.String(UTM_MAX))
    return sa.select(
        sa.literal(day, sa.Date()).label("date"),
        sa.literal(name, sa.String()).label("dimension"),
        value.label("value"),
        sa.func.count(sa.distinct(e.visitor_id)).label("visitors"),
        sa.func.coalesce(sa.func.sum(pageview), 0).label("pageviews"),
        sa.func.coalesce(sa.func.sum(1 - pageview), 0).label("events"),
    ).group_by(value)


def dimension_selects(
    state: Context, day: dt.date, *, cte_suffix: str = ""
) -> sa.Select[Any] | None:
    """Live rows of every declared dimension for ``day`` (None without dimensions)."""
    dims: Sequence[CustomDimension] = state.hooks.dimensions
    if not dims:
        return None
    events = _local_day_events(state, day).cte(f"dim_src{cte_suffix}")
    selects = [dimension_select(day, d.name, events) for d in dims]
    return selects[0] if len(selects) == 1 else sa.union_all(*selects).subquery().select()


def selects(state: Context, day: dt.date) -> list[sa.Select[Any]]:
    """The ``analytics_daily_dimension`` rows of ``day``, one select per declared dimension."""
    dims: Sequence[CustomDimension] = state.hooks.dimensions
    if not dims:
        return []
    events = _local_day_events(state, day).subquery("day_events")
    return [dimension_select(day, dim.name, events) for dim in dims]


def run_hooks(conn: sa.Connection, state: Context, day: dt.date) -> None:
    """Run the host's ``@analytics.daily_aggregation`` functions for ``day`` on ``conn``."""
    hooks: Sequence[DailyAggregation] = state.hooks.daily_aggregations
    if not hooks:
        return
    events = _local_day_events(state, day).subquery("day_events")
    for hook in hooks:
        hook(conn, day, events)
