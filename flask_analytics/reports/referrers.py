"""Where a page's visitors came from, navigation inside the site included.

Collection drops a referrer on the site's own host (moving between pages is not a
traffic source: a session's source is its landing's, see DESIGN.md), so a pageview
reached from another page of the site is stored without a referrer, like a typed URL.
Read back, such a pageview is told apart by its session: when an earlier pageview of
the same session exists, the visitor came from that page (``from /pricing``); the first
pageview of a session without a referrer stays Direct / None.

:func:`page_referrers` answers a page's referrers this way over a range (the stored
``analytics_daily_page_referrer`` rows for external hosts, the raw path for the rest);
:func:`previous_page_sources` does it for realtime's last minutes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..core import dialects
from ..core.rollups import PAGEVIEW
from .breakdowns import Row
from .filtered import RawDataMissing
from .ranges import DateRange

if TYPE_CHECKING:
    from ..models import Models
    from .stats import Stats


class PreviousPage(str):
    """A referrer key that is a page of the site itself: the path visited before, in
    the same session. A ``str`` (JSON and CSV print the path); templates tell it apart
    by :attr:`previous_page`."""

    __slots__ = ()

    @property
    def previous_page(self) -> str:
        return str(self)


def _sorted(rows: list[Row], limit: int | None) -> list[Row]:
    rows.sort(
        key=lambda r: (
            -r.counts["visitors"],
            -r.counts["pageviews"],
            r.key is None,
            isinstance(r.key, PreviousPage),
            r.key or "",
        )
    )
    return rows if limit is None else rows[:limit]


def page_referrers(
    stats: Stats, rng: DateRange, path: str, *, limit: int | None = 20
) -> tuple[list[Row], bool]:
    """Referrers of page ``path`` over ``rng``: visitors (distinct per day, summed) and
    pageviews per external referrer host, per previous page of the session
    (:class:`PreviousPage` keys), and None for pageviews without either (Direct / None);
    honouring ``stats``' filters. The second value is False when the range reaches days
    whose raw events are gone: then no previous page is told apart (the stored rows
    only, every referrer-less pageview under None)."""
    stored = stats.page_referrers(rng, path, limit=None)
    external = [row for row in stored if row.key is not None]
    try:
        stats.check_raw(rng, "Previous pages")
    except RawDataMissing:
        return _sorted(stored, limit), False
    events = stats.filtered.events_of(
        rng,
        extra=("id",),
        wheres=[lambda columns: columns.name == PAGEVIEW],
        sessions=True,
    ).subquery("fa_page_views")
    e = events.c
    previous = sa.func.lag(e.path).over(
        partition_by=(e.visitor_id, e.session_start), order_by=(e.created_at, e.id)
    )
    views = sa.select(
        e.day, e.visitor_id, e.path, e.referrer_host, previous.label("previous")
    ).subquery("fa_previous")
    v = views.c
    per_day = (
        sa.select(
            v.day,
            v.previous,
            sa.func.count(sa.distinct(v.visitor_id)).label("visitors"),
            sa.func.count().label("pageviews"),
        )
        .where(v.path == path, v.referrer_host.is_(None))
        .group_by(v.day, v.previous)
        .subquery("fa_per_day")
    )
    p = per_day.c
    query = sa.select(p.previous, sa.func.sum(p.visitors), sa.func.sum(p.pageviews)).group_by(
        p.previous
    )
    internal = [
        Row(
            PreviousPage(previous) if previous is not None else None,
            {"visitors": int(visitors or 0), "pageviews": int(pageviews or 0)},
        )
        for previous, visitors, pageviews in stats.conn.execute(query)
    ]
    return _sorted(external + internal, limit), True


def previous_page_sources(
    conn: sa.Connection,
    models: Models,
    since: dt.datetime,
    timeout: int,
    *,
    limit: int = 10,
    where: Sequence[sa.ColumnElement[bool]] = (),
) -> list[Row]:
    """Realtime's sources: pageviews since ``since`` (naive UTC) and their distinct
    visitors per source; a pageview without a source whose visitor viewed another page
    less than ``timeout`` seconds before (the same session) counts under that page
    (:class:`PreviousPage`), the others under None (Direct / None). Raw events only;
    ``where`` (conditions on the event table, e.g. a viewer's scope) keeps pageviews, so
    a previous page is always one that passes it too."""
    table: sa.Table = models.Event.__table__
    t = table.c
    # Pageviews from one session timeout earlier: the previous page of the first ones.
    ts = dialects.epoch_seconds(t.created_at, conn.dialect.name)
    views = (
        sa.select(t.id, t.created_at, ts.label("ts"), t.visitor_id, t.path, t.source)
        .add_columns(t.referrer_host)
        .where(t.created_at >= since - dt.timedelta(seconds=timeout), t.name == PAGEVIEW, *where)
        .subquery("fa_recent_views")
    )
    w = views.c
    walk: dict[str, Any] = {"partition_by": w.visitor_id, "order_by": (w.created_at, w.id)}
    recent = sa.select(
        w.created_at,
        w.visitor_id,
        w.source,
        w.referrer_host,
        sa.func.lag(w.path).over(**walk).label("previous"),
        (w.ts - sa.func.lag(w.ts).over(**walk)).label("gap"),
    ).subquery("fa_ordered")
    r = recent.c
    rows: dict[Any, tuple[set[Any], int]] = {}
    query = sa.select(r.visitor_id, r.source, r.referrer_host, r.previous, r.gap).where(
        r.created_at >= since
    )
    for visitor, source, host, previous, gap in conn.execute(query):
        key: str | None = source
        if source is None and host is None and previous is not None and gap <= timeout:
            key = PreviousPage(previous)
        seen, count = rows.get(key, (set(), 0))
        seen.add(visitor)
        rows[key] = (seen, count + 1)
    found = [
        Row(key, {"visitors": len(seen), "pageviews": count}) for key, (seen, count) in rows.items()
    ]
    return _sorted(found, limit)
