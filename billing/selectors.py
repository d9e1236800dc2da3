"""Reads of the payouts feature. Run inside the tenant's schema."""

from __future__ import annotations

from django.db.models import Sum

from billing.models import LedgerEntry


def ledger_balance(*, currency: str) -> int:
    """Available payout balance in minor units: the sum of the entries, never a stored figure."""
    return LedgerEntry.objects.filter(account__currency=currency).aggregate(s=Sum("amount_minor"))["s"] or 0


def ledger_balances() -> dict[str, int]:
    rows = LedgerEntry.objects.values("account__currency").annotate(s=Sum("amount_minor")).order_by()
    return {row["account__currency"]: row["s"] for row in rows}
