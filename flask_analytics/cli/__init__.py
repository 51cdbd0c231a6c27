"""``flask analytics ...`` commands: thin wrappers over the public functions.

With ``ANALYTICS_REDIS_URL`` set, ``aggregate``, ``backfill``, ``archive`` and ``purge``
queue RQ jobs (deterministic ids: a day is never queued twice) unless ``--sync``; without
it they run inline with a progress bar. Errors exit with status 1 and a clear message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click
from flask import current_app
from flask.cli import AppGroup

from ..core.clock import parse_day
from ..core.runs import DayState, day_state
from ..errors import AnalyticsError
from ..lifecycle import aggregate as aggregation
from ..lifecycle.archive import archive, purge
from ..state import AppState, current_state
from ..tasks import queueing
from ..tasks.status import status_report

if TYPE_CHECKING:
    from types import ModuleType


def _jobs() -> ModuleType:
    """The RQ side of the commands, which needs the ``redis`` extra."""
    try:
        from ..tasks import jobs
    except ImportError as exc:
        raise click.ClickException(
            f"This needs RQ and Redis ({exc.name} is not installed): "
            "pip install 'flask-analytics[redis]'."
        ) from exc
    return jobs


analytics_cli = AppGroup("analytics", help="Aggregate, archive and inspect analytics data.")

SYNC_HELP = "Run inline even when ANALYTICS_REDIS_URL is set (instead of queueing a job)."


class DayParam(click.ParamType):  # type: ignore[type-arg]
    """``YYYY-MM-DD``, ``today`` or ``yesterday`` (kept as text: resolved in the site zone)."""

    name = "DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        try:
            parse_day(text, dt.date(2000, 1, 1))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return text


DAY = DayParam()


def _state() -> AppState:
    try:
        return current_state()
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def _errors() -> Iterator[None]:
    """Turn the package's expected errors into clean command-line failures."""
    try:
        yield
    except aggregation.AggregationRefused as exc:
        raise click.ClickException(str(exc).replace("force=True", "--force")) from exc
    except (AnalyticsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


def _resolve(state: AppState, value: str, option: str = "DATE") -> dt.date:
    today = state.today()
    day = parse_day(value, today)
    if day > today:
        zone = state.settings.timezone.key
        raise click.ClickException(
            f"{option} {day.isoformat()} is in the future (today is {today.isoformat()} in {zone})."
        )
    return day


def _report(enqueued: queueing.Enqueued) -> None:
    if enqueued.created:
        click.echo(
            f"Queued {enqueued.description} on queue {enqueued.queue!r} (job {enqueued.job_id})."
        )
    else:
        click.echo(
            f"Already {enqueued.status}: {enqueued.description} (job {enqueued.job_id}); "
            "nothing added."
        )


def _n(count: int, word: str) -> str:
    plural = word + ("es" if word.endswith(("s", "ch")) else "s")
    return f"{count:,} {word if count == 1 else plural}"


# -- aggregation ----------------------------------------------------------------------------


@analytics_cli.command("aggregate")
@click.argument("day", required=False, default="yesterday", type=DAY)
@click.option(
    "--force", is_flag=True, help="Recompute even a day whose events were purged, wholly or partly."
)
@click.option("--sync", is_flag=True, help=SYNC_HELP)
def aggregate_command(day: str, force: bool, sync: bool) -> None:
    """Aggregate one local day: DATE (YYYY-MM-DD), today or yesterday (default)."""
    state = _state()
    with _errors():
        target = _resolve(state, day)
        if queueing.uses_queue(state, sync):
            _report(_jobs().enqueue_aggregate(state, target, force=force))
            return
        aggregation.aggregate_day(state, target, force=force)
        click.echo(
            f"Aggregated {target.isoformat()}: {_n(day_state(state, target).events, 'event')}."
        )


@analytics_cli.command("backfill")
@click.option("--from", "start", required=True, type=DAY, help="First local day (YYYY-MM-DD).")
@click.option(
    "--to", "end", default="yesterday", show_default=True, type=DAY, help="Last local day."
)
@click.option(
    "--force", is_flag=True, help="Recompute even days whose events were purged, wholly or partly."
)
@click.option("--sync", is_flag=True, help=SYNC_HELP)
def backfill_command(start: str, end: str, force: bool, sync: bool) -> None:
    """Aggregate every local day from --from to --to inclusive."""
    state = _state()
    with _errors():
        first = _resolve(state, start, "--from")
        last = _resolve(state, end, "--to")
        if last < first:
            raise click.ClickException(
                f"--to {last.isoformat()} is before --from {first.isoformat()}."
            )
        _aggregate_days(state, first, last, sync, force=force)


def _aggregate_days(
    state: AppState, first: dt.date, last: dt.date, sync: bool, *, force: bool = False
) -> None:
    """Aggregate ``first``..``last``: queued per day with Redis, else inline with a bar."""
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    if queueing.uses_queue(state, sync):
        connection = _jobs().redis_connection(state)
        created = 0
        with click.progressbar(days, label="Queueing") as bar:
            for day in bar:
                created += (
                    _jobs()
                    .enqueue_aggregate(state, day, force=force, connection=connection)
                    .created
                )
        click.echo(
            f"Queued {_n(created, 'aggregation job')} on queue {state.settings.queue!r} "
            f"({len(days) - created:,} already queued or running)."
        )
        return
    done = 0
    try:
        with click.progressbar(length=len(days), label="Aggregating") as counter:

            def advance(_day: dt.date) -> None:
                nonlocal done
                done += 1
                counter.update(1)

            aggregation.aggregate_range(state, first, last, force=force, progress=advance)
    except aggregation.AggregationRefused as exc:
        # A purged day (wholly or partly) stops the range: say where, and what is done.
        raise aggregation.AggregationRefused(
            f"{exc} Stopped at {days[done]}: {_n(done, 'day')} before it aggregated, "
            f"{_n(len(days) - done - 1, 'day')} after it not."
        ) from exc
    click.echo(f"Aggregated {_n(len(days), 'day')}: {first} to {last}.")


@analytics_cli.command("demo-data")
@click.option("--days", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same traffic.")
@click.option("--hostname", default="localhost", show_default=True)
@click.option("--sync", is_flag=True, help=SYNC_HELP)
def demo_data_command(days: int, seed: int, hostname: str, sync: bool) -> None:
    """Record realistic traffic for the last N local days through the real pipeline."""
    from ..ingest import demo

    state = _state()
    with _errors():
        with click.progressbar(length=days, label="Recording") as bar:
            result = demo.generate(
                state, days=days, seed=seed, hostname=hostname, progress=lambda _day: bar.update(1)
            )
        click.echo(
            f"Recorded {_n(result.events, 'event')} in {_n(result.visits, 'visit')} "
            f"over {_n(result.days, 'day')}."
        )
        # From the first day recorded: "today" may have moved on while recording.
        _aggregate_days(state, result.first_day, state.today(), sync)


# -- archive and purge ----------------------------------------------------------------------


def _skipped(days: list[DayState]) -> None:
    if not days:
        return
    click.echo(
        f"Left raw: {_n(len(days), 'day')} not aggregated since their latest events "
        "(aggregate them, then archive again):"
    )
    for day in days:
        click.echo(f"  {day.day.isoformat()}  {day.status}  {_n(day.raw_events, 'raw event')}")


@analytics_cli.command("archive")
@click.option(
    "--retention-days",
    type=click.IntRange(min=0),
    default=None,
    help="Archive local days older than this (default: ANALYTICS_RETENTION_DAYS).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Events moved per transaction.",
)
@click.option("--dry-run", is_flag=True, help="Report what would move; change nothing.")
@click.option("--sync", is_flag=True, help=SYNC_HELP)
def archive_command(retention_days: int | None, batch_size: int, dry_run: bool, sync: bool) -> None:
    """Move raw events of aggregated days past the retention into the archive table."""
    state = _state()
    with _errors():
        if queueing.uses_queue(state, sync) and not dry_run:
            _report(
                _jobs().enqueue_archive(
                    state, older_than_days=retention_days, batch_size=batch_size
                )
            )
            return
        plan = archive(state, older_than_days=retention_days, dry_run=True)
        if dry_run:
            click.echo(
                f"Dry run: would archive {_n(plan.planned, 'event')} of "
                f"{_n(len(plan.days), 'day')} before {plan.cutoff.isoformat()} "
                f"({state.settings.timezone.key})."
            )
            for day in plan.days:
                click.echo(f"  {day.day.isoformat()}  {_n(day.raw_events, 'event')}")
            _skipped(plan.skipped)
            return
        with click.progressbar(length=max(plan.planned, 1), label="Archiving") as bar:
            result = archive(
                state,
                older_than_days=retention_days,
                batch_size=batch_size,
                progress=bar.update,
            )
        click.echo(
            f"Archived {_n(result.moved, 'event')} of {_n(len(result.days), 'day')} before "
            f"{result.cutoff.isoformat()} ({state.settings.timezone.key}) "
            f"in {_n(result.batches, 'batch')}."
        )
        if result.conflicts:
            click.echo(
                f"Left raw: {_n(result.conflicts, 'event')} whose id or event_id is already "
                "used by another archived event."
            )
        _skipped(result.skipped)


@analytics_cli.command("purge")
@click.option(
    "--retention-days",
    type=click.IntRange(min=0),
    default=None,
    help="Purge local days older than this (default: ANALYTICS_ARCHIVE_RETENTION_DAYS).",
)
@click.option("--dry-run", is_flag=True, help="Report what would be deleted; change nothing.")
@click.option("--sync", is_flag=True, help=SYNC_HELP)
def purge_command(retention_days: int | None, dry_run: bool, sync: bool) -> None:
    """Delete archived events older than ANALYTICS_ARCHIVE_RETENTION_DAYS (daily rows stay)."""
    state = _state()
    with _errors():
        # Check the retention here, so a refusal is immediate rather than a failed job.
        plan = purge(state, older_than_days=retention_days, dry_run=True)
        if dry_run:
            click.echo(
                f"Dry run: would purge {_n(plan.planned, 'archived event')} of "
                f"{_n(len(plan.days), 'day')} before {plan.cutoff.isoformat()} "
                f"({state.settings.timezone.key})."
            )
            for day, count in plan.days:
                click.echo(f"  {day.isoformat()}  {_n(count, 'event')}")
            return
        if queueing.uses_queue(state, sync):
            _report(_jobs().enqueue_purge(state, older_than_days=retention_days))
            return
        with click.progressbar(length=max(plan.planned, 1), label="Purging") as bar:
            result = purge(state, older_than_days=retention_days, progress=bar.update)
        click.echo(
            f"Purged {_n(result.deleted, 'archived event')} of {_n(len(result.days), 'day')} "
            f"before {result.cutoff.isoformat()} ({state.settings.timezone.key})."
        )


# -- ingest buffer ----------------------------------------------------------------------------


def _flushed(result: Any) -> str:
    text = (
        f"{_n(result.rows, 'event')} from {_n(result.entries, 'buffered request')}: "
        f"{result.inserted:,} stored, {result.duplicates:,} duplicate"
    )
    if result.reclaimed:
        text += f", {result.reclaimed:,} requests taken over from a stopped flusher"
    if result.dead:
        text += f", {result.dead:,} refused by the database (see the :dead stream)"
    return text


@contextmanager
def _redis_errors(state: AppState) -> Iterator[None]:
    from redis.exceptions import RedisError

    try:
        yield
    except RedisError as exc:
        url = queueing.safe_url(state.settings.buffer_redis_url or "")
        raise click.ClickException(
            f"Redis is not reachable at {url} ({exc}): the buffered events wait there."
        ) from exc


@analytics_cli.command("flush")
@click.option(
    "--loop",
    is_flag=True,
    help="Keep flushing: every ANALYTICS_BUFFER_FLUSH_INTERVAL seconds, or as soon as "
    "ANALYTICS_BUFFER_FLUSH_THRESHOLD requests wait. Stops cleanly on SIGTERM/Ctrl-C.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds between flushes with --loop (default: ANALYTICS_BUFFER_FLUSH_INTERVAL).",
)
@click.option(
    "--requeue-dead",
    is_flag=True,
    help="First move the rows the database refused (the :dead stream) back into the "
    "buffer, once their cause is fixed; a row still refused goes back there.",
)
@click.option("--sync", is_flag=True, help=SYNC_HELP)
def flush_command(loop: bool, interval: float | None, requeue_dead: bool, sync: bool) -> None:
    """Write the events buffered in Redis (ANALYTICS_INGEST_BUFFER = "redis") in bulk."""
    import signal
    import threading

    state = _state()
    if state.buffer is None:  # said before importing the buffer, which needs the redis extra
        raise click.ClickException(
            "ANALYTICS_INGEST_BUFFER is 'direct': events are written to the database as they "
            "arrive, so there is nothing to flush. Set it to 'redis' to buffer them."
        )
    from .. import buffer

    with _errors(), _redis_errors(state):
        if requeue_dead:
            moved = state.buffer.requeue_dead()
            click.echo(f"Moved {_n(moved, 'refused row')} back into the buffer.")
        if not loop:
            if queueing.uses_queue(state, sync):
                _report(_jobs().enqueue_flush(state))
                return
            result = buffer.flush(state)
            click.echo(f"Flushed {_flushed(result)} in {result.seconds:.2f} s.")
            return
        stop = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        click.echo(f"Flushing {state.settings.buffer_stream!r} until SIGTERM or Ctrl-C.")
        try:
            buffer.flush_loop(
                state,
                stop=stop,
                interval=interval,
                on_batch=lambda r: click.echo(f"Flushed {_flushed(r)} in {r.seconds:.2f} s."),
                on_error=lambda exc: click.echo(f"Flush failed, retrying: {exc}", err=True),
            )
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
        click.echo("Stopped.")


# -- worker, scheduler, status ----------------------------------------------------------------


@analytics_cli.command("worker")
@click.option("--burst", is_flag=True, help="Exit once the queue is empty.")
@click.option("--name", default=None, help="Worker name (default: random).")
@click.option(
    "--no-fork",
    is_flag=True,
    help="Run jobs in the worker process (rq's SimpleWorker), for platforms without fork().",
)
def worker_command(burst: bool, name: str | None, no_fork: bool) -> None:
    """Run an RQ worker on ANALYTICS_QUEUE; jobs run inside this app's context."""
    state = _state()
    with _errors():
        if state.settings.redis_url is None:
            raise click.ClickException(
                "ANALYTICS_REDIS_URL is not set: commands run their work inline, so there is "
                "nothing for a worker to do."
            )
        worked = _jobs().run_worker(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            burst=burst,
            name=name,
            fork=not no_fork,
        )
    if burst:
        click.echo("Queue empty: ran jobs." if worked else "Queue empty: nothing to run.")


@analytics_cli.command("scheduler")
def scheduler_command() -> None:
    """Run RQ's CronScheduler with the periodic jobs (times in ANALYTICS_TIMEZONE)."""
    state = _state()
    with _errors():
        if state.settings.redis_url is None:
            raise click.ClickException(
                "ANALYTICS_REDIS_URL is not set: the scheduler needs Redis and an RQ worker."
            )
        scheduler = _jobs().build_scheduler(current_app._get_current_object())  # type: ignore[attr-defined]
    click.echo(f"Scheduling on queue {state.settings.queue!r} ({state.settings.timezone.key}):")
    for entry in _jobs().schedule(state):
        click.echo(f"  {entry.cron:<14} {entry.name:<20} {entry.description}")
    scheduler.start()


@analytics_cli.command("status")
def status_command() -> None:
    """Show row counts, recent aggregation runs, days needing aggregation and the queue."""
    state = _state()
    with _errors():
        report = status_report(state)
    click.echo(
        f"Events: {report.raw_events:,} raw, {report.archived_events:,} archived "
        f"(time zone {state.settings.timezone.key})."
    )
    if state.settings.redis_url is None:
        click.echo("Jobs: inline (ANALYTICS_REDIS_URL is not set).")
    elif report.queue is not None:
        queue = report.queue
        click.echo(
            f"Queue {queue.name!r}: {queue.queued:,} queued, {queue.started:,} running, "
            f"{queue.failed:,} failed."
        )
        for jid, error in queue.failures:
            click.echo(f"  failed {jid}: {error}")
    click.echo("Last aggregation runs:" if report.runs else "Last aggregation runs: none.")
    for run in report.runs:
        finished = f"{run.finished_at:%Y-%m-%d %H:%M:%S} UTC" if run.finished_at else "unfinished"
        events = "?" if run.source_events is None else f"{run.source_events:,}"
        click.echo(f"  {run.date.isoformat()}  {finished}  {events} events")
    if report.pending:
        click.echo("Days needing aggregation:")
        for day in report.pending:
            detail = _n(day.events, "event")
            if day.run_events is not None:
                detail += f" now, {day.run_events:,} when aggregated"
            click.echo(f"  {day.day.isoformat()}  {day.status}: {detail}")
    else:
        click.echo("Days needing aggregation: none.")
    if state.buffer is not None:
        _buffer_status(state)
    if report.redis_error is not None:
        raise click.ClickException(report.redis_error)


def _buffer_status(state: AppState) -> None:
    from redis.exceptions import RedisError

    assert state.buffer is not None
    try:
        info = state.buffer.info()
    except RedisError as exc:
        raise click.ClickException(f"Ingest buffer: Redis is not reachable ({exc}).") from exc
    click.echo(
        f"Ingest buffer {info.stream!r}: {_n(info.length, 'request')} waiting "
        f"({info.pending:,} being written by {_n(info.consumers, 'flusher')}), "
        f"{_n(info.dead, 'row')} refused by the database in {info.stream}:dead."
    )
    if info.dead:
        click.echo(
            "  Read them with XRANGE; once the cause is fixed, `flask analytics flush "
            "--requeue-dead` writes them."
        )


# -- monthly partitions (PostgreSQL) ------------------------------------------------------------


@analytics_cli.group("partitions")
def partitions_cli() -> None:
    """Monthly partitions of the raw and archive tables (PostgreSQL; docs/scaling.md)."""


MONTHS_AHEAD = click.option(
    "--months-ahead",
    type=click.IntRange(min=0),
    default=None,
    help="Monthly partitions kept ahead of the current UTC month (default: 3).",
)


def _months_ahead(value: int | None) -> int:
    from ..lifecycle.partitions import DEFAULT_MONTHS_AHEAD

    return DEFAULT_MONTHS_AHEAD if value is None else value


@partitions_cli.command("status")
def partitions_status_command() -> None:
    """Whether the event tables are partitioned, and their partitions."""
    from ..lifecycle import partitions as partitioning

    state = _state()
    with _errors():
        report = partitioning.status(state)
    for table in report.tables:
        if table.kind != "partitioned":
            click.echo(f"{table.name}: {table.kind}, not partitioned.")
            continue
        months = table.months
        span = f"{months[0]:%Y-%m} to {months[-1]:%Y-%m}" if months else "none"
        default = "holds rows: add their months" if table.default_has_rows else "empty"
        click.echo(
            f"{table.name}: partitioned by month, {_n(len(months), 'monthly partition')} "
            f"({span}); default partition {default}."
        )
    if report.partitioned:
        click.echo(f"Dedupe trigger: {'on' if report.dedupe_trigger else 'MISSING'}.")
    else:
        click.echo("Partition them with `flask analytics partitions migrate` (docs/scaling.md).")


@partitions_cli.command("migrate")
@MONTHS_AHEAD
@click.option("--dry-run", is_flag=True, help="Print the SQL; change nothing.")
@click.option("--keep-old", is_flag=True, help="Keep the old tables as *_old after the copy.")
def partitions_migrate_command(months_ahead: int | None, dry_run: bool, keep_old: bool) -> None:
    """Partition analytics_event and analytics_event_archive by month (one transaction).

    Stop the writers first (or the buffer's flushers): the tables are locked meanwhile.
    """
    from ..lifecycle import partitions as partitioning

    state = _state()
    with _errors():
        result = partitioning.migrate(
            state, months_ahead=_months_ahead(months_ahead), dry_run=dry_run, keep_old=keep_old
        )
    if not result.migrated:
        click.echo("The event tables are partitioned already: nothing to do.")
        return
    span = f"{result.first_month:%Y-%m} to {result.last_month:%Y-%m}"
    if dry_run:
        click.echo(f"-- Dry run: the migration (one transaction), monthly partitions {span}.")
        click.echo("BEGIN;")
        for statement in result.statements:
            click.echo(f"{statement};")
        click.echo("COMMIT;")
        return
    click.echo(
        f"Partitioned {_n(result.raw_events, 'raw event')} and "
        f"{_n(result.archived_events, 'archived event')}: monthly partitions {span}."
    )


@partitions_cli.command("add")
@MONTHS_AHEAD
def partitions_add_command(months_ahead: int | None) -> None:
    """Create the monthly partitions from this UTC month to --months-ahead (idempotent)."""
    from ..lifecycle import partitions as partitioning

    state = _state()
    with _errors():
        result = partitioning.add_partitions(state, months_ahead=_months_ahead(months_ahead))
    span = f"{result.first_month:%Y-%m} to {result.last_month:%Y-%m}"
    if not result.created:
        click.echo(f"Every monthly partition from {span} exists: nothing added.")
        return
    click.echo(f"Added {_n(len(result.created), 'partition')} ({span}):")
    for name in result.created:
        click.echo(f"  {name}")


def _month_command(name: str, setting: str) -> Callable[[Callable[..., None]], Any]:
    """A ``partitions`` subcommand taking a UTC month and a retention override."""
    retention = click.option(
        "--retention-days",
        type=click.IntRange(min=0),
        default=None,
        help=f"Every local day of the month must be older (default: {setting}).",
    )

    def decorate(func: Callable[..., None]) -> Any:
        return partitions_cli.command(name)(click.argument("month")(retention(func)))

    return decorate


def _by_month(action: Callable[..., Any], month: str, retention_days: int | None) -> Any:
    from ..lifecycle.partitions import parse_month

    state = _state()
    with _errors():
        return action(state, parse_month(month), older_than_days=retention_days)


@_month_command("archive-month", "ANALYTICS_RETENTION_DAYS")
def partitions_archive_month_command(month: str, retention_days: int | None) -> None:
    """Move the raw events of a UTC month (YYYY-MM) to the archive, as a whole partition."""
    from ..lifecycle.partitions import archive_month

    result = _by_month(archive_month, month, retention_days)
    how = "the partition itself, no row copied" if result.moved_partition else "rows copied"
    if not result.events:
        how = "nothing to move"
    click.echo(f"Archived {result.month:%Y-%m}: {_n(result.events, 'event')} ({how}).")


@_month_command("purge-month", "ANALYTICS_ARCHIVE_RETENTION_DAYS")
def partitions_purge_month_command(month: str, retention_days: int | None) -> None:
    """Drop the archive partition of a UTC month (YYYY-MM); daily rows stay."""
    from ..lifecycle.partitions import purge_month

    result = _by_month(purge_month, month, retention_days)
    dropped = "partition dropped" if result.dropped_partition else "no partition"
    click.echo(f"Purged {result.month:%Y-%m}: {_n(result.deleted, 'archived event')} ({dropped}).")
