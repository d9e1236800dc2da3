"""A program's payout schedule through the API: valid combinations saved, bad ones refused with
the field at fault and nothing written."""

from __future__ import annotations

from datetime import date

import pytest
from django.test import Client

from affiliates import schedules
from affiliates.models import Program
from affiliates.tests import factories
from tests.support.tenants import host_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(tenant) -> Client:
    client = Client(HTTP_HOST=host_of(tenant))
    client.force_login(tenant.owner)
    return client


def _schedule(program: Program) -> tuple:
    program.refresh_from_db()
    return (
        program.payout_schedule,
        program.payout_weekday,
        program.payout_day_of_month,
        program.payouts_require_confirmation,
    )


def test_a_new_program_is_manual_and_needs_confirmation(staff_client):
    response = staff_client.post(
        "/api/v1/programs", {"name": "P", "slug": "p-new", "currency": "USD"}, content_type="application/json"
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["payout_schedule"], body["payout_weekday"], body["payout_day_of_month"]) == ("manual", None, None)
    assert body["payouts_require_confirmation"] is True


def test_staff_set_a_weekly_then_a_monthly_schedule(staff_client, program):
    weekly = staff_client.patch(
        f"/api/v1/programs/{program.id}",
        {"payout_schedule": "weekly", "payout_weekday": 4, "payouts_require_confirmation": False},
        content_type="application/json",
    )
    assert weekly.status_code == 200, weekly.json()
    assert _schedule(program) == ("weekly", 4, None, False)

    # switching to monthly needs only the schedule and the day: the weekday is cleared
    monthly = staff_client.patch(
        f"/api/v1/programs/{program.id}",
        {"payout_schedule": "monthly", "payout_day_of_month": 31},
        content_type="application/json",
    )
    assert monthly.status_code == 200, monthly.json()
    assert _schedule(program) == ("monthly", None, 31, False)

    assert (
        staff_client.patch(
            f"/api/v1/programs/{program.id}", {"payout_schedule": "manual"}, content_type="application/json"
        ).status_code
        == 200
    )
    assert _schedule(program) == ("manual", None, None, False)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"payout_schedule": "weekly"}, {"payout_weekday"}),
        ({"payout_schedule": "weekly", "payout_weekday": 7}, {"payout_weekday"}),
        ({"payout_schedule": "weekly", "payout_weekday": 1, "payout_day_of_month": 3}, {"payout_day_of_month"}),
        ({"payout_schedule": "monthly"}, {"payout_day_of_month"}),
        ({"payout_schedule": "monthly", "payout_day_of_month": 29}, {"payout_day_of_month"}),
        ({"payout_schedule": "monthly", "payout_day_of_month": 0}, {"payout_day_of_month"}),
        ({"payout_schedule": "monthly", "payout_day_of_month": 5, "payout_weekday": 2}, {"payout_weekday"}),
        ({"payout_weekday": 2}, {"payout_weekday"}),  # the program is manual
        ({"payout_day_of_month": 2}, {"payout_day_of_month"}),
        ({"payout_schedule": "daily"}, {"payout_schedule"}),
        ({"payout_schedule": "weekly", "payout_weekday": "friday"}, {"payout_weekday"}),
        ({"payouts_require_confirmation": "maybe"}, {"payouts_require_confirmation"}),
    ],
)
def test_bad_combinations_are_a_400_naming_the_field_and_write_nothing(staff_client, program, body, fields):
    before = _schedule(program)

    response = staff_client.patch(f"/api/v1/programs/{program.id}", body, content_type="application/json")

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == fields
    assert _schedule(program) == before


def test_a_bad_schedule_on_create_writes_no_program(staff_client):
    response = staff_client.post(
        "/api/v1/programs",
        {"name": "P", "slug": "p-bad", "currency": "USD", "payout_schedule": "monthly", "payout_day_of_month": 30},
        content_type="application/json",
    )

    assert response.status_code == 400 and set(response.json()["error"]["fields"]) == {"payout_day_of_month"}
    assert not Program.objects.filter(slug="p-bad").exists()


def test_an_affiliate_cannot_change_the_schedule(tenant, program):
    affiliate = factories.affiliate(program)
    client = Client(HTTP_HOST=host_of(tenant))
    client.force_login(affiliate.user)

    response = client.patch(
        f"/api/v1/programs/{program.id}",
        {"payout_schedule": "weekly", "payout_weekday": 0},
        content_type="application/json",
    )

    assert response.status_code == 403 and _schedule(program) == ("manual", None, None, True)


def test_the_service_and_the_database_refuse_what_the_api_refuses(program):
    from django.db import IntegrityError, transaction

    from affiliates import services
    from affiliates.errors import AffiliateError

    with pytest.raises(AffiliateError) as refused:
        services.program_update(program=program, payout_schedule="weekly")
    assert refused.value.field == "payout_weekday"
    with pytest.raises(IntegrityError), transaction.atomic():
        Program.objects.filter(pk=program.pk).update(payout_schedule="monthly", payout_day_of_month=30)


@pytest.mark.parametrize(
    ("schedule", "value", "on", "due"),
    [
        ("weekly", 0, date(2026, 11, 23), True),  # a Monday
        ("weekly", 0, date(2026, 11, 24), False),
        ("monthly", 15, date(2026, 2, 15), True),
        ("monthly", 15, date(2026, 2, 16), False),
        ("monthly", 31, date(2026, 2, 28), True),  # the last day of a short month
        ("monthly", 31, date(2028, 2, 28), False),  # 2028 is a leap year
        ("monthly", 31, date(2028, 2, 29), True),
        ("monthly", 31, date(2026, 4, 30), True),
        ("monthly", 28, date(2026, 3, 31), False),
        ("manual", None, date(2026, 11, 23), False),
    ],
)
def test_due_days(schedule, value, on, due):
    weekday, day_of_month = (value, None) if schedule == "weekly" else (None, value)
    assert schedules.is_due(schedule=schedule, weekday=weekday, day_of_month=day_of_month, on=on) is due
