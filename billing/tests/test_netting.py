"""A refund after a payout: the paid commission stays paid, a negative adjustment takes its share
back, and the next run nets it out of what the affiliate is owed."""

from __future__ import annotations

import pytest
import requests

from affiliates import conversions
from affiliates.models import Commission
from billing import payouts, reconcile, selectors
from billing.tests import factories as payout_factories


@pytest.fixture
def stripe_retries() -> int:
    return 0


@pytest.mark.django_db
def test_a_partial_refund_after_payout_is_netted_in_the_next_run(double, shop):
    tenant, program = shop
    affiliate = payout_factories.owed(program, "800.00")  # 80.00
    payout_factories.onboarded(double.url, tenant, affiliate)
    payout_factories.fund(100_000)
    first = payouts.payout_run_execute(run=payouts.payout_run_create(program=program))
    paid = Commission.objects.get(affiliate=affiliate)
    assert (first.items.get().amount_minor, paid.status) == (8_000, "paid")

    # when a quarter of the paid purchase is refunded, and a new sale earns 100.00
    conversions.conversion_refund(conversion=paid.conversion, amount="200.00", reason="partial refund")
    payout_factories.owed(program, "1000.00", affiliate=affiliate)

    # then the paid commission is untouched and a -20.00 adjustment waits for the next run
    paid.refresh_from_db()
    assert (paid.status, paid.amount_minor) == ("paid", 8_000)
    [adjustment] = Commission.objects.filter(affiliate=affiliate, kind="adjustment")
    assert (adjustment.amount_minor, adjustment.status) == (-2_000, "approved")

    # and the next run pays 100.00 - 20.00, covering both the new commission and the adjustment
    second = payouts.payout_run_execute(run=payouts.payout_run_create(program=program))
    item = second.items.get()
    assert (item.amount_minor, item.status) == (8_000, "paid")
    assert set(item.commissions.values_list("amount_minor", "status")) == {(10_000, "paid"), (-2_000, "paid")}
    transfers = requests.get(f"{double.url}/_double/state", timeout=5).json()["transfers"]
    assert sorted(t["amount"] for t in transfers) == [8_000, 8_000]
    assert selectors.ledger_balance(currency="USD") == 100_000 - 16_000
    assert reconcile.differences(transfers=reconcile.stripe_transfers()) == []


@pytest.mark.django_db
def test_an_adjustment_larger_than_what_is_owed_rolls_over_and_nothing_is_sent(double, shop):
    tenant, program = shop
    affiliate = payout_factories.owed(program, "800.00")
    payout_factories.onboarded(double.url, tenant, affiliate)
    payout_factories.fund(100_000)
    payouts.payout_run_execute(run=payouts.payout_run_create(program=program))

    # when the whole paid purchase is refunded and a small sale earns 10.00
    paid = Commission.objects.get(affiliate=affiliate)
    conversions.conversion_refund(conversion=paid.conversion, amount="800.00", reason="chargeback")
    payout_factories.owed(program, "100.00", affiliate=affiliate)

    # then the affiliate owes 70.00 back: no item, the reason is recorded, the commissions wait
    run = payouts.payout_run_create(program=program)
    assert run.items.count() == 0 and run.status == "done"
    assert run.skipped == [{"affiliate_id": affiliate.id, "amount_minor": -7_000, "reason": "below_threshold"}]
    assert set(
        Commission.objects.filter(affiliate=affiliate, status="approved").values_list("amount_minor", "payout_item")
    ) == {(-8_000, None), (1_000, None)}
    assert len(requests.get(f"{double.url}/_double/state", timeout=5).json()["transfers"]) == 1
