"""The repository root (where subprocesses run) and polling until something happens."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

#: The repository root: the working directory of ``flask --app tests.scripts...`` processes.
ROOT = Path(__file__).resolve().parents[2]


def wait_for(
    condition: Callable[[], bool], what: str, timeout: float = 60, interval: float = 0.01
) -> None:
    """Poll ``condition`` until it is true; fail the test naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(interval)


def wait_while_running(
    proc: subprocess.Popen[bytes],
    log: Path,
    condition: Callable[[], bool],
    what: str,
    timeout: float,
) -> None:
    """Poll ``condition`` while ``proc`` runs; fail with its ``log`` if it ends first.

    On timeout the process is killed (so the test leaves nothing behind) before failing.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"the process ended (exit {proc.returncode}) before {what}:\n{log.read_text()}"
            )
        if condition():
            return
        time.sleep(0.002)
    proc.kill()
    proc.wait()
    pytest.fail(f"timed out waiting for {what}:\n{log.read_text()}")
