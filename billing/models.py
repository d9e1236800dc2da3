"""Payout tables of a tenant (in the tenant's schema). dj-stripe keeps Stripe's own objects and
webhook events in the public schema.

The payout ledger is this tenant's share of the platform's Stripe balance: funding credits it,
transfers debit it, reversals credit it back. Entries are only ever appended (a trigger refuses
UPDATE and DELETE, see the migration); the balance is their sum, never a stored number.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class LedgerAccount(models.Model):
    """One per currency. Holds no balance: its row is what a debit locks, so that two debits
    never both pass the balance check on the same funds."""

    currency = models.CharField(max_length=3, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"ledger {self.currency}"


class LedgerEntry(models.Model):
    class Kind(models.TextChoices):
        FUNDING = "funding", "Funding (the business added money)"
        TRANSFER = "transfer", "Transfer to an affiliate"
        REVERSAL = "reversal", "Transfer reversed (money back)"

    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    amount_minor = models.BigIntegerField(help_text="Positive: credit; negative: debit. Minor units.")
    reference = models.CharField(
        max_length=255, unique=True, help_text="What caused it (checkout:<id>, item:<id>, reversal:<id>): once only."
    )
    stripe_id = models.CharField(max_length=255, blank=True)
    memo = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(amount_minor=0), name="ledger_entry_nonzero"),
            models.CheckConstraint(
                condition=(Q(kind="transfer", amount_minor__lt=0) | (~Q(kind="transfer") & Q(amount_minor__gt=0))),
                name="ledger_entry_sign_by_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount_minor} ({self.reference})"
