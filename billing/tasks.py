"""Payout work in Celery, run in the tenant's schema (tenant-schemas-celery carries it)."""

from __future__ import annotations

from celery import shared_task

from billing import payouts, scheduling
from billing.models import PayoutItem, PayoutRun

_EXECUTABLE = (PayoutRun.Status.QUEUED, PayoutRun.Status.AWAITING_FUNDS)
_OPEN = (PayoutItem.Status.PENDING, PayoutItem.Status.SENDING)


@shared_task(name="billing.tasks.payout_run_execute", ignore_result=True)
def payout_run_execute(run_id: int) -> str:
    """Send a run's items: one `payout_items_execute` task per batch of items left to send, so
    that the worker pool sends batches side by side. Idempotent: sending an item twice at once
    is prevented by its claim, twice in all by its key; a repeat only costs a few queries."""
    run = PayoutRun.objects.filter(pk=run_id, status__in=_EXECUTABLE).first()
    if run is None:
        return "nothing to do"
    batches = payouts.payout_run_batches(run=run)
    if not batches:
        return payouts.run_settle(run=run).status
    for batch in batches:
        payout_items_execute.delay(run_id, batch)
    return f"{len(batches)} batches"


@shared_task(name="billing.tasks.payout_items_execute", bind=True, ignore_result=True, max_retries=10)
def payout_items_execute(self, run_id: int, item_ids: list[int]) -> str:
    """Send one batch of a run's items, then settle the run (the last batch to finish marks it
    done: settling is idempotent and locks the run). Items of the batch left `sending` by a
    transient Stripe error, or held by another worker, are tried again with backoff while the
    run is queued; a run waiting for funds is taken up again by `payout_runs_resume`."""
    run = PayoutRun.objects.filter(pk=run_id, status__in=_EXECUTABLE).first()
    if run is None:
        return "nothing to do"
    payouts.payout_items_execute(item_ids=item_ids)
    run = payouts.run_settle(run=run)
    left = PayoutItem.objects.filter(pk__in=item_ids, status__in=_OPEN).exists()
    if run.status == PayoutRun.Status.QUEUED and left:
        raise self.retry(countdown=min(300, 5 * 2**self.request.retries))
    return run.status


@shared_task(name="billing.tasks.payout_runs_resume", ignore_result=True)
def payout_runs_resume() -> int:
    """Beat, per tenant: runs still queued (a worker died, retries ran out) or waiting for funds
    (funded since) are executed again."""
    run_ids = list(PayoutRun.objects.filter(status__in=_EXECUTABLE).values_list("pk", flat=True))
    for run_id in run_ids:
        payout_run_execute.delay(run_id)
    return len(run_ids)


@shared_task(name="billing.tasks.payout_runs_schedule", ignore_result=True)
def payout_runs_schedule() -> int:
    """Beat, per tenant, hourly: today's scheduled runs (billing.scheduling), once per program
    and day however often this fires."""
    return len(scheduling.payout_runs_schedule())
