"""Annotations: a note on a local date or a range of dates, shown on every time chart.

Stored in ``analytics_annotation`` (``date``, ``end_date`` (NULL: one day), ``text``).
The checks live here, so the dashboard's forms, the JSON API and the tests refuse the
same things with the same messages (:class:`BadAnnotation`, answered with 400).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa

from ..models import ANNOTATION_TEXT_MAX

if TYPE_CHECKING:
    from ..core.context import Context

#: Control characters but tab and newline, DEL and lone surrogates: never kept.
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")
#: Dates an annotation may name (those a dashboard range may reach).
FIRST_DATE = dt.date(1971, 1, 1)
LAST_DATE = dt.date(9998, 12, 31)


class BadAnnotation(ValueError):
    """An annotation the dashboard cannot keep (the message says why)."""


@dataclass(frozen=True)
class Annotation:
    """One note: from ``date`` to ``end_date`` (the same day when it has none)."""

    id: int
    date: dt.date
    end_date: dt.date | None
    text: str

    @property
    def last(self) -> dt.date:
        return self.end_date or self.date

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "date": self.date.isoformat(),
            "end_date": self.end_date.isoformat() if self.end_date else None,
            "text": self.text,
        }


def _day(value: Any, name: str) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        day = value
    else:
        if not isinstance(value, str) or len(value) != 10 or not value.isascii():
            raise BadAnnotation(f"{name} must be a date as YYYY-MM-DD.")
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            raise BadAnnotation(f"{name} {value!r} is not a valid date.") from None
    if not FIRST_DATE <= day <= LAST_DATE:
        raise BadAnnotation(f"{name} must be from {FIRST_DATE} to {LAST_DATE}.")
    return day


def checked(date: Any, end_date: Any, text: Any) -> tuple[dt.date, dt.date | None, str]:
    """The values of an annotation, checked (raises :class:`BadAnnotation`)."""
    first = _day(date, "date")
    last = None if end_date in (None, "") else _day(end_date, "end_date")
    if last is not None and last < first:
        raise BadAnnotation("end_date must not be before date.")
    if last == first:
        last = None
    if not isinstance(text, str) or not text.strip():
        raise BadAnnotation("text must not be empty.")
    text = text.strip()
    if len(text) > ANNOTATION_TEXT_MAX:
        raise BadAnnotation(f"text is at most {ANNOTATION_TEXT_MAX} characters long.")
    if _CONTROL.search(text):
        raise BadAnnotation("text must not contain control characters.")
    return first, last, text


def _table(state: Context) -> sa.Table:
    table: sa.Table = state.models.Annotation.__table__
    return table


def _annotation(row: Any) -> Annotation:
    return Annotation(row.id, row.date, row.end_date, row.text)


def list_annotations(
    state: Context, start: dt.date | None = None, end: dt.date | None = None
) -> list[Annotation]:
    """Annotations touching ``start``..``end`` (all when not given), by date then id."""
    table = _table(state)
    query = sa.select(table).order_by(table.c.date, table.c.id)
    if end is not None:
        query = query.where(table.c.date <= end)
    if start is not None:
        query = query.where(sa.func.coalesce(table.c.end_date, table.c.date) >= start)
    with state.engine().connect() as conn:
        return [_annotation(r) for r in conn.execute(query)]


def create_annotation(state: Context, date: Any, end_date: Any, text: Any) -> Annotation:
    """Keep a new annotation (raises :class:`BadAnnotation`)."""
    first, last, words = checked(date, end_date, text)
    table = _table(state)
    values = {"date": first, "end_date": last, "text": words}
    with state.engine().begin() as conn:
        row = conn.execute(
            sa.insert(table)
            .values(**values, created_at=state.clock.utcnow().replace(microsecond=0))
            .returning(*table.c)
        ).one()
    return _annotation(row)


def update_annotation(
    state: Context, ident: int, date: Any, end_date: Any, text: Any
) -> Annotation | None:
    """Change annotation ``ident`` (None: there is none)."""
    first, last, words = checked(date, end_date, text)
    table = _table(state)
    with state.engine().begin() as conn:
        row = conn.execute(
            sa.update(table)
            .where(table.c.id == ident)
            .values(date=first, end_date=last, text=words)
            .returning(*table.c)
        ).one_or_none()
    return _annotation(row) if row is not None else None


def delete_annotation(state: Context, ident: int) -> bool:
    """Delete annotation ``ident``; False when there is none."""
    table = _table(state)
    with state.engine().begin() as conn:
        return bool(conn.execute(sa.delete(table).where(table.c.id == ident)).rowcount)
