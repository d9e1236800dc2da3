"""Writes of the payouts feature. Run inside the tenant's schema."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from billing import selectors
from billing.errors import BillingError
from billing.models import LedgerAccount, LedgerEntry
from core import money


def _account_locked(currency: str) -> LedgerAccount:
    account, _ = LedgerAccount.objects.get_or_create(currency=currency)
    return LedgerAccount.objects.select_for_update().get(pk=account.pk)


def ledger_post(
    *, kind: str, currency: str, amount_minor: int, reference: str, stripe_id: str = "", memo: str = ""
) -> tuple[LedgerEntry, bool]:
    """Append one entry: a credit (funding, reversal: amount > 0) or a transfer's debit (amount
    < 0, refused with `insufficient_funds` when the balance does not cover it). Idempotent by
    `reference`: a repeat returns the first entry and `False`, whatever else it says. The
    debit's check and its insert run under the currency's account lock, so concurrent debits
    never overdraw."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor == 0:
        raise BillingError("amount_invalid", "A ledger entry moves a non-zero whole number of minor units.")
    if (kind == LedgerEntry.Kind.TRANSFER) != (amount_minor < 0):
        raise BillingError("amount_sign", "Transfers debit the ledger; funding and reversals credit it.")
    with transaction.atomic():
        found = LedgerEntry.objects.filter(reference=reference).first()
        if found is not None:
            return found, False
        account = _account_locked(currency)
        # Again under the lock: a repeat that waited for it finds the entry the first one made.
        found = LedgerEntry.objects.filter(reference=reference).first()
        if found is not None:
            return found, False
        if amount_minor < 0:
            available = selectors.ledger_balance(currency=currency)
            if available + amount_minor < 0:
                missing = -(available + amount_minor)
                raise BillingError(
                    "insufficient_funds",
                    f"The payout balance is {money.format_minor(available, currency)} {currency}; "
                    f"{money.format_minor(missing, currency)} {currency} more is needed.",
                    status=409,
                )
        try:
            with transaction.atomic():
                entry = LedgerEntry.objects.create(
                    account=account,
                    kind=kind,
                    amount_minor=amount_minor,
                    reference=reference,
                    stripe_id=stripe_id,
                    memo=memo,
                )
        except IntegrityError:
            # The same reference, committed by another transaction since the check above.
            return LedgerEntry.objects.get(reference=reference), False
    return entry, True


def ledger_debit_many(*, currency: str, debits: list[tuple[str, int, str]]) -> set[str]:
    """Reserve several transfers at once: `debits` are (reference, amount > 0, memo), taken in
    order, each debited if the balance still covers it (one that does not fit is skipped; a
    later, smaller one may still fit, as when they are posted one by one). One lock, one
    balance and one insert for all of them, instead of one each: a payout run's items are
    reserved a batch at a time. Returns the references debited, now or by an earlier call."""
    if any(isinstance(a, bool) or not isinstance(a, int) or a <= 0 for _, a, _ in debits):
        raise BillingError("amount_invalid", "A debit reserves a positive whole number of minor units.")
    with transaction.atomic():
        account = _account_locked(currency)
        references = [reference for reference, _, _ in debits]
        done = set(LedgerEntry.objects.filter(reference__in=references).values_list("reference", flat=True))
        available = selectors.ledger_balance(currency=currency)
        rows = []
        for reference, amount, memo in debits:
            if reference in done or amount > available:
                continue
            available -= amount
            done.add(reference)
            rows.append(
                LedgerEntry(
                    account=account,
                    kind=LedgerEntry.Kind.TRANSFER,
                    amount_minor=-amount,
                    reference=reference,
                    memo=memo,
                )
            )
        # Every entry is written under the account's lock (ledger_post too), so no other
        # transaction can have added one of these references since the check above.
        LedgerEntry.objects.bulk_create(rows)
    return done
