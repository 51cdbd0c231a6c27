"""Date ranges: the local days a report covers."""

from __future__ import annotations

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


def _year_before(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:
        return day.replace(year=day.year - 1, day=28)
