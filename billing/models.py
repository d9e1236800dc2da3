"""Payout tables of a tenant (in the tenant's schema). dj-stripe keeps Stripe's own objects and
webhook events in the public schema.

The payout ledger is this tenant's share of the platform's Stripe balance: funding credits it,
transfers debit it, reversals credit it back. Entries are only ever appended (a trigger refuses
UPDATE and DELETE, see the migration); the balance is their sum, never a stored number.
"""

from __future__ import annotations

from django.conf import settings
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
        RELEASE = "release", "Reservation of a failed transfer released"

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


class PayoutRun(models.Model):
    """One payout of a program: what each affiliate is owed, as items, or why it rolls over."""

    class Status(models.TextChoices):
        AWAITING_CONFIRMATION = "awaiting_confirmation", "Waiting for staff to confirm"
        QUEUED = "queued", "Queued"
        AWAITING_FUNDS = "awaiting_funds", "Waiting for funds"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    program = models.ForeignKey("affiliates.Program", on_delete=models.PROTECT, related_name="payout_runs")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.QUEUED)
    total_minor = models.BigIntegerField(default=0)
    missing_minor = models.BigIntegerField(default=0, help_text="How much more funding the pending items need.")
    skipped = models.JSONField(
        default=list, blank=True, help_text="[{affiliate_id, amount_minor, reason}]: rolled over to a later run."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The (UTC) day of the program's schedule this run was made for; empty for runs staff made.
    # Unique per program: beat firing twice, or two workers, make one run per scheduled day.
    scheduled_for = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["program", "scheduled_for"],
                condition=Q(scheduled_for__isnull=False),
                name="payout_run_once_per_scheduled_day",
            )
        ]

    def __str__(self) -> str:
        return f"payout run {self.pk} ({self.status})"

    def transfer_group(self, schema_name: str) -> str:
        # Every tenant has a run 1 and an item 1, and all share the platform's Stripe account:
        # the group (and the transfer's metadata) name the tenant.
        return f"{schema_name}-payout-run-{self.pk}"


class PayoutItem(models.Model):
    """What one affiliate receives in a run: one Stripe transfer, for exactly the commissions
    linked to it (`PayoutItemCommission`)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending (funds reserved, transfer requested)"
        PAID = "paid", "Paid"
        FAILED = "failed", "Failed"
        REVERSED = "reversed", "Reversed"

    run = models.ForeignKey(PayoutRun, on_delete=models.PROTECT, related_name="items")
    affiliate = models.ForeignKey("affiliates.Affiliate", on_delete=models.PROTECT, related_name="payout_items")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    destination = models.CharField(max_length=255, help_text="The affiliate's Stripe account when the run was made.")
    # Chosen when the item is made and sent with every attempt: Stripe answers a repeat with the
    # first transfer, so a retry after a crash cannot pay twice.
    idempotency_key = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # A worker sending the item holds it until then (a short claim instead of a row lock held
    # across the Stripe call); a worker that died lets the claim lapse.
    claimed_until = models.DateTimeField(null=True, blank=True)
    stripe_transfer_id = models.CharField(max_length=255, blank=True)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    # Set when the whole transfer came back (staff reversal, or one made in Stripe's dashboard
    # and learnt from the `transfer.reversed` webhook); see billing/reversals.py.
    reversed_at = models.DateTimeField(null=True, blank=True)
    reversal_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # What it pays, through the links below. The query name lets a commission be found by its
    # item (`Commission.objects.filter(payout_item=...)`, `payout_item__isnull`) as when the link
    # was a column of the commission; a commission has no attribute for it.
    commissions = models.ManyToManyField(
        "affiliates.Commission",
        through="PayoutItemCommission",
        related_name="+",
        related_query_name="payout_item",
        help_text="The commissions this item pays (or is paying).",
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "affiliate"], name="payout_item_once_per_run"),
            models.UniqueConstraint(
                fields=["stripe_transfer_id"], condition=~Q(stripe_transfer_id=""), name="payout_item_transfer_once"
            ),
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="payout_item_positive"),
        ]

    def __str__(self) -> str:
        return f"payout item {self.pk} ({self.status})"


class PayoutItemCommission(models.Model):
    """A commission reserved for a payout item: made with the item (billing.payouts), removed
    again if the item fails or its run is cancelled (the commission then goes to the next run),
    kept once the item is paid or reversed. Billing's table, so that affiliates (programs) know
    nothing of payouts; affiliates finds a commission's link only by the query name `payout_item`.

    The commission is the primary key: a commission is linked to at most one item at a time, and
    the key (`billing_payoutitemcommission_pkey`) is the last line of defence behind the run's
    row locks (see `affiliates.commissions.commissions_reserve`). Deleting a commission drops its
    link, as it dropped the column that held it before; an item with links cannot be deleted."""

    commission = models.OneToOneField(
        "affiliates.Commission", primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    payout_item = models.ForeignKey(PayoutItem, on_delete=models.PROTECT, related_name="commission_links")

    def __str__(self) -> str:
        return f"commission {self.commission_id} in payout item {self.payout_item_id}"


class Funding(models.Model):
    """Money the business adds to its payout ledger through a Stripe Checkout session. Credited
    once Stripe reports the session paid (webhook, or a fetch when the business comes back)."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        PAID = "paid", "Paid"

    session_id = models.CharField(max_length=255, unique=True)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    url = models.URLField(max_length=2048)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.CheckConstraint(condition=Q(amount_minor__gt=0), name="funding_positive")]

    def __str__(self) -> str:
        return f"funding {self.amount_minor} {self.currency} ({self.status})"


class BankPayout(models.Model):
    """A payout of an affiliate's Stripe balance to their bank (Stripe's `payout.*` events on the
    connected account): what tells the affiliate the money arrived, or why it did not. Stripe
    pays out the account's balance on its own schedule, so one payout may carry several
    transfers; it is kept by Stripe's payout id, not by payout item."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        IN_TRANSIT = "in_transit", "On its way to the bank"
        PAID = "paid", "Arrived in the bank"
        FAILED = "failed", "Failed (returned to the Stripe balance)"
        CANCELED = "canceled", "Canceled"

    stripe_id = models.CharField(max_length=255, unique=True)
    affiliate = models.ForeignKey("affiliates.Affiliate", on_delete=models.PROTECT, related_name="bank_payouts")
    account = models.CharField(max_length=255, help_text="The connected account it left.")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=Status.choices)
    arrival_date = models.DateField(null=True, blank=True, help_text="Expected, or actual once paid.")
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    # `created` of the last event applied: an older event arriving late changes nothing.
    event_created = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"bank payout {self.stripe_id} ({self.status})"
