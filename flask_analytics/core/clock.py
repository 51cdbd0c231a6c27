"""The one clock: every "now" and "today" in the package is read from a :class:`Clock`.

Stored times are naive UTC. Local days are dates in ``ANALYTICS_TIMEZONE``; their UTC
bounds come from :func:`day_bounds`, which knows that DST days last 23 or 25 hours.
"""

from __future__ import annotations

import datetime as dt


class Clock:
    """The system clock. Pass another (``Analytics(clock=...)``) to move time in tests or
    replays; a subclass only needs to override :meth:`now`."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware UTC."""
        return dt.datetime.now(dt.timezone.utc)

    def utcnow(self) -> dt.datetime:
        """The current time as naive UTC, the form every stored time takes."""
        return self.now().replace(tzinfo=None)

    def today(self, tz: dt.tzinfo) -> dt.date:
        """The current local date in ``tz``."""
        return self.now().astimezone(tz).date()


#: The clock used when none is given.
SYSTEM_CLOCK = Clock()


def utcnow() -> dt.datetime:
    """Naive UTC now from the system clock (the package itself reads its app's clock)."""
    return SYSTEM_CLOCK.utcnow()


def local_date(utc: dt.datetime, tz: dt.tzinfo) -> dt.date:
    """Local date in ``tz`` of a naive UTC time."""
    return utc.replace(tzinfo=dt.timezone.utc).astimezone(tz).date()


def to_local(utc: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """Aware local time in ``tz`` of a naive UTC time."""
    return utc.replace(tzinfo=dt.timezone.utc).astimezone(tz)


def day_bounds(tz: dt.tzinfo, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """Naive UTC ``[start, end)`` of local ``day`` (23 or 25 hours long on DST days)."""
    if isinstance(day, dt.datetime):
        raise TypeError(f"day must be a date, not a datetime ({day!r}).")

    def midnight(d: dt.date) -> dt.datetime:
        local = dt.datetime.combine(d, dt.time.min, tzinfo=tz)
        return local.astimezone(dt.timezone.utc).replace(tzinfo=None)

    return midnight(day), midnight(day + dt.timedelta(days=1))


def parse_day(value: str, today: dt.date) -> dt.date:
    """``YYYY-MM-DD``, ``today`` or ``yesterday`` (relative to the local ``today``)."""
    word = value.strip().lower()
    if word == "today":
        return today
    if word == "yesterday":
        return today - dt.timedelta(days=1)
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"{value!r} is not a date: use YYYY-MM-DD, 'today' or 'yesterday'."
        ) from None
