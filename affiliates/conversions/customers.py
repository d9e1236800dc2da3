"""Customers: created or updated by the merchant, and bound to the visitors whose clicks their
conversions are attributed by."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from affiliates import tracking
from affiliates.conversions.validate import click_id_parse, visitor_parse
from affiliates.errors import AffiliateError
from affiliates.models import Affiliate, Click, Customer, CustomerVisitor, Program
from core import sqlrows


@dataclass(frozen=True)
class Upserted:
    customer: Customer
    inserted: bool  # by this statement, not found


_CUSTOMER_FIELDS = [f.attname for f in Customer._meta.concrete_fields]
CUSTOMER_UPSERT = (
    "INSERT INTO affiliates_customer (program_id, external_id, email, created_at) VALUES (%s, %s, %s, %s) "  # noqa: S608 (columns from the model)
    "ON CONFLICT (program_id, external_id) DO UPDATE "
    "SET email = COALESCE(NULLIF(affiliates_customer.email, ''), excluded.email) "
    # xmax is 0 only on a row this statement inserted: "created" without a second query.
    f"RETURNING {', '.join(f.column for f in Customer._meta.concrete_fields)}, (xmax = 0)"
)


def customer_from(row: Sequence[Any]) -> Upserted:
    """The customer from a row of `CUSTOMER_UPSERT`."""
    *values, inserted = row
    return Upserted(Customer.from_db(connection.alias, _CUSTOMER_FIELDS, values), bool(inserted))


def _customer_locked(*, program: Program, external_id: str, email: str) -> Upserted:
    """Create or fetch the customer in one statement that also locks its row: conversions of one
    customer run one at a time, because binding and "first purchase" read what the previous
    one wrote."""
    with sqlrows.prepared() as cursor:
        cursor.execute(CUSTOMER_UPSERT, [program.id, external_id, email, timezone.now()], prepare=True)
        return customer_from(cursor.fetchone())


def _approved_by_code(program: Program, code: str | None) -> Affiliate | None:
    if not code:
        return None
    return Affiliate.objects.filter(
        program=program, code=code.strip().lower(), status=Affiliate.Status.APPROVED
    ).first()


def _click_visitor(program: Program, click_id: str | None) -> uuid.UUID | None:
    cid = click_id_parse(click_id)
    if cid is None:
        return None
    return Click.objects.filter(pk=cid, program=program).values_list("visitor_id", flat=True).first()


def customer_upsert(
    *,
    program: Program,
    external_id: str,
    email: str = "",
    visitor_id: str | uuid.UUID | None = None,
    click_id: str | None = None,
    code: str | None = None,
) -> tuple[Customer, bool]:
    """Create or update the customer and bind the visitor (from the visitor id or the click id),
    so that later conversions, from any device, see that visitor's clicks."""
    visitor = visitor_parse(visitor_id, "visitor_id")
    tracking.clicks_flush()
    visitor = visitor or _click_visitor(program, click_id)
    referred_by = _approved_by_code(program, code)
    if code and referred_by is None:
        raise AffiliateError("code_unknown", "No approved affiliate of this program has that code.", field="code")
    with transaction.atomic():
        upserted = _customer_locked(program=program, external_id=external_id, email=email.lower())
        customer = upserted.customer
        changed = []
        if email and customer.email != email.lower():
            customer.email = email.lower()
            changed.append("email")
        if referred_by and customer.referred_by_id is None:
            customer.referred_by = referred_by
            changed.append("referred_by")
        if changed:
            customer.save(update_fields=changed)
        if visitor:
            CustomerVisitor.objects.bulk_create(
                [CustomerVisitor(customer=customer, visitor_id=visitor)], ignore_conflicts=True
            )
    return customer, upserted.inserted
