"""Payout work in Celery, run in the tenant's schema (tenant-schemas-celery carries it)."""

from __future__ import annotations

from celery import shared_task

from billing import payouts, scheduling
from billing.models import PayoutRun

_EXECUTABLE = (PayoutRun.Status.QUEUED, PayoutRun.Status.AWAITING_FUNDS)


@shared_task(name="billing.tasks.payout_run_execute", bind=True, ignore_result=True, max_retries=10)
def payout_run_execute(self, run_id: int) -> str:
    """Send a run's items. Idempotent: paid items are skipped and every transfer carries its
    item's key. Items left `sending` by a transient Stripe error are tried again with backoff."""
    run = PayoutRun.objects.filter(pk=run_id, status__in=_EXECUTABLE).first()
    if run is None:
        return "nothing to do"
    run = payouts.payout_run_execute(run=run)
    if run.status == PayoutRun.Status.QUEUED:
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
