"""Stripe connected accounts of affiliates, in the public schema."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class ConnectedAccount(models.Model):
    """One Express account per affiliate. Found by (tenant, affiliate) when paying and by
    `stripe_id` when Stripe reports on it; never moved to another tenant or affiliate."""

    class Transfers(models.TextChoices):
        INACTIVE = "inactive", "Inactive"
        PENDING = "pending", "Pending"
        ACTIVE = "active", "Active"

    stripe_id = models.CharField(max_length=255, unique=True)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="connected_accounts")
    affiliate_id = models.BigIntegerField(help_text="The affiliate's id in the tenant's schema.")
    country = models.CharField(max_length=2)
    details_submitted = models.BooleanField(default=False)
    payouts_enabled = models.BooleanField(default=False)
    transfers = models.CharField(max_length=10, choices=Transfers.choices, default=Transfers.INACTIVE)
    requirements_due = models.JSONField(default=list, blank=True, help_text="Stripe's currently_due.")
    disabled_reason = models.CharField(max_length=255, blank=True)
    # Unix time of the Stripe state last applied (an event's `created`, or when it was fetched):
    # an older report arriving late never moves the account backwards.
    synced_at = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "affiliate_id"], name="connected_account_per_affiliate")
        ]

    def __str__(self) -> str:
        return f"{self.stripe_id} ({self.tenant_id}:{self.affiliate_id})"

    @property
    def can_receive_transfers(self) -> bool:
        return self.transfers == self.Transfers.ACTIVE


class AppliedEvent(models.Model):
    """A Stripe event the webhook has applied (billing/webhooks.py): the same event delivered
    again applies nothing. Inserted in the transaction that applies the event, before it does,
    so two deliveries at once wait for each other and the second finds the first's row. Public
    schema, because an event is deduplicated before (and whatever) tenant it names."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    created = models.BigIntegerField(help_text="The event's `created` (Unix time).")
    tenant = models.ForeignKey("tenants.Tenant", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    applied_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
