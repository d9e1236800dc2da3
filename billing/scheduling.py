"""Scheduled payout runs: on the day a program's schedule names (affiliates.schedules), one run.

Beat sends `billing.tasks.payout_runs_schedule` to every active tenant every hour; each time, the
programs whose schedule is due today (UTC) and that have no run for today get one, made by the
same service staff use, waiting for confirmation when the program asks for it. "Exactly once per
day" rests on `PayoutRun.scheduled_for` being unique per program: a second beat, or a second
worker racing the first, blocks on the first's insert and then fails it, and its whole run (items
and commission links) is rolled back. A day on which beat never fired is not made up later: its
commissions are still approved and unpaid, so the next scheduled run takes them.
"""

from __future__ import annotations

import logging
from datetime import date

from django.db import IntegrityError
from django.utils import timezone

from affiliates import schedules
from affiliates.models import Program
from billing import payouts
from billing.models import PayoutRun

logger = logging.getLogger(__name__)


def payout_runs_schedule(*, today: date | None = None) -> list[PayoutRun]:
    """Make today's scheduled runs in the current tenant; returns the runs made by this call."""
    today = today or timezone.now().date()  # UTC: USE_TZ with TIME_ZONE "UTC"
    made = []
    programs = Program.objects.filter(is_active=True).exclude(payout_schedule=Program.PayoutSchedule.MANUAL)
    for program in programs.order_by("id"):
        due = schedules.is_due(
            schedule=program.payout_schedule,
            weekday=program.payout_weekday,
            day_of_month=program.payout_day_of_month,
            on=today,
        )
        if not due or PayoutRun.objects.filter(program=program, scheduled_for=today).exists():
            continue
        try:
            run = payouts.payout_run_create(
                program=program, confirm=program.payouts_require_confirmation, scheduled_for=today
            )
        except IntegrityError:
            # Another worker made it between our check and our insert: theirs stands.
            logger.info("scheduled payout run of program %s for %s was made by another worker", program.pk, today)
            continue
        made.append(run)
    return made
