"""Payout runs: what each affiliate is owed becomes one item and one Stripe transfer, exactly once.

Executing an item takes short transactions and no lock held across a Stripe call:
1. reserve: lock the item, check its commissions still add up to it, debit the ledger for it
   (refused when the balance does not cover it: the run then waits for funds), mark it `sending`;
2. claim: take the item for a few minutes (`claimed_until`; a claim held by another worker means
   skip it), so that two workers do not send it at the same moment;
3. send: create the transfer with the item's own idempotency key, outside any transaction;
4. record: lock the item and, if it is still `sending`, record the transfer and mark the item and
   its commissions paid, in one transaction.
A worker that dies between Stripe's answer and the commit leaves the item `sending`; whoever
takes it next sends the same key and gets the same transfer back from Stripe, so nothing is paid
twice. Stripe keeps idempotency keys for 24 hours, so an item tried before, or made long ago, is
first looked up among its run's transfers (the group and metadata name the tenant, run and item).
A refusal of the transfer itself (invalid destination, for instance) marks the item failed with
Stripe's reason, credits the reservation back and releases the commissions to the next run;
anything else (network, 429, 5xx, the platform's own key or permissions) leaves it `sending` for
a later attempt. The reservation (debit before the transfer) is what lets many items be sent at
once without any of them overdrawing the ledger.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from affiliates import commissions
from affiliates.models import Affiliate, Commission, Program
from billing import gateway, selectors, services
from billing.connect.services import accounts_for
from billing.errors import BillingError
from billing.models import LedgerEntry, PayoutItem, PayoutRun

logger = logging.getLogger(__name__)

KEY_LIFETIME = timedelta(hours=20)  # Stripe keeps idempotency keys for at least 24 hours
# Longer than a transfer call can take with the gateway's timeout and retries.
CLAIM = timedelta(minutes=5)


def payout_run_create(
    *, program: Program, by: Any = None, confirm: bool = False, scheduled_for: date | None = None
) -> PayoutRun:
    """Take each affiliate's approved, unpaid commissions (net of negative adjustments); an
    affiliate whose total reaches the program's threshold and whose Stripe account can receive
    transfers gets an item linked to exactly those commissions; the others roll over, with the
    reason recorded on the run. `confirm`: staff must confirm before anything is sent.
    `scheduled_for`: the scheduled day it is made for (billing.scheduling); a second run for the
    same day raises IntegrityError and leaves nothing behind."""
    tenant = connection.tenant
    with transaction.atomic():
        run = PayoutRun.objects.create(
            program=program, currency=program.currency, created_by=by, scheduled_for=scheduled_for,
            status=PayoutRun.Status.AWAITING_CONFIRMATION if confirm else PayoutRun.Status.QUEUED,
        )  # fmt: skip
        owed: dict[int, list[Commission]] = defaultdict(list)
        for commission in (
            Commission.objects.select_for_update()
            .filter(program=program, status=Commission.Status.APPROVED, payout_item__isnull=True)
            .order_by("id")  # the order refunds lock commissions in
        ):
            owed[commission.affiliate_id].append(commission)
        affiliates = Affiliate.objects.in_bulk(list(owed))
        accounts = accounts_for(tenant=tenant, affiliate_ids=list(owed))
        total = 0
        for affiliate_id, rows in sorted(owed.items()):
            amount = sum(c.amount_minor for c in rows)
            reason = ""
            account = accounts.get(affiliate_id)
            if affiliates[affiliate_id].status != Affiliate.Status.APPROVED:
                reason = "affiliate_not_approved"
            elif amount < max(program.payout_threshold_minor, 1):
                reason = "below_threshold"
            elif account is None:
                reason = "no_payout_account"
            elif not account.can_receive_transfers:
                reason = "account_cannot_receive_transfers"
            if reason:
                run.skipped.append({"affiliate_id": affiliate_id, "amount_minor": amount, "reason": reason})
                continue
            item = PayoutItem.objects.create(
                run=run, affiliate_id=affiliate_id, amount_minor=amount, currency=program.currency,
                destination=account.stripe_id, idempotency_key=f"payout-item-{uuid.uuid4()}",
            )  # fmt: skip
            Commission.objects.filter(pk__in=[c.pk for c in rows]).update(payout_item=item)
            total += amount
        run.total_minor = total
        if total == 0:
            run.status, run.finished_at = PayoutRun.Status.DONE, timezone.now()
        run.save(update_fields=["skipped", "total_minor", "status", "finished_at"])
        if run.status == PayoutRun.Status.QUEUED:
            _enqueue(run)
    return run


def _enqueue(run: PayoutRun) -> None:
    from billing import tasks  # tasks import this module

    transaction.on_commit(lambda: tasks.payout_run_execute.delay(run.pk))


def payout_run_confirm(*, run: PayoutRun) -> PayoutRun:
    with transaction.atomic():
        run = PayoutRun.objects.select_for_update().get(pk=run.pk)
        if run.status != PayoutRun.Status.AWAITING_CONFIRMATION:
            raise BillingError("not_awaiting_confirmation", f"This run is {run.status}.", status=409)
        run.status, run.confirmed_at = PayoutRun.Status.QUEUED, timezone.now()
        run.save(update_fields=["status", "confirmed_at"])
        _enqueue(run)
    return run


def payout_run_cancel(*, run: PayoutRun) -> PayoutRun:
    """Cancel what a run has not started to send: its pending items end and their commissions
    go back to the next run. Items already sending or paid are not touched."""
    with transaction.atomic():
        run = PayoutRun.objects.select_for_update().get(pk=run.pk)
        if run.status in (PayoutRun.Status.DONE, PayoutRun.Status.CANCELLED):
            raise BillingError("not_cancellable", f"This run is {run.status}.", status=409)
        pending = run.items.select_for_update().filter(status=PayoutItem.Status.PENDING)
        Commission.objects.filter(payout_item__in=pending).update(payout_item=None)
        pending.update(status=PayoutItem.Status.FAILED, failure_code="cancelled", failure_message="Run cancelled.")
        if not run.items.filter(status=PayoutItem.Status.SENDING).exists():
            run.status, run.finished_at = PayoutRun.Status.CANCELLED, timezone.now()
        run.save(update_fields=["status", "finished_at"])
    return run


def payout_run_execute(*, run: PayoutRun) -> PayoutRun:
    """Send every item of a queued (or funded again) run that is not paid yet. Safe to run from
    several workers at once: each item is taken by one of them."""
    if run.status not in (PayoutRun.Status.QUEUED, PayoutRun.Status.AWAITING_FUNDS):
        raise BillingError("not_executable", f"This run is {run.status}.", status=409)
    for item_id in run.items.filter(status__in=[PayoutItem.Status.PENDING, PayoutItem.Status.SENDING]).values_list(
        "pk", flat=True
    ):
        try:
            payout_item_execute(item_id=item_id)
        except gateway.GatewayError as exc:
            # Left `sending` with its key: the next execution sends it again.
            logger.warning("payout item %s: Stripe error %s; will retry", item_id, exc.code)
    return run_settle(run=run)


def run_settle(*, run: PayoutRun) -> PayoutRun:
    """The run's status from its items: done when none is left to send; waiting for funds (and
    how much is missing) when pending items are not covered by the ledger."""
    with transaction.atomic():
        run = PayoutRun.objects.select_for_update().get(pk=run.pk)
        open_items = run.items.filter(status__in=[PayoutItem.Status.PENDING, PayoutItem.Status.SENDING])
        pending = run.items.filter(status=PayoutItem.Status.PENDING).aggregate(s=Sum("amount_minor"))["s"] or 0
        missing = max(pending - selectors.ledger_balance(currency=run.currency), 0) if pending else 0
        if not open_items.exists():
            run.status, run.finished_at, run.missing_minor = PayoutRun.Status.DONE, timezone.now(), 0
        elif missing:
            run.status, run.missing_minor = PayoutRun.Status.AWAITING_FUNDS, missing
        else:
            run.missing_minor = 0
            if run.status == PayoutRun.Status.AWAITING_FUNDS:
                run.status = PayoutRun.Status.QUEUED
        run.save(update_fields=["status", "finished_at", "missing_minor"])
    return run


def payout_item_execute(*, item_id: int) -> PayoutItem | None:
    """Reserve, claim, send and record one item (see the module's docstring). Returns the item,
    or None when it is not this worker's to send now (another holds it, or funds are short).
    Raises GatewayError when Stripe could not be asked or answered with anything but a refusal
    of the transfer: the item stays `sending` and is sent again, with the same key, later."""
    if not _reserve(item_id):
        return None
    item = _claim(item_id)
    if item is None:
        return None
    metadata = {"tenant": connection.tenant.schema_name, "run": str(item.run_id), "item": str(item.pk)}
    group = item.run.transfer_group(connection.tenant.schema_name)
    try:
        transfer = None
        if item.attempts > 1 or item.created_at < timezone.now() - KEY_LIFETIME:
            transfer = _earlier_transfer(item, group=group, metadata=metadata)
        transfer = transfer or gateway.transfer_create(
            amount_minor=item.amount_minor, currency=item.currency, destination=item.destination,
            transfer_group=group, metadata=metadata, idempotency_key=item.idempotency_key,
        )  # fmt: skip
    except gateway.GatewayError as exc:
        if exc.refused_request:
            return _fail(item_id, code=exc.code, message=exc.message)
        _unclaim(item_id)
        raise
    return _record(item_id, transfer_id=transfer.id)


def _reserve(item_id: int) -> bool:
    with transaction.atomic():
        item = PayoutItem.objects.select_for_update(skip_locked=True).filter(pk=item_id).first()
        if item is None or item.status not in (PayoutItem.Status.PENDING, PayoutItem.Status.SENDING):
            return False
        if item.status == PayoutItem.Status.SENDING:
            return True
        # Refunds and status changes of linked commissions are refused or become adjustments
        # (see affiliates), so this holds; checked anyway, because money leaves on it.
        linked = list(item.commissions.select_for_update().order_by("id"))
        if any(c.status != Commission.Status.APPROVED for c in linked) or (
            sum(c.amount_minor for c in linked) != item.amount_minor
        ):
            item.status, item.failure_code = PayoutItem.Status.FAILED, "commissions_changed"
            item.failure_message = "Its commissions changed after the run was made; they go to the next run."
            item.save(update_fields=["status", "failure_code", "failure_message"])
            item.commissions.update(payout_item=None)
            return False
        try:
            services.ledger_post(
                kind=LedgerEntry.Kind.TRANSFER, currency=item.currency, amount_minor=-item.amount_minor,
                reference=f"item:{item.pk}", memo=f"Payout to affiliate {item.affiliate_id}",
            )  # fmt: skip
        except BillingError as exc:
            if exc.code == "insufficient_funds":
                return False
            raise
        item.status = PayoutItem.Status.SENDING
        item.save(update_fields=["status"])
    return True


def _claim(item_id: int) -> PayoutItem | None:
    now = timezone.now()
    with transaction.atomic():
        item = PayoutItem.objects.select_for_update(skip_locked=True).select_related("run").filter(pk=item_id).first()
        if item is None or item.status != PayoutItem.Status.SENDING:
            return None
        if item.claimed_until is not None and item.claimed_until > now:
            return None
        item.claimed_until = now + CLAIM
        item.attempts += 1
        item.save(update_fields=["claimed_until", "attempts"])
    return item


def _unclaim(item_id: int) -> None:
    PayoutItem.objects.filter(pk=item_id, status=PayoutItem.Status.SENDING).update(claimed_until=None)


def _record(item_id: int, *, transfer_id: str) -> PayoutItem:
    with transaction.atomic():
        item = PayoutItem.objects.select_for_update().get(pk=item_id)
        if item.status != PayoutItem.Status.SENDING:
            return item  # recorded already (by a worker whose claim had lapsed)
        now = timezone.now()
        item.status, item.stripe_transfer_id, item.paid_at, item.claimed_until = (
            PayoutItem.Status.PAID, transfer_id, now, None,
        )  # fmt: skip
        item.failure_code = item.failure_message = ""
        item.save(
            update_fields=[
                "status",
                "stripe_transfer_id",
                "paid_at",
                "claimed_until",
                "failure_code",
                "failure_message",
            ]
        )
        commissions.commissions_paid(
            commission_ids=list(item.commissions.select_for_update().order_by("id").values_list("pk", flat=True)),
            when=now,
        )
    return item


def item_record_transfer(*, item_id: int, transfer_id: str) -> PayoutItem:
    """Record a transfer Stripe made for a `sending` item (a worker's answer, or the webhook's
    `transfer.created` when the worker died first): once, whoever comes first."""
    return _record(item_id, transfer_id=transfer_id)


def _earlier_transfer(item: PayoutItem, *, group: str, metadata: dict[str, str]) -> Any:
    """A transfer an earlier attempt created (its answer lost, its key perhaps expired)."""
    for transfer in gateway.transfers_list(transfer_group=group):
        if (
            dict(transfer.metadata or {}) == metadata
            and transfer.destination == item.destination
            and transfer.amount == item.amount_minor
            and transfer.currency == item.currency.lower()
        ):
            return transfer
    return None


def _fail(item_id: int, *, code: str, message: str) -> PayoutItem:
    with transaction.atomic():
        item = PayoutItem.objects.select_for_update().get(pk=item_id)
        if item.status != PayoutItem.Status.SENDING:
            return item
        item.status, item.failure_code, item.failure_message = PayoutItem.Status.FAILED, code[:64], message[:500]
        item.claimed_until = None
        item.save(update_fields=["status", "failure_code", "failure_message", "claimed_until"])
        services.ledger_post(
            kind=LedgerEntry.Kind.RELEASE, currency=item.currency, amount_minor=item.amount_minor,
            reference=f"item-release:{item.pk}", memo=f"Transfer refused: {code}",
        )  # fmt: skip
        item.commissions.update(payout_item=None)
    return item
