"""Request and response bodies of the payouts API. Money travels as decimal strings in the row's
currency ("250.00"), never as floats; the database keeps integer minor units (core.money)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from babel import Locale
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from affiliates.models import Commission, Program
from billing.connect.models import ConnectedAccount
from billing.funding import MAX_FUNDING_MINOR
from billing.models import BankPayout, Funding, LedgerEntry, PayoutItem, PayoutRun
from billing.selectors import ROLLOVER_REASONS
from core import money
from core.api.fields import MinorAmountField, StrictCharField

_AMOUNT = re.compile(r"\d{1,12}(\.\d{1,4})?")


def _amount_minor(value: str, currency: str, field: str) -> int:
    """A positive decimal string ("250.00") in minor units, exactly: no exponent, no sign, no
    more decimals than the currency has."""
    if not _AMOUNT.fullmatch(value.strip()):
        raise serializers.ValidationError({field: ['A positive decimal string, e.g. "250.00".']}, code="invalid")
    try:
        return money.to_minor(value.strip(), currency)
    except money.MoneyError as exc:
        raise serializers.ValidationError({field: [exc.message]}, code=exc.code) from None


def _currency(value: str, field: str = "currency") -> str:
    try:
        return money.currency_clean(value)
    except money.MoneyError as exc:
        raise serializers.ValidationError({field: [exc.message]}, code=exc.code) from None


# --- runs and items (staff) ------------------------------------------------------------------


class PayoutItemSerializer(serializers.ModelSerializer):
    affiliate_email = serializers.EmailField(source="affiliate.user.email", read_only=True)
    amount = MinorAmountField(source="amount_minor")

    class Meta:
        model = PayoutItem
        fields = [
            "id",
            "run",
            "affiliate",
            "affiliate_email",
            "amount",
            "currency",
            "status",
            "attempts",
            "failure_code",
            "failure_message",
            "stripe_transfer_id",
            "paid_at",
            "reversed_at",
            "reversal_reason",
            "created_at",
        ]
        read_only_fields = fields


class SkippedSerializer(serializers.Serializer):
    affiliate = serializers.IntegerField()
    amount = serializers.CharField(help_text="What the affiliate is owed; it rolls over to a later run.")
    reason = serializers.CharField(help_text=f"Why it rolled over: one of {', '.join(sorted(ROLLOVER_REASONS))}.")


class PayoutRunSerializer(serializers.ModelSerializer):
    total = MinorAmountField(source="total_minor", help_text="The sum of the run's items.")
    missing = MinorAmountField(source="missing_minor", help_text="How much more funding the pending items need.")

    class Meta:
        model = PayoutRun
        fields = [
            "id",
            "program",
            "currency",
            "status",
            "total",
            "missing",
            "scheduled_for",
            "created_by",
            "created_at",
            "confirmed_at",
            "finished_at",
        ]
        read_only_fields = fields


class PayoutRunDetailSerializer(PayoutRunSerializer):
    items = PayoutItemSerializer(many=True, read_only=True)
    skipped = serializers.SerializerMethodField(help_text="Affiliates left out of this run, and why.")

    class Meta(PayoutRunSerializer.Meta):
        fields = [*PayoutRunSerializer.Meta.fields, "items", "skipped"]
        read_only_fields = fields

    @extend_schema_field(SkippedSerializer(many=True))
    def get_skipped(self, run: PayoutRun) -> list[dict[str, Any]]:
        rows = [
            {
                "affiliate": entry["affiliate_id"],
                "amount": money.format_minor(int(entry["amount_minor"]), run.currency),
                "reason": entry["reason"],
            }
            for entry in run.skipped
        ]
        return SkippedSerializer(rows, many=True).data


class PayoutRunCreateSerializer(serializers.Serializer):
    program = serializers.PrimaryKeyRelatedField(queryset=Program.objects.all(), help_text="The program's id.")
    confirm = serializers.BooleanField(
        default=False, help_text="Wait for staff to confirm (POST .../confirm) before anything is sent."
    )


class ReverseSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=500, help_text="Why the transfer is taken back (kept with the item).")


# --- ledger ----------------------------------------------------------------------------------


class BalanceSerializer(serializers.Serializer):
    currency = serializers.CharField()
    balance = serializers.CharField(help_text="Available for payouts, as a decimal string.")


class LedgerSerializer(serializers.Serializer):
    balances = BalanceSerializer(many=True)


class LedgerEntrySerializer(serializers.ModelSerializer):
    amount = MinorAmountField(
        source="amount_minor", currency_from="account.currency", help_text="Positive: credit; negative: debit."
    )
    currency = serializers.CharField(source="account.currency", read_only=True)

    class Meta:
        model = LedgerEntry
        fields = ["id", "kind", "amount", "currency", "reference", "stripe_id", "memo", "created_at"]
        read_only_fields = fields


# --- funding ---------------------------------------------------------------------------------


class FundingSerializer(serializers.ModelSerializer):
    amount = MinorAmountField(source="amount_minor")
    url = serializers.URLField(read_only=True, help_text="Stripe Checkout's page, where the business pays.")

    class Meta:
        model = Funding
        fields = ["id", "amount", "currency", "status", "url", "created_at", "paid_at"]
        read_only_fields = fields


class FundingCreateSerializer(serializers.Serializer):
    amount = StrictCharField(max_length=32, help_text='A positive decimal string, e.g. "250.00".')
    currency = StrictCharField(max_length=3, min_length=3, help_text="ISO 4217 code.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        currency = _currency(attrs["currency"])
        amount_minor = _amount_minor(attrs["amount"], currency, "amount")
        if not 0 < amount_minor <= MAX_FUNDING_MINOR:
            raise serializers.ValidationError({"amount": ["Fund a positive, plausible amount."]}, code="invalid")
        return {"amount_minor": amount_minor, "currency": currency}


# --- the affiliate's payout account ----------------------------------------------------------


@lru_cache(maxsize=1)
def _countries() -> frozenset[str]:
    return frozenset(code for code in Locale("en").territories if len(code) == 2 and code.isalpha())


class AffiliateChoiceSerializer(serializers.Serializer):
    affiliate = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=2**63 - 1,
        help_text="Your affiliate id in the program; needed only when you are in several programs.",
    )


class OnboardingSerializer(AffiliateChoiceSerializer):
    country = StrictCharField(
        required=False,
        min_length=2,
        max_length=2,
        help_text="ISO 3166 country of your new Stripe account (default: the platform's); ignored once it exists.",
    )

    def validate_country(self, value: str) -> str:
        code = value.upper()
        if code not in _countries():
            raise serializers.ValidationError("Not an ISO 3166 country code.", code="invalid")
        return code


class PayoutAccountSerializer(serializers.ModelSerializer):
    affiliate = serializers.IntegerField(source="affiliate_id", read_only=True)
    stripe_account = serializers.CharField(source="stripe_id", read_only=True)
    can_receive_transfers = serializers.BooleanField(read_only=True)
    requirements_due = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="What Stripe still needs (its currently_due)."
    )

    class Meta:
        model = ConnectedAccount
        fields = [
            "affiliate",
            "stripe_account",
            "country",
            "details_submitted",
            "payouts_enabled",
            "transfers",
            "can_receive_transfers",
            "requirements_due",
            "disabled_reason",
        ]
        read_only_fields = fields


class StripeLinkSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="Single use; open it at once.")
    expires_at = serializers.DateTimeField(allow_null=True)


# --- the affiliate's payouts -----------------------------------------------------------------


class CoveredCommissionSerializer(serializers.ModelSerializer):
    amount = MinorAmountField(source="amount_minor")

    class Meta:
        model = Commission
        fields = ["id", "conversion", "kind", "amount"]
        read_only_fields = fields


class MyPayoutSerializer(serializers.ModelSerializer):
    program = serializers.IntegerField(source="run.program_id", read_only=True)
    amount = MinorAmountField(source="amount_minor")
    commissions = CoveredCommissionSerializer(many=True, read_only=True, help_text="What this payout pays.")

    class Meta:
        model = PayoutItem
        fields = [
            "id",
            "run",
            "program",
            "affiliate",
            "amount",
            "currency",
            "status",
            "failure_code",
            "failure_message",
            "stripe_transfer_id",
            "paid_at",
            "reversed_at",
            "reversal_reason",
            "created_at",
            "commissions",
        ]
        read_only_fields = fields


class RolloverSerializer(serializers.Serializer):
    affiliate = serializers.IntegerField(source="affiliate_id")
    program = serializers.IntegerField(source="program_id")
    run = serializers.IntegerField(source="run_id")
    run_created_at = serializers.DateTimeField()
    amount = serializers.SerializerMethodField(help_text="What rolled over to the next run.")
    currency = serializers.CharField()
    reason = serializers.CharField(help_text=f"One of {', '.join(sorted(ROLLOVER_REASONS))}.")
    message = serializers.CharField()

    def get_amount(self, row: dict[str, Any]) -> str:
        return money.format_minor(row["amount_minor"], row["currency"])


class BankPayoutSerializer(serializers.ModelSerializer):
    amount = MinorAmountField(source="amount_minor")

    class Meta:
        model = BankPayout
        fields = [
            "stripe_id",
            "affiliate",
            "amount",
            "currency",
            "status",
            "arrival_date",
            "failure_code",
            "failure_message",
            "updated_at",
        ]
        read_only_fields = fields


class MyPayoutsPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = MyPayoutSerializer(many=True)
    rolled_over = RolloverSerializer(
        many=True, help_text="Why you were left out of each program's latest payout run, if you were."
    )
    bank_payouts = BankPayoutSerializer(
        many=True,
        help_text="Stripe's latest payouts from your Stripe balance to your bank (newest first, at most 20): "
        "`paid` means the money arrived.",
    )
