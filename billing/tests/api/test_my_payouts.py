"""An affiliate's payouts, what reached its bank, what rolled over, and the CSV."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import pytest

from affiliates.models import Commission
from billing import payouts
from billing.models import BankPayout, PayoutItem
from billing.tests.api.support import iso

pytestmark = pytest.mark.django_db


def test_an_affiliate_sees_its_own_payouts_with_their_commissions(world):
    paid = world.paid_run.items.get()
    pending = world.waiting_run.items.get()

    mine = world.clients["affiliate"].get("/api/v1/my/payouts").json()

    def row(item: PayoutItem) -> dict[str, Any]:
        [commission] = Commission.objects.filter(payout_item=item)
        return {
            "id": item.id,
            "run": item.run_id,
            "program": world.program.id,
            "affiliate": world.aff.id,
            "amount": money(item),
            "currency": "USD",
            "status": item.status,
            "failure_code": "",
            "failure_message": "",
            "stripe_transfer_id": item.stripe_transfer_id,
            "paid_at": iso(item.paid_at),
            "reversed_at": None,
            "reversal_reason": "",
            "created_at": iso(item.created_at),
            "commissions": [
                {
                    "id": commission.id,
                    "conversion": commission.conversion_id,
                    "kind": "commission",
                    "amount": money(item),
                }
            ],
        }

    assert mine == {
        "count": 2,
        "next": None,
        "previous": None,
        "results": [row(pending), row(paid)],
        "rolled_over": [],
        "bank_payouts": [],
    }


def test_an_affiliate_sees_when_its_money_reached_the_bank_and_no_one_elses(world):
    # given Stripe's payout.* reports for both affiliates (what billing.webhooks stores)
    mine = BankPayout.objects.create(
        stripe_id="po_mine",
        affiliate=world.aff,
        account="acct_mine",
        amount_minor=8_000,
        currency="USD",
        status="paid",
        arrival_date=date(2026, 11, 20),
    )
    BankPayout.objects.create(
        stripe_id="po_theirs",
        affiliate=world.other,
        account="acct_theirs",
        amount_minor=300,
        currency="USD",
        status="failed",
        failure_code="account_closed",
    )

    seen = world.clients["affiliate"].get("/api/v1/my/payouts").json()["bank_payouts"]

    assert seen == [
        {
            "stripe_id": "po_mine",
            "affiliate": world.aff.id,
            "amount": "80.00",
            "currency": "USD",
            "status": "paid",
            "arrival_date": "2026-11-20",
            "failure_code": "",
            "failure_message": "",
            "updated_at": iso(mine.updated_at),
        }
    ]
    theirs = world.clients["other_affiliate"].get("/api/v1/my/payouts").json()["bank_payouts"]
    assert [(b["stripe_id"], b["status"]) for b in theirs] == [("po_theirs", "failed")]


def money(item: PayoutItem) -> str:
    return f"{item.amount_minor // 100}.{item.amount_minor % 100:02d}"


def test_an_affiliate_sees_why_it_rolled_over_and_never_anothers_payouts(world):
    theirs = world.clients["other_affiliate"].get("/api/v1/my/payouts").json()

    assert theirs == {
        "count": 0,
        "next": None,
        "previous": None,
        "results": [],
        "rolled_over": [
            {
                "affiliate": world.other.id,
                "program": world.program.id,
                "run": world.waiting_run.id,
                "run_created_at": iso(world.waiting_run.created_at),
                "amount": "3.00",
                "currency": "USD",
                "reason": "below_threshold",
                "message": "What you are owed is below the program's payout threshold of 5.00 USD.",
            }
        ],
        "bank_payouts": [],
    }
    csv_body = b"".join(world.clients["other_affiliate"].get("/api/v1/my/payouts.csv").streaming_content)
    assert csv_body.decode() == HEADER

    # a cancelled run says nothing: the latest run that stands left nothing of theirs over
    payouts.payout_run_cancel(run=world.waiting_run)
    assert world.clients["other_affiliate"].get("/api/v1/my/payouts").json()["rolled_over"] == []


HEADER = (
    "payout_id,run,program,status,amount,currency,paid_at,stripe_transfer_id,commission_ids,conversion_ids,"
    "reversed_at,reversal_reason\r\n"
)


def test_my_payouts_csv_is_exact(world):
    paid = world.paid_run.items.get()
    pending = world.waiting_run.items.get()
    [c_paid] = Commission.objects.filter(payout_item=paid)
    [c_pending] = Commission.objects.filter(payout_item=pending)

    response = world.clients["affiliate"].get("/api/v1/my/payouts.csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="payouts.csv"'
    body = b"".join(response.streaming_content).decode()
    p = world.program.id
    assert body == HEADER + (
        f"{pending.id},{world.waiting_run.id},{p},pending,5.00,USD,,,{c_pending.id},{c_pending.conversion_id},,\r\n"
        f"{paid.id},{world.paid_run.id},{p},paid,10.00,USD,{paid.paid_at.isoformat()},{paid.stripe_transfer_id},"
        f"{c_paid.id},{c_paid.conversion_id},,\r\n"
    )
    assert list(csv.reader(io.StringIO(body)))[1][0] == str(pending.id)
