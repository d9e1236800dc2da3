"""Funding the payout ledger through Checkout, against the local Stripe double."""

from __future__ import annotations

import pytest
import requests
from django.db import connection

from billing import funding, gateway, selectors
from billing.errors import BillingError
from billing.models import Funding

pytestmark = pytest.mark.django_db


def _start(amount: int = 25_000) -> Funding:
    return funding.funding_start(
        amount_minor=amount,
        currency="usd",
        success_url="http://acme.localhost/funded",
        cancel_url="http://acme.localhost/cancelled",
    )


def _pay(session_url: str) -> requests.Response:
    return requests.post(session_url, timeout=5, allow_redirects=False)


def test_a_paid_checkout_credits_the_ledger_once(double, tenant):
    started = _start()
    assert started.url.startswith(double.url) and started.status == "open"
    assert funding.funding_refresh(funding=started).status == "open"  # not paid yet: nothing
    assert selectors.ledger_balance(currency="USD") == 0

    paid_page = _pay(started.url)
    paid = funding.funding_refresh(funding=started)
    again = funding.funding_refresh(funding=paid)

    assert paid_page.status_code == 302 and paid_page.headers["Location"].startswith("http://acme.localhost/funded")
    assert (paid.status, again.status) == ("paid", "paid")
    assert selectors.ledger_balance(currency="USD") == 25_000


def test_a_session_of_another_tenant_is_ignored(double, tenant, reused_tenant):
    started = _start()
    _pay(started.url)
    session = gateway.checkout_session_retrieve(started.session_id)

    other = reused_tenant().tenant
    connection.set_tenant(other)
    assert funding.funding_complete(session=session) is None
    assert selectors.ledger_balance(currency="USD") == 0


def test_a_paid_session_that_does_not_match_is_refused(double, tenant):
    started = _start()
    _pay(started.url)
    session = dict(gateway.checkout_session_retrieve(started.session_id))

    with pytest.raises(BillingError, match="does not match"):
        funding.funding_complete(session={**session, "amount_total": 1})
    assert Funding.objects.get().status == "open" and selectors.ledger_balance(currency="USD") == 0


@pytest.mark.parametrize(("amount", "currency"), [(0, "USD"), (-5, "USD"), (10**12, "USD"), (100, "XXQ")])
def test_bad_amounts_and_currencies_are_refused_and_nothing_is_started(double, tenant, amount, currency):
    with pytest.raises(BillingError):
        funding.funding_start(amount_minor=amount, currency=currency, success_url="http://a/", cancel_url="http://a/")
    assert not Funding.objects.exists()
    assert double.state.summary()["counts"].get("checkout_sessions", 0) == 0
