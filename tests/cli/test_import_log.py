"""``flask analytics import-log`` (both databases): a combined-format access log's page
views go through the pipeline with the lines' times, addresses, user agents and
referrers; assets, other methods and statuses, bots and malformed lines are not stored;
importing the same file again, or an overlapping one, adds nothing but the new lines."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import time_machine
from flask import Flask

from flask_analytics.state import current_state

from ..conftest import DESKTOP_UA, MOBILE_UA

NOW = dt.datetime(2026, 11, 18, 15, 0, tzinfo=dt.timezone.utc)
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def line(ip: str, when: str, request: str, status: int, referrer: str, agent: str) -> str:
    return f'{ip} - - [{when}] "{request}" {status} 512 "{referrer}" "{agent}"'


#: (line, the page view it is: (UTC time, path, referrer host) or None).
LINES: list[tuple[str, Any]] = [
    (
        line("198.51.100.7", "18/Nov/2026:10:00:00 +0100", "GET /pricing?plan=pro HTTP/1.1", 200,
             "https://www.google.com/", DESKTOP_UA),
        (dt.datetime(2026, 11, 18, 9, 0), "/pricing", "google.com"),  # www. dropped
    ),
    (
        line("198.51.100.7", "18/Nov/2026:10:00:01 +0100", "GET /static/app.css HTTP/1.1", 200,
             "https://example.com/pricing", DESKTOP_UA),
        None,
    ),
    (
        line("203.0.113.9", "17/Nov/2026:23:30:00 -0500", "GET /blog/a%20b HTTP/2.0", 200, "-",
             MOBILE_UA),
        (dt.datetime(2026, 11, 18, 4, 30), "/blog/a%20b", None),
    ),
    (line("203.0.113.9", "18/Nov/2026:08:00:00 +0000", "POST /login HTTP/1.1", 200, "-",
          MOBILE_UA), None),
    (line("203.0.113.9", "18/Nov/2026:08:00:00 +0000", "GET /missing HTTP/1.1", 404, "-",
          MOBILE_UA), None),
    (line("203.0.113.9", "18/Nov/2026:08:00:00 +0000", "GET /old HTTP/1.1", 301, "-",
          MOBILE_UA), None),
    (line("66.249.66.1", "18/Nov/2026:08:00:00 +0000", "GET / HTTP/1.1", 200, "-", BOT), None),
    ("this is not a log line", None),
    (
        line("192.0.2.1", "18/Nov/2026:11:59:59 +0000", "GET / HTTP/1.1", 200, "-", DESKTOP_UA),
        (dt.datetime(2026, 11, 18, 11, 59, 59), "/", None),
    ),
]  # fmt: skip


def run(app: Flask, path: Path) -> str:
    with time_machine.travel(NOW, tick=False):
        result = app.test_cli_runner().invoke(
            args=["analytics", "import-log", str(path), "--hostname", "Example.com"]
        )
    assert result.exit_code == 0, result.output
    return result.output


def events(app: Flask) -> list[tuple[Any, ...]]:
    state = current_state(app)
    table = state.models.Event.__table__
    with app.app_context(), state.engine().connect() as conn:
        rows = conn.execute(
            sa.select(
                table.c.created_at, table.c.path, table.c.referrer_host, table.c.hostname,
                table.c.name, table.c.event_id,
            ).order_by(table.c.created_at)
        ).all()  # fmt: skip
    return [tuple(r) for r in rows]


def test_a_log_imports_once(app: Flask, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("\n".join(text for text, _ in LINES) + "\n", "utf-8")
    want = sorted(hit for _, hit in LINES if hit is not None)
    output = run(app, log)
    assert "stored 3 page views" in output
    assert "1 invalid" in output
    stored = events(app)
    assert [(t, p, r) for t, p, r, *_ in stored] == want
    assert {(h, n) for *_, h, n, _e in stored} == {("example.com", "pageview")}
    # Again, and gzipped: nothing new.
    again = tmp_path / "access.log.gz"
    with gzip.open(again, "wt", encoding="utf-8") as out:
        out.write(log.read_text("utf-8"))
    assert "stored 0 page views" in run(app, again)
    assert "stored 0 page views" in run(app, log)
    assert events(app) == stored
    # An overlapping file: its one new page view only.
    extra = line(
        "192.0.2.2", "18/Nov/2026:12:00:00 +0000", "GET /new HTTP/1.1", 200, "-", DESKTOP_UA
    )
    overlap = tmp_path / "next.log"
    overlap.write_text(LINES[-1][0] + "\n" + extra + "\n", "utf-8")
    assert "stored 1 page view" in run(app, overlap)
    assert [e[1] for e in events(app)] == [p for _, p, _ in want] + ["/new"]
