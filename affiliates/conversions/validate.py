"""What a conversion must be before anything is read or written: the checks of the request's
values, each failure an `AffiliateError` with a stable code and the field it concerns."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from affiliates.errors import AffiliateError
from affiliates.models import Program
from core import money

BUILTIN_EVENTS = ("signup", "purchase", "subscription_payment")
MAX_AMOUNT_MINOR = 10**13  # a hundred billion in a two-decimal currency: beyond it, a client bug
CLOCK_SKEW = timedelta(minutes=5)
MAX_AGE = timedelta(days=3653)  # older is a client bug (and near year 1, date arithmetic overflows)


@dataclass(frozen=True)
class ConversionInput:
    """A conversion as sent, checked and normalised (amount in minor units, email in lower case,
    ids parsed). `hints` records what the caller sent to attribute it by."""

    external_id: str
    idempotency_key: str | None
    event_type: str
    amount_minor: int
    currency: str
    customer_external_id: str | None
    customer_email: str
    product_ids: list[str]
    metadata: dict[str, Any]
    hints: dict[str, str]
    occurred_at: datetime
    visitor: uuid.UUID | None
    click_id: uuid.UUID | None
    code: str | None
    coupon: str | None


def money_error(exc: money.MoneyError, field: str) -> AffiliateError:
    return AffiliateError(exc.code, exc.message, field=field)


def visitor_parse(value: str | uuid.UUID | None, field: str) -> uuid.UUID | None:
    if value in (None, ""):
        return None
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise AffiliateError("visitor_invalid", "Not a visitor id.", field=field) from None


def click_id_parse(click_id: str | None) -> uuid.UUID | None:
    if not click_id:
        return None
    try:
        return uuid.UUID(str(click_id))
    except ValueError:
        raise AffiliateError("click_invalid", "Not a click id.", field="click_id") from None


def amount_check(program: Program, amount: Decimal | str, currency: str) -> tuple[str, int]:
    """(the currency's code, the amount in its minor units)."""
    try:
        currency = money.currency_clean(currency)
    except money.MoneyError as exc:
        raise money_error(exc, "currency") from None
    if currency != program.currency:
        raise AffiliateError(
            "currency_mismatch", f"This program is in {program.currency}; send amounts in it.", field="currency"
        )
    try:
        amount_minor = money.to_minor(amount, currency)
    except money.MoneyError as exc:
        raise money_error(exc, "amount") from None
    if amount_minor < 0:
        raise AffiliateError("amount_negative", "The amount cannot be negative; use a refund.", field="amount")
    if amount_minor > MAX_AMOUNT_MINOR:
        raise AffiliateError("amount_too_large", "The amount is implausibly large.", field="amount")
    return currency, amount_minor


def event_type_check(program: Program, event_type: str) -> None:
    if event_type not in BUILTIN_EVENTS and event_type not in program.custom_event_types:
        raise AffiliateError(
            "event_type_unknown",
            f"Use one of {[*BUILTIN_EVENTS, *program.custom_event_types]}.",
            field="event_type",
        )


def occurred_at_check(occurred_at: datetime | None) -> datetime:
    """When it happened (default: now), within the clock skew ahead and `MAX_AGE` behind."""
    now = timezone.now()
    occurred_at = occurred_at or now
    if occurred_at > now + CLOCK_SKEW:
        raise AffiliateError("occurred_in_future", "A conversion cannot happen in the future.", field="occurred_at")
    if occurred_at < now - MAX_AGE:
        raise AffiliateError("occurred_too_long_ago", "A conversion is at most 10 years old.", field="occurred_at")
    return occurred_at


def conversion_check(
    *,
    program: Program,
    external_id: str,
    event_type: str,
    amount: Decimal | str,
    currency: str,
    customer_external_id: str | None,
    customer_email: str,
    product_ids: list[str] | None,
    metadata: dict[str, Any] | None,
    click_id: str | None,
    visitor_id: str | uuid.UUID | None,
    code: str | None,
    coupon: str | None,
    occurred_at: datetime | None,
    idempotency_key: str | None,
) -> ConversionInput:
    """The checked conversion, or the first `AffiliateError` (in the order of the fields above)."""
    currency, amount_minor = amount_check(program, amount, currency)
    event_type_check(program, event_type)
    occurred_at = occurred_at_check(occurred_at)
    visitor = visitor_parse(visitor_id, "visitor_id")
    sent = {"click_id": click_id, "visitor_id": str(visitor) if visitor else None, "code": code, "coupon": coupon}
    return ConversionInput(
        external_id=external_id,
        idempotency_key=idempotency_key or None,
        event_type=event_type,
        amount_minor=amount_minor,
        currency=currency,
        customer_external_id=customer_external_id or None,
        customer_email=customer_email.lower(),
        product_ids=product_ids or [],
        metadata=metadata or {},
        hints={k: v for k, v in sent.items() if v},
        occurred_at=occurred_at,
        visitor=visitor,
        click_id=click_id_parse(click_id),
        code=code,
        coupon=coupon,
    )
