"""The SQL of every daily table of one local day: what each daily number means.

:func:`table_selects` builds, from a day's events and its sessions, one ``SELECT`` per
daily table; :func:`daily_selects` wraps them over the raw + archived events of a day.
``lifecycle.aggregate`` writes their rows into the daily tables; the query engine runs
the same selects live for days not aggregated yet, so both paths agree by construction.

Definitions (DESIGN.md "Definitions", made exact where it leaves a choice):

- Day: the events whose ``created_at`` (naive UTC) falls in ``[local midnight of D, local
  midnight of D+1)`` of ``ANALYTICS_TIMEZONE``, converted with zoneinfo (23/25-hour days).
- Time arithmetic uses whole seconds: each ``created_at`` is truncated to the second
  first. Events of one visitor are ordered by ``(created_at, id)`` (ids survive archival).
- Session (visit): a visitor's events of the day, ordered, split wherever two consecutive
  events are more than ``SESSION_TIMEOUT`` seconds apart. Every event belongs to exactly
  one session, custom and tracker events included: a visit made only of server-side
  ``track()`` events is a visit too. Sessions never cross local midnight: visitor ids
  are hashed with the salt of the event's local day, so the same person has another id
  after midnight; a visit spanning midnight counts as one visit on each day (as in
  Plausible). Hence "belongs to the day it starts" holds trivially and a day's rows
  depend on that day's events only. The timeout applies to every event alike: an
  ``engagement`` sent when a tab is closed more than ``SESSION_TIMEOUT`` after its
  pageview starts a session of its own (without pageview), as any late event would.
- Landing event of a session: its first pageview, or its first event when it has no
  pageview. The session's channel, source, the five UTM values, country, device type,
  browser and OS, their versions, language, region, city, screen class and hostname
  are the landing event's.
- Entry / exit page: path of the first / last pageview (NULL without pageviews).
- Bounce: exactly one pageview and no other event except those named in
  ``ANALYTICS_NON_INTERACTIVE_EVENTS`` (default ``["web_vitals"]``). A one-page visit
  with a ``signup``, ``outbound``, ``download``, ``form_submit`` or any custom event is
  not a bounce, and neither is one with an ``engagement`` event (unless the setting lists
  it): the tracker only sends ``engagement`` after >= 3 s of visible time or a scroll, so
  a one-page visit whose reader stayed is not a bounce. A session without pageview (only
  server-side ``track()`` events, or a late event cut off by the timeout) is never a
  bounce. The rule is applied when sessions are computed, here only: the daily tables
  and ``analytics_session`` keep each session's 0/1, so days aggregated under another
  rule or setting keep it until re-aggregated (``flask analytics backfill``), while live
  days follow the current one.
- Duration: last event time - first event time, in whole seconds. The tracker sends a
  page's ``engagement`` event when the visitor hides or leaves the page, so when the last
  page's engagement is known its event is the session's last one and the difference
  already includes that time; adding ``engagement_ms`` on top would count it twice.
- Pageviews: events named ``pageview``. Events: every other event, tracker ones
  (``engagement``, ``web_vitals``, ``outbound``...) included, as DESIGN.md says; each
  name has its own ``analytics_daily_event`` row, so a dashboard hiding
  :data:`INTERNAL_EVENTS` subtracts their rows.

Daily tables (counts only; ``visitors`` is always a distinct count within the row's own
group, never a sum over rows that could share a visitor):

- summary: visitors, sessions, pageviews, bounces, total_duration_s, events. No events,
  no row.
- page (one row per path with a pageview or an engagement event): visitors with a
  pageview of it, pageviews, entries and exits (sessions entering / leaving there),
  total_engagement_ms (sum of ``engagement_ms`` of its engagement events).
- page_referrer: pageviews grouped by (path, referrer_host): visitors, pageviews.
- traffic_source (channel, source), country, device (device_type, browser, os), utm (the
  five values), browser_version (browser, browser_version), os_version (os, os_version),
  location (country, region, city), language, screen, hostname: grouped by the
  session's landing attributes, NULLs included as their own group, so every table's
  ``sessions`` add up to the summary's. Visitors, sessions,
  pageviews of those sessions; traffic_source, utm and hostname also bounces.
- session: sessions grouped by :data:`DURATION_BUCKETS` and :data:`PAGES_BUCKETS` (each
  value goes to the largest lower bound <= it): sessions, total_duration_s, pageviews.
- event: per non-pageview name: visitors, events.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..models import PATH_MAX
from . import dialects
from .clock import day_bounds
from .keyed import keyed_selects

if TYPE_CHECKING:
    from ..models import Models
    from .context import Context

#: Name of pageview events; every other name is a custom event.
PAGEVIEW = "pageview"
#: Name of the tracker's engagement events (their ``engagement_ms`` is per-page time).
ENGAGEMENT = "engagement"
#: Event names the tracker sends for its own measurements rather than as user actions.
INTERNAL_EVENTS = ("engagement", "web_vitals")
#: Lower bounds (seconds) of the session duration buckets of ``analytics_daily_session``.
DURATION_BUCKETS = (0, 10, 30, 60, 180, 600, 1800, 3600)
#: Lower bounds of the pageviews-per-session buckets (0: sessions without a pageview).
PAGES_BUCKETS = (0, 1, 2, 3, 4, 5, 10, 20)
#: Event columns a session takes from its landing event.
SESSION_ATTRIBUTES = (
    "channel",
    "source",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "country",
    "device_type",
    "browser",
    "os",
    "browser_version",
    "os_version",
    "language",
    "region",
    "city",
    "screen",
)
#: Event columns a session takes from its landing event (``analytics_session``'s).
LANDING_COLUMNS = ("hostname", "referrer_host", *SESSION_ATTRIBUTES)
#: Key columns of the per-session audience tables (:func:`audience_tables`).
AUDIENCE_KEYS: dict[str, tuple[str, ...]] = {
    "DailyBrowserVersion": ("browser", "browser_version"),
    "DailyOsVersion": ("os", "os_version"),
    "DailyLocation": ("country", "region", "city"),
    "DailyLanguage": ("language",),
    "DailyScreen": ("screen",),
    "DailyHostname": ("hostname",),
}
#: Audience tables that count bounces too.
BOUNCED_AUDIENCE = frozenset({"DailyHostname"})
#: Event columns the rollups read.
_SOURCE_COLUMNS = (
    "id",
    "created_at",
    "visitor_id",
    "name",
    "path",
    "engagement_ms",
    *LANDING_COLUMNS,
)

# -- statement builders ------------------------------------------------------------------


def source_events(models: Models, start: dt.datetime, end: dt.datetime) -> sa.CompoundSelect[Any]:
    """Raw + archived events with ``start <= created_at < end``: built-in columns and the
    host columns keying daily tables, plus ``archived`` (0 or 1: which table the row is
    in)."""
    parts = []
    columns = (*_SOURCE_COLUMNS, *models.key_columns())
    for archived, model in enumerate((models.Event, models.EventArchive)):
        table: sa.Table = model.__table__
        parts.append(
            sa.select(
                *(table.c[name] for name in columns),
                sa.literal_column(str(archived), sa.Integer()).label("archived"),
            ).where(table.c.created_at >= start, table.c.created_at < end)
        )
    return sa.union_all(*parts)


def sessions_select(
    src: sa.FromClause,
    timeout: int,
    dialect: str,
    *,
    non_interactive: Collection[str],
    models: Models | None = None,
    bounds: tuple[dt.datetime, dt.datetime] | None = None,
    by_day: bool = False,
) -> sa.Select[Any]:
    """One row per session of the events of ``src`` (window functions, no Python loop).

    Columns: visitor_id, started_at and ended_at (first and last event time),
    duration_s, events, pageviews, bounce (0/1: one pageview and no event but those
    named in ``non_interactive``, ``ANALYTICS_NON_INTERACTIVE_EVENTS``), entry_path,
    exit_path and the landing attributes of :data:`LANDING_COLUMNS`. With ``by_day``,
    ``src`` spans several local days and has a ``day`` column: a session never crosses
    from one day to the next, and the rows start with ``day``.

    All events are walked in one order (visitor, time, id) rather than one window
    partition per visitor: both passes share one sort, session numbers come out unique
    across visitors, and grouping by them can hash. Only the columns sessions are cut
    from go through the sort; the landing event's attributes are fetched afterwards (a
    third less work at a million events): by primary key from the event tables when
    ``models`` and the day's UTC ``bounds`` are given (what ``aggregate_day`` and
    :func:`daily_selects` do), else from ``src`` again, which SQLite plans as two
    joins each recomputing the sessions: twice the work there.
    """
    c = src.c
    ts = dialects.epoch_seconds(c.created_at, dialect)
    is_pv = sa.case((c.name == PAGEVIEW, 1), else_=0)
    # (visitor_id, created_at, id) is unique, so every frame "up to the current row" is
    # a running total, and all functions of a pass share one window node.
    walk: dict[str, Any] = {"order_by": (c.visitor_id, c.created_at, c.id), "rows": (None, 0)}
    same_visit = sa.and_(
        sa.func.lag(c.visitor_id).over(**walk) == c.visitor_id,
        *((sa.func.lag(c.day).over(**walk) == c.day,) if by_day else ()),
        ts - sa.func.lag(ts).over(**walk) <= timeout,
    )
    day_columns = [c.day] if by_day else []
    # Pass 1: does the event start a session; running count of pageviews so far.
    ordered = sa.select(
        c.visitor_id,
        c.created_at,
        c.id,
        c.archived,
        c.name,
        c.path,
        *day_columns,
        ts.label("ts"),
        is_pv.label("is_pv"),
        sa.func.sum(is_pv).over(**walk).label("pvn"),
        sa.case((same_visit, 0), else_=1).label("starts"),
    ).subquery("ordered")
    o = ordered.c
    walk = {"order_by": (o.visitor_id, o.created_at, o.id), "rows": (None, 0)}
    # Pass 2: session number (running count of starts) and the pageview count before the
    # session began (running max over session starts: pvn never decreases).
    numbered = sa.select(
        *o,
        sa.func.sum(o.starts).over(**walk).label("session_no"),
        sa.func.max(sa.case((o.starts == 1, o.pvn - o.is_pv))).over(**walk).label("pv_base"),
    ).subquery("numbered")
    n = numbered.c
    is_entry = sa.and_(n.is_pv == 1, n.pvn == n.pv_base + 1)
    pageviews = sa.func.sum(n.is_pv)

    def landing(column: Any) -> Any:
        # The first pageview, else the first event; one row matches each CASE.
        return sa.case(
            (pageviews > 0, sa.func.max(sa.case((is_entry, column)))),
            else_=sa.func.max(sa.case((n.starts == 1, column))),
        )

    # Exit page: the pageview with the highest running number. Arg-max as a MAX over
    # "zero-padded number || path" strings, since neither database has a portable one.
    width = 12
    exit_key = sa.func.max(
        sa.case((n.is_pv == 1, dialects.sortable_number(n.pvn, width, dialect) + n.path))
    )
    # Any event but pageviews and the non-interactive names ends a bounce.
    interactive = sa.func.max(sa.case((n.name.not_in((PAGEVIEW, *non_interactive)), 1), else_=0))
    grouped = (
        sa.select(
            *([sa.func.max(n.day).label("day")] if by_day else []),
            n.visitor_id,
            sa.func.min(n.created_at).label("started_at"),
            sa.func.max(n.created_at).label("ended_at"),
            (sa.func.max(n.ts) - sa.func.min(n.ts)).label("duration_s"),
            sa.func.count().label("events"),
            pageviews.label("pageviews"),
            sa.case((sa.and_(pageviews == 1, interactive == 0), 1), else_=0).label("bounce"),
            sa.func.max(sa.case((is_entry, n.path))).label("entry_path"),
            sa.func.substr(exit_key, width + 1).label("exit_path"),
            landing(n.id).label("landing_id"),
            landing(n.archived).label("landing_archived"),
        )
        .group_by(n.session_no, n.visitor_id)
        .subquery("grouped")
    )
    g = grouped.c
    columns = [
        *([g.day] if by_day else []),
        g.visitor_id,
        g.started_at,
        g.ended_at,
        g.duration_s,
        g.events,
        g.pageviews,
        g.bounce,
        g.entry_path,
        g.exit_path,
    ]
    if models is None or bounds is None:
        # (archived, id) is unique: an id can repeat across the two tables, not within one.
        landing_event = src.alias("landing_event")
        lc = landing_event.c
        on = sa.and_(lc.id == g.landing_id, lc.archived == g.landing_archived)
        return sa.select(*columns, *(lc[name] for name in LANDING_COLUMNS)).select_from(
            grouped.join(landing_event, on)
        )
    start, end = bounds
    tables = []
    from_landing: sa.FromClause = grouped
    for archived, model in enumerate((models.Event, models.EventArchive)):
        table = model.__table__.alias(("landing_raw", "landing_archived")[archived])
        tables.append(table)
        from_landing = from_landing.outerjoin(
            table,
            sa.and_(
                g.landing_archived == archived,
                table.c.id == g.landing_id,
                table.c.created_at >= start,
                table.c.created_at < end,
            ),
        )
    raw, archived_table = tables
    return sa.select(
        *columns,
        *(
            sa.case((g.landing_archived == 0, raw.c[name]), else_=archived_table.c[name]).label(
                name
            )
            for name in LANDING_COLUMNS
        ),
    ).select_from(from_landing)


def sessions_table(event_table: sa.Table) -> sa.Table:
    """A temporary table for :func:`sessions_select`'s rows (dropped before commit)."""
    big = sa.BigInteger()
    return sa.Table(
        "analytics_tmp_session",
        sa.MetaData(),
        sa.Column("visitor_id", big),
        sa.Column("started_at", event_table.c.created_at.type),
        sa.Column("ended_at", event_table.c.created_at.type),
        sa.Column("duration_s", big),
        sa.Column("events", big),
        sa.Column("pageviews", big),
        sa.Column("bounce", sa.Integer()),
        sa.Column("entry_path", sa.String(PATH_MAX)),
        sa.Column("exit_path", sa.String(PATH_MAX)),
        *(sa.Column(name, event_table.c[name].type) for name in LANDING_COLUMNS),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )


def session_rows_select(day: dt.date, sessions: sa.FromClause) -> sa.Select[Any]:
    """``analytics_session``'s rows of ``day`` from :func:`sessions_table`'s rows."""
    s = sessions.c
    return sa.select(
        sa.literal(day, sa.Date()).label("date"),
        *(s[col.name] for col in sessions.columns),
    )


def total(expr: Any) -> Any:
    # PostgreSQL sums bigints as numeric: cast back so readers get ints, not Decimals.
    return sa.cast(sa.func.coalesce(sa.func.sum(expr), 0), sa.BigInteger())


def bucket_lower_bound(value: Any, bounds: tuple[int, ...]) -> Any:
    """The largest of ``bounds`` that is <= ``value`` (``bounds[0]`` below them all)."""
    return sa.case(*((value >= b, b) for b in reversed(bounds[1:])), else_=bounds[0])


def table_selects(
    day: dt.date,
    src: sa.FromClause,
    sessions: sa.FromClause,
    keyed: Mapping[str, tuple[str, ...]] | None = None,
) -> dict[str, Any]:
    """The select of every daily table of ``day`` from its events and its sessions.

    Keys are the daily model names of ``state.models.daily``; each select yields that
    table's columns except ``id`` (in no particular order). ``keyed``: the host columns
    of keyed tables (``models.keyed``), whose selects group by them too
    (:mod:`.keyed`).
    """
    date = sa.literal(day, sa.Date()).label("date")
    e, s = src.c, sessions.c
    zero: sa.ColumnClause[int] = sa.literal_column("0", sa.Integer())
    visitors = sa.func.count(sa.distinct(s.visitor_id)).label("visitors")
    sessions_n = sa.func.count().label("sessions")
    pageviews = total(s.pageviews).label("pageviews")
    bounces = total(s.bounce).label("bounces")

    totals = sa.select(
        visitors,
        sessions_n,
        pageviews,
        bounces,
        total(s.duration_s).label("total_duration_s"),
        total(s.events - s.pageviews).label("events"),
    ).subquery("totals")
    t = totals.c
    summary = sa.select(
        date, t.visitors, t.sessions, t.pageviews, t.bounces, t.total_duration_s, t.events
    ).where(t.sessions > 0)

    is_pv = e.name == PAGEVIEW
    views = (
        sa.select(
            e.path.label("path"),
            sa.func.count(sa.distinct(sa.case((is_pv, e.visitor_id)))).label("visitors"),
            sa.func.sum(sa.case((is_pv, 1), else_=0)).label("pageviews"),
            zero.label("entries"),
            zero.label("exits"),
            sa.func.sum(
                sa.case((e.name == ENGAGEMENT, sa.func.coalesce(e.engagement_ms, 0)), else_=0)
            ).label("total_engagement_ms"),
        )
        .where(e.name.in_((PAGEVIEW, ENGAGEMENT)))
        .group_by(e.path)
    )
    entries = (
        sa.select(s.entry_path, zero, zero, sa.func.count(), zero, zero)
        .where(s.entry_path.is_not(None))
        .group_by(s.entry_path)
    )
    exits = (
        sa.select(s.exit_path, zero, zero, zero, sa.func.count(), zero)
        .where(s.exit_path.is_not(None))
        .group_by(s.exit_path)
    )
    parts = sa.union_all(views, entries, exits).subquery("page_parts")
    p = parts.c
    page = sa.select(
        date,
        p.path,
        total(p.visitors).label("visitors"),
        total(p.pageviews).label("pageviews"),
        total(p.entries).label("entries"),
        total(p.exits).label("exits"),
        total(p.total_engagement_ms).label("total_engagement_ms"),
    ).group_by(p.path)

    page_referrer = (
        sa.select(
            date,
            e.path,
            e.referrer_host,
            sa.func.count(sa.distinct(e.visitor_id)).label("visitors"),
            sa.func.count().label("pageviews"),
        )
        .where(is_pv)
        .group_by(e.path, e.referrer_host)
    )

    def by_session(*keys: str, bounced: bool = False) -> sa.Select[Any]:
        columns = [date, *(s[k] for k in keys), visitors, sessions_n, pageviews]
        if bounced:
            columns.append(bounces)
        return sa.select(*columns).group_by(*(s[k] for k in keys))

    bucketed = sa.select(
        bucket_lower_bound(s.duration_s, DURATION_BUCKETS).label("duration_bucket"),
        bucket_lower_bound(s.pageviews, PAGES_BUCKETS).label("pages_bucket"),
        s.duration_s,
        s.pageviews,
    ).subquery("bucketed")
    b = bucketed.c
    session = sa.select(
        date,
        b.duration_bucket,
        b.pages_bucket,
        sa.func.count().label("sessions"),
        total(b.duration_s).label("total_duration_s"),
        total(b.pageviews).label("pageviews"),
    ).group_by(b.duration_bucket, b.pages_bucket)

    event = (
        sa.select(
            date,
            e.name,
            sa.func.count(sa.distinct(e.visitor_id)).label("visitors"),
            sa.func.count().label("events"),
        )
        .where(e.name != PAGEVIEW)
        .group_by(e.name)
    )

    selects = {
        "DailySummary": summary,
        "DailyPage": page,
        "DailyPageReferrer": page_referrer,
        "DailyTrafficSource": by_session("channel", "source", bounced=True),
        "DailyCountry": by_session("country"),
        "DailyDevice": by_session("device_type", "browser", "os"),
        "DailyUtm": by_session(
            "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", bounced=True
        ),
        "DailySession": session,
        "DailyEvent": event,
        **audience_tables(by_session),
    }
    selects.update(keyed_selects(day, src, sessions, keyed or {}))
    return selects


def audience_tables(by_session: Callable[..., sa.Select[Any]]) -> dict[str, sa.Select[Any]]:
    """The per-session audience tables, grouped by the session's landing attributes like
    country and device (``by_session(*keys, bounced=...)`` builds one); shared with the
    raw path's virtual tables."""
    return {
        name: by_session(*keys, bounced=name in BOUNCED_AUDIENCE)
        for name, keys in AUDIENCE_KEYS.items()
    }


def in_table_order(models: Models, selects: dict[str, Any]) -> dict[str, Any]:
    """Each select with exactly its daily table's columns but ``id``, in table order."""
    shaped = {}
    for name, select in selects.items():
        table: sa.Table = models.daily[name].__table__
        by_name = {col.name: col for col in select.selected_columns}
        names = [col.name for col in table.c if col.name != "id"]
        if set(names) != set(by_name):
            raise RuntimeError(f"{name}: select columns {sorted(by_name)} != {sorted(names)}")
        shaped[name] = select.with_only_columns(*(by_name[n] for n in names))
    return shaped


def daily_selects(state: Context, day: dt.date, *, cte_suffix: str = "") -> dict[str, Any]:
    """Live selects of every daily table of local ``day``, computed from its raw events.

    Keyed by daily model name ("DailySummary", ...); each yields exactly the rows
    ``aggregate_day`` would write (the table's columns but ``id``, in table order), built
    by the same code. Run them on ``state.engine()``. Their CTEs are named
    ``src{cte_suffix}`` and ``sessions{cte_suffix}``: give each day its own suffix to
    combine several days in one statement.
    """
    start, end = day_bounds(state.settings.timezone, day)
    src = source_events(state.models, start, end).cte(f"src{cte_suffix}")
    dialect = state.engine().dialect.name
    sessions = sessions_select(
        src,
        state.settings.session_timeout,
        dialect,
        non_interactive=state.settings.non_interactive_events,
        models=state.models,
        bounds=(start, end),
    ).cte(f"sessions{cte_suffix}")
    return in_table_order(state.models, table_selects(day, src, sessions, state.models.keyed))
