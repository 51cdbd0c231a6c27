"""What every command group shares: the DATE parameter, the app's state, errors turned
into ``click.ClickException`` and the wording of reports."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from ..core.clock import parse_day
from ..errors import AnalyticsError, ConfigError
from ..lifecycle import aggregate as aggregation
from ..state import AppState, current_state
from ..tasks.queueing import Enqueued

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


def app_command(name: str) -> Callable[[Callable[..., Any]], click.Command]:
    """A click command whose callback runs in the app context, as ``AppGroup.command``
    makes them (the commands are defined apart from the group they join)."""

    def decorate(func: Callable[..., Any]) -> click.Command:
        return click.command(name)(with_appcontext(func))

    return decorate


def app_state() -> AppState:
    """The current app's analytics state, or a clean error without one (or without its
    tables: checked before the command does anything)."""
    try:
        state = current_state()
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    missing, expected = missing_tables(state)
    if missing:
        raise tables_missing(None if len(missing) == expected else missing)
    return state


def missing_tables(state: AppState) -> tuple[list[str], int]:
    """The analytics tables the database does not have (none once migrated), and how
    many there are in all."""
    models = state.models
    tables: list[sa.Table] = [
        model.__table__
        for model in (
            models.Event,
            models.EventArchive,
            models.DailyDimension,
            models.DailyPageExperience,
            models.Session,
            models.Salt,
            models.AggregationRun,
            *models.daily.values(),
        )
        if model is not None
    ]
    with state.engine().connect() as conn:
        inspector = sa.inspect(conn)
        existing = {
            schema: set(inspector.get_table_names(schema=schema))
            for schema in {table.schema for table in tables}
        }
    missing = sorted(table.name for table in tables if table.name not in existing[table.schema])
    return missing, len(tables)


def tables_missing(names: list[str] | None) -> click.ClickException:
    """The one-line error for missing tables: all of them (None), or those ``names``."""
    fix = "run flask db upgrade (Flask-Migrate), or db.create_all()."
    if names is None:
        return click.ClickException(f"the analytics tables do not exist: {fix}")
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3:,} more" if len(names) > 3 else "")
    return click.ClickException(f"some analytics tables do not exist ({shown}): {fix}")


@contextmanager
def click_errors() -> Iterator[None]:
    """Turn the package's expected errors into clean command-line failures."""
    try:
        yield
    except aggregation.AggregationRefused as exc:
        raise click.ClickException(str(exc).replace("force=True", "--force")) from exc
    except (AnalyticsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


#: How SQLite and PostgreSQL name a table that does not exist.
_MISSING_TABLE = (
    re.compile(r"no such table: (?:\w+\.)?(\w+)"),
    re.compile(r'relation "(?:\w+\.)?(\w+)" does not exist'),
)


def missing_table(exc: sa.exc.DBAPIError) -> str | None:
    """The table a database error says does not exist, else None."""
    text = str(exc.orig)
    for pattern in _MISSING_TABLE:
        found = pattern.search(text)
        if found:
            return found.group(1)
    return None


@contextmanager
def setup_errors() -> Iterator[None]:
    """Around every command, app loading included: a bad configuration or tables not
    created yet (a newcomer's first commands) become one line, not a traceback."""
    try:
        yield
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except sa.exc.DBAPIError as exc:
        table = missing_table(exc)
        if table is None:
            raise
        raise tables_missing([table]) from None


@contextmanager
def redis_extra() -> Iterator[None]:
    """Around the import of the RQ side of a command: a missing ``redis`` extra (rq,
    redis) becomes a clean error."""
    try:
        yield
    except ImportError as exc:
        raise click.ClickException(
            f"This needs RQ and Redis ({exc.name} is not installed): "
            "pip install 'flask-analytics[redis]'."
        ) from exc


def resolve_day(state: AppState, value: str, option: str = "DATE") -> dt.date:
    """The local day ``value`` names; a day after today is an error naming ``option``."""
    today = state.today()
    day = parse_day(value, today)
    if day > today:
        zone = state.settings.timezone.key
        raise click.ClickException(
            f"{option} {day.isoformat()} is in the future (today is {today.isoformat()} in {zone})."
        )
    return day


def report_enqueued(enqueued: Enqueued) -> None:
    """Say which job was queued, or which one already waits for the same work."""
    if enqueued.created:
        click.echo(
            f"Queued {enqueued.description} on queue {enqueued.queue!r} (job {enqueued.job_id})."
        )
    else:
        click.echo(
            f"Already {enqueued.status}: {enqueued.description} (job {enqueued.job_id}); "
            "nothing added."
        )


def plural(count: int, word: str) -> str:
    """``count`` and ``word``, in the plural unless one: "1 day", "1,204 batches"."""
    plural_word = word + ("es" if word.endswith(("s", "ch")) else "s")
    return f"{count:,} {word if count == 1 else plural_word}"
