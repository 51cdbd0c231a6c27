"""The benchmark suite in one command: every figure measured in one run, one table.

    python -m bench              # ~6-10 minutes on 2 cores
    python -m bench --quick      # a couple of minutes: short runs, small tables
    python -m bench --aggregate-events 1000000 --dashboard-big 10000000 \\
        --query-events 3000000   # the full sizes
    python -m bench --only ingest,flush

Sections (each its own process, run one after the other on the same machine):

- ingest: bench/ingest.py, gunicorn + wrk: direct vs Redis-buffered x SQLite vs
  PostgreSQL x one event vs batches of 20, each with the bare Flask endpoint of the same
  server (buffered events/s are end to end: until the flusher emptied the buffer);
- flush: bench/flush.py, rows/s of the buffer's bulk write (PostgreSQL COPY, SQLite
  executemany) and the append cost per request (one entry vs one per row, early dedupe);
- aggregate: bench/aggregate.py, aggregate_day vs one scan of the same day, peak memory;
- dashboard: bench/dashboard.py, the 365-day overview with 10k raw rows vs a big table;
- query: bench/query.py, filtered 30-day questions (raw + archived events, 3M with
  --query-events 3000000) against one count(DISTINCT visitor_id) scan of the same events;
- tracker: static/analytics/tracker.min.js gzipped.

Every section's full output goes to a log file (its path is printed); the table at the
end picks the figures out of it. Needs PostgreSQL and Redis on localhost (the tests'),
`wrk` and gunicorn.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TRACKER = ROOT / "flask_analytics" / "static" / "analytics" / "tracker.min.js"
SECTIONS = ("ingest", "flush", "aggregate", "dashboard", "query", "tracker")
DBS = ("sqlite", "postgresql")


@dataclass
class Row:
    section: str
    figure: str
    values: dict[str, str] = field(default_factory=dict)  # database (or "all") -> text
    goal: str = ""


@dataclass
class Suite:
    args: argparse.Namespace
    log: Any
    rows: list[Row] = field(default_factory=list)
    loads: list[str] = field(default_factory=list)

    def run(self, name: str, command: list[str]) -> str:
        """Run one section's command, logging its output; returns stdout + stderr."""
        self.loads.append(f"{name}: {_load()}")
        print(f"[bench] {name}: {' '.join(command[1:])}  (load {_load()})", file=sys.stderr)
        started = time.monotonic()
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env={**os.environ})
        output = proc.stdout + proc.stderr
        self.log.write(f"\n===== {name}: {' '.join(command)}\n{output}")
        self.log.flush()
        took = time.monotonic() - started
        print(f"[bench] {name}: done in {took:.0f} s (exit {proc.returncode})", file=sys.stderr)
        if proc.returncode != 0:
            self.rows.append(Row(name, f"FAILED (exit {proc.returncode}): see the log", {}))
        return output

    def add(self, section: str, figure: str, values: dict[str, str], goal: str = "") -> None:
        self.rows.append(Row(section, figure, values, goal))


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _last_json(output: str) -> Any:
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return None


def _n(value: float) -> str:
    return f"{value:,.0f}"


# -- sections -----------------------------------------------------------------------------


def ingest(suite: Suite) -> None:
    a = suite.args
    out = suite.run("ingest", [sys.executable, "-m", "bench.ingest", "--duration",
                               str(a.ingest_duration), "--json"])  # fmt: skip
    data = _last_json(out)
    if data is None:
        return
    suite.add("ingest", "pipeline CPU per event, µs (parse + steps)",
              {"all": f"{data['pipeline_cpu_us']:.0f}"}, "≤ 100")  # fmt: skip
    results = data["results"]

    def pick(db: str, mode: str, case: str, batch: int) -> dict[str, Any] | None:
        for r in results:
            if (r["db"], r["mode"], r["case"], r["batch"]) == (db, mode, case, batch):
                return dict(r)
        return None

    for mode, name in (("direct", "direct"), ("redis", "buffered")):
        bare = {db: pick(db, mode, "bare", 1) for db in DBS}
        suite.add("ingest", f"bare Flask endpoint, req/s ({name} server)",
                  {db: _n(r["rps"]) for db, r in bare.items() if r})  # fmt: skip
        floor_case = "bare-xadd" if mode == "redis" else "bare-insert"
        floor = {db: pick(db, mode, floor_case, 1) for db in DBS}
        if any(floor.values()):
            what = "one Redis XADD" if mode == "redis" else "one INSERT"
            suite.add(
                "ingest", f"bare endpoint + {what} (no pipeline): req/s (x bare)",
                {db: f"{_n(r['rps'])} ({r['ratio']:.2f}x)" for db, r in floor.items() if r},
            )  # fmt: skip
        one = {db: pick(db, mode, "collect", 1) for db in DBS}
        suite.add(
            "ingest", f"{name}, 1 event: req/s (x bare)",
            {db: f"{_n(r['rps'])} ({r['ratio']:.2f}x)" for db, r in one.items() if r},
            "≥ 0.8x bare" if mode == "redis" else "",
        )  # fmt: skip
        batch = {db: pick(db, mode, "collect", 20) for db in DBS}
        label = "end to end" if mode == "redis" else "stored"
        suite.add(
            "ingest", f"{name}, batches of 20: events/s {label}",
            {db: _n(r["eps"]) for db, r in batch.items() if r},
            "≥ 25,000" if mode == "redis" else "",
        )  # fmt: skip
        if mode == "redis":
            suite.add(
                "ingest", "buffered, batches of 20: events/s accepted (HTTP)",
                {db: _n(r["rps"] * 20) for db, r in batch.items() if r},
            )  # fmt: skip


def flush(suite: Suite) -> None:
    a = suite.args
    out = suite.run("flush", [sys.executable, "-m", "bench.flush", "--rows", str(a.flush_rows),
                              "--append-requests", str(a.append_requests), "--json"])  # fmt: skip
    data = _last_json(out)
    if data is None:
        return
    suite.add("flush", f"flush {a.flush_rows:,} buffered rows: rows/s",
              {f["database"]: _n(f["rows_per_s"]) for f in data["flush"]},
              "≥ 100,000 (PostgreSQL COPY)")  # fmt: skip
    for append in data["append"]:
        suite.add("flush", f"append 20 rows, {append['case']}: µs/request (Redis B/row)",
                  {"all": f"{append['us_per_request']:.0f} ({append['redis_bytes_per_row']:.0f})"})  # fmt: skip


AGG_RATIO = re.compile(r"ratio aggregate/scan \(medians\): wall ([\d.]+), CPU ([\d.]+)")
AGG_WRITER = re.compile(
    r"writer beside aggregate_day \(([\d.]+) s\): \d+ single-event inserts, "
    r"longest (\d+) ms"
)
AGG_FLOOR = re.compile(
    r"COUNT\(DISTINCT visitor_id\) over the day's pageviews .*?: ([\d.]+) s, "
    r"([\d.]+) x the scan"
)
AGG_SESSIONS = re.compile(r"([\d.]+) s\s+([\d.]+) x\s+analytics_tmp_session\n")
AGG_MEMORY = re.compile(
    r"aggregating\s+([\d,]+) events in a fresh process: RSS (\d+) MiB before, peak (\d+) MiB"
    r".*?\(\+([\d.]+) MiB\); Python heap peak ([\d.]+) MiB"
)


def aggregate(suite: Suite) -> None:
    a = suite.args
    out = suite.run("aggregate", [sys.executable, "bench/aggregate.py", "--events",
                                  str(a.aggregate_events), "--repeat", str(a.repeat),
                                  "--db", "both"])  # fmt: skip
    ratios: dict[str, str] = {}
    memory: dict[str, str] = {}
    writer: dict[str, str] = {}
    floor: dict[str, str] = {}
    sessions: dict[str, str] = {}
    for db, part in _by_heading(out, {"SQLite": "sqlite", "PostgreSQL": "postgresql"}).items():
        if m := AGG_RATIO.search(part):
            ratios[db] = f"{m.group(1)} ({m.group(2)})"
        if m := AGG_FLOOR.search(part):
            floor[db] = f"{m.group(2)}"
        if m := AGG_SESSIONS.search(part):
            sessions[db] = f"{m.group(2)}"
        if m := AGG_WRITER.search(part):
            writer[db] = f"{m.group(2)} ms ({m.group(1)} s run)"
        found = AGG_MEMORY.findall(part)
        if len(found) == 2:
            memory[db] = f"+{found[0][3]} / +{found[1][3]} MiB"
    suite.add("aggregate", f"aggregate_day / one scan, {a.aggregate_events:,} events: wall (CPU)",
              ratios, "≤ 4 SQLite, ≤ 3 PostgreSQL (at 1M)")  # fmt: skip
    suite.add("aggregate", "of which the session walk (one statement) / one scan", sessions)
    suite.add("aggregate", "per-page distinct visitors alone (one GROUP BY) / one scan", floor)
    suite.add("aggregate", f"peak RSS growth, 10,000 vs {a.aggregate_events:,} events", memory,
              "flat")  # fmt: skip
    suite.add("aggregate", "longest single-event insert beside aggregate_day (run's time)",
              writer)  # fmt: skip


def _by_heading(output: str, names: dict[str, str]) -> dict[str, str]:
    parts: dict[str, str] = {}
    current = None
    for line in output.splitlines():
        heading = re.match(r"== (\w+) ==", line)
        if heading:
            current = names.get(heading.group(1))
            continue
        if current:
            parts[current] = parts.get(current, "") + line + "\n"
    return parts


DASH_CASE = re.compile(r"\[(\w+)\]\s+raw\s+([\d,]+)\s+(.+?)\s+median\s+([\d.]+) ms")
DASH_RATIO = re.compile(r"\[(\w+)\]\s+ratio [\d,]+/[\d,]+: median ([\d.]+)")


def dashboard(suite: Suite) -> None:
    a = suite.args
    out = suite.run("dashboard", [sys.executable, "bench/dashboard.py", "--db", "both",
                                  "--big", str(a.dashboard_big), "--runs", str(a.dashboard_runs),
                                  "--today-events", str(a.today_events)])  # fmt: skip
    cases: dict[str, dict[str, list[str]]] = {}
    order: list[str] = []
    for db, _size, label, median in DASH_CASE.findall(out):
        if label not in cases:
            cases[label] = {}
            order.append(label)
        cases[label].setdefault(db, []).append(median)
    ratios: dict[str, list[str]] = {}
    for db, ratio in DASH_RATIO.findall(out):
        ratios.setdefault(db, []).append(ratio)
    for i, label in enumerate(order):
        values = {}
        for db, medians in cases[label].items():
            ratio = ratios.get(db, [])
            suffix = f", x{ratio[i]}" if i < len(ratio) else ""
            values[db] = " / ".join(medians) + f" ms{suffix}"
        goal = "≤ 100 ms, x ≤ 1.5" if i == 0 else ""
        suite.add("dashboard", f"overview, {label}: 10k / {a.dashboard_big:,} raw rows",
                  values, goal)  # fmt: skip


#: bench/query.py's case labels -> (the table's words, goal as a ratio to the floor).
QUERY_ROWS = {
    "floor: count(*), count(DISTINCT visitor_id)": ("floor: one distinct-visitor scan", ""),
    "the same, read by a plain table scan": ("the floor by a plain table scan", ""),
    "overview, unfiltered (daily rollups)": ("overview, unfiltered (daily rollups)", ""),
    "overview, source:is:Google": ("overview, source:is:Google", "≤ 3x"),
    "overview, page:matches:/blog/*": ("overview, page:matches:/blog/*", "≤ 3x"),
    "breakdown: top pages, source:is:Google": ("top pages, source:is:Google", "≤ 1.5x"),
}


def query(suite: Suite) -> None:
    a = suite.args
    out = suite.run("query", [sys.executable, "bench/query.py", "--db", "both", "--events",
                              str(a.query_events), "--runs", str(a.query_runs)])  # fmt: skip
    data = _last_json(out)
    if data is None:
        return
    for label, (words, goal) in QUERY_ROWS.items():
        values = {
            db: f"{cases[label]['median_ms']:,.0f} ms (x{cases[label]['ratio']:.2f})"
            for db, cases in data["query"].items()
            if label in cases
        }
        if label.startswith("floor"):
            words += f" of 30 days, {a.query_events:,} raw + archived events"
        suite.add("query", f"{words}: median (x floor)", values, goal)


def tracker(suite: Suite) -> None:
    data = TRACKER.read_bytes()
    packed = len(gzip.compress(data, compresslevel=9, mtime=0))
    suite.add("tracker", "tracker.min.js: bytes gzipped -9 (raw)",
              {"all": f"{packed:,} ({len(data):,})"}, "≤ 2,000")  # fmt: skip


RUNNERS: dict[str, Callable[[Suite], None]] = {
    "ingest": ingest,
    "flush": flush,
    "aggregate": aggregate,
    "dashboard": dashboard,
    "query": query,
    "tracker": tracker,
}


# -- output -------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} x {cpu}{memory}; Python {platform.python_version()}"


def table(suite: Suite) -> str:
    headers = ("section", "figure", "SQLite", "PostgreSQL", "goal")
    lines = []
    for row in suite.rows:
        if "all" in row.values:
            sqlite, postgres = row.values["all"], ""
        else:
            sqlite = row.values.get("sqlite", "-")
            postgres = row.values.get("postgresql", "-")
        lines.append((row.section, row.figure, sqlite, postgres, row.goal))
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    for line in lines:
        out.append("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)))
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="short runs, small tables")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--aggregate-events", type=int, help="events of the aggregated day")
    parser.add_argument("--dashboard-big", type=int, help="raw rows of the big dashboard case")
    parser.add_argument("--query-events", type=int, help="raw + archived events of the query case")
    parser.add_argument("--log", type=Path, help="where the sections' output goes")
    args = parser.parse_args()
    quick = args.quick
    args.ingest_duration = 3 if quick else 10
    args.flush_rows = 20_000 if quick else 200_000
    args.append_requests = 300 if quick else 2_000
    args.aggregate_events = args.aggregate_events or (20_000 if quick else 100_000)
    args.repeat = 1 if quick else 3
    args.dashboard_big = args.dashboard_big or (100_000 if quick else 1_000_000)
    args.dashboard_runs = 5 if quick else 20
    args.today_events = 1_000 if quick else 5_000
    args.query_events = args.query_events or (100_000 if quick else 1_000_000)
    args.query_runs = 1 if quick else 3
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    log_path = args.log or Path(f"/tmp/flask-analytics-bench-{stamp}.log")
    began = time.monotonic()
    start_load = _load()
    with log_path.open("w") as log:
        suite = Suite(args, log)
        for name in sections:
            RUNNERS[name](suite)
    minutes = (time.monotonic() - began) / 60
    print()
    print(f"flask-analytics benchmarks, {dt.datetime.now():%Y-%m-%d %H:%M}"
          f"{' (--quick)' if quick else ''}, {minutes:.1f} min")  # fmt: skip
    print(f"machine: {machine()}")
    print(f"load average (1/5/15 min): {start_load} at start, {_load()} at the end; "
          "per section: " + "; ".join(suite.loads))  # fmt: skip
    print()
    print(table(suite))
    print()
    print(f"full output: {log_path}")


if __name__ == "__main__":
    main()
