"""Scheduled payout runs against real PostgreSQL: made on the program's day, once per day however
often beat fires or however many workers race, waiting for staff when the program says so."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connection

from affiliates import services as affiliate_services
from affiliates.models import Affiliate, Commission
from affiliates.tests import factories
from billing import scheduling, tasks
from billing.connect.models import ConnectedAccount
from billing.models import PayoutItem, PayoutRun
from billing.tests import factories as payout_factories
from tests.support.race import race

MONDAY = date(2026, 11, 23)


def _owed_with_account(tenant, program, amount: str = "800.00") -> Affiliate:
    affiliate = payout_factories.owed(program, amount)
    # The account as onboarding leaves it (billing/tests/test_connect.py covers getting there).
    ConnectedAccount.objects.create(
        stripe_id=f"acct_sched_{tenant.pk}_{affiliate.pk}",
        tenant=tenant,
        affiliate_id=affiliate.pk,
        country="US",
        details_submitted=True,
        payouts_enabled=True,
        transfers=ConnectedAccount.Transfers.ACTIVE,
    )
    return affiliate


def _program(**schedule):
    program = factories.program(payout_threshold_minor=5000, currency="USD", **schedule)
    factories.rule(program, percent="10")
    return program


@pytest.mark.django_db
def test_a_weekly_program_gets_one_run_on_its_weekday_waiting_for_confirmation(tenant):
    program = _program(payout_schedule="weekly", payout_weekday=0)
    affiliate = _owed_with_account(tenant, program)

    assert scheduling.payout_runs_schedule(today=date(2026, 11, 22)) == []  # a Sunday
    [run] = scheduling.payout_runs_schedule(today=MONDAY)
    again = scheduling.payout_runs_schedule(today=MONDAY)  # beat fires again an hour later

    assert again == []
    assert PayoutRun.objects.filter(program=program).count() == 1
    assert (run.scheduled_for, run.status, run.created_by) == (MONDAY, "awaiting_confirmation", None)
    [item] = run.items.all()
    assert (item.affiliate_id, item.amount_minor, item.status) == (affiliate.pk, 8000, "pending")
    # next Monday is another period: another run (with nothing left to pay, it is done at once)
    [next_week] = scheduling.payout_runs_schedule(today=date(2026, 11, 30))
    assert (next_week.scheduled_for, next_week.status, next_week.items.count()) == (date(2026, 11, 30), "done", 0)


@pytest.mark.django_db
def test_a_monthly_program_on_day_31_runs_on_the_last_day_and_a_manual_one_never(tenant):
    monthly = _program(payout_schedule="monthly", payout_day_of_month=31, payouts_require_confirmation=False)
    manual = _program()
    _owed_with_account(tenant, monthly)
    _owed_with_account(tenant, manual)

    assert scheduling.payout_runs_schedule(today=date(2026, 2, 27)) == []
    [run] = scheduling.payout_runs_schedule(today=date(2026, 2, 28))

    assert (run.program_id, run.status, run.items.count()) == (monthly.pk, "queued", 1)
    assert not PayoutRun.objects.filter(program=manual).exists()


@pytest.mark.django_db
def test_inactive_programs_are_not_scheduled(tenant):
    program = _program(payout_schedule="weekly", payout_weekday=0)
    affiliate_services.program_update(program=program, is_active=False)

    assert scheduling.payout_runs_schedule(today=MONDAY) == []


@pytest.mark.django_db
def test_the_beat_task_runs_in_the_tenants_schema(tenant):
    from django.utils import timezone

    today = timezone.now().date()
    _program(payout_schedule="weekly", payout_weekday=today.weekday())

    assert tasks.payout_runs_schedule.apply().get() == 1
    assert tasks.payout_runs_schedule.apply().get() == 0
    assert PayoutRun.objects.get().scheduled_for == today


@pytest.mark.django_db(transaction=True)
def test_two_workers_scheduling_the_same_day_make_one_run(make_tenant):
    tenant = make_tenant().tenant
    connection.set_tenant(tenant)
    program = _program(payout_schedule="weekly", payout_weekday=0)
    affiliates = [_owed_with_account(tenant, program) for _ in range(5)]

    raced = race(lambda _i: scheduling.payout_runs_schedule(today=MONDAY), times=2, tenant=tenant)

    assert raced.errors == []
    assert sorted(len(runs) for runs in raced.values) == [0, 1]
    run = PayoutRun.objects.get(program=program)
    assert run.scheduled_for == MONDAY
    assert sorted(run.items.values_list("affiliate_id", flat=True)) == sorted(a.pk for a in affiliates)
    assert PayoutItem.objects.count() == 5
    assert Commission.objects.filter(payout_item__run=run).count() == 5
    connection.set_schema_to_public()
