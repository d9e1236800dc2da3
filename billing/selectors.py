"""Reads of the payouts feature. Run inside the tenant's schema."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet, Sum

from affiliates import selectors as affiliate_selectors
from affiliates.models import Affiliate
from billing.models import BankPayout, LedgerEntry, PayoutItem, PayoutRun
from core import money


def ledger_balance(*, currency: str) -> int:
    """Available payout balance in minor units: the sum of the entries, never a stored figure."""
    return LedgerEntry.objects.filter(account__currency=currency).aggregate(s=Sum("amount_minor"))["s"] or 0


def ledger_balances() -> dict[str, int]:
    rows = LedgerEntry.objects.values("account__currency").annotate(s=Sum("amount_minor")).order_by()
    return {row["account__currency"]: row["s"] for row in rows}


# --- what affiliates see of their payouts -----------------------------------------------------

ROLLOVER_REASONS = {
    "affiliate_not_approved": "Your affiliate account is not approved.",
    "below_threshold": "What you are owed is below the program's payout threshold.",
    "no_payout_account": "Set up payouts (your Stripe account) to be paid.",
    "account_cannot_receive_transfers": "Your Stripe account cannot receive transfers yet: finish its setup.",
}


def payout_items_of_affiliates(affiliate_ids: list[int]) -> QuerySet[PayoutItem]:
    """These affiliates' payout items, newest first, each with the commissions it pays."""
    return (
        PayoutItem.objects.filter(affiliate_id__in=affiliate_ids)
        .select_related("run")
        .prefetch_related(Prefetch("commissions", queryset=affiliate_selectors.commissions_in_id_order()))
        .order_by("-id")
    )


def rollovers_of_affiliates(affiliate_ids: list[int]) -> list[dict[str, Any]]:
    """Why each of these affiliates was left out of its program's latest payout run, if it was:
    [{affiliate_id, program_id, run_id, run_created_at, amount_minor, currency, reason, message}].
    Only the latest run that was not cancelled counts: a later run that paid the affiliate
    means nothing is rolling over now. One query per program of these affiliates."""
    out: list[dict[str, Any]] = []
    programs = dict(Affiliate.objects.filter(pk__in=affiliate_ids).values_list("pk", "program_id"))
    for program_id in sorted(set(programs.values())):
        run = (
            PayoutRun.objects.filter(program_id=program_id)
            .exclude(status=PayoutRun.Status.CANCELLED)
            .select_related("program")
            .order_by("-id")
            .first()
        )
        if run is None:
            continue
        for entry in run.skipped:
            affiliate_id = entry.get("affiliate_id")
            if programs.get(affiliate_id) != program_id:
                continue
            reason = str(entry.get("reason", ""))
            message = ROLLOVER_REASONS.get(reason, reason)
            if reason == "below_threshold":
                threshold = money.format_minor(run.program.payout_threshold_minor, run.currency)
                message = f"What you are owed is below the program's payout threshold of {threshold} {run.currency}."
            out.append(
                {
                    "affiliate_id": affiliate_id,
                    "program_id": program_id,
                    "run_id": run.pk,
                    "run_created_at": run.created_at,
                    "amount_minor": int(entry.get("amount_minor", 0)),
                    "currency": run.currency,
                    "reason": reason,
                    "message": message,
                }
            )
    return out


def bank_payouts_of_affiliates(affiliate_ids: list[int], *, limit: int = 20) -> list[BankPayout]:
    """The latest payouts to these affiliates' banks, as Stripe's `payout.*` events reported them."""
    return list(BankPayout.objects.filter(affiliate_id__in=affiliate_ids).order_by("-id")[:limit])
