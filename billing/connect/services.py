"""Connect onboarding: one Express account per affiliate, mapped in the public schema to its
tenant and affiliate, kept current from Stripe (webhooks or a fetch on the affiliate's return)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction

from billing import gateway
from billing.connect.models import ConnectedAccount
from billing.errors import BillingError

logger = logging.getLogger(__name__)


def account_for(*, tenant: Any, affiliate_id: int) -> ConnectedAccount | None:
    """The affiliate's account, looked up with the tenant given explicitly (never from the
    connection's schema), so one tenant can never reach another's accounts."""
    return ConnectedAccount.objects.filter(tenant=tenant, affiliate_id=affiliate_id).first()


def accounts_for(*, tenant: Any, affiliate_ids: list[int]) -> dict[int, ConnectedAccount]:
    return {a.affiliate_id: a for a in ConnectedAccount.objects.filter(tenant=tenant, affiliate_id__in=affiliate_ids)}


def onboarding_start(
    *, tenant: Any, affiliate_id: int, email: str, country: str, refresh_url: str, return_url: str
) -> tuple[ConnectedAccount, Any]:
    """Create the affiliate's connected account once, then a fresh single-use onboarding link.
    Returns (account, Stripe's AccountLink with `url` and `expires_at`).

    The account is created with an idempotency key naming tenant and affiliate, so two
    concurrent starts (or a retry after a crash before the mapping was saved) get the same
    account from Stripe, and the mapping's unique keys keep one row."""
    account = account_for(tenant=tenant, affiliate_id=affiliate_id)
    if account is None:
        created = gateway.account_create(
            email=email,
            country=country,
            metadata={"tenant": tenant.schema_name, "affiliate_id": str(affiliate_id)},
            idempotency_key=f"connect-account:{tenant.schema_name}:{affiliate_id}",
        )
        try:
            with transaction.atomic():
                account, _ = ConnectedAccount.objects.get_or_create(
                    stripe_id=created.id, defaults={"tenant": tenant, "affiliate_id": affiliate_id, "country": country}
                )
        except IntegrityError:
            account = account_for(tenant=tenant, affiliate_id=affiliate_id)
        if account is None or account.tenant_id != tenant.pk or account.affiliate_id != affiliate_id:
            raise BillingError("account_conflict", "This Stripe account belongs to someone else.", status=409)
        _apply(account, created, as_of=int(time.time()))
    link = gateway.account_link_create(account_id=account.stripe_id, refresh_url=refresh_url, return_url=return_url)
    return account, link


def account_refresh(*, tenant: Any, affiliate_id: int) -> ConnectedAccount:
    """Fetch the account from Stripe now (the affiliate just came back from onboarding)."""
    account = account_for(tenant=tenant, affiliate_id=affiliate_id)
    if account is None:
        raise BillingError("not_onboarded", "Set up payouts first.", status=409)
    fetched_at = int(time.time())
    return account_apply(stripe_account=gateway.account_retrieve(account.stripe_id), as_of=fetched_at) or account


def account_apply(*, stripe_account: Mapping[str, Any], as_of: int) -> ConnectedAccount | None:
    """Apply Stripe's view of an account (from `account.updated` or a fetch) as of Unix time
    `as_of`. Unknown accounts are ignored; a report older than the last one applied changes
    nothing; an account whose metadata names another tenant or affiliate than its mapping is
    refused (logged), never re-attached."""
    with transaction.atomic():
        account = ConnectedAccount.objects.select_for_update().filter(stripe_id=stripe_account["id"]).first()
        if account is None:
            return None
        metadata = stripe_account.get("metadata") or {}
        if metadata.get("tenant") not in (None, account.tenant.schema_name) or metadata.get("affiliate_id") not in (
            None,
            str(account.affiliate_id),
        ):
            logger.error("Stripe account %s names another tenant or affiliate; ignored", account.stripe_id)
            return account
        if as_of < account.synced_at:
            return account
        _apply(account, stripe_account, as_of=as_of)
    return account


def _apply(account: ConnectedAccount, stripe_account: Mapping[str, Any], *, as_of: int) -> None:
    capabilities = stripe_account.get("capabilities") or {}
    requirements = stripe_account.get("requirements") or {}
    account.details_submitted = bool(stripe_account.get("details_submitted"))
    account.payouts_enabled = bool(stripe_account.get("payouts_enabled"))
    account.transfers = capabilities.get("transfers") or ConnectedAccount.Transfers.INACTIVE
    account.requirements_due = list(requirements.get("currently_due") or [])
    account.disabled_reason = requirements.get("disabled_reason") or ""
    account.synced_at = as_of
    account.save()


def dashboard_link(*, tenant: Any, affiliate_id: int) -> str:
    """A single-use link into the affiliate's Express dashboard."""
    account = account_for(tenant=tenant, affiliate_id=affiliate_id)
    if account is None or not account.details_submitted:
        raise BillingError("not_onboarded", "Finish setting up payouts first.", status=409)
    return gateway.login_link_create(account_id=account.stripe_id).url
