"""How far back raw and archived events are kept: the retention cut-offs."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..core.context import Context


def cutoff_day(state: Context, older_than_days: int) -> dt.date:
    """First local day kept: days strictly before it are older than ``older_than_days``."""
    if isinstance(older_than_days, bool) or not isinstance(older_than_days, int):
        raise TypeError(f"older_than_days must be an integer, not {older_than_days!r}")
    if older_than_days < 0:
        raise ValueError(f"older_than_days must be >= 0, not {older_than_days}")
    return state.today() - dt.timedelta(days=older_than_days)


def archive_retention(state: Context, older_than_days: int | None) -> int:
    """Days archived events are kept: ``older_than_days``, else the setting; ``ConfigError``
    when neither gives one (None keeps the archive forever)."""
    if older_than_days is None:
        older_than_days = state.settings.archive_retention_days
    if older_than_days is None:
        raise ConfigError(
            "ANALYTICS_ARCHIVE_RETENTION_DAYS is None, which keeps archived events forever: "
            "set it to a number of days (or pass older_than_days) to purge."
        )
    return older_than_days
