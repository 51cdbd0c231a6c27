"""Date ranges: the local days a report covers."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

#: Longest range one query may cover, in days (five years of daily rows).
MAX_RANGE_DAYS: Final = 5 * 366
#: Last date a report may cover: a range of :data:`MAX_RANGE_DAYS` days ending there, the
#: period after it (the dashboard's "next period" link) and that period's UTC day bounds
#: all stay within the calendar, which ends on 9999-12-31.
LAST_DATE: Final = dt.date(9990, 12, 31)


@dataclass(frozen=True)
class DateRange:
    """Local dates ``start`` to ``end``, both included."""

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("end is before start")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def dates(self) -> Iterator[dt.date]:
        # Counted, not stepped past the end: the day after 9999-12-31 does not exist.
        for offset in range(self.days):
            yield self.start + dt.timedelta(days=offset)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, dt.date) and self.start <= day <= self.end

    def previous(self) -> DateRange:
        """The period of the same length just before this one."""
        return DateRange(
            self.start - dt.timedelta(days=self.days), self.start - dt.timedelta(days=1)
        )

    def year_before(self) -> DateRange:
        """The same dates one year earlier (29 February becomes the 28th)."""
        return DateRange(_year_before(self.start), _year_before(self.end))

    def span(self, other: DateRange) -> DateRange:
        return DateRange(min(self.start, other.start), max(self.end, other.end))

    @property
    def months(self) -> int:
        """How many calendar months the range touches (from its start's to its end's)."""
        return (self.end.year - self.start.year) * 12 + self.end.month - self.start.month + 1

    @property
    def whole_months(self) -> bool:
        """True when the range runs from a month's first day to a month's last day."""
        return self.start.day == 1 and self.end == month_end(self.end)

    def months_before(self, months: int) -> DateRange:
        """The same days ``months`` calendar months earlier: a day missing from the
        shorter month becomes its last day, and a range ending on a month's last day
        ends on the earlier month's last day (March against February, whole)."""
        end = shift_months(self.end, -months)
        if self.end == month_end(self.end):
            end = month_end(end)
        return DateRange(shift_months(self.start, -months), end)


def month_end(day: dt.date) -> dt.date:
    """The last day of ``day``'s month."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def shift_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by ``months`` calendar months, kept within the month (31 March
    minus one month is 28 or 29 February)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


@dataclass(frozen=True)
class Comparison:
    """The period a range is compared with, and how it lines up with the range: by
    days (the same number of days just before), by calendar months (the same days of
    the months before) or by year (the same dates a year earlier)."""

    range: DateRange
    #: "days", "months" or "year".
    step: str
    #: Days or months between a day and its match (one year for "year").
    distance: int

    def matching(self, day: dt.date) -> dt.date:
        """The day of the comparison that lines up with ``day`` of the current range."""
        if self.step == "year":
            return _year_before(day)
        if self.step == "months":
            return shift_months(day, -self.distance)
        return day - dt.timedelta(days=self.distance)

    @classmethod
    def previous(cls, rng: DateRange, *, by_months: bool = False) -> Comparison:
        """The period before ``rng``: its calendar months before (``by_months``), else
        the same number of days just before."""
        if by_months:
            return cls(rng.months_before(rng.months), "months", rng.months)
        return cls(rng.previous(), "days", rng.days)

    @classmethod
    def year(cls, rng: DateRange) -> Comparison:
        return cls(rng.year_before(), "year", 1)


def _year_before(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:
        return day.replace(year=day.year - 1, day=28)
