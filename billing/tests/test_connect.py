"""Connect onboarding against the local Stripe double: one account per affiliate, mapped to
its tenant in the public schema, kept current without ever moving backwards or across tenants."""

from __future__ import annotations

import time

import pytest
import requests

from billing import gateway
from billing.connect import services
from billing.connect.models import ConnectedAccount
from billing.errors import BillingError
from devtools.stripe_double import RunningDouble
from tests.support.race import race


def _start(tenant, affiliate_id: int = 7):
    host = f"http://{tenant.slug}.localhost:8000"
    return services.onboarding_start(
        tenant=tenant,
        affiliate_id=affiliate_id,
        email="aff@example.com",
        country="DE",
        refresh_url=f"{host}/payouts/onboarding/refresh",
        return_url=f"{host}/payouts/onboarding/return",
    )


def _accounts_at(double: RunningDouble) -> int:
    return double.state.summary()["counts"]["accounts"]


@pytest.mark.django_db
def test_onboarding_creates_the_account_once_and_a_fresh_link_each_time(double, reused_tenant):
    tenant = reused_tenant().tenant

    account, link = _start(tenant)
    again, second_link = _start(tenant)

    assert again.pk == account.pk and again.stripe_id == account.stripe_id
    assert _accounts_at(double) == 1 and ConnectedAccount.objects.count() == 1
    assert link.url != second_link.url and link.url.startswith(double.url)
    assert (account.tenant_id, account.affiliate_id, account.country) == (tenant.pk, 7, "DE")
    assert (account.payouts_enabled, account.transfers) == (False, "inactive")
    stripe_account = gateway.account_retrieve(account.stripe_id)
    assert dict(stripe_account.metadata) == {"tenant": tenant.schema_name, "affiliate_id": "7"}


@pytest.mark.django_db
def test_the_onboarding_page_returns_to_the_tenant_and_the_account_can_receive_transfers(double, reused_tenant):
    tenant = reused_tenant().tenant
    _, link = _start(tenant)

    page = requests.get(link.url, timeout=5)
    done = requests.post(link.url, timeout=5, allow_redirects=False)
    refreshed = services.account_refresh(tenant=tenant, affiliate_id=7)

    assert page.status_code == 200 and done.status_code == 302
    assert done.headers["Location"] == f"http://{tenant.slug}.localhost:8000/payouts/onboarding/return"
    assert (refreshed.details_submitted, refreshed.payouts_enabled, refreshed.transfers) == (True, True, "active")
    assert refreshed.can_receive_transfers and refreshed.requirements_due == []
    assert services.dashboard_link(tenant=tenant, affiliate_id=7).startswith(double.url)


@pytest.mark.django_db
def test_an_older_report_never_moves_an_account_backwards(double, reused_tenant):
    tenant = reused_tenant().tenant
    account, _ = _start(tenant)
    requests.post(f"{double.url}/_double/accounts/{account.stripe_id}/complete", json={}, timeout=5)
    current = gateway.account_retrieve(account.stripe_id)
    now = int(time.time())
    services.account_apply(stripe_account=current, as_of=now + 10)

    stale = {**current, "payouts_enabled": False, "capabilities": {"transfers": "inactive"}}
    services.account_apply(stripe_account=stale, as_of=now + 5)

    account.refresh_from_db()
    assert (account.payouts_enabled, account.transfers, account.synced_at) == (True, "active", now + 10)


@pytest.mark.django_db
def test_accounts_never_cross_tenants(double, reused_tenant):
    # given two tenants whose affiliates have the same id in their own schemas
    first, second = reused_tenant().tenant, reused_tenant().tenant
    mine, _ = _start(first, affiliate_id=7)

    # then the second tenant's affiliate 7 has no account until it onboards, and then its own
    assert services.account_for(tenant=second, affiliate_id=7) is None
    with pytest.raises(BillingError):
        services.dashboard_link(tenant=second, affiliate_id=7)
    theirs, _ = _start(second, affiliate_id=7)
    assert theirs.stripe_id != mine.stripe_id and _accounts_at(double) == 2

    # and a report whose metadata names another tenant changes nothing
    forged = {
        **gateway.account_retrieve(mine.stripe_id),
        "payouts_enabled": True,
        "metadata": {"tenant": second.schema_name, "affiliate_id": "7"},
    }
    services.account_apply(stripe_account=forged, as_of=int(time.time()) + 60)
    mine.refresh_from_db()
    assert (mine.tenant_id, mine.payouts_enabled) == (first.pk, False)
    # and a report about an account nobody here knows is ignored
    assert services.account_apply(stripe_account={"id": "acct_unknown"}, as_of=0) is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_starts_make_one_account(double, make_tenant):
    tenant = make_tenant().tenant

    def start(_index: int) -> str | None:
        for _attempt in range(5):  # the double answers 409 while the same key is in flight
            try:
                return _start(tenant)[0].stripe_id
            except gateway.GatewayError as exc:
                if not exc.transient and exc.http_status != 409:
                    raise
                time.sleep(0.05)
        return None

    ids = race(start, times=4).outcomes

    assert len(set(ids)) == 1 and isinstance(ids[0], str), ids
    assert _accounts_at(double) == 1 and ConnectedAccount.objects.filter(tenant=tenant).count() == 1
