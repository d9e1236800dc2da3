"""Periodic work of the affiliates app, run per tenant by beat (tenants.scheduler)."""

from __future__ import annotations

from celery import shared_task

from affiliates import commissions
from affiliates.tracking import drain


@shared_task(name="affiliates.tasks.clicks_drain", ignore_result=True)
def clicks_drain() -> int:
    """Move buffered clicks into PostgreSQL. Idempotent: a repeat finds nothing or re-inserts
    nothing (ON CONFLICT DO NOTHING on the click id)."""
    return drain.clicks_drain()


@shared_task(name="affiliates.tasks.commissions_approve_due", ignore_result=True)
def commissions_approve_due() -> int:
    total = 0
    # Bounded batches so one tenant with a large backlog does not hold a worker for long.
    for _ in range(20):
        approved = commissions.commissions_approve_due()
        total += approved
        if approved == 0:
            break
    return total
