"""Whole rows as COPY text lines, and back: the :class:`RowCodec` of one event table.

An entry holds the rows of one request: a header naming the columns (tab-separated) and
one COPY text line per row, written by the columns' codecs (:mod:`.codec`). Encoding is
driven by a plan cached per column list; a request of :data:`COLUMN_WISE_FROM` rows or
more is encoded column by column with C-speed built-ins. Entries of the first format
(header a JSON list, rows JSON arrays) are still read.
"""

from __future__ import annotations

import itertools
import json
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import NoneType
from typing import Any

import sqlalchemy as sa

from ..ingest.insert import scalar_default
from .codec import (
    COPY_NULL,
    STR_OR_NONE,
    TextCodec,
    column_codec,
    copy_escape,
    copy_unescape,
    text_as_is,
    text_codec,
)

#: Requests of this many rows or more are encoded column by column (else row by row).
COLUMN_WISE_FROM = 8

# Lookups run by ``map`` at C speed: ``map(_NONE_AS_NULL.get, values, values)`` is each
# value with None as COPY's NULL marker; the others read the marker back as None.
_NONE_AS_NULL = {None: COPY_NULL}
_NULL_AS_NONE: dict[str, None] = {COPY_NULL: None}


@dataclass(frozen=True)
class _ColumnStep:
    """How one column of a column list is written."""

    name: str
    default: Any
    getter: Callable[[Mapping[str, Any]], Any]
    codec: TextCodec


@dataclass(frozen=True)
class _EncodingPlan:
    """How the rows of one column list are written (cached per column list)."""

    names: tuple[str, ...]
    #: Column by column.
    steps: list[_ColumnStep]
    #: Row by row: the values of a row that has every column, in order.
    getter: Callable[[Mapping[str, Any]], Sequence[Any]]
    defaults: list[tuple[str, Any]]
    #: (values getter, types allowed, indexes) of the columns written as ``str(value)``.
    checks: list[tuple[Callable[[Sequence[Any]], Sequence[Any]], frozenset[type], list[int]]]
    #: (index, encode) of the others (None stays None: COPY's NULL).
    special: list[tuple[int, Callable[[Any], str]]]


class RowCodec:
    """Lossless COPY text for the rows of one event table (column-type driven)."""

    def __init__(self, table: sa.Table) -> None:
        self.table = table
        self.columns = {c.name: c for c in table.columns if c.name != "id"}
        self.codecs = {name: column_codec(c) for name, c in self.columns.items()}
        self.text_codecs = {name: text_codec(c) for name, c in self.columns.items()}
        self.defaults = {name: scalar_default(c) for name, c in self.columns.items()}
        #: Columns with a Python-side scalar default are always written (the default
        #: filled in), so that COPY, which knows only the table's own defaults, can
        #: write the rows as they are.
        self.always = frozenset(
            name for name, c in self.columns.items() if self.defaults[name] is not None
        )
        self._plans: dict[tuple[str, ...], _EncodingPlan] = {}

    def _plan_for(self, names: tuple[str, ...]) -> _EncodingPlan:
        plan = self._plans.get(names)
        if plan is not None:
            return plan
        codecs = [self.text_codecs[n] for n in names]
        by_types: dict[frozenset[type], list[int]] = {}
        for i, codec in enumerate(codecs):
            if codec.encode is None:
                by_types.setdefault(codec.plain, []).append(i)
        plan = _EncodingPlan(
            names=names,
            steps=[
                _ColumnStep(n, self.defaults[n], operator.itemgetter(n), codec)
                for n, codec in zip(names, codecs, strict=True)
            ],
            getter=_tuple_getter(names),
            defaults=[(n, self.defaults[n]) for n in names],
            checks=[(_tuple_getter(idx), types, idx) for types, idx in by_types.items()],
            special=[
                (i, codec.encode) for i, codec in enumerate(codecs) if codec.encode is not None
            ],
        )
        if len(self._plans) < 64:  # column lists are few; never grow without bound
            self._plans[names] = plan
        return plan

    def encode(self, rows: Sequence[Mapping[str, Any]]) -> tuple[bytes, list[bytes]]:
        """(header, one COPY text line per row). Raises TypeError/ValueError if lossy.

        Every row gets every column any row of the request has (and every column with a
        Python-side scalar default); a key some rows lack gets the column's scalar
        default, as the direct multi-row ``INSERT`` does.
        """
        keys = set().union(*rows)
        names = tuple(sorted((keys & self.columns.keys()) | self.always))
        plan = self._plan_for(names)
        # Every row has every key (the usual case): plain item lookups will do.
        complete = keys.issuperset(names) and set(map(len, rows)) == {len(keys)}
        if len(rows) < COLUMN_WISE_FROM:
            lines = self._row_lines(plan, rows, complete)
        else:
            try:
                lines = self._column_lines(plan, rows, complete, strict=False)
            except TypeError:  # a str column holds something else: check every value
                lines = self._column_lines(plan, rows, complete, strict=True)
        return "\t".join(names).encode(), list(map(str.encode, lines))

    def _row_lines(
        self, plan: _EncodingPlan, rows: Sequence[Mapping[str, Any]], complete: bool
    ) -> list[str]:
        """The rows' COPY text lines, row by row: for a few rows (a request's usual one)."""
        encoded = []
        lines = []
        nulls = 0
        for row in rows:
            if complete:
                values = list(plan.getter(row))
            else:
                values = [row.get(name, default) for name, default in plan.defaults]
            for getter, types, indexes in plan.checks:
                if not set(map(type, getter(values))) <= types:
                    for i in indexes:
                        values[i] = _plain_value(plan.names[i], values[i], types)
            for i, encode in plan.special:
                value = values[i]
                if value is not None:
                    values[i] = encode(value)
            nulls += values.count(None)
            encoded.append(values)
            # \\N for None, str(value) (a str itself), at C speed.
            lines.append("\t".join(map(str, map(_NONE_AS_NULL.get, values, values))))
        if _need_escapes(lines, nulls, len(plan.names)):
            lines = [
                "\t".join([COPY_NULL if v is None else copy_escape(str(v)) for v in values])
                for values in encoded
            ]
        return lines

    def _column_lines(
        self, plan: _EncodingPlan, rows: Sequence[Mapping[str, Any]], complete: bool, strict: bool
    ) -> list[str]:
        """The rows' COPY text lines, column by column with C-speed built-ins (``map``,
        ``str.join``): a few passes per column, no Python loop over every value. For
        many rows (a fixed cost per column).

        Not ``strict``, str columns are not type-checked: ``str.join`` raises TypeError
        when one holds anything but a str (or None, replaced by \\N before).
        """
        n = len(rows)
        texts: list[list[Any]] = []
        unsafe: list[tuple[int, list[Any]]] = []
        nulls = 0
        for i, step in enumerate(plan.steps):
            if complete:
                column = list(map(step.getter, rows))
            else:
                column = [row.get(step.name, step.default) for row in rows]
            codec = step.codec
            if codec.encode is not None:
                encode = codec.encode
                column = [None if v is None else encode(v) for v in column]
            elif (strict or codec.plain is not STR_OR_NONE) and not set(
                map(type, column)
            ) <= codec.plain:
                column = [_plain_value(step.name, v, codec.plain) for v in column]
            if not codec.safe:
                unsafe.append((i, column))
            k = column.count(None)
            nulls += k
            text = (
                column
                if k == 0
                else [COPY_NULL] * n
                if k == n
                else [*map(_NONE_AS_NULL.get, column, column)]
            )
            if codec.plain is not STR_OR_NONE and codec.encode is None:
                text = list(map(str, text))  # ints, booleans
            texts.append(text)
        lines = list(map("\t".join, zip(*texts, strict=True)))
        if _need_escapes(lines, nulls, len(plan.names)):
            for i, column in unsafe:
                texts[i] = [COPY_NULL if v is None else copy_escape(v) for v in column]
            lines = list(map("\t".join, zip(*texts, strict=True)))
        return lines

    def names(self, columns: bytes) -> tuple[str, ...]:
        """The column names of an entry's header, checked against the table."""
        if is_json_header(columns):
            names = tuple(json.loads(columns))
        else:
            names = tuple(columns.decode().split("\t"))
        unknown = [n for n in names if n not in self.columns]
        if unknown:
            raise ValueError(f"unknown columns {unknown} (was the event model changed?)")
        return names

    def native(self, names: Sequence[str]) -> bool:
        """Whether PostgreSQL can read every column of these rows from their text."""
        return all(self.text_codecs[name].native for name in names)

    def decode(self, columns: bytes, rows: bytes) -> tuple[tuple[str, ...], list[list[Any]]]:
        """Column names and Python rows of one entry (the inverse of :meth:`encode`)."""
        if is_json_header(columns):
            return self._decode_json(columns, rows)
        names = self.names(columns)
        text = rows.decode()
        # Our lines escape nothing unless every backslash is that of a \\N (the usual case).
        escapes = text.count("\\") != text.count(COPY_NULL)
        fields = list(map(str.split, text.split("\n"), itertools.repeat("\t")))
        if set(map(len, fields)) != {len(names)}:
            bad = next(len(row) for row in fields if len(row) != len(names))
            raise ValueError(f"a row has {bad} values for {len(names)} columns")
        n = len(fields)
        # Column by column, mostly with C-speed built-ins.
        columns_values: list[Sequence[Any]] = []
        for name, texts in zip(names, zip(*fields, strict=True), strict=True):
            codec = self.text_codecs[name]
            k = texts.count(COPY_NULL)
            values: Sequence[Any]
            if escapes and "".join(texts).count("\\") != k:
                values = [
                    None if f == COPY_NULL else copy_unescape(f) if "\\" in f else f for f in texts
                ]
            elif k == 0:
                values = texts
            elif k == n:
                values = [None] * n
            else:
                values = [*map(_NULL_AS_NONE.get, texts, texts)]
            decode = codec.decode
            if decode is not text_as_is:
                if None in values:
                    values = [None if v is None else decode(v) for v in values]
                else:
                    values = list(map(decode, values))
            columns_values.append(values)
        return names, list(map(list, zip(*columns_values, strict=True)))

    def _decode_json(self, columns: bytes, rows: bytes) -> tuple[tuple[str, ...], list[list[Any]]]:
        """Entries of the first format: one JSON array per row."""
        names = self.names(columns)
        # json.dumps escapes control characters, so a newline only ever separates rows.
        values: list[list[Any]] = json.loads(b"[" + rows.replace(b"\n", b",") + b"]")
        decoders = []
        for i, name in enumerate(names):
            decode = self.codecs[name][1]
            if decode is not None:
                decoders.append((i, decode))
        for row in values:
            if len(row) != len(names):
                raise ValueError(f"a row has {len(row)} values for {len(names)} columns")
            for i, decode in decoders:
                if row[i] is not None:
                    row[i] = decode(row[i])
        return names, values


def is_json_header(columns: bytes) -> bool:
    """Whether an entry is of the first format (header: a JSON list of names)."""
    return columns.startswith(b"[")


def _tuple_getter(keys: Sequence[Any]) -> Callable[[Any], Sequence[Any]]:
    """``operator.itemgetter`` that always returns a tuple."""
    if len(keys) == 1:
        key = keys[0]
        return lambda obj: (obj[key],)
    return operator.itemgetter(*keys)


def _plain_value(name: str, value: Any, types: frozenset[type]) -> Any:
    """``value`` as one of ``types`` exactly (the str of a str subclass...), or TypeError."""
    if type(value) in types:
        return value
    base = next((t for t in types if t is not NoneType and isinstance(value, t)), None)
    if base is None or (base is int and isinstance(value, bool)):
        raise TypeError(f"column {name!r}: cannot buffer a {type(value).__name__} value")
    return base(value) if base is not str else str.__str__(value)


def _need_escapes(lines: list[str], nulls: int, columns: int) -> bool:
    """Whether a field of ``lines`` holds a backslash, tab, newline or CR (one check for a
    whole request: the only backslashes must be the \\N, tabs only separate fields)."""
    text = "\n".join(lines)
    return (
        text.count("\\") != nulls
        or text.count("\t") != (columns - 1) * len(lines)
        or text.count("\n") != len(lines) - 1
        or "\r" in text
    )
