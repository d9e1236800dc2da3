"""Payout runs against real PostgreSQL and the local Stripe double: each affiliate is paid
what it is owed, once, whatever fails in between."""

from __future__ import annotations

import io
import threading
import time
from datetime import timedelta

import pytest
import requests
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from affiliates import commissions, conversions
from affiliates.models import Commission
from affiliates.tests import factories
from billing import gateway, payouts, reconcile, selectors
from billing.connect.models import ConnectedAccount
from billing.models import PayoutItem, PayoutItemCommission, PayoutRun
from billing.tests import factories as payout_factories
from devtools.stripe_double import RunningDouble
from tests.support.race import race


@pytest.fixture
def stripe_retries() -> int:
    return 0  # the payout code handles every failure itself


def _reconciled() -> list:
    return reconcile.differences(transfers=reconcile.stripe_transfers())


def _transfers(double: RunningDouble) -> list[dict]:
    return requests.get(f"{double.url}/_double/state", timeout=5).json()["transfers"]


@pytest.mark.django_db
def test_a_run_pays_who_is_owed_enough_and_rolls_the_rest_over_with_the_reason(double, shop):
    tenant, program = shop
    paid = payout_factories.owed(program, "600.00")  # 60.00 owed
    payout_factories.owed(program, "100.00", affiliate=paid)  # +10.00
    below = payout_factories.owed(program, "300.00")  # 30.00 < 50.00
    no_account = payout_factories.owed(program, "900.00")
    destination = payout_factories.onboarded(double.url, tenant, paid)
    payout_factories.onboarded(double.url, tenant, below)
    payout_factories.fund(100_000)

    run = payouts.payout_run_create(program=program)
    run = payouts.payout_run_execute(run=run)

    [item] = run.items.all()
    assert (item.affiliate_id, item.amount_minor, item.status, item.destination) == (paid.id, 7000, "paid", destination)
    assert sorted((s["affiliate_id"], s["amount_minor"], s["reason"]) for s in run.skipped) == sorted(
        [(below.id, 3000, "below_threshold"), (no_account.id, 9000, "no_payout_account")]
    )
    assert run.status == PayoutRun.Status.DONE
    assert set(Commission.objects.filter(affiliate=paid).values_list("status", flat=True)) == {"paid"}
    assert set(Commission.objects.filter(affiliate=below).values_list("status", "payout_item")) == {("approved", None)}
    [transfer] = _transfers(double)
    assert (transfer["amount"], transfer["destination"], transfer["transfer_group"]) == (
        7000,
        destination,
        f"{tenant.schema_name}-payout-run-{run.pk}",
    )
    assert transfer["metadata"] == {"tenant": tenant.schema_name, "run": str(run.pk), "item": str(item.pk)}
    assert selectors.ledger_balance(currency="USD") == 100_000 - 7000
    assert _reconciled() == []


@pytest.mark.django_db
def test_without_enough_funds_the_run_waits_and_says_how_much_is_missing(double, shop):
    tenant, program = shop
    payout_factories.onboarded(double.url, tenant, payout_factories.owed(program, "800.00"))
    payout_factories.fund(5_000)

    run = payouts.payout_run_execute(run=payouts.payout_run_create(program=program))

    assert (run.status, run.missing_minor) == (PayoutRun.Status.AWAITING_FUNDS, 3_000)
    assert run.items.get().status == PayoutItem.Status.PENDING and _transfers(double) == []
    assert selectors.ledger_balance(currency="USD") == 5_000

    payout_factories.fund(3_000)
    run = payouts.payout_run_execute(run=run)
    assert (run.status, run.items.get().status, len(_transfers(double))) == ("done", "paid", 1)


@pytest.mark.django_db
def test_a_crash_between_stripe_and_the_commit_is_retried_into_the_same_transfer(double, shop, monkeypatch):
    tenant, program = shop
    payout_factories.onboarded(double.url, tenant, payout_factories.owed(program, "800.00"))
    payout_factories.fund(100_000)
    run = payouts.payout_run_create(program=program)

    # when the worker dies right after Stripe answered, before its transaction commits
    real = commissions.commissions_paid

    def die(**kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr(commissions, "commissions_paid", die)
    with pytest.raises(SystemExit):
        payouts.payout_run_execute(run=run)
    assert run.items.get().status == PayoutItem.Status.SENDING and len(_transfers(double)) == 1

    # then, while the dead worker's claim holds, nobody sends it again
    monkeypatch.setattr(commissions, "commissions_paid", real)
    assert payouts.payout_run_execute(run=run).status == "queued" and len(_transfers(double)) == 1
    # and once it has lapsed, the next execution sends the same key and records the one transfer
    PayoutItem.objects.filter(run=run).update(claimed_until=timezone.now() - timedelta(seconds=1))
    run = payouts.payout_run_execute(run=run)
    item = run.items.get()
    [transfer] = _transfers(double)
    assert (item.status, item.stripe_transfer_id, run.status) == ("paid", transfer["id"], "done")
    assert selectors.ledger_balance(currency="USD") == 100_000 - 8_000
    assert _reconciled() == []


@pytest.mark.parametrize(
    "fault",
    [
        {"mode": "error", "status": 429},
        {"mode": "error", "status": 500},
        {"mode": "timeout"},  # longer than the gateway's timeout; Stripe did nothing
    ],
    ids=["429", "500", "timeout"],
)
@pytest.mark.django_db
def test_a_transient_failure_leaves_the_item_sending_and_the_next_execution_pays_it_once(double, shop, fault):
    tenant, program = shop
    payout_factories.onboarded(double.url, tenant, payout_factories.owed(program, "800.00"))
    payout_factories.fund(100_000)
    run = payouts.payout_run_create(program=program)
    double.faults({"method": "POST", "path": "/v1/transfers", "times": 1, **fault})

    first = payouts.payout_run_execute(run=run)
    item = run.items.get()
    assert (first.status, item.status, item.attempts, _transfers(double)) == ("queued", "sending", 1, [])

    second = payouts.payout_run_execute(run=run)
    item.refresh_from_db()
    assert (second.status, item.status, item.attempts, len(_transfers(double))) == ("done", "paid", 2, 1)
    assert selectors.ledger_balance(currency="USD") == 100_000 - 8_000
    assert _reconciled() == []


@pytest.mark.django_db
def test_a_lost_answer_is_found_again_and_recorded_without_a_second_transfer(double, shop):
    tenant, program = shop
    payout_factories.onboarded(double.url, tenant, payout_factories.owed(program, "800.00"))
    payout_factories.fund(100_000)
    run = payouts.payout_run_create(program=program)
    double.faults({"method": "POST", "path": "/v1/transfers", "mode": "drop_response", "times": 1})

    first = payouts.payout_run_execute(run=run)  # Stripe made the transfer; the answer was lost
    assert (first.status, run.items.get().status, len(_transfers(double))) == ("queued", "sending", 1)

    second = payouts.payout_run_execute(run=run)
    item = run.items.get()
    [transfer] = _transfers(double)
    assert (second.status, item.status, item.stripe_transfer_id) == ("done", "paid", transfer["id"])
    assert _reconciled() == []


@pytest.mark.django_db
def test_a_retry_never_takes_another_tenants_transfer_for_its_own(double, make_tenant):
    # given two tenants whose first run and first item have the same ids in their own schemas
    paid_here = []
    for index in range(2):
        tenant = make_tenant().tenant
        connection.set_tenant(tenant)
        program = factories.program(payout_threshold_minor=100, currency="USD")
        factories.rule(program, percent="10")
        payout_factories.onboarded(double.url, tenant, payout_factories.owed(program, "50.00"))
        payout_factories.fund(100_000)
        run = payouts.payout_run_create(program=program)
        if index == 1:  # the second tenant's first attempt fails, so its retry looks transfers up
            double.faults({"method": "POST", "path": "/v1/transfers", "mode": "error", "status": 429, "times": 1})
            payouts.payout_run_execute(run=run)
        payouts.payout_run_execute(run=run)
        item = run.items.get()
        paid_here.append((item.pk, run.pk, item.status, item.stripe_transfer_id))
    connection.set_schema_to_public()

    # then each has its own transfer
    (first_item, first_run, *_), (second_item, second_run, *_) = paid_here
    assert (first_item, first_run) == (second_item, second_run)  # the same ids: the trap is real
    transfers = _transfers(double)
    assert len(transfers) == 2 and {p[2] for p in paid_here} == {"paid"}
    assert paid_here[0][3] != paid_here[1][3]


@pytest.mark.django_db
def test_a_refund_while_queued_becomes_an_adjustment_and_status_changes_wait(double, shop):
    tenant, program = shop
    affiliate = payout_factories.owed(program, "800.00")
    payout_factories.onboarded(double.url, tenant, affiliate)
    payout_factories.fund(100_000)
    run = payouts.payout_run_create(program=program)
    commission = Commission.objects.get(affiliate=affiliate)

    # when the purchase is half refunded and someone tries to reject the queued commission
    conversions.conversion_refund(conversion=commission.conversion, amount="400.00", reason="half back")
    with pytest.raises(Exception, match="payout run"):
        commissions.commission_set_status(commission=commission, status="rejected", by=None, reason="no")

    # then the item still pays what was queued and a negative adjustment waits for the next run
    run = payouts.payout_run_execute(run=run)
    assert (run.items.get().amount_minor, run.items.get().status) == (8_000, "paid")
    [adjustment] = Commission.objects.filter(affiliate=affiliate, kind="adjustment")
    assert (adjustment.amount_minor, adjustment.status) == (-4_000, "approved")
    assert not PayoutItemCommission.objects.filter(commission=adjustment).exists()


@pytest.mark.django_db
def test_cancelling_a_run_releases_its_commissions(double, shop):
    tenant, program = shop
    affiliate = payout_factories.owed(program, "800.00")
    payout_factories.onboarded(double.url, tenant, affiliate)
    run = payouts.payout_run_create(program=program, confirm=True)

    run = payouts.payout_run_cancel(run=run)

    assert run.status == "cancelled" and run.items.get().status == "failed"
    assert not PayoutItemCommission.objects.filter(commission__affiliate=affiliate).exists()
    assert payouts.payout_run_create(program=program).items.count() == 1


@pytest.mark.django_db
def test_a_permanent_refusal_fails_the_item_and_releases_funds_and_commissions(double, shop):
    tenant, program = shop
    affiliate = payout_factories.owed(program, "800.00")
    payout_factories.onboarded(double.url, tenant, affiliate)
    payout_factories.fund(100_000)
    run = payouts.payout_run_create(program=program)
    double.faults(
        {
            "method": "POST",
            "path": "/v1/transfers",
            "mode": "error",
            "status": 400,
            "code": "account_invalid",
            "message": "The account cannot receive transfers.",
        }
    )

    run = payouts.payout_run_execute(run=run)

    item = run.items.get()
    assert (item.status, item.failure_code, run.status) == ("failed", "account_invalid", "done")
    assert "cannot receive" in item.failure_message
    assert selectors.ledger_balance(currency="USD") == 100_000
    assert set(Commission.objects.filter(affiliate=affiliate).values_list("status", "payout_item")) == {
        ("approved", None)
    }
    # and the released commissions go into the next run
    double.faults()
    next_run = payouts.payout_run_execute(run=payouts.payout_run_create(program=program))
    assert next_run.items.get().status == "paid" and len(_transfers(double)) == 1
    assert _reconciled() == []


@pytest.mark.django_db(transaction=True)
def test_two_workers_executing_one_run_transfer_each_item_once(double, make_tenant):
    provisioned = make_tenant()
    tenant = provisioned.tenant
    connection.set_tenant(tenant)
    program = factories.program(payout_threshold_minor=100, currency="USD")
    factories.rule(program, percent="10")
    for _ in range(6):
        payout_factories.onboarded(double.url, tenant, payout_factories.owed(program, "50.00"))
    payout_factories.fund(1_000_000)
    run = payouts.payout_run_create(program=program)
    double.faults(latency_ms=30)  # a slow Stripe, so the two really overlap

    raced = race(
        lambda _i: payouts.payout_run_execute(run=PayoutRun.objects.get(pk=run.pk)),
        times=2,
        tenant=tenant,
        timeout_s=120,
    )

    assert raced.errors == []
    assert list(run.items.values_list("status", flat=True)) == ["paid"] * 6
    transfers = _transfers(double)
    assert len(transfers) == 6 and len({t["metadata"]["item"] for t in transfers}) == 6
    assert selectors.ledger_balance(currency="USD") == 1_000_000 - 6 * 500
    assert _reconciled() == []
    connection.set_schema_to_public()


@pytest.mark.django_db
def test_a_run_that_needs_confirmation_sends_nothing_until_confirmed(double, shop):
    tenant, program = shop
    payout_factories.onboarded(double.url, tenant, payout_factories.owed(program, "800.00"))
    payout_factories.fund(100_000)

    run = payouts.payout_run_create(program=program, confirm=True)
    with pytest.raises(Exception, match="awaiting_confirmation"):
        payouts.payout_run_execute(run=run)
    assert _transfers(double) == []

    run = payouts.payout_run_execute(run=payouts.payout_run_confirm(run=run))
    assert run.status == "done" and len(_transfers(double)) == 1


@pytest.mark.django_db
def test_reconciliation_reports_a_stray_transfer_and_a_paid_item_stripe_does_not_have(double, shop):
    tenant, program = shop
    destination = payout_factories.onboarded(double.url, tenant, payout_factories.owed(program, "800.00"))
    payout_factories.fund(100_000)
    run = payouts.payout_run_execute(run=payouts.payout_run_create(program=program))
    assert _reconciled() == []

    # when someone sends a transfer in this tenant's name outside any item, and an item claims a
    # transfer Stripe never made
    stray = gateway.transfer_create(
        amount_minor=100,
        currency="USD",
        destination=destination,
        transfer_group="manual",
        metadata={"tenant": tenant.schema_name, "item": "999"},
        idempotency_key="stray",
    )
    real = run.items.get().stripe_transfer_id
    PayoutItem.objects.filter(run=run).update(stripe_transfer_id="tr_missing")

    # then both show up, and the command fails
    found = sorted((d.kind, d.transfer_id) for d in _reconciled())
    assert found == [("transfer_id_mismatch", real), ("transfer_without_item", stray.id)]
    connection.set_schema_to_public()
    with pytest.raises(CommandError, match="do not reconcile"):
        call_command("payouts_reconcile", tenant=tenant.slug, stdout=io.StringIO())


@pytest.mark.django_db
def test_a_batch_sends_its_transfers_side_by_side_and_reserves_only_what_the_ledger_covers(double, shop):
    tenant, program = shop
    for _ in range(12):
        payout_factories.onboarded(double.url, tenant, payout_factories.owed(program, "800.00"))
    payout_factories.fund(10 * 8_000 + 5_000)  # ten items and a half
    run = payouts.payout_run_create(program=program)
    double.faults(latency_ms=200)

    started = time.monotonic()
    sent = payouts.payout_items_execute(item_ids=list(run.items.values_list("pk", flat=True)), threads=10)
    elapsed = time.monotonic() - started

    assert (sent.paid, sent.failed, sent.retry, sent.not_taken) == (10, 0, 0, 2)
    assert elapsed < 6 * 0.2  # one after another it would take 10 x 200 ms
    transfers = _transfers(double)
    assert len(transfers) == 10 and len({t["metadata"]["item"] for t in transfers}) == 10
    assert sorted(run.items.values_list("status", flat=True)) == ["paid"] * 10 + ["pending"] * 2
    run = payouts.run_settle(run=run)
    assert (run.status, run.missing_minor) == ("awaiting_funds", 2 * 8_000 - 5_000)
    assert selectors.ledger_balance(currency="USD") == 5_000
    assert _reconciled() == []


@pytest.mark.django_db
def test_the_worker_tasks_send_a_run_in_batches_and_the_last_batch_settles_it(double, shop, monkeypatch):
    from billing import tasks

    tenant, program = shop
    for _ in range(5):
        payout_factories.onboarded(double.url, tenant, payout_factories.owed(program, "800.00"))
    payout_factories.fund(100_000)
    run = payouts.payout_run_create(program=program)
    batches = payouts.payout_run_batches(run=run, size=2)
    assert [len(b) for b in batches] == [2, 2, 1]

    statuses = [tasks.payout_items_execute.apply(args=[run.pk, batch]).get() for batch in batches]

    assert statuses == ["queued", "queued", "done"]
    assert len(_transfers(double)) == 5 and _reconciled() == []
    assert tasks.payout_items_execute.apply(args=[run.pk, batches[0]]).get() == "nothing to do"


@pytest.mark.django_db(transaction=True)
def test_a_run_made_while_another_holds_the_commissions_takes_none_of_them(make_tenant):
    # given approved commissions of three affiliates with payout accounts
    tenant = make_tenant().tenant
    connection.set_tenant(tenant)
    program = factories.program(payout_threshold_minor=100, currency="USD")
    factories.rule(program, percent="10")
    for _ in range(3):
        affiliate = payout_factories.owed(program, "50.00")
        ConnectedAccount.objects.create(
            stripe_id=f"acct_race_{affiliate.pk}",
            tenant=tenant,
            affiliate_id=affiliate.pk,
            country="US",
            details_submitted=True,
            payouts_enabled=True,
            transfers=ConnectedAccount.Transfers.ACTIVE,
        )
    made: dict[str, PayoutRun] = {}
    errors: list[BaseException] = []
    first_made, first_may_commit = threading.Event(), threading.Event()

    def first() -> None:
        connection.set_tenant(tenant)
        try:
            with transaction.atomic():
                made["first"] = payouts.payout_run_create(program=program, confirm=True)
                first_made.set()
                first_may_commit.wait(timeout=30)
        except BaseException as exc:
            errors.append(exc)
        finally:
            first_made.set()
            connection.close()

    def second() -> None:
        connection.set_tenant(tenant)
        try:
            made["second"] = payouts.payout_run_create(program=program, confirm=True)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    # when a second run starts while the first holds the commissions, and the first then commits
    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    assert first_made.wait(timeout=30)
    threads[1].start()
    waiting = 0
    for _ in range(100):  # until the second run's read waits for the first run's row locks
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            waiting = cursor.fetchone()[0]
        if waiting:
            break
        time.sleep(0.05)
    first_may_commit.set()
    for thread in threads:
        thread.join(timeout=60)

    # then the second run, whose read began before the first committed, takes nothing and is not
    # refused by the link's key; every commission is in the first run, once
    assert waiting == 1
    assert errors == []
    assert (made["first"].total_minor, made["second"].total_minor, made["second"].status) == (1_500, 0, "done")
    assert made["second"].items.count() == 0
    assert sorted(
        PayoutItemCommission.objects.filter(payout_item__run=made["first"]).values_list("commission_id", flat=True)
    ) == sorted(Commission.objects.filter(program=program).values_list("pk", flat=True))
    connection.set_schema_to_public()
