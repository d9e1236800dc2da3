"""`affiliates.conversions.validate`: what a conversion must be before anything is read or
written, table-driven and without a database. (test_conversions.py checks through PostgreSQL
that a refused conversion writes nothing.)"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from affiliates.conversions.validate import conversion_check
from affiliates.errors import AffiliateError
from affiliates.models import Program

VISITOR = uuid.UUID("018f3c1e-8a7b-7c2d-9e4f-0a1b2c3d4e5f")


def check(**fields: Any):
    values: dict[str, Any] = {
        "external_id": "order-1",
        "event_type": "purchase",
        "amount": "10.00",
        "currency": "USD",
        "customer_external_id": None,
        "customer_email": "",
        "product_ids": None,
        "metadata": None,
        "click_id": None,
        "visitor_id": None,
        "code": None,
        "coupon": None,
        "occurred_at": None,
        "idempotency_key": None,
    }
    return conversion_check(program=Program(currency="USD", custom_event_types=["trial"]), **{**values, **fields})


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"amount": "-1.00"}, "amount_negative", "amount"),
        ({"amount": "1.001"}, "amount_precision", "amount"),
        ({"amount": "abc"}, "amount_invalid", "amount"),
        ({"amount": "NaN"}, "amount_invalid", "amount"),
        ({"amount": "1e30"}, "amount_too_large", "amount"),
        ({"currency": "ZZZ"}, "currency_unknown", "currency"),
        ({"currency": "EUR"}, "currency_mismatch", "currency"),
        ({"event_type": "teleport"}, "event_type_unknown", "event_type"),
        ({"visitor_id": "not-a-uuid"}, "visitor_invalid", "visitor_id"),
        ({"click_id": "not-a-uuid"}, "click_invalid", "click_id"),
        # times as offsets from the moment of the check (collection may be long before)
        ({"occurred_at": timedelta(minutes=10)}, "occurred_in_future", "occurred_at"),
        ({"occurred_at": -timedelta(days=3700)}, "occurred_too_long_ago", "occurred_at"),
        # the first failing field is reported
        ({"currency": "EUR", "amount": "abc"}, "currency_mismatch", "currency"),
    ],
)
def test_bad_conversions_are_refused(fields, code, field):
    if isinstance(fields.get("occurred_at"), timedelta):
        fields = {**fields, "occurred_at": timezone.now() + fields["occurred_at"]}
    with pytest.raises(AffiliateError) as caught:
        check(**fields)
    assert caught.value.code == code
    assert caught.value.field == field


def test_a_good_conversion_is_normalised():
    at = timezone.now() - timedelta(days=1)
    checked = check(
        amount="49.90",
        currency="usd",
        event_type="trial",
        customer_external_id="",
        customer_email="Someone@Example.org",
        visitor_id=str(VISITOR),
        click_id=str(VISITOR),
        coupon="SAVE10",
        occurred_at=at,
        idempotency_key="",
    )
    assert (checked.amount_minor, checked.currency, checked.event_type) == (4990, "USD", "trial")
    assert (checked.customer_external_id, checked.customer_email, checked.idempotency_key) == (
        None,
        "someone@example.org",
        None,
    )
    assert (checked.visitor, checked.click_id, checked.occurred_at) == (VISITOR, VISITOR, at)
    assert checked.hints == {"click_id": str(VISITOR), "visitor_id": str(VISITOR), "coupon": "SAVE10"}
    assert (checked.product_ids, checked.metadata) == ([], {})


def test_the_time_defaults_to_now():
    before = timezone.now()
    assert before <= check().occurred_at <= timezone.now()
