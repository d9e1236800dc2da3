"""billing.gateway against the local Stripe double: the one way the platform talks to Stripe."""

from __future__ import annotations

import pytest
import requests
from django.test import override_settings

from billing import gateway
from devtools.stripe_double import RunningDouble


def _account(double: RunningDouble, *, complete: bool = True) -> str:
    account = gateway.account_create(
        email="aff@example.com", country="FR", metadata={"tenant": "acme", "affiliate": "7"}, idempotency_key="acct-7"
    )
    if complete:
        requests.post(f"{double.url}/_double/accounts/{account.id}/complete", json={}, timeout=5).raise_for_status()
    return account.id


def _transfer(destination: str, key: str = "item-1", amount: int = 1234):
    return gateway.transfer_create(
        amount_minor=amount,
        currency="EUR",
        destination=destination,
        transfer_group="run-1",
        metadata={"tenant": "acme", "item": "1"},
        idempotency_key=key,
    )


def _transfers(double: RunningDouble) -> int:
    return double.state.summary()["counts"]["transfers"]


def test_an_express_account_outside_the_us_takes_the_recipient_agreement(double):
    account = gateway.account_retrieve(_account(double, complete=False))

    assert (account.type, account.country, account.metadata["affiliate"]) == ("express", "FR", "7")
    assert account.tos_acceptance.service_agreement == "recipient"
    assert account.payouts_enabled is False


def test_a_transfer_repeated_with_its_key_is_the_same_transfer(double):
    destination = _account(double)

    first, again = _transfer(destination), _transfer(destination)

    assert first.id == again.id and (first.amount, first.currency, first.transfer_group) == (1234, "eur", "run-1")
    assert _transfers(double) == 1
    assert [t.id for t in gateway.transfers_list(transfer_group="run-1")] == [first.id]


def test_a_lost_response_is_retried_with_the_same_key_and_transfers_once(double):
    destination = _account(double)
    double.faults({"method": "POST", "path": "/v1/transfers", "mode": "drop_response", "times": 1})

    transfer = _transfer(destination)

    assert _transfers(double) == 1 and transfer.id == gateway.transfers_list(transfer_group="run-1").__next__().id


def test_a_500_once_is_retried_by_the_sdk_and_a_persistent_500_is_transient(double):
    destination = _account(double)
    double.faults({"method": "POST", "path": "/v1/transfers", "mode": "error", "status": 500, "times": 1})
    assert _transfer(destination, key="a").amount == 1234

    double.faults({"method": "POST", "path": "/v1/transfers", "mode": "error", "status": 500})
    with pytest.raises(gateway.GatewayError) as failed:
        _transfer(destination, key="b")
    assert (failed.value.transient, failed.value.code, failed.value.http_status) == (True, "api_error", 500)
    assert _transfers(double) == 1


def test_a_429_is_transient_with_stripes_code(double):
    destination = _account(double)
    double.faults({"method": "POST", "path": "/v1/transfers", "mode": "error", "status": 429})

    with pytest.raises(gateway.GatewayError) as failed:
        _transfer(destination)

    assert (failed.value.transient, failed.value.code) == (True, "rate_limit")
    assert _transfers(double) == 0


def test_a_timeout_is_transient(double):
    destination = _account(double)
    double.faults({"method": "POST", "path": "/v1/transfers", "mode": "timeout"})

    with pytest.raises(gateway.GatewayError) as failed:
        _transfer(destination)

    assert failed.value.transient is True and failed.value.code == "connection"


def test_refusals_are_permanent_with_stripes_code(double):
    not_onboarded = _account(double, complete=False)
    with pytest.raises(gateway.GatewayError) as cannot_receive:
        _transfer(not_onboarded, key="x")
    requests.post(f"{double.url}/_double/balance", json={"currency": "eur", "available": 100}, timeout=5)
    with pytest.raises(gateway.GatewayError) as no_money:
        _transfer(_account(double), key="y")

    assert cannot_receive.value.transient is False and cannot_receive.value.http_status == 400
    assert (no_money.value.transient, no_money.value.code) == (False, "balance_insufficient")
    assert _transfers(double) == 0


def test_a_reversal_and_a_checkout_session_and_links(double):
    destination = _account(double)
    transfer = _transfer(destination)

    reversal = gateway.transfer_reversal_create(
        transfer_id=transfer.id, amount_minor=234, metadata={"item": "1"}, idempotency_key="rev-1"
    )
    link = gateway.account_link_create(
        account_id=destination, refresh_url="http://acme.localhost/r", return_url="http://acme.localhost/ok"
    )
    login = gateway.login_link_create(account_id=destination)
    session = gateway.checkout_session_create(
        amount_minor=50_000,
        currency="EUR",
        product_name="Payout funds",
        success_url="http://acme.localhost/s",
        cancel_url="http://acme.localhost/c",
        metadata={"tenant": "acme"},
        idempotency_key="fund-1",
    )

    assert (reversal.amount, reversal.transfer) == (234, transfer.id)
    assert link.url.startswith(double.url) and login.url.startswith(double.url)
    assert (session.amount_total, session.currency, session.metadata["tenant"]) == (50_000, "eur", "acme")


def test_without_a_key_nothing_is_sent(double):
    with override_settings(STRIPE_SECRET_KEY=""), pytest.raises(gateway.GatewayError) as failed:
        gateway.balance_retrieve()
    assert (failed.value.code, failed.value.transient) == ("not_configured", False)


def test_nothing_but_the_gateway_imports_stripe():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    importers = sorted(
        str(path.relative_to(root))
        for folder in ("affiliates", "billing", "platform", "tenants")
        for path in (root / folder).rglob("*.py")
        if "tests" not in path.parts and re.search(r"^\s*(import stripe|from stripe\b)", path.read_text(), re.M)
    )
    assert importers == ["billing/gateway.py"]
