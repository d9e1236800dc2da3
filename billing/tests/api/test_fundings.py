"""Funding the payout balance through Stripe Checkout."""

from __future__ import annotations

import pytest
import requests

from billing.models import Funding
from billing.tests.api.support import iso, post

pytestmark = pytest.mark.django_db


def test_funding_through_checkout_credits_the_balance_once(world, double):
    staff = world.clients["staff"]

    started = post(staff, "/api/v1/fundings", {"amount": "250.00", "currency": "usd"})

    assert started.status_code == 201, started.content
    body = started.json()
    made = Funding.objects.get(pk=body["id"])
    assert body == {
        "id": made.id,
        "amount": "250.00",
        "currency": "USD",
        "status": "open",
        "url": made.url,
        "created_at": iso(made.created_at),
        "paid_at": None,
    }
    assert made.url.startswith(double.url) and made.created_by.role == "owner"

    # the business pays on Stripe's page and comes back to the console on this tenant's host
    paid_page = requests.post(made.url, timeout=5, allow_redirects=False)
    assert paid_page.headers["Location"].startswith(f"http://{world.host}/console/payouts/funding?checkout=success")

    refreshed = post(staff, f"/api/v1/fundings/{made.id}/refresh")
    again = post(staff, f"/api/v1/fundings/{made.id}/refresh")

    assert (refreshed.json()["status"], again.json()["status"]) == ("paid", "paid")
    assert staff.get(f"/api/v1/fundings/{made.id}").json()["paid_at"] is not None
    assert staff.get("/api/v1/ledger").json() == {"balances": [{"currency": "USD", "balance": "290.00"}]}
    assert [f["id"] for f in staff.get("/api/v1/fundings?status=paid").json()["results"]] == [made.id]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "1.234", "currency": "USD"}, "amount"),
        ({"amount": "-5.00", "currency": "USD"}, "amount"),
        ({"amount": "0", "currency": "USD"}, "amount"),
        ({"amount": "1e3", "currency": "USD"}, "amount"),
        ({"amount": "NaN", "currency": "USD"}, "amount"),
        ({"amount": 5, "currency": "USD"}, "amount"),
        ({"amount": 5.5, "currency": "USD"}, "amount"),
        ({"amount": "2000000000.00", "currency": "USD"}, "amount"),
        ({"amount": "5.00", "currency": "XYZ"}, "currency"),
        ({"amount": "5.00", "currency": "EURO"}, "currency"),
        ({"amount": "5.00"}, "currency"),
        ({"currency": "USD"}, "amount"),
        ({"amount": "5.5", "currency": "JPY"}, "amount"),
    ],
)
def test_bad_funding_bodies_are_refused_before_stripe_and_write_nothing(world, double, body, field):
    sessions = double.state.summary()["counts"].get("checkout_sessions", 0)

    response = post(world.clients["staff"], "/api/v1/fundings", body)

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert Funding.objects.count() == 1  # the world's own
    assert double.state.summary()["counts"].get("checkout_sessions", 0) == sessions
