"""Stripe down, unreachable or refusing: stable codes, never a 500, nothing written."""

from __future__ import annotations

import pytest
from django.test import override_settings

from billing import gateway
from billing.api.views.stripe_errors import billing_error_from
from billing.connect.models import ConnectedAccount
from billing.models import Funding
from billing.tests.api.support import post, stripe_fails

pytestmark = pytest.mark.django_db


def test_stripe_down_answers_503_stripe_unavailable_and_writes_nothing(world, double):
    staff = world.clients["staff"]
    stripe_fails(double, 503)

    started = post(staff, "/api/v1/fundings", {"amount": "20.00", "currency": "USD"})
    refreshed = post(staff, f"/api/v1/fundings/{world.funding.id}/refresh")
    onboarding = post(world.clients["other_affiliate"], "/api/v1/payout-account/onboarding", {})

    for response in (started, refreshed, onboarding):
        assert response.status_code == 503, response.content
        assert response.json()["error"]["code"] == "stripe_unavailable"
        assert response["Retry-After"] == "30"
    assert Funding.objects.count() == 1 and Funding.objects.get().status == "open"
    assert not ConnectedAccount.objects.filter(affiliate_id=world.other.id).exists()


def test_stripe_unreachable_answers_503_and_writes_nothing(world):
    gateway._client.cache_clear()
    with override_settings(STRIPE_API_BASE="http://127.0.0.1:9"):  # nothing listens there
        response = post(world.clients["staff"], "/api/v1/fundings", {"amount": "20.00", "currency": "USD"})
    gateway._client.cache_clear()

    assert (response.status_code, response.json()["error"]["code"]) == (503, "stripe_unavailable")
    assert Funding.objects.count() == 1


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (gateway.GatewayError(code="connection", message="x", transient=True), (503, "stripe_unavailable")),
        (gateway.GatewayError(code="rate_limit", message="x", transient=True), (503, "stripe_unavailable")),
        (gateway.GatewayError(code="not_configured", message="x", transient=False), (503, "payouts_not_configured")),
        (
            gateway.GatewayError(code="account_invalid", message="x", transient=False, refused_request=True),
            (422, "stripe_refused"),
        ),
        (gateway.GatewayError(code="idempotency_key_in_use", message="x", transient=False), (409, "stripe_busy")),
        (gateway.GatewayError(code="AuthenticationError", message="x", transient=False), (502, "stripe_error")),
    ],
)
def test_every_stripe_failure_maps_to_a_stable_code_never_500(error, expected):
    mapped = billing_error_from(error)
    assert (mapped.status, mapped.code) == expected


def test_stripe_refusing_the_platform_answers_502(world, double):
    stripe_fails(double, 401)
    response = post(world.clients["staff"], "/api/v1/fundings", {"amount": "20.00", "currency": "USD"})
    assert (response.status_code, response.json()["error"]["code"]) == (502, "stripe_error")
    assert Funding.objects.count() == 1
