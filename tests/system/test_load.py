"""Exactly-once under load: a real gunicorn server on PostgreSQL, concurrent clients.

``ANALYTICS_LOAD_EVENTS`` distinct events (default 20,000; set it lower on a slow
machine) with client event ids go out in batches of 1-20 from 8 threads over
keep-alive connections; 10% of delivered batches are sent again (mixed with events of
another batch) and 3% of first attempts lose their answer (sent, then the connection is
dropped unread) and are retried. The database must hold every event exactly once, every
answer must be a 202, and the "stored" counts of the answers must add up.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ..scripts import load_app
from ..scripts.load_client import batches, make_events, run_load, served

pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_clock("the app is served by gunicorn in other processes, on the real clock"),
]

EVENTS = int(os.environ.get("ANALYTICS_LOAD_EVENTS", "20000"))
THREADS = 8
SEED = 9


@pytest.fixture
def load_database(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The session's PostgreSQL database with fresh analytics tables (dropped afterwards)."""
    pytest.importorskip("gunicorn", reason="gunicorn is not installed (dev extra)")
    monkeypatch.setenv("LOAD_DATABASE_URL", postgres_url)
    app = load_app.create_app()
    db = app.extensions["sqlalchemy"]
    with app.app_context():
        db.drop_all()
        db.create_all()
    yield postgres_url
    with app.app_context():
        db.drop_all()
        db.engine.dispose()


def stored_events(url: str) -> list[tuple[str, str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(sa.text("SELECT event_id, name FROM analytics_event"))
            ]
    finally:
        engine.dispose()


def test_every_event_is_stored_exactly_once(load_database: str, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    events = make_events(EVENTS, rng)
    work = batches(events, rng, 1, 20)
    started = time.monotonic()
    with served(load_database, tmp_path / "gunicorn.log") as server:
        tally = run_load(
            server.port,
            work,
            threads=THREADS,
            seed=SEED,
            deadline=time.monotonic() + 300,
            resend_rate=0.1,
            abandon_rate=0.03,
        )
    elapsed = time.monotonic() - started
    requests = sum(tally.statuses.values()) + tally.abandoned
    print(
        f"{EVENTS:,} events in {len(work):,} batches, {requests:,} requests "
        f"({tally.resent:,} resent batches, {tally.abandoned:,} lost answers, "
        f"{tally.connection_errors:,} reconnects) in {elapsed:.1f} s"
    )

    # Every answer read was a 202: no 5xx, and no 4xx for valid events.
    assert set(tally.statuses) == {202}, (tally.statuses, tally.unexpected)
    assert tally.unexpected == []
    assert tally.gave_up == 0
    # The run did exercise duplicates and retries.
    assert tally.resent >= 0.05 * len(work)
    assert tally.abandoned >= 0.01 * len(work)
    assert tally.duplicates >= tally.resent

    rows = stored_events(load_database)
    sent = {e["event_id"] for e in events}
    assert len(rows) == EVENTS
    assert {event_id for event_id, _ in rows} == sent
    expected_names = Counter(e.get("name", "pageview") for e in events)
    assert Counter(name for _, name in rows) == expected_names
    # Each event was answered "stored" once: the answers lost on purpose hold the rest.
    assert EVENTS - tally.abandoned_events <= tally.stored <= EVENTS
    # Nothing went wrong on the server side either (lost answers included).
    log = (tmp_path / "gunicorn.log").read_text()
    assert "Traceback" not in log
    assert "[ERROR]" not in log
