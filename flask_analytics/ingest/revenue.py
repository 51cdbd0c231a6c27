"""Revenue of an event: an exact decimal amount and an ISO 4217 currency.

Amounts are never floats: the collect endpoint reads a JSON number from its text
(:class:`JsonFloat`), a string as a decimal, and ``track()`` refuses floats. An amount
must be finite, below :data:`~flask_analytics.models.REVENUE_LIMIT` in absolute value
and have at most :data:`~flask_analytics.models.REVENUE_SCALE` decimal places; it may be
negative (a refund) or zero. The currency is an active ISO 4217 code in upper case
(the ``iso4217`` package's table, less XXX, "no currency").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from ..errors import InvalidEvent
from ..models import REVENUE_LIMIT, REVENUE_SCALE

#: A decimal amount as text: optional sign, digits, optional fraction and exponent.
_AMOUNT_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
#: Longer amount texts are refused before they are parsed.
AMOUNT_TEXT_MAX = 64
_ONE_UNIT = Decimal(1).scaleb(-REVENUE_SCALE)


class JsonFloat(float):
    """A JSON number with a fraction or exponent, with the text it was written as.

    The collect endpoint decodes bodies with ``parse_float=JsonFloat``: everywhere a
    float is expected this is one, and a revenue amount is read from ``text``, exactly.
    """

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> JsonFloat:
        number = super().__new__(cls, text)
        number.text = text
        return number


@functools.cache
def currencies() -> frozenset[str]:
    """The active ISO 4217 currency codes (the ``iso4217`` package), less XXX."""
    from iso4217 import Currency

    return frozenset(c.code for c in Currency) - {"XXX"}


def check_amount(value: Any, where: str) -> Decimal:
    """``value`` (a Decimal, an int, a decimal string or a :class:`JsonFloat`) as a
    Decimal a revenue column holds exactly; a plain float is refused (inexact)."""
    if isinstance(value, JsonFloat):
        value = value.text
    elif isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        kind = type(value).__name__
        if isinstance(value, float):
            raise InvalidEvent(
                f"{where} must not be a float (floats are inexact): "
                "pass a Decimal, an int or a string such as '12.50'"
            )
        raise InvalidEvent(f"{where} must be a decimal number or string, not {kind}")
    if isinstance(value, str):
        text = value.strip()
        if len(text) > AMOUNT_TEXT_MAX or not _AMOUNT_TEXT.fullmatch(text):
            raise InvalidEvent(f"{where} must be a decimal number such as '12.50'")
        value = text
    amount = Decimal(value)
    if not amount.is_finite():
        raise InvalidEvent(f"{where} must be a finite number")
    if abs(amount) >= REVENUE_LIMIT:
        raise InvalidEvent(f"{where} must be below {REVENUE_LIMIT:,} in absolute value")
    # Exact within the limit: 18 digits fit the default context's 28.
    if amount.quantize(_ONE_UNIT) != amount:
        raise InvalidEvent(f"{where} must have at most {REVENUE_SCALE} decimal places")
    return amount


def check_currency(value: Any, where: str) -> str:
    """An active ISO 4217 code, in upper case ("EUR")."""
    if not isinstance(value, str):
        raise InvalidEvent(f"{where} must be a string (an ISO 4217 code such as 'EUR')")
    if value not in currencies():
        shown = value[:10]
        if shown.upper() in currencies():
            raise InvalidEvent(f"{where} {shown!r} must be in upper case: {shown.upper()!r}")
        raise InvalidEvent(f"{where} {shown!r} is not an active ISO 4217 currency code")
    return value


def collect_revenue(
    value: Any, where: str, note: Callable[[str, str], None]
) -> tuple[Decimal, str] | None:
    """The ``revenue`` field of a browser event, ``{"amount": ..., "currency": ...}``.

    A revenue that cannot be stored is left out of its event and reported to ``note``
    (the event itself is kept); null or absent is no revenue.
    """
    if value is None:
        return None
    try:
        if not isinstance(value, Mapping):
            raise InvalidEvent(f"{where} must be an object with amount and currency")
        for key in ("amount", "currency"):
            if value.get(key) is None:
                raise InvalidEvent(f"{where}.{key} is required")
        return (
            check_amount(value["amount"], f"{where}.amount"),
            check_currency(value["currency"], f"{where}.currency"),
        )
    except InvalidEvent as exc:
        note(str(exc), "left out")
        return None


def track_revenue(value: Any) -> tuple[Decimal, str] | None:
    """The ``revenue=(amount, currency)`` argument of ``track()``: InvalidEvent if bad."""
    if value is None:
        return None
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, tuple | list):
        raise InvalidEvent(
            "revenue must be a tuple (amount, currency), e.g. (Decimal('12.50'), 'EUR'),"
            f" not {type(value).__name__}"
        )
    if len(value) != 2:
        raise InvalidEvent("revenue must be a tuple (amount, currency) of two items")
    amount, currency = value
    return check_amount(amount, "revenue amount"), check_currency(currency, "revenue currency")
