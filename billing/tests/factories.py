"""Test data for payouts: affiliates who are owed money, onboarded at the Stripe double, and a
funded ledger. Run inside a tenant's schema."""

from __future__ import annotations

import uuid
from datetime import timedelta

import requests
from django.utils import timezone

from affiliates import commissions, conversions
from affiliates.models import Affiliate, Commission, Program
from affiliates.tests import factories
from billing import services
from billing.connect import services as connect
from billing.models import LedgerEntry


def owed(program: Program, amount: str, affiliate: Affiliate | None = None) -> Affiliate:
    """An affiliate with an approved commission (the program's rule) on a purchase of `amount`."""
    affiliate = affiliate or factories.affiliate(program)
    visitor = uuid.uuid4()
    factories.click(affiliate, visitor=visitor, at=timezone.now() - timedelta(days=1))
    conversion, _ = conversions.conversion_record(
        program=program,
        external_id=uuid.uuid4().hex,
        event_type="purchase",
        amount=amount,
        currency=program.currency,
        visitor_id=visitor,
    )
    for commission in Commission.objects.filter(conversion=conversion):
        commissions.commission_set_status(commission=commission, status="approved", by=None)
    return affiliate


def onboarded(double_url: str, tenant, affiliate: Affiliate) -> str:
    """The affiliate's connected account, onboarded at the double; its Stripe id."""
    account, _ = connect.onboarding_start(
        tenant=tenant,
        affiliate_id=affiliate.id,
        email="a@example.com",
        country="US",
        refresh_url="http://x.localhost/r",
        return_url="http://x.localhost/ok",
    )
    requests.post(f"{double_url}/_double/accounts/{account.stripe_id}/complete", json={}, timeout=5)
    connect.account_refresh(tenant=tenant, affiliate_id=affiliate.id)
    return account.stripe_id


def fund(amount_minor: int, currency: str = "USD") -> None:
    services.ledger_post(
        kind=LedgerEntry.Kind.FUNDING, currency=currency, amount_minor=amount_minor, reference=f"t:{uuid.uuid4()}"
    )
