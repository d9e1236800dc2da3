"""Payout runs: what each affiliate is owed becomes one item and one Stripe transfer, exactly once.

Executing an item takes two short transactions around no lock held across tenants' money:
1. reserve: lock the item, debit the ledger for it (refused when the balance does not cover it:
   the run then waits for funds), mark it `sending`;
2. send: lock the item again (SKIP LOCKED: another worker has it), create the transfer with the
   item's own idempotency key, and in the same transaction record the transfer, mark the item
   and its commissions paid.
A worker that dies between Stripe's answer and the commit leaves the item `sending`; whoever
takes it next sends the same key and gets the same transfer back from Stripe, so nothing is paid
twice. Stripe keeps idempotency keys for 24 hours, so an item retried later than that is first
looked up among the run's transfers (`transfer_group`, metadata `item`). A permanent refusal
marks the item failed with Stripe's reason, credits the reservation back and releases the
commissions to the next run. The reservation (debit before the transfer) is what lets many
items be sent at once without any of them overdrawing the ledger.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from affiliates import commissions
from affiliates.models import Affiliate, Commission, Program
from billing import gateway, selectors, services
from billing.connect.services import account_for
from billing.errors import BillingError
from billing.models import LedgerEntry, PayoutItem, PayoutRun

logger = logging.getLogger(__name__)

KEY_LIFETIME = timedelta(hours=20)  # Stripe keeps idempotency keys for at least 24 hours


def payout_run_create(*, program: Program, by: Any = None, confirm: bool = False) -> PayoutRun:
    """Take each affiliate's approved, unpaid commissions (net of negative adjustments); an
    affiliate whose total reaches the program's threshold and whose Stripe account can receive
    transfers gets an item linked to exactly those commissions; the others roll over, with the
    reason recorded on the run. `confirm`: staff must confirm before anything is sent."""
    tenant = connection.tenant
    with transaction.atomic():
        run = PayoutRun.objects.create(
            program=program, currency=program.currency, created_by=by,
            status=PayoutRun.Status.AWAITING_CONFIRMATION if confirm else PayoutRun.Status.QUEUED,
        )  # fmt: skip
        owed: dict[int, list[Commission]] = defaultdict(list)
        for commission in (
            Commission.objects.select_for_update()
            .filter(program=program, status=Commission.Status.APPROVED, payout_item__isnull=True)
            .order_by("affiliate_id", "id")
        ):
            owed[commission.affiliate_id].append(commission)
        affiliates = Affiliate.objects.in_bulk(list(owed))
        total = 0
        for affiliate_id, rows in owed.items():
            amount = sum(c.amount_minor for c in rows)
            reason = ""
            account = account_for(tenant=tenant, affiliate_id=affiliate_id)
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
    return run


def payout_run_confirm(*, run: PayoutRun) -> PayoutRun:
    with transaction.atomic():
        run = PayoutRun.objects.select_for_update().get(pk=run.pk)
        if run.status != PayoutRun.Status.AWAITING_CONFIRMATION:
            raise BillingError("not_awaiting_confirmation", f"This run is {run.status}.", status=409)
        run.status, run.confirmed_at = PayoutRun.Status.QUEUED, timezone.now()
        run.save(update_fields=["status", "confirmed_at"])
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
            if not exc.transient:
                raise
            # Left `sending` with its key: the next execution sends it again.
            logger.warning("payout item %s: transient Stripe error %s; will retry", item_id, exc.code)
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
    """Reserve and send one item (see the module's docstring). Returns the item, or None when
    another worker holds it. Raises GatewayError (transient) when Stripe could not be reached:
    the item stays `sending` and is sent again, with the same key, later."""
    if not _reserve(item_id):
        return None
    return _send(item_id)


def _reserve(item_id: int) -> bool:
    with transaction.atomic():
        item = PayoutItem.objects.select_for_update(skip_locked=True).filter(pk=item_id).first()
        if item is None or item.status not in (PayoutItem.Status.PENDING, PayoutItem.Status.SENDING):
            return False
        if item.status == PayoutItem.Status.PENDING:
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


def _send(item_id: int) -> PayoutItem | None:
    tenant = connection.tenant
    error: gateway.GatewayError | None = None
    with transaction.atomic():
        item = PayoutItem.objects.select_for_update(skip_locked=True).select_related("run").filter(pk=item_id).first()
        if item is None or item.status != PayoutItem.Status.SENDING:
            return item
        item.attempts += 1
        metadata = {"tenant": tenant.schema_name, "run": str(item.run_id), "item": str(item.pk)}
        try:
            # Stripe forgets idempotency keys after 24 hours: an item tried before, or made long
            # ago, first looks for a transfer an earlier attempt created.
            tried = item.attempts > 1 or item.created_at < timezone.now() - KEY_LIFETIME
            transfer = (_earlier_transfer(item) if tried else None) or gateway.transfer_create(
                amount_minor=item.amount_minor, currency=item.currency, destination=item.destination,
                transfer_group=item.run.transfer_group, metadata=metadata, idempotency_key=item.idempotency_key,
            )  # fmt: skip
        except gateway.GatewayError as exc:
            if not exc.transient:
                _fail(item, code=exc.code, message=exc.message)
                return item
            item.save(update_fields=["attempts"])
            error = exc
        else:
            now = timezone.now()
            item.status, item.stripe_transfer_id, item.paid_at = PayoutItem.Status.PAID, transfer.id, now
            item.failure_code = item.failure_message = ""
            item.save(
                update_fields=["attempts", "status", "stripe_transfer_id", "paid_at", "failure_code", "failure_message"]
            )
            commissions.commissions_paid(commission_ids=list(item.commissions.values_list("pk", flat=True)), when=now)
    if error is not None:
        raise error
    return item


def _earlier_transfer(item: PayoutItem) -> Any:
    """A transfer an earlier attempt created (its answer lost, its key perhaps expired)."""
    for transfer in gateway.transfers_list(transfer_group=item.run.transfer_group):
        if (transfer.metadata or {}).get("item") == str(item.pk):
            return transfer
    return None


def _fail(item: PayoutItem, *, code: str, message: str) -> None:
    item.status, item.failure_code, item.failure_message = PayoutItem.Status.FAILED, code[:64], message[:500]
    item.save(update_fields=["attempts", "status", "failure_code", "failure_message"])
    services.ledger_post(
        kind=LedgerEntry.Kind.RELEASE, currency=item.currency, amount_minor=item.amount_minor,
        reference=f"item-release:{item.pk}", memo=f"Transfer refused: {code}",
    )  # fmt: skip
    item.commissions.update(payout_item=None)
