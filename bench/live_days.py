"""Benchmark of live days (prints figures; not a test).

A dashboard day is read from its daily rows when it has a final run, and computed from
raw events ("live") otherwise, but only when it holds events; today is read from the rows
of its latest run (the scheduler's 15-minute job) while that run is recent. Two cases, on
SQLite and PostgreSQL, each side of a ratio timed in the same run, requests alternating
between the sides (server side, through the WSGI test client; live cache off, so a live
day is computed on every request):

  (a) the 12-month overview (``period=12mo``, compared with the previous 12 months) of a
      site whose traffic started ``--site-days`` ago (daily rows and a final run for each
      of those days, 100k raw events over the last 90, ``--small-today`` today with a
      recent run), without and with one raw event tracked with a timestamp 330 days ago
      (goal: <= 1.2x). The same overview under the previous rule (every day from the
      oldest raw event to today without a final run was live) is timed a few times on the
      second database, for reference;
  (b) the 30-day and 12-month overviews ending today, ``--today-events`` raw events
      today aggregated by the 15-minute job, against the same overviews ending yesterday
      (goal: <= 1.5x). Today computed live (no run) and the job's own time are printed for
      reference.

    python -m bench.live_days                       # both databases, 1M events today
    python -m bench.live_days --db sqlite --today-events 300000 --runs 10

PostgreSQL: throwaway databases on the server of ``--postgres-admin-url``, dropped at
the end. SQLite: temporary files.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask import Flask

import flask_analytics.reports.stats as stats_module
from bench.dashboard import (
    daily_inserts,
    database,
    execute,
    make_app,
    raw_insert,
    runs_insert,
    summary,
    vacuum,
)
from flask_analytics.core.runs import days_holding_events
from flask_analytics.reports import MAX_RANGE_DAYS, DateRange, LiveCache, LiveDays, Stats
from flask_analytics.state import current_state
from flask_analytics.web.dashboard.query import preset_range

#: How long ago the one old event of case (a) happened: inside any 12-month period.
OLD_EVENT_DAYS = 330
#: Raw events over the 90 days before today (aggregated, so never read).
OLDER_RAW = 100_000


class PreviousRule(LiveDays):
    """The rule this benchmark replaces: every day from the oldest raw event to the
    range's end without a final run is live, and today always."""

    def days(self, rng: DateRange) -> list[dt.date]:
        return [d for d in self.span_days(rng) if d >= self.today or not self.is_final(d)]


@contextmanager
def previous_rule() -> Iterator[None]:
    stats_module.LiveDays = PreviousRule  # type: ignore[misc]
    try:
        yield
    finally:
        stats_module.LiveDays = LiveDays  # type: ignore[misc]


def load(url: str, *, site_days: int, today_events: int, old_event: bool, run_today: bool) -> Flask:
    """An app with ``site_days`` aggregated days to yesterday, raw events today and over
    the 90 days before, one old event if asked, and a run of today if asked."""
    app, analytics = make_app(url)
    app.extensions["analytics_dashboard_live"] = LiveCache(0)
    state = current_state(app)
    with app.app_context():
        engine = state.engine()
        dialect = engine.dialect.name
        now = state.clock.utcnow()
        today = state.today()
        yesterday = today - dt.timedelta(days=1)
        first = today - dt.timedelta(days=site_days)
        began = time.perf_counter()
        for sql in daily_inserts(dialect, first, yesterday):
            execute(engine, sql)
        execute(engine, runs_insert(dialect, first, yesterday),
                start=first.isoformat(), end=yesterday.isoformat())  # fmt: skip
        midnight = dt.datetime.combine(today, dt.time())
        seconds_today = max(1, int((now - midnight).total_seconds()) - 60)
        execute(engine, raw_insert(dialect, 1, today_events, midnight, seconds_today))
        start = midnight - dt.timedelta(days=90)
        execute(engine, raw_insert(dialect, today_events + 1, OLDER_RAW, start, 90 * 86400))
        took = time.perf_counter() - began
        print(f"    loaded daily rows, {today_events:,} raw events today and {OLDER_RAW:,} "
              f"before in {took:.1f} s", file=sys.stderr)  # fmt: skip
        if old_event:
            moment = now - dt.timedelta(days=OLD_EVENT_DAYS)
            assert analytics.track("pageview", url="https://example.com/old", timestamp=moment)
        vacuum(engine)
        if run_today:
            analytics.aggregate(today)
    return app


def live_days(app: Flask, rng: DateRange) -> int:
    state = current_state(app)
    with app.app_context(), state.engine().connect() as conn:
        return len(Stats(state, conn).live.days(rng))


def which_days(app: Flask, rng: DateRange, runs: int) -> tuple[int, int, list[float]]:
    """Days of ``rng`` probed (no final run, between the oldest and newest event), how
    many are live, and the milliseconds a fresh :meth:`LiveDays.days` takes to tell (the
    oldest and newest event, the runs, the one EXISTS probe)."""
    state = current_state(app)
    times = []
    with app.app_context(), state.engine().connect() as conn:
        for _ in range(runs):
            live = LiveDays(state, conn, state.today())
            began = time.perf_counter()
            found = live.days(rng)
            times.append((time.perf_counter() - began) * 1000)
        candidates = [d for d in live.span_days(rng) if not live.stored(d)]
    return len(candidates), len(found), times


def probe_alone(app: Flask, rng: DateRange, runs: int) -> list[float]:
    """Milliseconds of :func:`days_holding_events` over every day of ``rng``: the worst
    case, when none of them has a final run and events lie before and after them."""
    state = current_state(app)
    models = state.models
    tables = [models.Event.__table__, models.EventArchive.__table__]
    days = list(rng.dates())
    times = []
    with app.app_context(), state.engine().connect() as conn:
        for _ in range(runs):
            began = time.perf_counter()
            days_holding_events(conn, state.settings.timezone, tables, days)
            times.append((time.perf_counter() - began) * 1000)
    return times


def live_day(app: Flask, day: dt.date, runs: int) -> list[float]:
    """Milliseconds to compute live ``day``'s rows (its statement built before)."""
    state = current_state(app)
    cache = LiveCache(0)
    times = []
    with app.app_context(), state.engine().connect() as conn:
        for i in range(runs + 1):
            live = LiveDays(state, conn, state.today(), cache)
            began = time.perf_counter()
            live.rows("DailySummary", day)
            if i:
                times.append((time.perf_counter() - began) * 1000)
    return times


def alternate(cases: list[tuple[Flask, str]], runs: int, warm: int = 2) -> list[list[float]]:
    """Request every case in turn ``runs`` times (after ``warm`` untimed rounds): load
    from other processes on the machine hits every case alike. Milliseconds."""
    clients = [(app.test_client(), url) for app, url in cases]
    times: list[list[float]] = [[] for _ in cases]
    for round_ in range(warm + runs):
        for (client, url), bucket in zip(clients, times, strict=True):
            began = time.perf_counter()
            response = client.get(url)
            took = (time.perf_counter() - began) * 1000
            assert response.status_code == 200, (url, response.status_code)
            if round_ >= warm:
                bucket.append(took)
    return times


def show(kind: str, label: str, times: list[float], note: str = "") -> None:
    print(f"[{kind}]   {label:58s} {summary(times)}{note}")


def ratio(kind: str, label: str, top: list[float], bottom: list[float], goal: str) -> None:
    median = statistics.median(top) / statistics.median(bottom)
    print(f"[{kind}]   ratio {label}: median {median:.2f}, min {min(top) / min(bottom):.2f}"
          f"  (goal {goal})")  # fmt: skip


def range_url(rng: DateRange) -> str:
    return f"/analytics/?start={rng.start}&end={rng.end}"


def old_event_case(kind: str, args: argparse.Namespace) -> None:
    with ExitStack() as stack:
        urls = [stack.enter_context(database(kind, args.postgres_admin_url)) for _ in range(2)]
        apps: list[Flask] = []
        for url, old in zip(urls, (False, True), strict=True):
            apps.append(load(url, site_days=args.site_days, today_events=args.small_today,
                             old_event=old, run_today=True))  # fmt: skip
        with apps[0].app_context():
            today = current_state(apps[0]).today()
        twelve = preset_range("12mo", today)
        span = twelve.span(twelve.previous())
        url = "/analytics/?period=12mo"
        print(f"[{kind}] (a) 12-month overview ({twelve.start} to {today}, compared with the "
              f"previous 12 months), site started {args.site_days} days ago, "
              f"{args.small_today:,} events today (aggregated), {args.runs} requests each")  # fmt: skip
        without, with_old = alternate([(apps[0], url), (apps[1], url)], args.runs)
        for label, app, times in (("no old event", apps[0], without),
                                  (f"one event {OLD_EVENT_DAYS} days ago", apps[1], with_old)):  # fmt: skip
            show(kind, label, times, f"   live days {live_days(app, span)}")
        ratio(kind, "one old event / none", with_old, without, "<= 1.2")
        # What the old event's day must cost: finding it, then computing it.
        probe = which_days(apps[1], span, args.runs)[2]
        old_day = today - dt.timedelta(days=OLD_EVENT_DAYS)
        day_times = live_day(apps[1], old_day, args.runs)
        floor = statistics.median(probe) + statistics.median(day_times)
        show(kind, "of which finding the live day", probe)
        show(kind, "of which computing it (its statement built already)", day_times)
        print(
            f"[{kind}]   floor: no old event + those two = ratio "
            f"{(statistics.median(without) + floor) / statistics.median(without):.2f}"
        )
        for app in apps:
            app.extensions["analytics_dashboard_live"] = LiveCache(3600)
        without, with_old = alternate([(apps[0], url), (apps[1], url)], args.runs)
        show(kind, "no old event, live cache warm", without)
        show(kind, f"one event {OLD_EVENT_DAYS} days ago, live cache warm", with_old)
        ratio(kind, "one old event / none, warm", with_old, without, "<= 1.2")
        for app in apps:
            app.extensions["analytics_dashboard_live"] = LiveCache(0)
        five_years = DateRange(today - dt.timedelta(days=MAX_RANGE_DAYS - 1), today)
        for label, rng in (("the 24 months read", span), ("5 years", five_years)):
            candidates, live, times = which_days(apps[1], rng, args.runs)
            show(kind, f"which days are live, {label}: {candidates} probed, {live} live",
                 times)  # fmt: skip
        show(kind, f"the probe alone, every day of 5 years ({five_years.days:,} days)",
             probe_alone(apps[1], five_years, args.runs))  # fmt: skip
        with previous_rule():
            live = live_days(apps[1], span)
            before = alternate([(apps[1], url)], args.previous_runs, warm=0)[0]
        show(kind, f"previous rule, one event {OLD_EVENT_DAYS} days ago", before,
             f"   live days {live}")  # fmt: skip
        for app in apps:
            with app.app_context():
                current_state(app).db.engine.dispose()


def busy_today_case(kind: str, args: argparse.Namespace) -> None:
    with database(kind, args.postgres_admin_url) as url:
        began = time.perf_counter()
        app = load(url, site_days=2 * 366, today_events=args.today_events, old_event=False,
                   run_today=False)  # fmt: skip
        loaded = time.perf_counter() - began
        with app.app_context():
            today = current_state(app).today()
        yesterday = today - dt.timedelta(days=1)
        ranges = {
            "30 days": (DateRange(today - dt.timedelta(days=29), today),
                        DateRange(yesterday - dt.timedelta(days=29), yesterday)),
            "12 months": (preset_range("12mo", today), preset_range("12mo", yesterday)),
        }  # fmt: skip
        print(f"[{kind}] (b) {args.today_events:,} raw events today (loaded in {loaded:.0f} s), "
              f"overviews ending today vs ending yesterday, {args.runs} requests each")  # fmt: skip
        to_today = range_url(ranges["30 days"][0])
        live = alternate([(app, to_today)], args.previous_runs, warm=0)[0]
        show(kind, "30 days to today, today live (no run yet)", live,
             f"   live days {live_days(app, ranges['30 days'][0])}")  # fmt: skip
        state = current_state(app)
        with app.app_context():
            began = time.perf_counter()
            app.extensions["analytics"].aggregate(today)
            job = time.perf_counter() - began
            with state.engine().connect() as conn:
                as_of = Stats(state, conn).live.today_as_of()
        print(f"[{kind}]   aggregate today (the 15-minute job): {job:.1f} s; today's rows "
              f"as of {as_of:%H:%M:%S} UTC")  # fmt: skip
        cases = []
        for ending_today, ending_yesterday in ranges.values():
            cases += [(app, range_url(ending_today)), (app, range_url(ending_yesterday))]
        times = alternate(cases, args.runs)
        for i, (label, (ending_today, _)) in enumerate(ranges.items()):
            today_times, yesterday_times = times[2 * i], times[2 * i + 1]
            show(kind, f"{label} to yesterday", yesterday_times)
            show(kind, f"{label} to today, today from its run", today_times,
                 f"   live days {live_days(app, ending_today)}")  # fmt: skip
            ratio(kind, f"{label}, to today / to yesterday", today_times, yesterday_times,
                  "<= 1.5")  # fmt: skip
        with app.app_context():
            state.db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["postgresql", "sqlite", "both"], default="both")
    parser.add_argument("--today-events", type=int, default=1_000_000)
    parser.add_argument("--small-today", type=int, default=10_000)
    parser.add_argument("--site-days", type=int, default=180)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--previous-runs", type=int, default=2,
                        help="requests timed for the slow reference figures")  # fmt: skip
    parser.add_argument("--only", choices=["old-event", "busy-today", "both"], default="both")
    parser.add_argument(
        "--postgres-admin-url", default="postgresql+psycopg://root@127.0.0.1:5432/test"
    )
    args = parser.parse_args()
    kinds = ["postgresql", "sqlite"] if args.db == "both" else [args.db]
    for kind in kinds:
        if args.only in ("old-event", "both"):
            old_event_case(kind, args)
        if args.only in ("busy-today", "both"):
            busy_today_case(kind, args)


if __name__ == "__main__":
    main()
