"""A gunicorn server of tests/scripts/load_app.py and bounded load clients for it.

The clients behave like the tracker: every event carries its own ``event_id``; a batch
is sent again after a 503 or a broken connection (exponential backoff with jitter,
until a deadline), and some are sent again although they were answered (resent
duplicates) or sent and then abandoned without reading the answer (a lost answer, then
a retry). Everything goes to 127.0.0.1 only, and every loop is bounded in count and time.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..support.processes import ROOT
from .load_app import PAGE_HOST

COLLECT_PATH = "/_analytics/collect"
BROWSER_UAS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:125.0) Gecko/20100101 Firefox/125.0",
)


class Gunicorn:
    """``python -m gunicorn`` serving the load app on a free loopback port."""

    def __init__(
        self,
        database_url: str,
        log: Path,
        *,
        workers: int = 2,
        threads: int = 4,
        env: dict[str, str] | None = None,
    ) -> None:
        self.log = log
        self._log_file = log.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-w",
                str(workers),
                "--threads",
                str(threads),
                "-b",
                "127.0.0.1:0",
                "--graceful-timeout",
                "5",
                "--access-logfile",
                "-",
                # gunicorn 27's control socket has one default path per user: two servers
                # (parallel test runs, a benchmark) would fight over it.
                "--no-control-socket",
                "tests.scripts.load_app:create_app()",
            ],
            cwd=ROOT,
            env={**os.environ, "LOAD_DATABASE_URL": database_url, **(env or {})},
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        self.port = self._wait_for_port(deadline=time.monotonic() + 60)
        self.url = f"http://127.0.0.1:{self.port}"
        self._wait_until_answering(deadline=time.monotonic() + 60)

    def _wait_for_port(self, deadline: float) -> int:
        while time.monotonic() < deadline:
            found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", self.log.read_text())
            if found:
                return int(found.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gunicorn did not start:\n{self.log.read_text()}")

    def _wait_until_answering(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + COLLECT_PATH, timeout=5)  # GET -> 405
            except urllib.error.HTTPError as exc:
                if exc.code == 405:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gunicorn does not answer:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log_file.close()

    def __enter__(self) -> Gunicorn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_events(count: int, rng: random.Random) -> list[dict[str, Any]]:
    """``count`` valid, distinct events for the load app's page host."""
    events = []
    for i in range(count):
        event: dict[str, Any] = {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "url": f"https://{PAGE_HOST}/p/{i % 97}?utm_source=s{i % 5}",
            "screen_width": rng.choice([390, 768, 1280, 1920]),
        }
        if i % 7 == 0:
            event["name"] = "signup"
            event["props"] = {"plan": rng.choice(["free", "pro"]), "n": i}
        if i % 3 == 0:
            event["referrer"] = f"https://ref{i % 11}.example/x"
        events.append(event)
    return events


def batches(events: list[dict[str, Any]], rng: random.Random, low: int, high: int) -> list[Any]:
    out = []
    i = 0
    while i < len(events):
        size = rng.randint(low, high)
        out.append(events[i : i + size])
        i += size
    return out


@dataclass
class Tally:
    """What the clients saw, counted under a lock."""

    statuses: Counter[int] = field(default_factory=Counter)
    #: Sum of "stored" over the answers read (each event must be stored exactly once).
    stored: int = 0
    duplicates: int = 0
    #: Requests sent then abandoned unread (their events may or may not be stored).
    abandoned: int = 0
    abandoned_events: int = 0
    connection_errors: int = 0
    #: 503 answers without a Retry-After header.
    missing_retry_after: int = 0
    #: Bodies of answers other than 202/503, for the failure message.
    unexpected: list[str] = field(default_factory=list)
    gave_up: int = 0
    #: Delivered batches queued again as duplicates.
    resent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: int, body: bytes, headers: http.client.HTTPMessage) -> None:
        with self.lock:
            self.statuses[status] += 1
            if status == 202:
                answer = json.loads(body)
                self.stored += answer["stored"]
                self.duplicates += answer["dropped"].get("duplicate", 0)
                other = {k: v for k, v in answer["dropped"].items() if k != "duplicate"}
                if other:
                    self.unexpected.append(f"202 dropped {other}")
            elif status == 503:
                if not headers.get("Retry-After"):
                    self.missing_retry_after += 1
            elif len(self.unexpected) < 20:
                self.unexpected.append(f"{status}: {body[:300]!r}")


class Client:
    """One keep-alive connection, used by one thread."""

    def __init__(self, port: int, ua: str, tally: Tally, rng: random.Random) -> None:
        self.port = port
        self.ua = ua
        self.tally = tally
        self.rng = rng
        self.conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def post(self, events: list[dict[str, Any]], *, abandon: bool = False) -> int | None:
        """POST once; the status, or None when the connection failed or was abandoned."""
        body = json.dumps(events).encode()
        headers = {"Content-Type": "application/json", "User-Agent": self.ua}
        try:
            conn = self._connection()
            conn.request("POST", COLLECT_PATH, body=body, headers=headers)
            if abandon:
                self.close()  # the answer is lost: the events may or may not be stored
                with self.tally.lock:
                    self.tally.abandoned += 1
                    self.tally.abandoned_events += len(events)
                return None
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            with self.tally.lock:
                self.tally.connection_errors += 1
            return None
        self.tally.add(response.status, data, response.headers)
        if response.will_close:
            self.close()
        return response.status

    def deliver(
        self, events: list[dict[str, Any]], deadline: float, *, abandon_rate: float = 0.0
    ) -> bool:
        """Send until answered 202, retrying 503s and broken connections like the tracker."""
        attempt = 0
        while time.monotonic() < deadline:
            abandon = attempt == 0 and self.rng.random() < abandon_rate
            status = self.post(events, abandon=abandon)
            if status == 202:
                return True
            if status is not None and status != 503:
                return False  # a 4xx/5xx other than 503 is not retried (and fails the test)
            if not abandon:
                time.sleep(min(0.02 * 2**attempt, 0.5) * (0.5 + self.rng.random()))
                attempt += 1
        with self.tally.lock:
            self.tally.gave_up += 1
        return False


def run_load(
    port: int,
    work: list[list[dict[str, Any]]],
    *,
    threads: int,
    seed: int,
    deadline: float,
    resend_rate: float = 0.1,
    abandon_rate: float = 0.0,
    progress: list[int] | None = None,
    tally: Tally | None = None,
) -> Tally:
    """Deliver every batch of ``work`` from ``threads`` threads; returns what they saw.

    After a batch is delivered, ``resend_rate`` of the time it is queued again as a
    duplicate (mixed with the first events of another delivered batch, so requests never
    repeat exactly), to be sent by whichever thread takes it next.
    ``progress[0]`` counts delivered batches and ``tally`` can be watched while it runs
    (for tests that act mid-run).
    """
    tally = tally if tally is not None else Tally()
    jobs: queue.Queue[tuple[list[dict[str, Any]], bool]] = queue.Queue()
    for batch in work:
        jobs.put((batch, False))
    pending = [len(work)]
    done = threading.Condition()
    delivered: list[list[dict[str, Any]]] = []
    failures: list[BaseException] = []

    def worker(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        client = Client(port, BROWSER_UAS[index % len(BROWSER_UAS)], tally, rng)
        try:
            while time.monotonic() < deadline:
                with done:
                    if pending[0] == 0:
                        return
                try:
                    batch, is_resend = jobs.get(timeout=0.05)
                except queue.Empty:
                    continue
                client.deliver(batch, deadline, abandon_rate=abandon_rate)
                with done:
                    pending[0] -= 1
                    if progress is not None:
                        progress[0] += 1
                    if not is_resend:
                        delivered.append(batch)
                        if rng.random() < resend_rate:
                            other = rng.choice(delivered)
                            jobs.put((batch + other[: rng.randint(0, 3)], True))
                            pending[0] += 1
                            with tally.lock:
                                tally.resent += 1
        except BaseException as exc:  # surfaced to the test below
            failures.append(exc)
        finally:
            client.close()

    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=max(1.0, deadline - time.monotonic() + 30))
    if failures:
        raise failures[0]
    if any(thread.is_alive() for thread in pool) or pending[0]:
        raise TimeoutError(f"load not delivered in time: {pending[0]} batches left")
    return tally


@contextlib.contextmanager
def served(database_url: str, log: Path, **env: str) -> Iterator[Gunicorn]:
    server = Gunicorn(database_url, log, env=env)
    try:
        yield server
    finally:
        server.stop()
