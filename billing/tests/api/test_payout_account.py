"""An affiliate's payout account (Stripe Connect)."""

from __future__ import annotations

import pytest
import requests
from django.test import override_settings

from affiliates import services as affiliate_services
from affiliates.models import Affiliate
from affiliates.tests import factories
from billing.connect.models import ConnectedAccount
from billing.tests.api.support import post

pytestmark = pytest.mark.django_db


def test_an_affiliate_sets_up_its_payout_account(world, double):
    client = world.clients["other_affiliate"]
    assert client.get("/api/v1/payout-account").json()["error"]["code"] == "no_payout_account"

    started = post(client, "/api/v1/payout-account/onboarding", {"country": "de"})

    assert started.status_code == 200, started.content
    assert started.json()["url"].startswith(f"{double.url}/_double/onboarding/")
    assert started.json()["expires_at"] is not None
    account = ConnectedAccount.objects.get(tenant=world.tenant, affiliate_id=world.other.id)
    assert account.country == "DE"
    status = client.get("/api/v1/payout-account").json()
    assert status == {
        "affiliate": world.other.id,
        "stripe_account": account.stripe_id,
        "country": "DE",
        "details_submitted": False,
        "payouts_enabled": False,
        "transfers": account.transfers,
        "can_receive_transfers": False,
        "requirements_due": account.requirements_due,
        "disabled_reason": account.disabled_reason,
    }
    assert post(client, "/api/v1/payout-account/dashboard-link").json()["error"]["code"] == "not_onboarded"

    # the affiliate finishes Stripe's pages and comes back
    requests.post(f"{double.url}/_double/accounts/{account.stripe_id}/complete", json={}, timeout=5)
    refreshed = post(client, "/api/v1/payout-account/refresh")
    dashboard = post(client, "/api/v1/payout-account/dashboard-link")

    assert refreshed.json()["can_receive_transfers"] is True and refreshed.json()["requirements_due"] == []
    assert dashboard.status_code == 200 and dashboard.json()["url"].startswith(f"{double.url}/_double/dashboard/")
    again = post(client, "/api/v1/payout-account/onboarding", {"country": "FR"})  # the account exists: kept
    assert again.status_code == 200 and ConnectedAccount.objects.get(pk=account.pk).country == "DE"


@override_settings(PAYOUT_DEFAULT_COUNTRY="GB")
def test_onboarding_without_a_country_uses_the_platforms(world):
    assert post(world.clients["other_affiliate"], "/api/v1/payout-account/onboarding").status_code == 200
    assert ConnectedAccount.objects.get(affiliate_id=world.other.id, tenant=world.tenant).country == "GB"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"country": "XX"}, "country"),
        ({"country": "usa"}, "country"),
        ({"country": 1}, "country"),
        ({"affiliate": "me"}, "affiliate"),
        ({"affiliate": 0}, "affiliate"),
    ],
)
def test_bad_onboarding_bodies_are_refused_and_create_nothing(world, double, body, field):
    accounts = double.state.summary()["counts"].get("accounts", 0)

    response = post(world.clients["other_affiliate"], "/api/v1/payout-account/onboarding", body)

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert not ConnectedAccount.objects.filter(affiliate_id=world.other.id).exists()
    assert double.state.summary()["counts"].get("accounts", 0) == accounts


def test_an_affiliate_not_approved_cannot_set_up_payouts(world):
    Affiliate.objects.filter(pk=world.other.pk).update(status=Affiliate.Status.SUSPENDED)
    response = post(world.clients["other_affiliate"], "/api/v1/payout-account/onboarding")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "affiliate_not_approved")
    assert not ConnectedAccount.objects.filter(affiliate_id=world.other.id).exists()


def test_an_affiliate_in_several_programs_names_which_and_only_its_own(world):
    second = factories.program(slug="second")
    affiliate_services.affiliate_apply(program=second, user=world.aff.user)
    client = world.clients["affiliate"]

    unnamed = client.get("/api/v1/payout-account")
    named = client.get(f"/api/v1/payout-account?affiliate={world.aff.id}")
    someone_else = client.get(f"/api/v1/payout-account?affiliate={world.other.id}")
    onboarding_for_someone_else = post(client, "/api/v1/payout-account/onboarding", {"affiliate": world.other.id})

    assert (unnamed.status_code, unnamed.json()["error"]["code"]) == (400, "affiliate_required")
    assert (named.status_code, named.json()["affiliate"]) == (200, world.aff.id)
    assert (someone_else.status_code, someone_else.json()["error"]["code"]) == (404, "not_found")
    assert onboarding_for_someone_else.status_code == 404
    assert not ConnectedAccount.objects.filter(affiliate_id=world.other.id).exists()
