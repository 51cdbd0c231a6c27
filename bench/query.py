"""Benchmark of the query engine's filtered questions (prints figures; not a test).

Loads ``--events`` raw events (3M by default) over ``--days`` local days ending yesterday
(visitors with one to three visits of several pageviews, engagement and custom events
with props; sources including Google, countries, devices, pages including /blog/*) into
a throwaway database, aggregates every day, moves the oldest ``--archived-days`` to
``analytics_event_archive`` (in one statement; ``archive()`` with ``--lifecycle-archive``),
then times, ``--runs`` times each, the cases alternating:

  floor       one ``SELECT count(*), count(DISTINCT visitor_id)`` over the range's raw and
              archived events (the scan every exact answer needs), as the planner reads
              it and by a plain table scan;
  overview    what the dashboard's overview reads: daily totals of the range and of the
              previous period, top 8 pages, sources, countries and devices; unfiltered
              (the daily rollups), with ``source:is:Google`` and with
              ``page:matches:/blog/*`` (raw + archived events, :mod:`.filtered`);
  breakdown   top pages with ``source:is:Google``;
  props       the ``prop:plan`` breakdown (custom events' property) with ``event:is:signup``,
              unfiltered (raw events: no daily table holds properties) and with
              ``source:is:Google`` (a session filter: kept sessions joined);

and prints medians and their ratios to the floor's median (goals: filtered overview <= 3x,
filtered breakdown <= 1.5x, props breakdown <= 2x), and to the same floor read by a plain table scan (SQLite
reads the range through the created_at index otherwise). ``--profile`` then shows where
the filtered path's time goes: the time of each statement of one overview, of each stage
(the range's events, the kept sessions, the kept events joined to their sessions), and
the plans (EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL, EXPLAIN QUERY PLAN on SQLite).

    python bench/query.py                                  # both databases, 3M events
    python bench/query.py --db postgresql --events 300000 --runs 3 --profile

PostgreSQL: a database of its own on the server of ``--postgres-admin-url``, dropped at
the end (bench/dashboard.py's). SQLite: a temporary file in /tmp. The last line of output
is a JSON object with every median (``python -m bench --only query`` reads it).
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import functools
import itertools
import json
import random
import re
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from bench.aggregate import COUNTRIES, DEVICES, UTMS
from bench.dashboard import database, vacuum
from flask_analytics import Analytics
from flask_analytics.core.clock import day_bounds
from flask_analytics.lifecycle.aggregate import aggregate_range
from flask_analytics.lifecycle.archive import archive
from flask_analytics.reports import BREAKDOWNS, DateRange, Stats, Totals
from flask_analytics.reports.breakdowns import prop_breakdown
from flask_analytics.reports.filters import parse_filters
from flask_analytics.state import AppState, current_state
from flask_analytics.web.dashboard.views import OVERVIEW_LISTS

COLUMNS = (
    "event_id", "created_at", "name", "hostname", "path", "referrer", "referrer_host",
    "channel", "source", "utm_source", "utm_medium", "utm_campaign", "utm_term",
    "utm_content", "device_type", "browser", "os", "country", "visitor_id", "screen_width",
    "engagement_ms", "scroll_depth", "props",
)  # fmt: skip
#: (referrer, referrer host, channel, source, weight): Google brings about a third.
SOURCES = (
    (None, None, "Direct", None, 30),
    ("https://www.google.com/", "www.google.com", "Organic Search", "Google", 34),
    ("https://www.bing.com/", "www.bing.com", "Organic Search", "Bing", 5),
    ("https://duckduckgo.com/", "duckduckgo.com", "Organic Search", "DuckDuckGo", 3),
    ("https://news.ycombinator.com/", "news.ycombinator.com", "Referral", "Hacker News", 6),
    ("https://t.co/", "t.co", "Organic Social", "Twitter", 6),
    ("https://www.reddit.com/", "www.reddit.com", "Organic Social", "Reddit", 5),
    ("https://github.com/", "github.com", "Referral", "GitHub", 6),
    ("https://blog.example.org/post", "blog.example.org", "Referral", "blog.example.org", 5),
)
PATHS = (
    ["/", "/pricing", "/about", "/signup", "/login"]
    + [f"/docs/{i}" for i in range(300)]
    + [f"/blog/post-{i}" for i in range(150)]
)
#: A few popular pages and a long tail.
PATH_WEIGHTS = list(itertools.accumulate(1 / (i + 1) ** 0.9 for i in range(len(PATHS))))
#: Share of visits by local hour (a day peaks in the afternoon).
HOUR_WEIGHTS = list(itertools.accumulate(2 + 8 * max(0, 1 - abs(h - 15) / 9) for h in range(24)))
CUSTOM_EVENTS = ("signup", "download", "outbound", "form_submit")
PLANS = ("free", "pro", "team")
GOOGLE = ("source:is:Google",)
BLOG = ("page:matches:/blog/*",)
SIGNUP = ("event:is:signup",)
#: label, filters (None: the floor; () unfiltered), what is asked
CASES: tuple[tuple[str, tuple[str, ...] | None, str], ...] = (
    ("floor: count(*), count(DISTINCT visitor_id)", None, "floor"),
    ("the same, read by a plain table scan", None, "scan"),
    ("overview, unfiltered (daily rollups)", (), "overview"),
    ("overview, source:is:Google", GOOGLE, "overview"),
    ("overview, page:matches:/blog/*", BLOG, "overview"),
    ("breakdown: top pages, source:is:Google", GOOGLE, "breakdown"),
    ("props breakdown: prop:plan, event:is:signup", SIGNUP, "props"),
    ("props breakdown: prop:plan, unfiltered", (), "props"),
    ("props breakdown: prop:plan, source:is:Google", GOOGLE, "props"),
)


def _pick(rnd: random.Random, cumulative: Sequence[float]) -> int:
    return bisect.bisect(cumulative, rnd.random() * cumulative[-1])


def generate(total: int, first: dt.date, days: int, seed: int = 1) -> Iterator[tuple[Any, ...]]:
    """``total`` events over ``days`` UTC days from ``first``, the same for the same seed.

    Each visitor (a new id every day, as the daily salt makes it) comes from one device
    and country, for one to three visits more than 30 minutes apart; each visit has one
    source, sometimes UTM tags, 1-8 pageviews a few minutes apart, engagement events
    after about 40 % of them and a custom event with props after 6 %.
    """
    rnd = random.Random(seed)
    source_weights = list(itertools.accumulate(s[4] for s in SOURCES))
    serial = 0
    for index in range(days):
        target = total // days + (1 if index < total % days else 0)
        midnight = dt.datetime.combine(first + dt.timedelta(days=index), dt.time())
        made = 0
        while made < target:
            visitor = rnd.getrandbits(63) - 2**62
            device, browser, os_name, width = DEVICES[rnd.randrange(len(DEVICES))]
            country = COUNTRIES[rnd.randrange(len(COUNTRIES))]
            t = _pick(rnd, HOUR_WEIGHTS) * 3600 + rnd.random() * 3600
            for _visit in range(rnd.choice((1, 1, 1, 1, 2, 2, 3))):
                referrer, host, channel, source, _ = SOURCES[_pick(rnd, source_weights)]
                utm = UTMS[rnd.randrange(1, len(UTMS))] if rnd.random() < 0.15 else UTMS[0]
                for page in range(rnd.choice((1, 1, 1, 2, 2, 3, 3, 4, 5, 8))):
                    if t >= 86_399 or made >= target:
                        break
                    path = PATHS[_pick(rnd, PATH_WEIGHTS)]
                    at = midnight + dt.timedelta(seconds=t)
                    ref = (referrer, host) if page == 0 else (None, None)
                    common = (channel, source, *utm, device, browser, os_name, country, visitor)
                    serial += 1
                    made += 1
                    yield (f"q{serial:020d}", at, "pageview", "example.com", path, *ref,
                           *common, width, None, None, None)  # fmt: skip
                    t += rnd.uniform(5, 300)
                    if rnd.random() < 0.4 and made < target and t < 86_399:
                        serial += 1
                        made += 1
                        yield (f"q{serial:020d}", midnight + dt.timedelta(seconds=t),
                               "engagement", "example.com", path, None, None, *common, width,
                               rnd.randint(2_000, 180_000), rnd.randint(10, 100), None)  # fmt: skip
                    if rnd.random() < 0.06 and made < target and t < 86_399:
                        serial += 1
                        made += 1
                        props = json.dumps({"plan": rnd.choice(PLANS), "step": rnd.randint(1, 5)})
                        yield (f"q{serial:020d}", midnight + dt.timedelta(seconds=t),
                               rnd.choice(CUSTOM_EVENTS), "example.com", path, None, None,
                               *common, width, None, None, props)  # fmt: skip
                t += rnd.uniform(1_860, 4 * 3600)  # the next visit
                if t >= 86_399:
                    break


def load(engine: sa.Engine, rows: Iterator[tuple[Any, ...]]) -> int:
    """Bulk-load into ``analytics_event``: COPY on PostgreSQL; on SQLite big executemany
    transactions on a connection of its own with journal and syncs off."""
    count = 0
    if engine.dialect.name == "postgresql":
        raw: Any = engine.raw_connection()
        try:
            sql = f"COPY analytics_event ({', '.join(COLUMNS)}) FROM STDIN"
            with raw.cursor() as cur, cur.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
            raw.commit()
        finally:
            raw.close()
        return count
    path = engine.url.database
    assert path is not None
    engine.dispose()  # leaving WAL needs the only connection
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-262144")
    sql = (
        f"INSERT INTO analytics_event ({', '.join(COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(COLUMNS))})"
    )
    batch: list[tuple[Any, ...]] = []

    def write() -> None:
        db.execute("BEGIN")
        db.executemany(sql, batch)
        db.execute("COMMIT")

    for row in rows:
        # SQLAlchemy's SQLite DateTime text, so created_at compares as stored.
        batch.append((row[0], row[1].strftime("%Y-%m-%d %H:%M:%S.%f"), *row[2:]))
        if len(batch) == 200_000:
            write()
            count += len(batch)
            batch = []
    write()
    count += len(batch)
    db.execute("PRAGMA journal_mode=WAL")  # what the extension's connections use
    db.close()
    return count


def make_app(url: str, timezone: str) -> Flask:
    app = Flask("bench_query")
    app.config.update(SQLALCHEMY_DATABASE_URI=url, ANALYTICS_TIMEZONE=timezone)
    db = SQLAlchemy()
    db.init_app(app)
    Analytics(app, db=db)
    with app.app_context():
        db.create_all()
    return app


def move_to_archive(state: AppState, cut: dt.date) -> None:
    """Move the raw events of local days before ``cut`` to the archive in one transaction
    (what ``archive()`` does in crash-safe batches, at 1,500 events/s on PostgreSQL here)."""
    start, _ = day_bounds(state.settings.timezone, cut)
    event: sa.Table = state.models.Event.__table__
    archived: sa.Table = state.models.EventArchive.__table__
    names = [c.name for c in event.columns]
    with state.engine().begin() as conn:
        old = event.c.created_at < start
        conn.execute(sa.insert(archived).from_select(names, sa.select(*event.c).where(old)))
        conn.execute(sa.delete(event).where(old))


# -- the questions ------------------------------------------------------------------------


def floor(
    state: AppState, conn: sa.Connection, rng: DateRange, *, scan: bool = False
) -> tuple[int, int]:
    """count(*) and count(DISTINCT visitor_id) of the range's raw and archived events.

    ``scan``: read the tables by a plain scan (SQLite otherwise reads any time range
    through the created_at index, a row lookup per event; PostgreSQL scans anyway).
    """
    start, _ = day_bounds(state.settings.timezone, rng.start)
    _, end = day_bounds(state.settings.timezone, rng.end)
    parts = []
    for model in (state.models.Event, state.models.EventArchive):
        t: sa.Table = model.__table__
        created: Any = t.c.created_at
        if scan and conn.dialect.name == "sqlite":  # the unary plus: no index for the term
            created = sa.sql.elements.UnaryExpression(
                created, operator=sa.sql.operators.custom_op("+"), type_=created.type
            )
        parts.append(sa.select(t.c.visitor_id).where(created >= start, created < end))
    events = sa.union_all(*parts).subquery()
    query = sa.select(sa.func.count(), sa.func.count(sa.distinct(events.c.visitor_id)))
    row = conn.execute(query).one()
    return int(row[0]), int(row[1])


def overview(stats: Stats, rng: DateRange) -> Any:
    """The numbers web/dashboard/views.py ``overview()`` reads for ``rng`` (comparison:
    the previous period, read with it in one span)."""
    comparison = rng.previous()
    both = stats.daily_totals(comparison.span(rng))
    lists = {
        name: stats.breakdown(BREAKDOWNS[name], rng, limit=8, counts=counts)
        for name, counts in OVERVIEW_LISTS.items()
    }
    return both, lists, stats.current_visitors(), stats.data_as_of()


def top_pages(stats: Stats, rng: DateRange) -> Any:
    return stats.breakdown(BREAKDOWNS["page"], rng, limit=10)


def top_props(stats: Stats, rng: DateRange) -> Any:
    return stats.breakdown(prop_breakdown("plan"), rng, limit=10)


def run_case(app: Flask, rng: DateRange, filters: tuple[str, ...] | None, what: str) -> Any:
    state = current_state(app)
    with app.app_context(), state.engine().connect() as conn:
        if filters is None:
            return floor(state, conn, rng, scan=what == "scan")
        stats = Stats(state, conn, filters=parse_filters(filters))
        try:
            if what == "props":
                return top_props(stats, rng)
            return overview(stats, rng) if what == "overview" else top_pages(stats, rng)
        finally:
            stats.close()


def timed(func: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = func()
    return (time.perf_counter() - began) * 1000, result


def time_cases(
    kind: str, runs: int, cases: Sequence[tuple[str, Callable[[], Any]]]
) -> dict[str, list[float]]:
    """Each case's times (ms) over ``runs`` runs, alternating: a run times every case
    once, in order, and prints its times to stderr."""
    times: dict[str, list[float]] = {label: [] for label, _ in cases}
    for run in range(runs):
        for label, call in cases:
            ms, _ = timed(call)
            times[label].append(ms)
        print(f"[{kind}]   run {run + 1}: "
              + ", ".join(f"{t[-1]:,.0f}" for t in times.values()) + " ms", file=sys.stderr)  # fmt: skip
    return times


# -- where the time goes ------------------------------------------------------------------


def capture(conn: sa.Connection, func: Callable[[], Any]) -> list[tuple[float, str, Any]]:
    """The SELECTs and INSERTs ``func`` sends on ``conn``: (ms, statement, parameters)."""
    seen: list[tuple[float, str, Any]] = []
    began: list[float] = []

    def before(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        began.append(time.perf_counter())

    def after(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        ms = (time.perf_counter() - began.pop()) * 1000
        if statement.lstrip().upper().startswith(("SELECT", "WITH", "INSERT")):
            seen.append((ms, statement, params))

    sa.event.listen(conn, "before_cursor_execute", before)
    sa.event.listen(conn, "after_cursor_execute", after)
    try:
        func()
    finally:
        sa.event.remove(conn, "before_cursor_execute", before)
        sa.event.remove(conn, "after_cursor_execute", after)
    return seen


def _exclusive(node: dict[str, Any], out: list[tuple[float, str, str]]) -> float:
    """Collect (exclusive ms, description, CTE read) of every plan node; returns its
    inclusive ms. A CTE's own plan is listed apart (an InitPlan) but runs inside the
    first scan that reads it: :func:`_plan_nodes` takes it out of that scan's time."""
    loops = node.get("Actual Loops", 1) or 1
    inclusive = float(node.get("Actual Total Time", 0.0)) * loops
    children = sum(
        _exclusive(child, out)
        for child in node.get("Plans", [])
        if not str(child.get("Subplan Name", "")).startswith("CTE ")
    )
    what = node["Node Type"]
    for key in ("Strategy", "Join Type", "CTE Name", "Relation Name"):
        if key in node:
            what += f" {node[key]}"
    if "Sort Method" in node:
        what += f" [{node['Sort Method']}, {node.get('Sort Space Used', '?')} kB {node.get('Sort Space Type', '')}]"
    if "Sort Key" in node:
        what += f" by {', '.join(node['Sort Key'])[:80]}"
    if "Group Key" in node:
        what += f" by {', '.join(node['Group Key'])[:80]}"
    temp = node.get("Temp Written Blocks", 0)
    if temp:
        what += f" (temp written {temp * 8 / 1024:,.0f} MiB)"
    if "Peak Memory Usage" in node:
        what += f" (hash peak {node['Peak Memory Usage']:,} kB, batches {node.get('HashAgg Batches', node.get('Hash Batches', 1))})"
    what += f" rows {int(node.get('Actual Rows', 0) * loops):,}"
    out.append((max(0.0, inclusive - children), what, node.get("CTE Name", "")))
    for child in node.get("Plans", []):
        name = str(child.get("Subplan Name", ""))
        if name.startswith("CTE "):
            out.append((-_exclusive(child, out), "", name[4:]))  # its time, to take out
    return inclusive


def _plan_nodes(root: dict[str, Any]) -> list[tuple[float, str]]:
    """(exclusive ms, description) of every node, a CTE's plan counted once."""
    raw: list[tuple[float, str, str]] = []
    _exclusive(root, raw)
    nodes = [[ms, what, cte] for ms, what, cte in raw if what]
    for ms, what, cte in raw:
        if what:
            continue
        scans = [n for n in nodes if n[2] == cte and n[1].startswith("CTE Scan")]
        if scans:  # the scan that ran the CTE's plan is the slowest one
            first = max(scans, key=lambda n: n[0])
            first[0] = max(0.0, float(first[0]) + ms)
    return [(float(n[0]), str(n[1])) for n in nodes]


def explain_postgresql(conn: sa.Connection, statement: str, params: Any, title: str) -> None:
    print(f"  -- EXPLAIN (ANALYZE, BUFFERS) of the {title} statement (work_mem 64MB)")
    conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
    plan = conn.exec_driver_sql(
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, params
    ).scalar_one()
    text = conn.exec_driver_sql(
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) " + statement, params
    ).all()
    root = (plan[0] if isinstance(plan, list) else json.loads(plan)[0])["Plan"]
    whole = float(root["Actual Total Time"])
    nodes = _plan_nodes(root)
    print(f"  total {whole:,.0f} ms; the nodes taking most of it (exclusive time):")
    for ms, what in sorted(nodes, reverse=True)[:12]:
        print(f"    {ms:9,.0f} ms {100 * ms / whole:5.1f} %  {what}")
    print("  full plan:")
    for (line,) in text:
        print(f"    {line}")


def explain_sqlite(conn: sa.Connection, statement: str, params: Any, title: str) -> None:
    print(f"  -- EXPLAIN QUERY PLAN of the {title} statement")
    for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all():
        print(f"    {row[0]:>4} {row[1]:>4}  {row[3]}")


def _label(statement: str) -> str:
    written = re.search(r"INSERT INTO (fa_kept_\w+?)_\d", statement)
    if written:
        return "write " + written.group(1).replace("fa_", "").replace("_", " ")
    keys = re.findall(r"fa_rows\.(\w+)", statement)
    if not keys:
        return ""
    return "daily totals (60 days)" if keys[0] == "day" else f"top {keys[0]}s"


def profile(kind: str, app: Flask, rng: DateRange) -> None:
    """Each statement of one filtered overview, and the plans of the slow ones, on the
    overview's own connection (its temporary tables still there)."""
    print(f"== {kind}: where the filtered path's time goes ==")
    state = current_state(app)
    explain = explain_postgresql if kind == "postgresql" else explain_sqlite
    for filters in (GOOGLE, BLOG):
        print(f"[{kind}] filter {filters[0]}: each statement of one overview")
        with app.app_context(), state.engine().connect() as conn:
            stats = Stats(state, conn, filters=parse_filters(filters))
            seen = capture(conn, lambda s=stats: overview(s, rng))  # type: ignore[misc]
            asked: dict[str, tuple[float, str, Any]] = {}
            for ms, statement, params in seen:
                what = _label(statement)
                if what:
                    asked.setdefault(what, (ms, statement, params))
                    print(f"  {ms:9,.0f} ms  {what}")
            # Reads first: explaining a write (ANALYZE runs it) adds rows.
            titles = sorted(asked, key=lambda t: t.startswith("write"))
            for title in titles:
                if title.startswith(("top paths", "daily", "write")):
                    _, statement, params = asked[title]
                    explain(conn, statement, params, f"{title}, {filters[0]}")
            stats.close()


# -- the run ------------------------------------------------------------------------------


def prepare(kind: str, url: str, args: argparse.Namespace) -> tuple[Flask, DateRange]:
    app = make_app(url, args.timezone)
    state = current_state(app)
    with app.app_context():
        today = state.today()
        first = today - dt.timedelta(days=args.days)
        rng = DateRange(first, today - dt.timedelta(days=1))
        engine = state.engine()
        ms, count = timed(lambda: load(engine, generate(args.events, first, args.days)))
        vacuum(engine)
        print(f"[{kind}] loaded {count:,} events over {args.days} days in {ms / 1000:.1f} s")
        ms, _ = timed(lambda: aggregate_range(state, rng.start, rng.end))
        print(f"[{kind}] aggregated {args.days} days in {ms / 1000:.1f} s")
        cut = rng.start + dt.timedelta(days=args.archived_days)
        if args.lifecycle_archive:
            keep = (today - cut).days
            ms, _ = timed(lambda: archive(state, older_than_days=keep, batch_size=100_000))
        else:
            ms, _ = timed(lambda: move_to_archive(state, cut))
        vacuum(engine)
        how = "archive()" if args.lifecycle_archive else "one INSERT ... SELECT and DELETE"
        print(f"[{kind}] moved {args.archived_days} days to the archive in {ms / 1000:.1f} s "
              f"({how})")  # fmt: skip
        with engine.connect() as conn:
            raw = conn.scalar(sa.text("SELECT count(*) FROM analytics_event"))
            archived = conn.scalar(sa.text("SELECT count(*) FROM analytics_event_archive"))
            if kind == "postgresql":
                size = conn.scalar(sa.text(
                    "SELECT pg_size_pretty(pg_total_relation_size('analytics_event') "
                    "+ pg_total_relation_size('analytics_event_archive'))"
                ))  # fmt: skip
            else:
                size = f"{Path(str(engine.url.database)).stat().st_size / 2**20:,.0f} MB"
        print(f"[{kind}] {raw:,} raw + {archived:,} archived events ({size}); range {rng.start} "
              f"to {rng.end}")  # fmt: skip
    return app, rng


def bench(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    print(f"== {kind} ==")
    with database(kind, args.postgres_admin_url) as url:
        app, rng = prepare(kind, url, args)
        results: dict[str, Any] = {}
        for label, filters, what in CASES:  # warm caches, check the answers once
            results[label] = run_case(app, rng, filters, what)
        events, visitors = results[CASES[0][0]]
        assert results[CASES[1][0]] == (events, visitors)
        print(f"[{kind}] floor: {events:,} events, {visitors:,} distinct visitor ids")
        for label in (label for label, _, what in CASES if what == "overview"):
            totals = results[label][0]
            summed = sum((t for d, t in totals.items() if d in rng), Totals())
            print(f"[{kind}] {label}: {summed.visitors:,} visitors, {summed.sessions:,} "
                  f"sessions, {summed.pageviews:,} pageviews")  # fmt: skip
        cases = [
            (label, functools.partial(run_case, app, rng, filters, what))
            for label, filters, what in CASES
        ]
        times = time_cases(kind, args.runs, cases)
        base = statistics.median(times[CASES[0][0]])
        scan = statistics.median(times[CASES[1][0]])
        print(f"[{kind}] {args.runs} runs of each case, alternating; medians:")
        figures = {}
        for label, _, _ in CASES:
            median = statistics.median(times[label])
            figures[label] = {"median_ms": round(median, 1), "ratio": round(median / base, 2),
                              "ratio_scan": round(median / scan, 2),
                              "min_ms": round(min(times[label]), 1)}  # fmt: skip
            print(f"[{kind}]   {label:45s} median {median:9,.1f} ms  min "
                  f"{min(times[label]):9,.1f} ms  x{median / base:6.2f} the floor "
                  f"(x{median / scan:6.2f} the plain scan)")  # fmt: skip
        if args.profile:
            profile(kind, app, rng)
        with app.app_context():
            current_state(app).db.engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["postgresql", "sqlite", "both"], default="both")
    parser.add_argument("--events", type=int, default=3_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--archived-days", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--timezone", default="UTC")
    parser.add_argument(
        "--lifecycle-archive", action="store_true",
        help="move old days with archive() (slow on PostgreSQL) instead of one statement",
    )  # fmt: skip
    parser.add_argument("--profile", action="store_true", help="EXPLAIN and stage times")
    parser.add_argument(
        "--postgres-admin-url", default="postgresql+psycopg://root@127.0.0.1:5432/test"
    )
    args = parser.parse_args()
    kinds = ["postgresql", "sqlite"] if args.db == "both" else [args.db]
    figures = {kind: bench(kind, args) for kind in kinds}
    print(json.dumps({"events": args.events, "days": args.days, "query": figures}))


if __name__ == "__main__":
    main()
