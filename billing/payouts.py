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

Items go a batch at a time (`payout_items_execute`): one transaction reserves the batch (one
ledger lock and one balance for all of it, not one per item: the lock is what every reservation
queues on), one claims it, the transfers go out side by side on a pool of threads that only talk
to Stripe, and one transaction records them. The Celery path gives each batch a task of its own,
so a worker pool sends several batches at once (billing.tasks).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection, transaction
from django.db.models import Case, F, OuterRef, Q, Sum, Value, When
from django.utils import timezone

from accounts.models import User
from affiliates import commissions
from affiliates.models import Affiliate, Commission, Program
from billing import gateway, selectors, services
from billing.connect.services import accounts_for
from billing.errors import BillingError
from billing.models import LedgerEntry, PayoutItem, PayoutItemCommission, PayoutRun

logger = logging.getLogger(__name__)

KEY_LIFETIME = timedelta(hours=20)  # Stripe keeps idempotency keys for at least 24 hours
# Longer than a batch's transfer calls can take with the gateway's timeout and retries.
CLAIM = timedelta(minutes=5)
# Items per batch (one reservation, one claim, one record transaction; one Celery task) and
# transfers in flight at once per batch: Stripe's 50-100 ms per call, not the database, is what
# a run waits on, and the threads only wait on sockets.
BATCH = 100
SEND_THREADS = 16


def payout_run_create(
    *, program: Program, by: User | None = None, confirm: bool = False, scheduled_for: date | None = None
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
            program=program,
            currency=program.currency,
            created_by=by,
            scheduled_for=scheduled_for,
            status=PayoutRun.Status.AWAITING_CONFIRMATION if confirm else PayoutRun.Status.QUEUED,
        )
        owed: dict[int, list[Commission]] = defaultdict(list)
        for commission in commissions.commissions_reserve(program_id=program.pk):  # locked until commit
            owed[commission.affiliate_id].append(commission)
        affiliates = Affiliate.objects.in_bulk(list(owed))
        accounts = accounts_for(tenant=tenant, affiliate_ids=list(owed))
        total = 0
        items: list[PayoutItem] = []
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
            items.append(
                PayoutItem(
                    run=run,
                    affiliate_id=affiliate_id,
                    amount_minor=amount,
                    currency=program.currency,
                    destination=account.stripe_id,
                    idempotency_key=f"payout-item-{uuid.uuid4()}",
                )
            )
            total += amount
        # In bulk: a run for 10,000 affiliates is a few statements here, not 20,000.
        PayoutItem.objects.bulk_create(items, batch_size=1000)
        PayoutItemCommission.objects.bulk_create(
            PayoutItemCommission(commission_id=c.pk, payout_item_id=item.pk)
            for item in items
            for c in owed[item.affiliate_id]
        )
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
        pending = list(
            run.items.select_for_update()
            .filter(status=PayoutItem.Status.PENDING)
            .order_by("id")
            .values_list("pk", flat=True)
        )
        _release(pending)
        PayoutItem.objects.filter(pk__in=pending).update(
            status=PayoutItem.Status.FAILED, failure_code="cancelled", failure_message="Run cancelled."
        )
        if not run.items.filter(status=PayoutItem.Status.SENDING).exists():
            run.status, run.finished_at = PayoutRun.Status.CANCELLED, timezone.now()
        run.save(update_fields=["status", "finished_at"])
    return run


def _linked() -> ArraySubquery:
    """The ids of the commissions an item pays, in id order, as a column of the item's row: read
    in the statement that locks the items (a batch's links cost no statement of their own)."""
    return ArraySubquery(
        PayoutItemCommission.objects.filter(payout_item=OuterRef("pk"))
        .order_by("commission_id")
        .values("commission_id")
    )


def _release(item_ids: list[int]) -> None:
    """These items let go of their commissions, which go to the next run: affiliates locks them
    (a refund or a staff decision waiting for one then sees it free), and the links go."""
    if not item_ids:
        return
    links = PayoutItemCommission.objects.filter(payout_item_id__in=item_ids)
    commissions.commissions_release(commission_ids=list(links.values_list("commission_id", flat=True)))
    links.delete()


def payout_run_execute(*, run: PayoutRun, threads: int = SEND_THREADS) -> PayoutRun:
    """Send every item of a queued (or funded again) run that is not paid yet, a batch at a time
    (the Celery path spreads the batches over workers instead: billing.tasks). Safe to run from
    several workers at once: each item is taken by one of them."""
    if run.status not in (PayoutRun.Status.QUEUED, PayoutRun.Status.AWAITING_FUNDS):
        raise BillingError("not_executable", f"This run is {run.status}.", status=409)
    for batch in payout_run_batches(run=run):
        payout_items_execute(item_ids=batch, threads=threads)
    return run_settle(run=run)


def payout_run_batches(*, run: PayoutRun, size: int = BATCH) -> list[list[int]]:
    """The ids of the run's items left to send (pending or sending), in batches of `size`."""
    ids = list(
        run.items.filter(status__in=[PayoutItem.Status.PENDING, PayoutItem.Status.SENDING])
        .order_by("id")
        .values_list("pk", flat=True)
    )
    return [ids[i : i + size] for i in range(0, len(ids), size)]


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


@dataclass
class Sent:
    """What one `payout_items_execute` did: items paid, failed (refused by Stripe), left
    `sending` after a transient error, and not taken (another worker holds them, funds short)."""

    paid: int = 0
    failed: int = 0
    retry: int = 0
    not_taken: int = 0


def payout_items_execute(*, item_ids: list[int], threads: int = SEND_THREADS) -> Sent:
    """Reserve, claim, send and record these items (see the module's docstring), a batch at a
    time: one transaction reserves them all (one ledger lock, one balance), one claims them, the
    transfers go out on up to `threads` threads at once (HTTP only: no database work there), and
    one transaction records them. A transient Stripe error leaves its item `sending`, with its
    key, for a later attempt; it is logged, not raised."""
    schema = connection.tenant.schema_name
    taken = _claim_many(_reserve_many(item_ids))
    sent = Sent(not_taken=len(item_ids) - len(taken))
    retried = [item for item in taken if item.attempts > 1 or item.created_at < timezone.now() - KEY_LIFETIME]
    try:
        earlier = _earlier_transfers(retried, schema=schema)
    except gateway.GatewayError as exc:
        logger.warning("payout items %s: Stripe error %s listing transfers; will retry", item_ids[:3], exc.code)
        for item in taken:
            _unclaim(item.pk)
        sent.retry = len(taken)
        return sent
    results = _send_all(taken, schema=schema, earlier=earlier, threads=threads)
    paid = []
    for item, (outcome, value) in zip(taken, results, strict=True):
        if outcome == "paid":
            paid.append((item.pk, value))
        elif outcome == "refused":
            _fail(item.pk, code=value.code, message=value.message)
            sent.failed += 1
        else:
            logger.warning("payout item %s: Stripe error %s; will retry", item.pk, value.code)
            _unclaim(item.pk)
            sent.retry += 1
    if paid:
        _record_many(paid)
    sent.paid = len(paid)
    return sent


def _reserve_many(item_ids: list[int]) -> list[int]:
    """Of these items, the ones now `sending` with their funds reserved: pending ones whose
    commissions still add up to them, debited from the ledger in one go while it covers them,
    and ones already `sending` (an earlier attempt reserved them). Items another worker has
    locked are left to it."""
    with transaction.atomic():
        items = list(
            PayoutItem.objects.select_for_update(skip_locked=True)
            .filter(pk__in=item_ids, status__in=[PayoutItem.Status.PENDING, PayoutItem.Status.SENDING])
            .annotate(linked=_linked())
            .order_by("id")
        )
        ready = [item.pk for item in items if item.status == PayoutItem.Status.SENDING]
        pending = [item for item in items if item.status == PayoutItem.Status.PENDING]
        if not pending:
            return ready
        locked = {
            c.pk: c
            for c in commissions.commissions_lock(commission_ids=sorted(pk for item in pending for pk in item.linked))
        }
        # Refunds and status changes of linked commissions are refused or become adjustments
        # (see affiliates), so this holds; checked anyway, because money leaves on it.
        changed = [
            item.pk
            for item in pending
            if any(pk not in locked or locked[pk].status != Commission.Status.APPROVED for pk in item.linked)
            or sum(locked[pk].amount_minor for pk in item.linked if pk in locked) != item.amount_minor
        ]
        if changed:
            PayoutItem.objects.filter(pk__in=changed).update(
                status=PayoutItem.Status.FAILED,
                failure_code="commissions_changed",
                failure_message="Its commissions changed after the run was made; they go to the next run.",
            )
            _release(changed)
        by_currency: dict[str, list[PayoutItem]] = defaultdict(list)
        for item in pending:
            if item.pk not in changed:
                by_currency[item.currency].append(item)
        reserved: list[int] = []
        for currency, group in by_currency.items():
            debited = services.ledger_debit_many(
                currency=currency,
                debits=[(f"item:{i.pk}", i.amount_minor, f"Payout to affiliate {i.affiliate_id}") for i in group],
            )
            reserved += [item.pk for item in group if f"item:{item.pk}" in debited]
        PayoutItem.objects.filter(pk__in=reserved).update(status=PayoutItem.Status.SENDING)
    return sorted(ready + reserved)


def _claim_many(item_ids: list[int]) -> list[PayoutItem]:
    """Take these `sending` items for a few minutes (`claimed_until`), skipping the ones another
    worker holds, so that two workers never send the same item at the same moment."""
    if not item_ids:
        return []
    now = timezone.now()
    with transaction.atomic():
        items = list(
            PayoutItem.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("run")
            .filter(pk__in=item_ids, status=PayoutItem.Status.SENDING)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
            .order_by("id")
        )
        PayoutItem.objects.filter(pk__in=[item.pk for item in items]).update(
            claimed_until=now + CLAIM, attempts=F("attempts") + 1
        )
    for item in items:
        item.claimed_until, item.attempts = now + CLAIM, item.attempts + 1
    return items


def _send_all(items: list[PayoutItem], *, schema: str, earlier: dict[int, Any], threads: int) -> list[tuple[str, Any]]:
    def send(item: PayoutItem) -> tuple[str, Any]:
        return _send(item, schema=schema, earlier=earlier.get(item.pk))

    if threads <= 1 or len(items) <= 1:
        return [send(item) for item in items]
    return list(_pool(threads).map(send, items))


_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}


def _pool(threads: int) -> ThreadPoolExecutor:
    # One pool per process (a forked Celery child makes its own), kept: its threads keep their
    # HTTP connections to Stripe alive from one batch to the next.
    key = (os.getpid(), threads)
    if key not in _pools:
        _pools[key] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="payout-send")
    return _pools[key]


def _send(item: PayoutItem, *, schema: str, earlier: Any) -> tuple[str, Any]:
    """("paid", transfer id), ("refused", GatewayError) or ("retry", GatewayError). Runs on a
    pool thread: Stripe only, never the database. `earlier`: the transfer an earlier attempt
    made, if one was found."""
    if earlier is not None:
        return ("paid", earlier.id)
    try:
        transfer = gateway.transfer_create(
            amount_minor=item.amount_minor,
            currency=item.currency,
            destination=item.destination,
            transfer_group=item.run.transfer_group(schema),
            metadata=_metadata(item, schema),
            idempotency_key=item.idempotency_key,
        )
    except gateway.GatewayError as exc:
        return ("refused" if exc.refused_request else "retry", exc)
    return ("paid", transfer.id)


def _metadata(item: PayoutItem, schema: str) -> dict[str, str]:
    return {"tenant": schema, "run": str(item.run_id), "item": str(item.pk)}


def _unclaim(item_id: int) -> None:
    PayoutItem.objects.filter(pk=item_id, status=PayoutItem.Status.SENDING).update(claimed_until=None)


def _record(item_id: int, *, transfer_id: str) -> PayoutItem:
    return _record_many([(item_id, transfer_id)])[0]


def _record_many(paid: list[tuple[int, str]]) -> list[PayoutItem]:
    """Record transfers Stripe made for `sending` items, in one transaction: each item still
    `sending` becomes paid with its transfer, and its commissions paid; an item recorded already
    (by a worker whose claim had lapsed, or by the webhook) is left as it is."""
    transfer_ids = dict(paid)
    with transaction.atomic():
        # In id order, as every other writer locks items: two recorders cannot deadlock.
        items = list(
            PayoutItem.objects.select_for_update().filter(pk__in=transfer_ids).annotate(linked=_linked()).order_by("id")
        )
        now = timezone.now()
        sending = [item for item in items if item.status == PayoutItem.Status.SENDING]
        if sending:
            PayoutItem.objects.filter(pk__in=[item.pk for item in sending]).update(
                status=PayoutItem.Status.PAID,
                paid_at=now,
                claimed_until=None,
                failure_code="",
                failure_message="",
                stripe_transfer_id=Case(*[When(pk=item.pk, then=Value(transfer_ids[item.pk])) for item in sending]),
            )
            for item in sending:
                item.status, item.stripe_transfer_id, item.paid_at, item.claimed_until = (
                    PayoutItem.Status.PAID,
                    transfer_ids[item.pk],
                    now,
                    None,
                )
                item.failure_code = item.failure_message = ""
            commissions.commissions_paid(commission_ids=sorted(pk for item in sending for pk in item.linked), when=now)
    return items


def item_record_transfer(*, item_id: int, transfer_id: str) -> PayoutItem:
    """Record a transfer Stripe made for a `sending` item (a worker's answer, or the webhook's
    `transfer.created` when the worker died first): once, whoever comes first."""
    return _record(item_id, transfer_id=transfer_id)


def _earlier_transfers(items: list[PayoutItem], *, schema: str) -> dict[int, Any]:
    """Transfers earlier attempts of these items created (their answer lost, their key perhaps
    expired), by item id: each run's transfer group listed once, whatever the number of items.
    A GatewayError here leaves the lookup to the next attempt (nothing is sent without it)."""
    found: dict[int, Any] = {}
    by_run: dict[int, list[PayoutItem]] = defaultdict(list)
    for item in items:
        by_run[item.run_id].append(item)
    for run_items in by_run.values():
        wanted = {str(item.pk): item for item in run_items}
        for transfer in gateway.transfers_list(transfer_group=run_items[0].run.transfer_group(schema)):
            metadata = dict(transfer.metadata or {})
            item = wanted.get(metadata.get("item", ""))
            if (
                item is not None
                and metadata == _metadata(item, schema)
                and transfer.destination == item.destination
                and transfer.amount == item.amount_minor
                and transfer.currency == item.currency.lower()
            ):
                found[item.pk] = transfer
    return found


def _fail(item_id: int, *, code: str, message: str) -> PayoutItem:
    with transaction.atomic():
        item = PayoutItem.objects.select_for_update().get(pk=item_id)
        if item.status != PayoutItem.Status.SENDING:
            return item
        item.status, item.failure_code, item.failure_message = PayoutItem.Status.FAILED, code[:64], message[:500]
        item.claimed_until = None
        item.save(update_fields=["status", "failure_code", "failure_message", "claimed_until"])
        services.ledger_post(
            kind=LedgerEntry.Kind.RELEASE,
            currency=item.currency,
            amount_minor=item.amount_minor,
            reference=f"item-release:{item.pk}",
            memo=f"Transfer refused: {code}",
        )
        _release([item.pk])
    return item
