"""Benchmark of goals and funnels (prints figures; not a test).

The data of bench/query.py (``--events`` raw events over ``--days`` days, the oldest
``--archived-days`` archived, every day aggregated), with these goals: Signup (the
``signup`` event), Pricing (pageviews of ``/pricing*``), Blog (``/blog/*``), Home (``/``)
and Pro signup (``signup`` with ``plan=pro``). Times, ``--runs`` times each, alternating:

  floor        one ``SELECT count(*), count(DISTINCT visitor_id)`` over the range's raw
               and archived events (bench/query.py's);
  goals        every goal's conversions, events, rate and revenue (the Goals panel);
  goal by source   Signup's conversions and conversion rate by source (``goal=Signup``);
  funnel       the 4-step funnel Home -> Blog -> Pricing -> Signup;

and prints medians and their ratios to the floor (issue goals: a 4-step funnel <= 5x,
a goal's conversion-rate breakdown by source <= 2x).

    python bench/goals.py --db postgresql --events 3000000 --runs 5
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask import Flask

from bench.dashboard import database
from bench.query import floor, prepare, time_cases
from flask_analytics.reports import BREAKDOWNS, DateRange, Stats
from flask_analytics.reports.filters import parse_filters
from flask_analytics.reports.funnels import funnel_steps
from flask_analytics.reports.goals import goal_breakdown, goal_totals
from flask_analytics.state import current_state

GOALS: tuple[dict[str, Any], ...] = (
    {"name": "Signup", "event": "signup"},
    {"name": "Pro signup", "event": "signup", "props": {"plan": "pro"}},
    {"name": "Pricing", "page": "/pricing*"},
    {"name": "Blog", "page": "/blog/*"},
    {"name": "Home", "page": "/"},
)
FUNNEL = ("Home", "Blog", "Pricing", "Signup")


def ask(app: Flask, rng: DateRange, what: str, filters: tuple[str, ...] = ()) -> Any:
    state = current_state(app)
    with app.app_context(), state.engine().connect() as conn:
        if what == "floor":
            return floor(state, conn, rng)
        stats = Stats(state, conn, filters=parse_filters(filters))
        try:
            goals = stats.goals
            if what == "goals":
                return [
                    (c.conversions, c.events) for c in goal_totals(stats, rng, list(goals.values()))
                ]
            if what == "by source":
                rows, _ = goal_breakdown(
                    stats, BREAKDOWNS["source"], rng, goals["Signup"], limit=10
                )
                return [(r.key, r.visitors, r.conversions) for r in rows]
            funnel = state.hooks.app_funnels(state.settings.funnels, dict(goals))["Path"]
            return [s.visitors for s in funnel_steps(stats, rng, funnel, goals)]
        finally:
            stats.close()


CASES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("floor: count(*), count(DISTINCT visitor_id)", "floor", ()),
    ("goals panel (5 goals), unfiltered", "goals", ()),
    ("goal=Signup by source, unfiltered", "by source", ()),
    ("4-step funnel, unfiltered", "funnel", ()),
    ("goals panel, source:is:Google", "goals", ("source:is:Google",)),
    ("4-step funnel, source:is:Google", "funnel", ("source:is:Google",)),
)


def bench(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    print(f"== {kind} ==")
    with database(kind, args.postgres_admin_url) as url:
        app, rng = prepare(kind, url, args)
        analytics = app.extensions["analytics"]
        for goal in GOALS:
            analytics.goal(goal["name"], event=goal.get("event"), page=goal.get("page"),
                           props=goal.get("props"))  # fmt: skip
        analytics.funnel("Path", list(FUNNEL))
        for label, what, filters in CASES:  # warm caches, show the answers once
            print(f"[{kind}] {label}: {ask(app, rng, what, filters)}")
        cases = [
            (label, functools.partial(ask, app, rng, what, filters))
            for label, what, filters in CASES
        ]
        times = time_cases(kind, args.runs, cases)
        base = statistics.median(times[CASES[0][0]])
        figures = {}
        print(f"[{kind}] {args.runs} runs of each case, alternating; medians:")
        for label, _, _ in CASES:
            median = statistics.median(times[label])
            figures[label] = {"median_ms": round(median, 1), "ratio": round(median / base, 2)}
            print(
                f"[{kind}]   {label:45s} median {median:9,.1f} ms  x{median / base:6.2f} the floor"
            )
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
    parser.add_argument("--lifecycle-archive", action="store_true")
    parser.add_argument(
        "--postgres-admin-url", default="postgresql+psycopg://root@127.0.0.1:5432/test"
    )
    args = parser.parse_args()
    kinds = ["postgresql", "sqlite"] if args.db == "both" else [args.db]
    print({kind: bench(kind, args) for kind in kinds})


if __name__ == "__main__":
    main()
