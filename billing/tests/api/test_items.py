"""Payout items: listed, and a paid one reversed."""

from __future__ import annotations

import pytest
import requests

from affiliates.models import Commission
from billing.models import LedgerEntry, PayoutItem
from billing.tests.api.support import iso, post, stripe_fails

pytestmark = pytest.mark.django_db


def test_items_list_filters_and_detail(world):
    staff = world.clients["staff"]
    paid = world.paid_run.items.get()
    pending = world.waiting_run.items.get()

    everything = staff.get("/api/v1/payout-items").json()["results"]
    of_run = staff.get(f"/api/v1/payout-items?run={world.paid_run.id}").json()["results"]
    by_status = staff.get("/api/v1/payout-items?status=pending").json()["results"]
    of_other = staff.get(f"/api/v1/payout-items?affiliate={world.other.id}").json()["results"]
    detail = staff.get(f"/api/v1/payout-items/{paid.id}").json()

    assert [i["id"] for i in everything] == [pending.id, paid.id]
    assert [i["id"] for i in of_run] == [paid.id] and [i["id"] for i in by_status] == [pending.id]
    assert of_other == []
    assert detail == {
        "id": paid.id,
        "run": world.paid_run.id,
        "affiliate": world.aff.id,
        "affiliate_email": "aff@example.org",
        "amount": "10.00",
        "currency": "USD",
        "status": "paid",
        "attempts": 1,
        "failure_code": "",
        "failure_message": "",
        "stripe_transfer_id": paid.stripe_transfer_id,
        "paid_at": iso(paid.paid_at),
        "reversed_at": None,
        "reversal_reason": "",
        "created_at": iso(paid.created_at),
    }


def test_staff_reverse_a_paid_item_and_the_affiliate_sees_why(world, double):
    staff = world.clients["staff"]
    paid = world.paid_run.items.get()

    reversed_ = post(staff, f"/api/v1/payout-items/{paid.id}/reverse", {"reason": "Orders were fraudulent."})
    again = post(staff, f"/api/v1/payout-items/{paid.id}/reverse", {"reason": "Orders were fraudulent."})

    assert reversed_.status_code == 200, reversed_.content
    body = reversed_.json()
    assert (body["status"], body["reversal_reason"], body["reversed_at"] is not None) == (
        "reversed",
        "Orders were fraudulent.",
        True,
    )
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_reversed")
    assert staff.get("/api/v1/ledger").json() == {"balances": [{"currency": "USD", "balance": "50.00"}]}
    assert set(Commission.objects.filter(payout_item=paid).values_list("status", flat=True)) == {"reversed"}
    mine = world.clients["affiliate"].get("/api/v1/my/payouts").json()["results"]
    assert [(r["id"], r["status"], r["reversal_reason"]) for r in mine if r["id"] == paid.id] == [
        (paid.id, "reversed", "Orders were fraudulent.")
    ]
    transfer = requests.get(f"{double.url}/_double/state", timeout=5).json()["transfers"][0]
    assert transfer["amount_reversed"] == 1000


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": 5}, {"reason": "x" * 501}, []])
def test_bad_reversal_bodies_are_refused_and_reverse_nothing(world, body):
    paid = world.paid_run.items.get()
    response = post(world.clients["staff"], f"/api/v1/payout-items/{paid.id}/reverse", body)
    assert response.status_code == 400, response.content
    assert PayoutItem.objects.get(pk=paid.pk).status == "paid"
    assert not LedgerEntry.objects.filter(kind="reversal").exists()


def test_only_a_paid_item_can_be_reversed(world):
    pending = world.waiting_run.items.get()
    response = post(world.clients["staff"], f"/api/v1/payout-items/{pending.id}/reverse", {"reason": "no"})
    assert (response.status_code, response.json()["error"]["code"]) == (409, "not_paid")
    assert PayoutItem.objects.get(pk=pending.pk).status == "pending"


def test_reversal_with_stripe_down_answers_503_and_reverses_nothing(world, double):
    paid = world.paid_run.items.get()
    stripe_fails(double, 503)

    response = post(world.clients["staff"], f"/api/v1/payout-items/{paid.id}/reverse", {"reason": "fraud"})

    assert (response.status_code, response.json()["error"]["code"]) == (503, "stripe_unavailable")
    assert response["Retry-After"] == "30"
    assert PayoutItem.objects.get(pk=paid.pk).status == "paid"
    assert not LedgerEntry.objects.filter(kind="reversal").exists()
