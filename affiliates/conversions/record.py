"""Recording a conversion: check -> load -> plan -> write, exactly once per external id (and
per `Idempotency-Key`): the unique index decides a race, and the loser returns the winner's row.

This is the conversion API's hot path, measured by `make bench NAME=conversions`: with the
commit, three round trips to PostgreSQL (`context_load`'s pipeline, `plan_write`'s statement, the
commit); a coupon, a code, a referrer or binding the clicks did not bring, or a tiered rule
costs a query more each.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q

from affiliates import tracking
from affiliates.conversions.context import context_load
from affiliates.conversions.plan import plan
from affiliates.conversions.validate import conversion_check
from affiliates.conversions.write import plan_write
from affiliates.models import CommissionRule, Conversion, Program
from affiliates.rules import rules_for
from core import sqlrows


def conversion_record(
    *,
    program: Program,
    external_id: str,
    event_type: str,
    amount: Decimal | str,
    currency: str,
    customer_external_id: str | None = None,
    customer_email: str = "",
    product_ids: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    click_id: str | None = None,
    visitor_id: str | uuid.UUID | None = None,
    code: str | None = None,
    coupon: str | None = None,
    occurred_at: datetime | None = None,
    idempotency_key: str | None = None,
    rules: Sequence[CommissionRule] | None = None,
) -> tuple[Conversion, bool]:
    """Record a conversion, attribute it and create its commissions. Returns (conversion, created);
    a repeat of an external id or idempotency key returns the first conversion unchanged.
    `rules`: the program's active rules, if the caller has them (`rules.rules_for`)."""
    order = conversion_check(
        program=program,
        external_id=external_id,
        event_type=event_type,
        amount=amount,
        currency=currency,
        customer_external_id=customer_external_id,
        customer_email=customer_email,
        product_ids=product_ids,
        metadata=metadata,
        click_id=click_id,
        visitor_id=visitor_id,
        code=code,
        coupon=coupon,
        occurred_at=occurred_at,
        idempotency_key=idempotency_key,
    )
    # Buffered clicks become rows first, so a conversion right behind its click still sees it.
    tracking.clicks_flush()
    if rules is None:
        rules = rules_for(program.id)
    try:
        with transaction.atomic(), sqlrows.prepared():  # one cursor for every statement
            ctx = context_load(program=program, order=order, rules=rules)
            # Inserted once its attribution is known: a repeated external id or key fails there
            # on the unique index, and no row is written twice.
            conversion = plan_write(ctx, plan(ctx))
    except IntegrityError:
        # Lost a race for the same external id or key: the winner's row is committed now.
        existing = _existing(program, external_id, idempotency_key)
        if existing is None:
            raise
        return existing, False
    return conversion, True


def _existing(program: Program, external_id: str, idempotency_key: str | None) -> Conversion | None:
    query = Q(external_id=external_id)
    if idempotency_key:
        query |= Q(idempotency_key=idempotency_key)
    return Conversion.objects.filter(query, program=program).order_by("id").first()
