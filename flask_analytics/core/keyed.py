"""The daily tables a host keyed by its own event columns (``daily_models=``): their SQL.

A keyed table (``models.KEYED_TABLES``: pages, pages by referrer, custom events) has one
row per date, its own keys and the host's columns (the events' values, NULL its own
group). Its built-in counts keep their meaning when summed over the host's columns, so
every reader of the table that ignores them gets the numbers of the unkeyed table:

- pageviews, events and engagement are split by the values of the events counted;
- ``visitors`` counts each visitor in one row of the table's other keys: the row of the
  visitor's first counted event there that day (time, then id); ``entries`` / ``exits``
  count each visit in the row of its entry / exit pageview.

Distinct counts summed across rows that can share a visitor would overcount (DESIGN.md
"Definitions"), so the ``value_`` twins hold each row's exact numbers, never summed
across values: ``value_visitors`` are the visitors with a counted event carrying the
row's values, ``value_entries`` / ``value_exits`` the visits entering / leaving at the
page that hold any event carrying them. With every host column pinned to one value,
those are DESIGN.md's filtered numbers (``filter=plan:is:pro``): an event filter keeps
the matching events and the visits holding one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from ..goals import PAGEVIEW
from ..models import VALUE_PREFIX

#: The tracker's per-page engagement events (``core.rollups.ENGAGEMENT``).
_ENGAGEMENT = "engagement"


def _sum(expr: Any) -> Any:
    # As core.rollups.total: PostgreSQL sums bigints as numeric.
    return sa.cast(sa.func.coalesce(sa.func.sum(expr), 0), sa.BigInteger())


def _zero() -> Any:
    return sa.literal_column("0", sa.BigInteger())


def _by_first_event(
    e: Any,
    keys: Sequence[str],
    values: Sequence[str],
    where: Any,
    counted: Any,
    sums: Mapping[str, Any],
) -> sa.Select[Any]:
    """Rows per ``keys`` and host ``values`` of the events passing ``where``: visitors
    (each visitor once per ``keys``, in the row of its first event passing ``counted``),
    ``value_visitors`` (distinct visitors with such an event in the row) and ``sums``."""
    flag = sa.case((counted, 1), else_=0)
    first = sa.func.row_number().over(
        partition_by=(e.visitor_id, *(e[k] for k in keys), flag),
        order_by=(e.created_at, e.id),
    )
    inner = (
        sa.select(
            *(e[c] for c in (*keys, *values)),
            e.visitor_id,
            flag.label("fa_counted"),
            first.label("fa_first"),
            *(expr.label(name) for name, expr in sums.items()),
        )
        .where(where)
        .subquery("fa_keyed_events")
    )
    i = inner.c
    grouping = [i[c] for c in (*keys, *values)]
    return sa.select(
        *grouping,
        _sum(sa.case((sa.and_(i.fa_counted == 1, i.fa_first == 1), 1), else_=0)).label("visitors"),
        sa.func.count(sa.distinct(sa.case((i.fa_counted == 1, i.visitor_id)))).label(
            VALUE_PREFIX + "visitors"
        ),
        *(_sum(i[name]).label(name) for name in sums),
    ).group_by(*grouping)


def _page(date: Any, src: sa.FromClause, sessions: sa.FromClause, values: Sequence[str]) -> Any:
    e, s = src.c, sessions.c
    is_pv = e.name == PAGEVIEW
    counts = (
        "visitors", "value_visitors", "pageviews", "total_engagement_ms",
        "entries", "exits", "value_entries", "value_exits",
    )  # fmt: skip
    views = _by_first_event(
        e,
        ("path",),
        values,
        e.name.in_((PAGEVIEW, _ENGAGEMENT)),
        is_pv,
        {
            "pageviews": sa.case((is_pv, 1), else_=0),
            "total_engagement_ms": sa.case(
                (e.name == _ENGAGEMENT, sa.func.coalesce(e.engagement_ms, 0)), else_=0
            ),
        },
    ).subquery("fa_keyed_views")
    parts: list[sa.Select[Any]] = [
        sa.select(
            views.c.path,
            *(views.c[v] for v in values),
            *((views.c[c] if c in views.c else _zero()).label(c) for c in counts),
        )
    ]
    # Each visit with its events' values (a visitor's visits never overlap).
    joined = (
        sa.select(
            s.visitor_id,
            s.started_at,
            s.entry_path,
            s.exit_path,
            e.name,
            e.created_at,
            e.id,
            *(e[v] for v in values),
        )
        .select_from(
            sessions.join(
                src,
                sa.and_(
                    e.visitor_id == s.visitor_id,
                    e.created_at >= s.started_at,
                    e.created_at <= s.ended_at,
                ),
            )
        )
        .subquery("fa_visit_events")
    )
    j = joined.c
    visit = (j.visitor_id, j.started_at)
    order = (j.created_at, j.id)
    ranked = (
        sa.select(
            j.entry_path,
            j.exit_path,
            *(j[v] for v in values),
            sa.func.row_number().over(partition_by=visit, order_by=order).label("fa_first"),
            sa.func.row_number()
            .over(partition_by=visit, order_by=tuple(o.desc() for o in order))
            .label("fa_last"),
        )
        .where(j.name == PAGEVIEW)
        .subquery("fa_visit_pageviews")
    )
    r = ranked.c
    valued = (
        sa.select(j.visitor_id, j.started_at, j.entry_path, j.exit_path, *(j[v] for v in values))
        .where(j.entry_path.is_not(None))
        .distinct()
        .subquery("fa_visit_values")
    )
    d = valued.c
    for count, source, path, wanted in (
        ("entries", r, r.entry_path, r.fa_first == 1),
        ("exits", r, r.exit_path, r.fa_last == 1),
        ("value_entries", d, d.entry_path, sa.true()),
        ("value_exits", d, d.exit_path, sa.true()),
    ):
        group = [path, *(source[v] for v in values)]
        parts.append(
            sa.select(*group, *(sa.func.count() if c == count else _zero() for c in counts))
            .where(wanted)
            .group_by(*group)
        )
    every = sa.union_all(*parts).subquery("fa_keyed_page_parts")
    p = every.c
    grouping = [p.path, *(p[v] for v in values)]
    return sa.select(date, *grouping, *(_sum(p[c]).label(c) for c in counts)).group_by(*grouping)


def _page_referrer(date: Any, src: sa.FromClause, _: sa.FromClause, values: Sequence[str]) -> Any:
    e = src.c
    rows = _by_first_event(
        e, ("path", "referrer_host"), values, e.name == PAGEVIEW, sa.true(),
        {"pageviews": sa.literal_column("1")},
    ).subquery("fa_keyed_referrers")  # fmt: skip
    return sa.select(date, *rows.c)


def _event(date: Any, src: sa.FromClause, _: sa.FromClause, values: Sequence[str]) -> Any:
    e = src.c
    rows = _by_first_event(
        e, ("name",), values, e.name != PAGEVIEW, sa.true(), {"events": sa.literal_column("1")}
    ).subquery("fa_keyed_events_by_name")
    return sa.select(date, *rows.c)


_BUILDERS = {"DailyPage": _page, "DailyPageReferrer": _page_referrer, "DailyEvent": _event}


def keyed_selects(
    day: dt.date,
    src: sa.FromClause,
    sessions: sa.FromClause,
    keyed: Mapping[str, tuple[str, ...]],
) -> dict[str, sa.Select[Any]]:
    """The select of each keyed daily table of ``day`` (``keyed``: its host columns),
    from the day's events (with those columns) and its sessions."""
    date = sa.literal(day, sa.Date()).label("date")
    return {name: _BUILDERS[name](date, src, sessions, values) for name, values in keyed.items()}
