"""The RQ worker's own parts: the pubsub thread that listens for rq's commands."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask import Flask

from flask_analytics.tasks import worker


@pytest.mark.redis
@pytest.mark.parametrize("fork", [True, False])
def test_burst_worker_listens_with_a_short_wait_and_stops_its_pubsub_thread(
    redis_app: Flask, monkeypatch: pytest.MonkeyPatch, fork: bool
) -> None:
    """rq 3.0 subscribes with ``sleep_time=60``: a pubsub thread that read the UNSUBSCRIBE
    reply before its stop flag was cleared waited that long for a new subscription, and
    redis-py 8.2's ``stop()`` waited for the thread, so a burst worker could hang a minute
    before exiting."""
    made: list[Any] = []
    make_worker = worker.make_worker

    def make_and_keep(app: Flask, **kwargs: Any) -> Any:
        made.append(make_worker(app, **kwargs))
        return made[-1]

    monkeypatch.setattr(worker, "make_worker", make_and_keep)
    name = f"{redis_app.config['ANALYTICS_QUEUE']}-{uuid.uuid4().hex[:6]}"

    assert worker.run_worker(redis_app, burst=True, name=name, fork=fork) is False

    [made_worker] = made
    thread = made_worker.pubsub_thread
    assert thread is not None
    assert thread.sleep_time == worker.PUBSUB_WAIT_SECONDS <= 1
    assert not thread.is_alive()
