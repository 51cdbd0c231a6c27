"""The RQ worker: jobs run inside the Flask app context.

rq 3's default worker class is the forking ``rq.Worker``: the worker process dequeues a
job and forks a "work horse" that runs it, so a crashing or leaking job never takes the
worker down. :class:`AppWorker` keeps that model and runs every job inside
``app.app_context()``. Database connections never cross the fork: the worker closes its
idle pooled connections before forking, and the horse calls
``engine.dispose(close=False)`` so it opens its own connections and never uses (or
closes) one the parent holds. ``rq.SpawnWorker`` is not used: its horse is a fresh
interpreter that would have to rebuild the app. ``--no-fork`` selects
:class:`AppSimpleWorker` (jobs run in the worker process) for platforms without fork().
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from flask import Flask
from redis import Redis
from rq import Queue, SimpleWorker, Worker
from rq.job import Job
from rq.worker import BaseWorker

from ..state import current_state
from .enqueue import QUEUE_ONLY_HINT, redis_connection

if TYPE_CHECKING:
    from rq.executions import Execution

#: Seconds the worker's pubsub thread waits for a command (rq's shutdown, stop-job and
#: kill-horse) before it checks whether it should stop; rq's own is 60. It bounds how long
#: the worker's teardown can wait for that thread (see :class:`ShortPubsubWait`).
PUBSUB_WAIT_SECONDS = 1.0


@contextmanager
def _job_context(app: Flask | None, in_horse: bool) -> Iterator[None]:
    if app is None:
        raise RuntimeError("This worker has no Flask app: create it with app=...")
    with app.app_context():
        if in_horse:
            # Forked from the worker: drop the inherited pool without closing the parent's
            # connections (closing them would end the parent's database sessions).
            for engine in app.extensions["analytics"].db.engines.values():
                engine.dispose(close=False)
        yield


def _close_idle_connections(app: Flask | None) -> None:
    """Close the worker's idle pooled connections so a horse has nothing to inherit."""
    if app is None:
        return
    with app.app_context():
        for engine in app.extensions["analytics"].db.engines.values():
            engine.dispose()


class ShortPubsubWait(BaseWorker):
    """A worker whose pubsub thread waits :data:`PUBSUB_WAIT_SECONDS`, not rq's 60 s.

    rq (3.0) stops that thread at teardown by sending UNSUBSCRIBE, then calling the
    thread's ``stop()``. When the thread reads the UNSUBSCRIBE reply before ``stop()``
    clears its run flag, it has no channel left and redis-py's ``get_message`` waits the
    whole sleep time for a new subscription; redis-py 8.2's ``stop()`` joins the thread
    without a timeout. So a worker's exit (every ``--burst`` run ends with one) could
    take a minute; with the short wait it takes a second at most.
    """

    def subscribe(self) -> None:
        # rq's subscribe(), but for the thread's sleep_time.
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        # rq leaves pubsub_thread unannotated, so mypy reads its type as None.
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]
            sleep_time=PUBSUB_WAIT_SECONDS,
            daemon=True,
            exception_handler=self._pubsub_exception_handler,
        )


class AppWorker(ShortPubsubWait, Worker):
    """rq's forking worker, running each job in its horse inside the Flask app context."""

    def __init__(self, *args: Any, app: Flask | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app = app

    def execute_job(self, job: Job, queue: Queue) -> None:
        _close_idle_connections(self.app)
        super().execute_job(job, queue)

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        with _job_context(self.app, self.is_horse):
            return super().perform_job(job, queue, execution)


class AppSimpleWorker(ShortPubsubWait, SimpleWorker):
    """rq's non-forking worker (jobs run in the worker process), inside the app context."""

    def __init__(self, *args: Any, app: Flask | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app = app

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        with _job_context(self.app, False):
            return super().perform_job(job, queue, execution)


def make_worker(
    app: Flask, *, name: str | None = None, fork: bool = True, connection: Redis | None = None
) -> AppWorker | AppSimpleWorker:
    """A worker listening on ``ANALYTICS_QUEUE`` whose jobs run in ``app``'s context."""
    state = current_state(app)
    connection = connection or redis_connection(state, QUEUE_ONLY_HINT)
    cls: type[AppWorker] | type[AppSimpleWorker] = AppWorker if fork else AppSimpleWorker
    return cls([state.settings.queue], connection=connection, name=name, app=app)


def run_worker(
    app: Flask,
    *,
    burst: bool = False,
    name: str | None = None,
    fork: bool = True,
    logging_level: str = "INFO",
) -> bool:
    """Work on ``ANALYTICS_QUEUE`` (until empty with ``burst``); True if any job ran."""
    worker = make_worker(app, name=name, fork=fork)
    return bool(worker.work(burst=burst, logging_level=logging_level))
