"""Funding the payout ledger through Stripe Checkout.

Checkout rather than a saved payment method charged when a run needs money: the business sees
and approves each amount on Stripe's page (no mandate, no card kept by the platform), and a run
never fails half-way on an off-session charge that needs authentication; a run short of funds
waits and says how much is missing, which is the amount to fund. The ledger is credited only
when Stripe reports the session paid, for the amount and currency this tenant asked for.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from billing import gateway, services
from billing.errors import BillingError
from billing.models import Funding, LedgerEntry
from core import money

MAX_FUNDING_MINOR = 10**11  # a billion in a two-decimal currency: beyond it, a typo


def funding_start(*, amount_minor: int, currency: str, success_url: str, cancel_url: str, by: Any = None) -> Funding:
    """A Checkout session for `amount_minor`; the business pays on `funding.url`."""
    currency = currency.upper()
    try:
        money.currency_clean(currency)
    except money.MoneyError as exc:
        raise BillingError(exc.code, exc.message, field="currency") from None
    if not 0 < amount_minor <= MAX_FUNDING_MINOR:
        raise BillingError("amount_invalid", "Fund a positive, plausible amount.", field="amount")
    tenant = connection.tenant
    key = uuid.uuid4().hex
    session = gateway.checkout_session_create(
        amount_minor=amount_minor,
        currency=currency,
        product_name=f"Affiliate payouts: {tenant.name}",
        success_url=success_url,
        cancel_url=cancel_url,
        metadata={"tenant": tenant.schema_name, "purpose": "payout_funding", "funding": key},
        idempotency_key=f"funding-{key}",
    )
    return Funding.objects.create(
        session_id=session.id, amount_minor=amount_minor, currency=currency, url=session.url, created_by=by
    )


def funding_complete(*, session: Mapping[str, Any]) -> Funding | None:
    """Credit the ledger for a paid Checkout session of this tenant, once. Returns None for a
    session this tenant did not start (another tenant's, or none of ours) and leaves an unpaid
    one open; a paid session whose amount or currency differ from what was asked is refused."""
    if (session.get("metadata") or {}).get("tenant") != connection.schema_name:
        return None
    with transaction.atomic():
        funding = Funding.objects.select_for_update().filter(session_id=session["id"]).first()
        if funding is None or funding.status == Funding.Status.PAID:
            return funding
        if session.get("payment_status") != "paid":
            return funding
        if session.get("amount_total") != funding.amount_minor or (session.get("currency") or "").upper() != (
            funding.currency
        ):
            raise BillingError("funding_mismatch", "The paid session does not match the funding asked for.")
        services.ledger_post(
            kind=LedgerEntry.Kind.FUNDING,
            currency=funding.currency,
            amount_minor=funding.amount_minor,
            reference=f"checkout:{funding.session_id}",
            stripe_id=str(session.get("payment_intent") or ""),
        )
        funding.status, funding.paid_at = Funding.Status.PAID, timezone.now()
        funding.save(update_fields=["status", "paid_at"])
    return funding


def funding_refresh(*, funding: Funding) -> Funding:
    """Ask Stripe about the session now (the business is back from Checkout)."""
    return funding_complete(session=gateway.checkout_session_retrieve(funding.session_id)) or funding
