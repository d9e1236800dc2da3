"""Stripe webhooks through dj-stripe's endpoint on the public host, signed as Stripe signs them,
with the events the local Stripe double made: applied once, never backwards, never across
tenants."""

from __future__ import annotations

import copy
import io
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client, override_settings
from djstripe.models import Event, WebhookEventTrigger

from affiliates import commissions
from affiliates.models import Commission
from affiliates.tests import factories
from billing import funding, gateway, payouts, reconcile, reversals, selectors, webhooks
from billing.connect.models import AppliedEvent, ConnectedAccount
from billing.connect.services import onboarding_start
from billing.models import BankPayout, Funding, LedgerEntry, PayoutItem
from billing.tests import factories as payout_factories
from devtools.stripe_double import RunningDouble
from devtools.stripe_double.webhooks import payload_of, signature_header
from tests.support.race import race

SECRET = "whsec_test_platform"
CONNECT_SECRET = "whsec_test_connect"


@pytest.fixture
def stripe_retries() -> int:
    return 0


@pytest.fixture
def endpoints(platform_ready) -> Iterator[dict]:
    with override_settings(STRIPE_WEBHOOK_SECRET=SECRET, STRIPE_CONNECT_WEBHOOK_SECRET=CONNECT_SECRET):
        yield webhooks.webhook_endpoints_ensure()


@pytest.fixture
def shop(reused_tenant):
    tenant = reused_tenant().tenant
    connection.set_tenant(tenant)
    program = factories.program(payout_threshold_minor=100, currency="USD")
    factories.rule(program, percent="10")
    yield tenant, program
    connection.set_schema_to_public()


@pytest.fixture
def deliver(client_at, endpoints):
    """POST an event to an endpoint as Stripe would; the connection's schema is kept."""

    def post(event: dict, *, secret: str = SECRET, purpose: str = "platform", signature: str | None = None):
        """`signature`: this header instead of a valid one; "" for none at all."""
        payload = payload_of(event)
        header = signature_header(payload, secret, int(time.time())) if signature is None else signature
        headers = {"HTTP_STRIPE_SIGNATURE": header} if header else {}
        path = urlsplit(endpoints[purpose].url).path
        tenant = connection.tenant
        try:
            return client_at(settings.PLATFORM_DOMAIN).post(
                path, data=payload, content_type="application/json", **headers
            )
        finally:
            connection.set_tenant(tenant)

    return post


def _events(double: RunningDouble, event_type: str, *, account: str | None = None) -> list[dict]:
    """The double's events of a type, oldest first."""
    listed = double.state.event_list({"limit": "100"}, account=account)["data"]
    return [e for e in reversed(listed) if e["type"] == event_type]


def _older(event: dict, **changes) -> dict:
    """A copy of `event` as if Stripe had made it a minute earlier, with its object changed."""
    older = copy.deepcopy(event)
    older["id"] = event["id"] + "_older"
    older["created"] = event["created"] - 60
    older["data"]["object"].update(changes)
    return older


def _applied() -> list[tuple[str, str]]:
    return list(AppliedEvent.objects.order_by("id").values_list("event_id", "type"))


def _account(double: RunningDouble, tenant, affiliate) -> str:
    account, _ = onboarding_start(
        tenant=tenant,
        affiliate_id=affiliate.id,
        email="a@example.com",
        country="US",
        refresh_url="http://x.localhost/r",
        return_url="http://x.localhost/ok",
    )
    return account.stripe_id


# --- endpoint and verification -------------------------------------------------------------------


@pytest.mark.django_db
def test_endpoints_are_made_from_settings_and_keep_their_url(endpoints):
    again = webhooks.webhook_endpoints_ensure()

    platform, connect = endpoints["platform"], endpoints["connect"]
    assert (platform.secret, connect.secret) == (SECRET, CONNECT_SECRET)
    assert (
        platform.url == f"http://{settings.PLATFORM_DOMAIN}:{settings.PLATFORM_PORT}/stripe/webhook/"
        f"{platform.djstripe_uuid}/"
    )
    assert (again["platform"].url, again["connect"].url) == (platform.url, connect.url)
    assert platform.djstripe_uuid != connect.djstripe_uuid
    assert "transfer.reversed" in platform.enabled_events and "payout.paid" in connect.enabled_events


@pytest.mark.django_db
def test_the_command_prints_the_urls_and_points_the_double_at_the_platform_endpoint(double, endpoints):
    out = io.StringIO()
    with override_settings(STRIPE_WEBHOOK_SECRET=SECRET, STRIPE_CONNECT_WEBHOOK_SECRET=""):
        call_command("stripe_webhooks", stdout=out)
        url_only = io.StringIO()
        call_command("stripe_webhooks", "--url", "platform", "--double", stdout=url_only)

    lines = out.getvalue().splitlines()
    assert lines[0] == f"platform: {endpoints['platform'].url} (secret set)"
    assert lines[2] == f"connect: {endpoints['connect'].url} (NO SECRET: every delivery is refused)"
    assert url_only.getvalue().splitlines() == [
        f"double: delivering to {endpoints['platform'].url}",
        endpoints["platform"].url,
    ]
    assert requests.get(f"{double.url}/_double/webhooks", timeout=5).json()["enabled"] is True
    with override_settings(STRIPE_SECRET_KEY="sk_test_real"), pytest.raises(CommandError, match="not the double"):
        call_command("stripe_webhooks", "--double", stdout=io.StringIO())


@pytest.mark.django_db
def test_a_bad_signature_is_refused_and_changes_nothing(double, shop, deliver):
    tenant, program = shop
    affiliate = factories.affiliate(program)
    account_id = _account(double, tenant, affiliate)
    requests.post(f"{double.url}/_double/accounts/{account_id}/complete", json={}, timeout=5)
    [*_, completed] = _events(double, "account.updated", account=account_id)

    wrong_secret = deliver(completed, secret="whsec_someone_else")
    connect_secret_on_platform = deliver(completed, secret=CONNECT_SECRET)
    stale = deliver(completed, signature=signature_header(payload_of(completed), SECRET, int(time.time()) - 3600))
    unsigned = deliver(completed, signature="")

    assert [r.status_code for r in (wrong_secret, connect_secret_on_platform, stale, unsigned)] == [400] * 4
    account = ConnectedAccount.objects.get(stripe_id=account_id)
    assert (account.transfers, account.details_submitted, account.synced_at > 0) == ("inactive", False, True)
    assert _applied() == [] and Event.objects.count() == 0
    # dj-stripe keeps its log of what was posted (the unsigned one is not even stored)
    assert list(WebhookEventTrigger.objects.values_list("valid", "processed")) == [(False, False)] * 3


@pytest.mark.django_db
def test_with_debug_on_an_event_signed_with_a_secret_of_its_own_choosing_is_not_applied(double, shop, deliver):
    tenant, program = shop
    account_id = _account(double, tenant, factories.affiliate(program))
    requests.post(f"{double.url}/_double/accounts/{account_id}/complete", json={}, timeout=5)
    [*_, completed] = _events(double, "account.updated", account=account_id)
    payload = payload_of(completed)

    with override_settings(DEBUG=True):
        response = Client(HTTP_HOST=settings.PLATFORM_DOMAIN).post(
            urlsplit(webhooks.webhook_endpoints_ensure()["connect"].url).path,
            data=payload,
            content_type="application/json",
            HTTP_X_DJSTRIPE_WEBHOOK_SECRET="whsec_mine",
            HTTP_STRIPE_SIGNATURE=signature_header(payload, "whsec_mine", int(time.time())),
        )
    connection.set_tenant(tenant)

    assert response.status_code == 200  # dj-stripe accepted it; we did not apply it
    assert ConnectedAccount.objects.get(stripe_id=account_id).transfers == "inactive" and _applied() == []


@pytest.mark.django_db
def test_an_unknown_event_type_is_answered_200_and_ignored(shop, deliver):
    event = {
        "id": "evt_unknown",
        "object": "event",
        "type": "customer.created",
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": {"id": "cus_1", "object": "customer"}},
    }

    response = deliver(event)

    assert response.status_code == 200 and webhooks.event_apply(event=event) == "ignored"
    assert _applied() == [] and Event.objects.count() == 0
    assert list(WebhookEventTrigger.objects.values_list("valid", "processed")) == [(True, True)]


@pytest.mark.django_db
def test_an_event_from_live_mode_is_refused_by_a_test_mode_platform(double, shop, deliver):
    tenant, program = shop
    account_id = _account(double, tenant, factories.affiliate(program))
    requests.post(f"{double.url}/_double/accounts/{account_id}/complete", json={}, timeout=5)
    [*_, completed] = _events(double, "account.updated", account=account_id)

    response = deliver({**completed, "livemode": True}, secret=CONNECT_SECRET, purpose="connect")

    assert response.status_code == 200
    assert ConnectedAccount.objects.get(stripe_id=account_id).transfers == "inactive" and _applied() == []


# --- connected accounts ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_account_updated_applies_once_and_an_older_event_never_moves_it_back(double, shop, deliver):
    tenant, program = shop
    account_id = _account(double, tenant, factories.affiliate(program))
    requests.post(f"{double.url}/_double/accounts/{account_id}/complete", json={}, timeout=5)
    [*_, completed] = _events(double, "account.updated", account=account_id)

    first = deliver(completed, secret=CONNECT_SECRET, purpose="connect")
    again = deliver(completed, secret=CONNECT_SECRET, purpose="connect")
    # an earlier report (before onboarding was finished) arriving late
    older = _older(completed, details_submitted=False, capabilities={"transfers": "inactive"})
    late = deliver(older, secret=CONNECT_SECRET, purpose="connect")

    assert [r.status_code for r in (first, again, late)] == [200, 200, 200]
    account = ConnectedAccount.objects.get(stripe_id=account_id)
    assert (account.transfers, account.details_submitted, account.synced_at) == ("active", True, completed["created"])
    assert _applied() == [(completed["id"], "account.updated"), (older["id"], "account.updated")]
    assert Event.objects.count() == 0  # dj-stripe synced nothing itself


@pytest.mark.django_db
def test_an_account_of_one_tenant_whose_metadata_names_another_is_refused(double, reused_tenant, deliver):
    other = reused_tenant().tenant
    mine = reused_tenant().tenant
    connection.set_tenant(mine)
    program = factories.program(currency="USD")
    account_id = _account(double, mine, factories.affiliate(program))
    requests.post(f"{double.url}/_double/accounts/{account_id}/complete", json={}, timeout=5)
    [*_, completed] = _events(double, "account.updated", account=account_id)
    forged = copy.deepcopy(completed)
    forged["data"]["object"]["metadata"]["tenant"] = other.schema_name

    response = deliver(forged, secret=CONNECT_SECRET, purpose="connect")

    assert response.status_code == 200 and webhooks.event_apply(event=forged) == "refused"
    account = ConnectedAccount.objects.get(stripe_id=account_id)
    assert (account.tenant_id, account.transfers, account.details_submitted) == (mine.pk, "inactive", False)
    assert _applied() == []
    connection.set_schema_to_public()


# --- transfers and reversals -------------------------------------------------------------------------


def _sending_item(double: RunningDouble, tenant, program, monkeypatch) -> PayoutItem:
    """An item whose transfer Stripe made but whose worker died before recording it."""
    payout_factories.onboarded(double.url, tenant, payout_factories.owed(program, "800.00"))
    payout_factories.fund(100_000)
    run = payouts.payout_run_create(program=program)

    def die(**kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr(commissions, "commissions_paid", die)
    with pytest.raises(SystemExit):
        payouts.payout_run_execute(run=run)
    monkeypatch.undo()
    item = run.items.get()
    assert item.status == "sending"
    return item


@pytest.mark.django_db
def test_transfer_created_finishes_an_item_whose_worker_died_once(double, shop, deliver, monkeypatch):
    tenant, program = shop
    item = _sending_item(double, tenant, program, monkeypatch)
    [created] = _events(double, "transfer.created")

    first = deliver(created)
    again = deliver(created)
    assert webhooks.event_apply(event=created) == "duplicate"

    item.refresh_from_db()
    assert [first.status_code, again.status_code] == [200, 200]
    assert (item.status, item.stripe_transfer_id) == ("paid", created["data"]["object"]["id"])
    assert set(Commission.objects.values_list("status", flat=True)) == {"paid"}
    assert selectors.ledger_balance(currency="USD") == 100_000 - 8_000
    assert _applied() == [(created["id"], "transfer.created")]
    # and the worker's next attempt (its claim lapsed) finds it paid: still one transfer
    PayoutItem.objects.filter(pk=item.pk).update(claimed_until=None)
    run = payouts.payout_run_execute(run=item.run)
    assert (run.status, len(requests.get(f"{double.url}/_double/state", timeout=5).json()["transfers"])) == ("done", 1)
    assert reconcile.differences(transfers=reconcile.stripe_transfers()) == []


@pytest.mark.django_db
def test_transfer_updated_also_finishes_a_sending_item(double, shop, deliver, monkeypatch):
    tenant, program = shop
    item = _sending_item(double, tenant, program, monkeypatch)
    [created] = _events(double, "transfer.created")
    updated = {
        **copy.deepcopy(created),
        "id": "evt_updated",
        "type": "transfer.updated",
        "created": created["created"] + 1,
    }
    updated["data"]["object"]["description"] = "edited in the dashboard"

    assert deliver(updated).status_code == 200

    item.refresh_from_db()
    assert (item.status, item.stripe_transfer_id) == ("paid", created["data"]["object"]["id"])
    assert _applied() == [("evt_updated", "transfer.updated")]


@pytest.mark.django_db
def test_a_reversal_staff_made_is_not_credited_again_by_its_webhook(double, shop, deliver):
    tenant, program = shop
    payout_factories.onboarded(double.url, tenant, payout_factories.owed(program, "800.00"))
    payout_factories.fund(100_000)
    item = payouts.payout_run_execute(run=payouts.payout_run_create(program=program)).items.get()
    reversals.payout_item_reverse(item_id=item.pk, reason="fraud")
    [reversed_event] = _events(double, "transfer.reversed")

    response = deliver(reversed_event)

    item.refresh_from_db()
    assert response.status_code == 200
    assert (item.status, item.reversal_reason) == ("reversed", "fraud")
    assert LedgerEntry.objects.filter(kind="reversal").count() == 1
    assert selectors.ledger_balance(currency="USD") == 100_000


@pytest.mark.django_db
def test_a_reversal_made_in_the_dashboard_arriving_before_the_transfer_is_applied_in_order(
    double, shop, deliver, monkeypatch
):
    tenant, program = shop
    item = _sending_item(double, tenant, program, monkeypatch)
    gateway.transfer_reversal_create(
        transfer_id=_events(double, "transfer.created")[0]["data"]["object"]["id"],
        amount_minor=None,
        metadata={},
        idempotency_key="dashboard",
    )
    [created] = _events(double, "transfer.created")
    [reversed_event] = _events(double, "transfer.reversed")

    # the reversal first: the item is recorded paid, then reversed
    deliver(reversed_event)
    item.refresh_from_db()
    assert (item.status, item.reversal_reason) == ("reversed", reversals.DEFAULT_REASON)
    assert set(Commission.objects.values_list("status", flat=True)) == {"reversed"}
    # then the older transfer.created: nothing moves back
    response = deliver(created)

    item.refresh_from_db()
    assert response.status_code == 200 and item.status == "reversed"
    assert selectors.ledger_balance(currency="USD") == 100_000
    assert _applied() == [(reversed_event["id"], "transfer.reversed"), (created["id"], "transfer.created")]


@pytest.mark.django_db
def test_a_transfer_naming_another_tenants_item_is_refused(double, reused_tenant, deliver, monkeypatch):
    victim = reused_tenant().tenant
    connection.set_tenant(victim)
    victim_program = factories.program(payout_threshold_minor=100, currency="USD")
    factories.rule(victim_program, percent="10")
    victim_item = _sending_item(double, victim, victim_program, monkeypatch)
    [created] = _events(double, "transfer.created")
    attacker = reused_tenant().tenant
    connection.set_tenant(attacker)
    # the same transfer, its metadata and group rewritten to name the other tenant
    forged = copy.deepcopy(created)
    forged["id"] = "evt_forged"
    obj = forged["data"]["object"]
    obj["metadata"]["tenant"] = attacker.schema_name
    obj["transfer_group"] = f"{attacker.schema_name}-payout-run-{victim_item.run_id}"

    response = deliver(forged)

    assert response.status_code == 200 and _applied() == []
    assert webhooks.event_apply(event=forged) == "refused"
    connection.set_tenant(victim)
    victim_item.refresh_from_db()
    assert victim_item.status == "sending"
    connection.set_schema_to_public()


# --- funding ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_paid_checkout_session_credits_the_ledger_once(double, shop, deliver):
    started = funding.funding_start(
        amount_minor=25_000,
        currency="usd",
        success_url="http://acme.localhost/ok",
        cancel_url="http://acme.localhost/no",
    )
    requests.post(started.url, timeout=5, allow_redirects=False)  # the business pays on the page
    [completed] = _events(double, "checkout.session.completed")

    responses = [deliver(completed), deliver(completed)]

    assert [r.status_code for r in responses] == [200, 200]
    assert Funding.objects.get(pk=started.pk).status == "paid"
    assert LedgerEntry.objects.filter(kind="funding").count() == 1
    assert selectors.ledger_balance(currency="USD") == 25_000


@pytest.mark.django_db
def test_a_delayed_payment_is_credited_when_stripe_reports_it_succeeded(double, shop, deliver):
    started = funding.funding_start(
        amount_minor=25_000,
        currency="usd",
        success_url="http://acme.localhost/ok",
        cancel_url="http://acme.localhost/no",
    )
    requests.post(started.url, timeout=5, allow_redirects=False)
    [paid] = _events(double, "checkout.session.completed")
    # a bank debit: the session completes unpaid, and the payment succeeds days later
    completed_unpaid = copy.deepcopy(paid)
    completed_unpaid["id"] = "evt_completed_unpaid"
    completed_unpaid["data"]["object"]["payment_status"] = "unpaid"
    succeeded = {**copy.deepcopy(paid), "id": "evt_async_ok", "type": "checkout.session.async_payment_succeeded"}

    deliver(completed_unpaid)
    assert Funding.objects.get(pk=started.pk).status == "open" and selectors.ledger_balance(currency="USD") == 0
    deliver(succeeded)
    deliver({**completed_unpaid, "id": "evt_completed_unpaid_late"})  # a late unpaid report changes nothing

    assert Funding.objects.get(pk=started.pk).status == "paid"
    assert selectors.ledger_balance(currency="USD") == 25_000


@pytest.mark.django_db
def test_a_checkout_session_naming_another_tenant_is_refused(double, reused_tenant, deliver):
    other = reused_tenant().tenant
    connection.set_tenant(reused_tenant().tenant)
    started = funding.funding_start(
        amount_minor=25_000,
        currency="usd",
        success_url="http://acme.localhost/ok",
        cancel_url="http://acme.localhost/no",
    )
    requests.post(started.url, timeout=5, allow_redirects=False)
    [completed] = _events(double, "checkout.session.completed")
    completed["data"]["object"]["metadata"]["tenant"] = other.schema_name

    response = deliver(completed)

    assert response.status_code == 200 and _applied() == []
    assert webhooks.event_apply(event=completed) == "refused"
    assert Funding.objects.get(pk=started.pk).status == "open" and LedgerEntry.objects.count() == 0
    connection.set_tenant(other)
    assert LedgerEntry.objects.count() == 0
    connection.set_schema_to_public()


@pytest.mark.django_db(transaction=True)
def test_the_same_event_delivered_twice_at_once_is_applied_once(double, make_tenant):
    tenant = make_tenant().tenant
    with override_settings(STRIPE_WEBHOOK_SECRET=SECRET):
        path = urlsplit(webhooks.webhook_endpoints_ensure()["platform"].url).path
    connection.set_tenant(tenant)
    started = funding.funding_start(
        amount_minor=25_000, currency="usd", success_url="http://acme.localhost/ok", cancel_url="http://a.localhost/no"
    )
    requests.post(started.url, timeout=5, allow_redirects=False)
    [completed] = _events(double, "checkout.session.completed")
    payload = payload_of(completed)

    def deliver_once(_index: int) -> int:
        response = Client(HTTP_HOST=settings.PLATFORM_DOMAIN).post(
            path,
            data=payload,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=signature_header(payload, SECRET, int(time.time())),
        )
        return response.status_code

    statuses = race(deliver_once, times=2).outcomes

    assert statuses == [200, 200]
    assert _applied() == [(completed["id"], "checkout.session.completed")]
    assert LedgerEntry.objects.filter(kind="funding").count() == 1
    assert Funding.objects.get(pk=started.pk).status == "paid"
    connection.set_schema_to_public()


# --- bank payouts of connected accounts -------------------------------------------------------------


@pytest.mark.django_db
def test_bank_payouts_show_arrival_and_never_move_back(double, shop, deliver):
    tenant, program = shop
    affiliate = payout_factories.owed(program, "800.00")
    account_id = payout_factories.onboarded(double.url, tenant, affiliate)
    payout_factories.fund(100_000)
    payouts.payout_run_execute(run=payouts.payout_run_create(program=program))
    requests.post(f"{double.url}/_double/accounts/{account_id}/payouts", json={"status": "paid"}, timeout=5)
    created, paid = _events(double, "payout.created", account=account_id) + _events(
        double, "payout.paid", account=account_id
    )

    # the paid event arrives first, then the (older) created one
    for event in (paid, created, paid):
        assert deliver(event, secret=CONNECT_SECRET, purpose="connect").status_code == 200

    [bank] = BankPayout.objects.all()
    assert (bank.stripe_id, bank.affiliate_id, bank.status, bank.amount_minor, bank.currency) == (
        paid["data"]["object"]["id"],
        affiliate.id,
        "paid",
        8_000,
        "USD",
    )
    assert bank.arrival_date is not None and bank.event_created == paid["created"]
    assert sorted(t for _, t in _applied()) == ["payout.created", "payout.paid"]

    # a later failure (the bank sent it back) does move it on, with Stripe's reason
    failed = copy.deepcopy(paid)
    failed.update(id="evt_failed_later", type="payout.failed", created=paid["created"] + 60)
    failed["data"]["object"].update(status="failed", failure_code="account_closed", failure_message="Closed.")
    deliver(failed, secret=CONNECT_SECRET, purpose="connect")
    bank.refresh_from_db()
    assert (bank.status, bank.failure_code) == ("failed", "account_closed")


# --- end to end: the double delivering to a live server ---------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_double_delivers_to_the_live_endpoint_and_everything_is_applied(double, make_tenant, live_server):
    tenant = make_tenant().tenant
    with override_settings(STRIPE_WEBHOOK_SECRET=SECRET, STRIPE_CONNECT_WEBHOOK_SECRET=CONNECT_SECRET):
        endpoint = webhooks.webhook_endpoints_ensure()["platform"]
    port = urlsplit(live_server.url).port
    double.webhooks(f"http://{settings.PLATFORM_DOMAIN}:{port}{urlsplit(endpoint.url).path}", SECRET)
    connection.set_tenant(tenant)
    program = factories.program(payout_threshold_minor=100, currency="USD")
    factories.rule(program, percent="10")
    affiliate = payout_factories.owed(program, "800.00")

    # when the affiliate finishes onboarding (no fetch on return: only the webhook tells us)
    account_id = _account(double, tenant, affiliate)
    requests.post(f"{double.url}/_double/accounts/{account_id}/complete", json={}, timeout=5)
    # and the business funds payouts on the Checkout page
    started = funding.funding_start(
        amount_minor=100_000, currency="usd", success_url="http://acme.localhost/ok", cancel_url="http://a.localhost/no"
    )
    requests.post(started.url, timeout=5, allow_redirects=False)
    assert double.wait_for_webhooks(timeout_s=30)

    # then the account can receive transfers and the ledger is funded
    assert ConnectedAccount.objects.get(stripe_id=account_id).can_receive_transfers
    assert Funding.objects.get(pk=started.pk).status == "paid"
    assert selectors.ledger_balance(currency="USD") == 100_000

    # when a payout is made, then taken back by staff
    item = payouts.payout_run_execute(run=payouts.payout_run_create(program=program)).items.get()
    reversals.payout_item_reverse(item_id=item.pk, reason="fraud")
    assert double.wait_for_webhooks(timeout_s=30)

    item.refresh_from_db()
    assert item.status == "reversed" and LedgerEntry.objects.filter(kind="reversal").count() == 1
    assert selectors.ledger_balance(currency="USD") == 100_000
    deliveries = double.deliveries()
    assert deliveries and {d.status for d in deliveries} == {200}
    assert {d.event_type for d in deliveries} >= {
        "account.updated",
        "checkout.session.completed",
        "transfer.created",
        "transfer.reversed",
    }
    assert AppliedEvent.objects.filter(type="transfer.created", tenant=tenant).count() == 1
    connection.set_schema_to_public()
