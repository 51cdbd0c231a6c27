"""``worker`` and ``scheduler``: the RQ processes that serve ``ANALYTICS_QUEUE``."""

from __future__ import annotations

import click

from .common import app_command, app_state, click_errors, redis_extra


@app_command("worker")
@click.option("--burst", is_flag=True, help="Exit once the queue is empty.")
@click.option("--name", default=None, help="Worker name (default: random).")
@click.option(
    "--no-fork",
    is_flag=True,
    help="Run jobs in the worker process (rq's SimpleWorker), for platforms without fork().",
)
def worker_command(burst: bool, name: str | None, no_fork: bool) -> None:
    """Run an RQ worker on ANALYTICS_QUEUE; jobs run inside this app's context."""
    state = app_state()
    with click_errors():
        if state.settings.redis_url is None:
            raise click.ClickException(
                "ANALYTICS_REDIS_URL is not set: commands run their work inline, so there is "
                "nothing for a worker to do."
            )
        with redis_extra():
            from ..tasks.worker import run_worker
        worked = run_worker(state.app, burst=burst, name=name, fork=not no_fork)
    if burst:
        click.echo("Queue empty: ran jobs." if worked else "Queue empty: nothing to run.")


@app_command("scheduler")
def scheduler_command() -> None:
    """Run RQ's CronScheduler with the periodic jobs (times in ANALYTICS_TIMEZONE)."""
    state = app_state()
    with click_errors():
        if state.settings.redis_url is None:
            raise click.ClickException(
                "ANALYTICS_REDIS_URL is not set: the scheduler needs Redis and an RQ worker."
            )
        with redis_extra():
            from ..tasks.scheduler import build_scheduler, schedule
        scheduler = build_scheduler(state.app)
    click.echo(f"Scheduling on queue {state.settings.queue!r} ({state.settings.timezone.key}):")
    for entry in schedule(state):
        click.echo(f"  {entry.cron:<14} {entry.name:<20} {entry.description}")
    scheduler.start()  # type: ignore[no-untyped-call]
