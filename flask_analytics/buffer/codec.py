"""Column codecs: how one column's values are written as COPY text and read back.

Rows are stored in PostgreSQL's COPY text format: one line per row, fields separated by
tabs, backslash escapes (``\\\\ \\t \\n \\r``), NULL as ``\\N``. Each column type has a
:class:`TextCodec` (:func:`text_codec`) that writes exactly the Python types it can read
back, so PostgreSQL COPYs the lines as they are and other databases get back the values
that went in. Columns whose values need Python (enums, type decorators...) are written
as JSON by :func:`column_codec`, which also reads the rows of the first entry format
(JSON arrays). :mod:`.rows` applies these codecs to whole rows.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
import json
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import NoneType
from typing import Any

import sqlalchemy as sa

from ..models import RevenueAmount

#: (encode, decode) of a column's values as JSON; None: JSON scalars as they are.
Codec = tuple[Callable[[Any], Any] | None, Callable[[Any], Any] | None]

#: Values every column type may carry as themselves (JSON-native scalars).
_JSON_SCALARS = (str, int, float)

#: Compact and ASCII-only; no NaN (PostgreSQL's JSON refuses it). For the columns whose
#: values need Python (enums, type decorators...), and the first entry format.
#: A JSONEncoder holds no per-call state: one shared instance saves building one per row.
_ASCII_JSON = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
#: JSON column values as PostgreSQL stores them: UTF-8 (fewer escapes than \uXXXX).
_UTF8_JSON = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False)

#: COPY's NULL marker (text format).
COPY_NULL = "\\N"
#: The types of a str column's values written as they are. Compared by identity (``is``)
#: where rows are encoded: every str column's codec holds this one object.
STR_OR_NONE: frozenset[type] = frozenset({str, NoneType})
#: A backslash escape of COPY text: octal, hexadecimal, or one character.
_COPY_ESCAPE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))", re.DOTALL)
_ESCAPED_CHARS = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_INTERVAL_TEXT = re.compile(r"([+-]\d+) day ([+-]\d+) second ([+-]\d+) microsecond")


def _isoformat_encoder(kind: type[Any]) -> Callable[[Any], Any]:
    def encode(value: Any) -> Any:
        if type(value) is not kind:
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return value.isoformat()

    return encode


def _decimal_encode(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return {"d": str(value)}
    if isinstance(value, _JSON_SCALARS):
        return value
    raise TypeError(f"expected a number, got {type(value).__name__}")


def _decimal_decode(value: Any) -> Any:
    return decimal.Decimal(value["d"]) if isinstance(value, dict) else value


def _uuid_encode(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return {"u": str(value)}
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a UUID, got {type(value).__name__}")


def _uuid_decode(value: Any) -> Any:
    return uuid.UUID(value["u"]) if isinstance(value, dict) else value


def _bytes_encode(value: Any) -> Any:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"expected bytes, got {type(value).__name__}")
    return base64.b64encode(bytes(value)).decode("ascii")


def _interval_encode(value: Any) -> Any:
    if not isinstance(value, dt.timedelta):
        raise TypeError(f"expected a timedelta, got {type(value).__name__}")
    return [value.days, value.seconds, value.microseconds]


def _enum_codec(enum_class: type[enum.Enum]) -> Codec:
    def encode(value: Any) -> Any:
        if isinstance(value, enum_class):
            return {"e": value.name}
        if isinstance(value, str):
            return value
        raise TypeError(f"expected {enum_class.__name__}, got {type(value).__name__}")

    def decode(value: Any) -> Any:
        return enum_class[value["e"]] if isinstance(value, dict) else value

    return encode, decode


def _json_encode(value: Any) -> Any:
    return value  # nested JSON as is; json.dumps refuses what it cannot represent


def column_codec(column: sa.Column[Any]) -> Codec:
    """(encode, decode) of one column's values as JSON; ``None`` means "JSON scalar as is".

    The JSON form of the columns that need Python (:func:`text_codec`), and of the whole
    row in the first entry format.
    """
    kind: Any = column.type
    if isinstance(kind, sa.Interval):  # a TypeDecorator over DateTime: test it first
        return _interval_encode, lambda v: dt.timedelta(*v)
    if isinstance(kind, sa.types.TypeDecorator):
        kind = kind.impl_instance
    if isinstance(kind, sa.DateTime):
        return _isoformat_encoder(dt.datetime), dt.datetime.fromisoformat
    if isinstance(kind, sa.Date):
        return _isoformat_encoder(dt.date), dt.date.fromisoformat
    if isinstance(kind, sa.Time):
        return _isoformat_encoder(dt.time), dt.time.fromisoformat
    if isinstance(kind, sa.JSON):
        return _json_encode, None
    if isinstance(kind, sa.Enum) and kind.enum_class is not None:
        return _enum_codec(kind.enum_class)
    if isinstance(kind, sa.Numeric) and not isinstance(kind, sa.Float):
        return _decimal_encode, _decimal_decode
    if isinstance(kind, sa.Uuid):
        return _uuid_encode, _uuid_decode
    if isinstance(kind, sa.LargeBinary):
        return _bytes_encode, base64.b64decode
    return None, None


# -- COPY text: one codec per column type ------------------------------------------------


@dataclass(frozen=True)
class TextCodec:
    """How one column's values are written as COPY text, and read back."""

    #: Python value (not None) -> field text, unescaped; raises TypeError/ValueError for a
    #: value it cannot write exactly. None: the value must be of one of ``plain``'s types
    #: (None included), written as ``str(value)``.
    encode: Callable[[Any], str] | None
    #: Field text (unescaped, not \N) -> the Python value.
    decode: Callable[[str], Any]
    plain: frozenset[type] = frozenset()
    #: PostgreSQL reads the text as the column's value (False: the column's values need
    #: Python, e.g. bind processors; such rows are decoded before they are written).
    native: bool = True
    #: The text never holds a backslash, tab, newline or CR (never needs an escape).
    safe: bool = False


def text_as_is(text: str) -> Any:
    """The decoder of the columns whose values are their text (str columns)."""
    return text


def _bool_decode(text: str) -> bool:
    if text in ("True", "t", "true"):
        return True
    if text in ("False", "f", "false"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _float_text(value: Any) -> str:
    if type(value) is not float and (type(value) is not int):
        raise TypeError(f"expected a float, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"cannot buffer {value!r}")
    return repr(value)


def _numeric_text(value: Any) -> str:
    # Floats are refused: PostgreSQL converts a float8 parameter to numeric with 15
    # digits, Python's repr has up to 17; the direct path keeps them apart.
    if type(value) is decimal.Decimal and value.is_finite():
        return str(value)
    if type(value) is int:
        return str(value)
    raise TypeError(f"expected a Decimal, got {type(value).__name__}")


def _uuid_text(value: Any) -> str:
    if type(value) is not uuid.UUID:
        raise TypeError(f"expected a UUID, got {type(value).__name__}")
    return str(value)


def _str_text(value: Any) -> str:
    if type(value) is not str:
        raise TypeError(f"expected a str, got {type(value).__name__}")
    return value


def _bytes_text(value: Any) -> str:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"expected bytes, got {type(value).__name__}")
    return "\\x" + bytes(value).hex()


def _bytes_decode(text: str) -> bytes:
    if not text.startswith("\\x"):
        raise ValueError("bytea text without \\x")
    return bytes.fromhex(text[2:])


def _interval_text(value: Any) -> str:
    if type(value) is not dt.timedelta:
        raise TypeError(f"expected a timedelta, got {type(value).__name__}")
    # Explicit signs: read the same whatever the server's IntervalStyle.
    return f"{value.days:+d} day {value.seconds:+d} second {value.microseconds:+d} microsecond"


def _interval_decode(text: str) -> dt.timedelta:
    match = _INTERVAL_TEXT.fullmatch(text)
    if match is None:
        raise ValueError(f"not an interval: {text!r}")
    days, seconds, microseconds = (int(g) for g in match.groups())
    return dt.timedelta(days=days, seconds=seconds, microseconds=microseconds)


def _json_text_codec(kind: sa.JSON) -> TextCodec:
    # None is SQL NULL, as the direct path writes it (never JSON null), whatever the
    # column's none_as_null; a JSON null text of an older entry still reads as None.
    return TextCodec(_UTF8_JSON.encode, json.loads)


def _python_codec(column: sa.Column[Any]) -> TextCodec:
    """A column whose values need Python to be written: JSON as in :func:`column_codec`."""
    encode, decode = column_codec(column)
    name = column.name

    def to_text(value: Any) -> str:
        if encode is not None:
            value = encode(value)
        elif not isinstance(value, _JSON_SCALARS):
            raise TypeError(f"column {name!r}: cannot buffer a {type(value).__name__} value")
        return str(_ASCII_JSON.encode(value))

    def from_text(text: str) -> Any:
        value = json.loads(text)
        return value if decode is None or value is None else decode(value)

    return TextCodec(to_text, from_text, native=False)


def text_codec(column: sa.Column[Any]) -> TextCodec:
    """The COPY text codec of one column, by its type.

    Each accepts the Python types it can write exactly (a datetime column a datetime, an
    integer column an int...); anything else makes the request write directly, where the
    driver and SQLAlchemy convert it as they always do.
    """
    kind: Any = column.type
    if isinstance(kind, sa.Interval):  # a TypeDecorator: test it first
        if kind.native:
            return TextCodec(_interval_text, _interval_decode, safe=True)
        return _python_codec(column)
    if isinstance(kind, RevenueAmount):
        # A decimal's text is PostgreSQL's NUMERIC as it is; elsewhere the decoded
        # Decimal goes through the type's bind processor (SQLite: millionths).
        return TextCodec(_numeric_text, decimal.Decimal, safe=True)
    if isinstance(kind, sa.types.TypeDecorator | sa.Enum):
        return _python_codec(column)
    if isinstance(kind, sa.JSON):
        return _json_text_codec(kind)
    if isinstance(kind, sa.String):
        return TextCodec(None, text_as_is, STR_OR_NONE)
    if isinstance(kind, sa.Boolean):
        return TextCodec(None, _bool_decode, frozenset({bool, NoneType}), safe=True)
    if isinstance(kind, sa.Integer):
        return TextCodec(None, int, frozenset({int, NoneType}), safe=True)
    if isinstance(kind, sa.Float):
        return TextCodec(_float_text, float, safe=True)
    if isinstance(kind, sa.Numeric):
        return TextCodec(_numeric_text, decimal.Decimal, safe=True)
    if isinstance(kind, sa.DateTime):
        return TextCodec(_isoformat_encoder(dt.datetime), dt.datetime.fromisoformat, safe=True)
    if isinstance(kind, sa.Date):
        return TextCodec(_isoformat_encoder(dt.date), dt.date.fromisoformat, safe=True)
    if isinstance(kind, sa.Time):
        return TextCodec(_isoformat_encoder(dt.time), dt.time.fromisoformat, safe=True)
    if isinstance(kind, sa.Uuid):
        if kind.as_uuid:
            return TextCodec(_uuid_text, uuid.UUID, safe=True)
        return TextCodec(_str_text, text_as_is)
    if isinstance(kind, sa.LargeBinary):
        return TextCodec(_bytes_text, _bytes_decode)
    return _python_codec(column)


def copy_escape(text: str) -> str:
    """``text`` as one field of a COPY text line (backslash, tab, newline, CR escaped)."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return (
            text.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return text


def copy_unescape(text: str) -> str:
    """The value of one field of a COPY text line (the inverse of :func:`copy_escape`)."""
    return _COPY_ESCAPE.sub(_unescape_one, text)


def _unescape_one(match: re.Match[str]) -> str:
    octal, hexa, char = match.groups()
    if octal is not None:
        return chr(int(octal, 8))
    if hexa is not None:
        return chr(int(hexa, 16))
    return _ESCAPED_CHARS.get(char, char)
