"""The payout balance and its entries."""

from __future__ import annotations

import pytest

from billing.models import LedgerEntry
from billing.tests.api.support import iso

pytestmark = pytest.mark.django_db


def test_ledger_balance_and_entries_newest_first(world):
    staff = world.clients["staff"]
    entries = list(LedgerEntry.objects.order_by("-id"))

    balance = staff.get("/api/v1/ledger").json()
    listed = staff.get("/api/v1/ledger/entries").json()
    transfers = staff.get("/api/v1/ledger/entries?kind=transfer").json()["results"]
    in_eur = staff.get("/api/v1/ledger/entries?currency=EUR").json()["results"]

    assert balance == {"balances": [{"currency": "USD", "balance": "40.00"}]}
    assert [(e["kind"], e["amount"], e["currency"]) for e in listed["results"]] == [
        ("transfer", "-10.00", "USD"),
        ("funding", "50.00", "USD"),
    ]
    assert listed["results"][0] == {
        "id": entries[0].id,
        "kind": "transfer",
        "amount": "-10.00",
        "currency": "USD",
        "reference": entries[0].reference,
        "stripe_id": "",
        "memo": entries[0].memo,
        "created_at": iso(entries[0].created_at),
    }
    assert [e["kind"] for e in transfers] == ["transfer"] and in_eur == []
