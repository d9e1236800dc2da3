"""Money: `Decimal` amounts with an ISO 4217 currency, stored as integers of the minor unit.

The rounding rule, applied once per stored amount from exact inputs: half-up to the currency's
minor unit (see `affiliates.attribution.round_half_up`). Where an amount is split (an order
over several affiliates), the residue goes to the largest share so the parts add up exactly.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from functools import lru_cache

from babel.numbers import get_currency_precision, list_currencies

# Codes that are not money anyone pays commissions in: testing, "no currency", metals, fund units.
_NOT_PAYABLE = {"XXX", "XTS", "XAU", "XAG", "XPT", "XPD", "XBA", "XBB", "XBC", "XBD", "XDR", "XSU", "XUA"}


class MoneyError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@lru_cache(maxsize=1)
def _currencies() -> frozenset[str]:
    return frozenset(code for code in list_currencies() if code not in _NOT_PAYABLE)


def currency_clean(value: str) -> str:
    code = value.strip().upper() if isinstance(value, str) else ""
    if code not in _currencies():
        raise MoneyError("currency_unknown", f"{value!r} is not an ISO 4217 currency code.")
    return code


@lru_cache(maxsize=512)
def minor_places(currency: str) -> int:
    return get_currency_precision(currency)


def to_minor(amount: Decimal | str, currency: str) -> int:
    """Exact conversion of a decimal amount to minor units; refuses more decimals than the
    currency has instead of rounding a client's number silently."""
    try:
        value = Decimal(amount)
    except (InvalidOperation, TypeError, ValueError):
        raise MoneyError("amount_invalid", 'Send the amount as a decimal string, e.g. "19.99".') from None
    if not value.is_finite():
        raise MoneyError("amount_invalid", "The amount must be a finite number.")
    places = minor_places(currency)
    scaled = value.scaleb(places)
    if scaled != scaled.to_integral_value():
        raise MoneyError("amount_precision", f"{currency} amounts have at most {places} decimal places.")
    return int(scaled)


def from_minor(amount_minor: int, currency: str) -> Decimal:
    places = minor_places(currency)
    return Decimal(amount_minor).scaleb(-places).quantize(Decimal(1).scaleb(-places))


def format_minor(amount_minor: int, currency: str) -> str:
    return str(from_minor(amount_minor, currency))
