"""Payout runs: made, confirmed, cancelled, listed; bad bodies."""

from __future__ import annotations

import pytest

from affiliates.models import Commission
from billing import payouts
from billing.models import PayoutItem, PayoutRun
from billing.tests.api.support import iso, post

pytestmark = pytest.mark.django_db


def test_staff_make_a_run_that_waits_for_confirmation_then_confirm_it(world):
    staff = world.clients["staff"]
    payouts.payout_run_cancel(run=world.waiting_run)  # its commissions go back to the next run

    made = post(staff, "/api/v1/payout-runs", {"program": world.program.id, "confirm": True})

    assert made.status_code == 201, made.content
    run = PayoutRun.objects.get(pk=made.json()["id"])
    item = run.items.get()
    assert made.json() == {
        "id": run.id,
        "program": world.program.id,
        "currency": "USD",
        "status": "awaiting_confirmation",
        "total": "5.00",
        "missing": "0.00",
        "scheduled_for": None,
        "created_by": run.created_by_id,
        "created_at": iso(run.created_at),
        "confirmed_at": None,
        "finished_at": None,
        "items": [
            {
                "id": item.id,
                "run": run.id,
                "affiliate": world.aff.id,
                "affiliate_email": "aff@example.org",
                "amount": "5.00",
                "currency": "USD",
                "status": "pending",
                "attempts": 0,
                "failure_code": "",
                "failure_message": "",
                "stripe_transfer_id": "",
                "paid_at": None,
                "reversed_at": None,
                "reversal_reason": "",
                "created_at": iso(item.created_at),
            }
        ],
        "skipped": [{"affiliate": world.other.id, "amount": "3.00", "reason": "below_threshold"}],
    }
    assert run.created_by.role == "owner"

    confirmed = post(staff, f"/api/v1/payout-runs/{run.id}/confirm")
    again = post(staff, f"/api/v1/payout-runs/{run.id}/confirm")

    assert (confirmed.status_code, confirmed.json()["status"]) == (200, "queued")
    assert confirmed.json()["confirmed_at"] is not None
    assert (again.status_code, again.json()["error"]["code"]) == (409, "not_awaiting_confirmation")

    payouts.payout_run_execute(run=PayoutRun.objects.get(pk=run.pk))  # what the worker does on commit
    detail = staff.get(f"/api/v1/payout-runs/{run.id}").json()
    [paid] = detail["items"]
    assert (detail["status"], paid["status"], paid["stripe_transfer_id"].startswith("tr_")) == ("done", "paid", True)
    assert paid["paid_at"] is not None


def test_staff_cancel_a_run_and_cannot_cancel_it_twice(world):
    staff = world.clients["staff"]

    cancelled = post(staff, f"/api/v1/payout-runs/{world.waiting_run.id}/cancel")
    again = post(staff, f"/api/v1/payout-runs/{world.waiting_run.id}/cancel")

    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert cancelled.json()["items"][0]["failure_code"] == "cancelled"
    assert (again.status_code, again.json()["error"]["code"]) == (409, "not_cancellable")
    assert not Commission.objects.filter(payout_item__run=world.waiting_run).exists()


def test_run_lists_filter_by_status_and_program(world):
    staff = world.clients["staff"]
    rows = staff.get("/api/v1/payout-runs").json()["results"]
    done = staff.get("/api/v1/payout-runs?status=done").json()["results"]
    none = staff.get(f"/api/v1/payout-runs?program={world.program.id + 1000}")

    assert [r["id"] for r in rows] == [world.waiting_run.id, world.paid_run.id]
    assert "items" not in rows[0] and rows[1]["total"] == "10.00"
    assert [r["id"] for r in done] == [world.paid_run.id]
    assert none.status_code == 400 and "program" in none.json()["error"]["fields"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"program": "main"},
        {"program": 10**6},
        {"program": True},
        {"program": None},
        {"program": [1]},
        {"program": "{program}", "confirm": "maybe"},
        [],
    ],
)
def test_bad_run_bodies_are_refused_and_write_nothing(world, body):
    if isinstance(body, dict) and body.get("program") == "{program}":
        body = dict(body, program=world.program.id)
    before = (PayoutRun.objects.count(), PayoutItem.objects.count())

    response = post(world.clients["staff"], "/api/v1/payout-runs", body)

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid"
    assert (PayoutRun.objects.count(), PayoutItem.objects.count()) == before
