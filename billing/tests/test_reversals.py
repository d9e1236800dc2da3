"""Staff reversal of a paid payout against real PostgreSQL and the local Stripe double: one
reversal at Stripe and one ledger credit, whoever asks and however often."""

from __future__ import annotations

import pytest
import requests
from django.db import connection

from affiliates import commissions, conversions
from affiliates.models import Commission
from affiliates.tests import factories
from billing import payouts, reconcile, reversals, selectors
from billing.errors import BillingError
from billing.models import LedgerEntry, PayoutItem
from billing.tests import factories as payout_factories
from devtools.stripe_double import RunningDouble
from tests.support.race import race


def _paid_item(double: RunningDouble, tenant, program) -> PayoutItem:
    payout_factories.onboarded(double.url, tenant, payout_factories.owed(program, "800.00"))  # 80.00 owed
    payout_factories.fund(100_000)
    run = payouts.payout_run_execute(run=payouts.payout_run_create(program=program))
    item = run.items.get()
    assert item.status == PayoutItem.Status.PAID
    return item


def _transfer(double: RunningDouble, transfer_id: str) -> dict:
    [found] = [
        t for t in requests.get(f"{double.url}/_double/state", timeout=5).json()["transfers"] if t["id"] == transfer_id
    ]
    return found


def _reversal_entries() -> list[tuple[str, int]]:
    return list(LedgerEntry.objects.filter(kind="reversal").order_by("id").values_list("stripe_id", "amount_minor"))


@pytest.mark.django_db
def test_a_paid_item_is_reversed_once_with_its_commissions_and_the_ledger_credited(double, shop):
    tenant, program = shop
    item = _paid_item(double, tenant, program)
    [commission] = Commission.objects.filter(payout_item=item)
    # a refund after the payout left an adjustment waiting for the next run
    conversions.conversion_refund(conversion=commission.conversion, amount="400.00", reason="half back")
    [adjustment] = Commission.objects.filter(kind="adjustment")
    assert (adjustment.status, adjustment.amount_minor) == ("approved", -4_000)

    reversed_item = reversals.payout_item_reverse(item_id=item.pk, reason="  Fraudulent clicks ", by=None)

    transfer = _transfer(double, item.stripe_transfer_id)
    [reversal] = transfer["reversals"]["data"]
    assert (transfer["amount_reversed"], reversal["amount"]) == (8_000, 8_000)
    assert reversal["metadata"] == {"tenant": tenant.schema_name, "run": str(item.run_id), "item": str(item.pk)}
    assert (reversed_item.status, reversed_item.reversal_reason) == ("reversed", "Fraudulent clicks")
    assert reversed_item.reversed_at is not None
    assert _reversal_entries() == [(reversal["id"], 8_000)]
    assert LedgerEntry.objects.get(kind="reversal").reference == f"reversal:{reversal['id']}"
    assert selectors.ledger_balance(currency="USD") == 100_000
    assert set(Commission.objects.values_list("kind", "status", "status_reason")) == {
        ("commission", "reversed", "Fraudulent clicks"),
        ("adjustment", "reversed", "Fraudulent clicks"),
    }
    assert reconcile.differences(transfers=reconcile.stripe_transfers()) == []

    # and asking again is refused without a second reversal
    with pytest.raises(BillingError) as again:
        reversals.payout_item_reverse(item_id=item.pk, reason="again")
    assert (again.value.code, again.value.status) == ("already_reversed", 409)
    assert len(_transfer(double, item.stripe_transfer_id)["reversals"]["data"]) == 1
    assert _reversal_entries() == [(reversal["id"], 8_000)]


@pytest.mark.django_db
def test_an_item_that_is_not_paid_cannot_be_reversed_and_nothing_is_written(double, shop):
    tenant, program = shop
    payout_factories.onboarded(double.url, tenant, payout_factories.owed(program, "800.00"))
    item = payouts.payout_run_create(program=program).items.get()  # pending: no funds yet

    with pytest.raises(BillingError) as refused:
        reversals.payout_item_reverse(item_id=item.pk, reason="fraud")
    with pytest.raises(BillingError) as missing:
        reversals.payout_item_reverse(item_id=item.pk + 1000, reason="fraud")
    with pytest.raises(BillingError) as no_reason:
        reversals.payout_item_reverse(item_id=item.pk, reason="  ")

    assert (refused.value.code, refused.value.status) == ("not_paid", 409)
    assert (missing.value.code, missing.value.status) == ("not_found", 404)
    assert (no_reason.value.code, no_reason.value.field) == ("reason_required", "reason")
    item.refresh_from_db()
    assert (item.status, item.reversal_reason) == ("pending", "")
    assert LedgerEntry.objects.count() == 0
    assert requests.get(f"{double.url}/_double/state", timeout=5).json()["transfers"] == []


@pytest.mark.django_db
def test_a_crash_after_stripe_answered_is_retried_into_the_same_reversal(double, shop, monkeypatch):
    tenant, program = shop
    item = _paid_item(double, tenant, program)
    real = commissions.commissions_reversed

    def die(**kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr(commissions, "commissions_reversed", die)
    with pytest.raises(SystemExit):
        reversals.payout_item_reverse(item_id=item.pk, reason="fraud")
    item.refresh_from_db()
    assert item.status == "paid" and _reversal_entries() == []  # rolled back
    assert _transfer(double, item.stripe_transfer_id)["amount_reversed"] == 8_000

    monkeypatch.setattr(commissions, "commissions_reversed", real)
    item = reversals.payout_item_reverse(item_id=item.pk, reason="fraud")

    [reversal] = _transfer(double, item.stripe_transfer_id)["reversals"]["data"]
    assert item.status == "reversed" and _reversal_entries() == [(reversal["id"], 8_000)]


@pytest.mark.django_db
def test_a_retry_whose_key_expired_records_the_reversal_stripe_already_made(double, shop, monkeypatch):
    tenant, program = shop
    item = _paid_item(double, tenant, program)
    monkeypatch.setattr(commissions, "commissions_reversed", lambda **kw: (_ for _ in ()).throw(SystemExit()))
    with pytest.raises(SystemExit):
        reversals.payout_item_reverse(item_id=item.pk, reason="fraud")
    monkeypatch.undo()

    # when the retry comes after Stripe forgot the key: a new key, refused as "fully reversed"
    monkeypatch.setattr(reversals, "reversal_idempotency_key", lambda item: f"{item.idempotency_key}-later")
    item = reversals.payout_item_reverse(item_id=item.pk, reason="fraud")

    [reversal] = _transfer(double, item.stripe_transfer_id)["reversals"]["data"]
    assert item.status == "reversed" and _reversal_entries() == [(reversal["id"], 8_000)]


@pytest.mark.django_db
def test_a_partial_reversal_in_the_dashboard_credits_what_came_back_and_staff_reverse_the_rest(double, shop):
    tenant, program = shop
    item = _paid_item(double, tenant, program)
    # someone reverses 30.00 in Stripe's dashboard; the webhook records it
    from billing import gateway

    gateway.transfer_reversal_create(
        transfer_id=item.stripe_transfer_id, amount_minor=3_000, metadata={}, idempotency_key="dashboard"
    )
    transfer = reversals.TransferState.of(gateway.transfer_retrieve(item.stripe_transfer_id).to_dict())
    item, changed = reversals.reversal_record(item_id=item.pk, transfer=transfer)
    assert (changed, item.status, selectors.ledger_balance(currency="USD")) == (True, "paid", 92_000 + 3_000)

    item = reversals.payout_item_reverse(item_id=item.pk, reason="fraud")

    data = _transfer(double, item.stripe_transfer_id)["reversals"]["data"]
    assert sorted(r["amount"] for r in data) == [3_000, 5_000]
    assert item.status == "reversed" and sorted(a for _, a in _reversal_entries()) == [3_000, 5_000]
    assert selectors.ledger_balance(currency="USD") == 100_000
    # and the webhook of either reversal arriving now changes nothing
    again = reversals.TransferState.of(gateway.transfer_retrieve(item.stripe_transfer_id).to_dict())
    assert reversals.reversal_record(item_id=item.pk, transfer=again)[1] is False
    assert selectors.ledger_balance(currency="USD") == 100_000


@pytest.mark.django_db
def test_a_transfer_that_is_not_the_items_is_refused(double, shop):
    tenant, program = shop
    item = _paid_item(double, tenant, program)
    other = reversals.TransferState(
        id="tr_other",
        amount_minor=8_000,
        amount_reversed_minor=8_000,
        currency="USD",
        reversals=(reversals.Reversal("trr_x", 8_000, "USD"),),
    )

    with pytest.raises(BillingError, match="not this item's"):
        reversals.reversal_record(item_id=item.pk, transfer=other)

    item.refresh_from_db()
    assert item.status == "paid" and _reversal_entries() == []


@pytest.mark.django_db(transaction=True)
def test_two_staff_reversing_at_once_make_one_reversal_and_one_credit(double, make_tenant):
    tenant = make_tenant().tenant
    connection.set_tenant(tenant)
    program = factories.program(payout_threshold_minor=100, currency="USD")
    factories.rule(program, percent="10")
    item = _paid_item(double, tenant, program)
    double.faults(latency_ms=50)  # a slow Stripe, so the two really overlap

    def reverse(_index: int) -> str:
        try:
            return reversals.payout_item_reverse(item_id=item.pk, reason="fraud").status
        except BillingError as exc:
            return exc.code

    outcomes = race(reverse, times=2, tenant=tenant).outcomes

    # each either reversed it or was told it was reversed already
    assert sorted(outcomes) in (["already_reversed", "reversed"], ["reversed", "reversed"])
    [reversal] = _transfer(double, item.stripe_transfer_id)["reversals"]["data"]
    assert _reversal_entries() == [(reversal["id"], 8_000)]
    assert PayoutItem.objects.get(pk=item.pk).status == "reversed"
    assert selectors.ledger_balance(currency="USD") == 100_000
    connection.set_schema_to_public()
