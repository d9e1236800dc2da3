"""Request and response bodies. Money travels as decimal strings ("49.90") in the program's
currency; the database keeps integer minor units (see core.money)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from rest_framework import serializers

from affiliates import schedules
from affiliates.models import (
    Affiliate,
    ApiKey,
    Click,
    Commission,
    CommissionRule,
    Conversion,
    Coupon,
    Customer,
    Link,
    Program,
)
from core import money
from core.api.fields import (
    AMOUNT_HELP,
    FieldsBuiltOnce,
    MinorAmountField,
    StrictCharField,
    StrictEmailField,
    StrictUUIDField,
)


class BoundedDictField(serializers.DictField):
    def __init__(self, *, max_items: int, **kwargs: Any) -> None:
        self.max_items = max_items
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        value = super().to_internal_value(data)
        if len(value) > self.max_items:
            raise serializers.ValidationError(f"At most {self.max_items} entries.", code="too_many")
        return value


def _minor(value: Decimal | None, currency: str, field: str) -> int | None:
    if value is None:
        return None
    try:
        minor = money.to_minor(value, currency)
    except money.MoneyError as exc:
        raise serializers.ValidationError({field: [exc.message]}, code=exc.code) from None
    if minor < 0:
        raise serializers.ValidationError({field: ["Must not be negative."]}, code="negative")
    return minor


# --- programs -------------------------------------------------------------------------------


class ProgramSerializer(serializers.ModelSerializer):
    payout_threshold = MinorAmountField(source="payout_threshold_minor", required=False)
    allowed_domains = serializers.ListField(child=StrictCharField(max_length=255), required=False, max_length=50)
    ref_params = serializers.ListField(
        child=serializers.RegexField(r"^[a-z][a-z0-9_]{0,31}$"), required=False, min_length=1, max_length=5
    )
    custom_event_types = serializers.ListField(
        child=serializers.RegexField(r"^[a-z][a-z0-9_.:-]{0,63}$"), required=False, max_length=50
    )

    class Meta:
        model = Program
        fields = [
            "id",
            "name",
            "slug",
            "currency",
            "cookie_window_days",
            "attribution_model",
            "time_decay_half_life_days",
            "precedence",
            "hold_days",
            "payout_threshold",
            "auto_approve",
            "allowed_domains",
            "default_destination",
            "second_tier_percent",
            "ref_params",
            "custom_event_types",
            "is_active",
            "payout_schedule",
            "payout_weekday",
            "payout_day_of_month",
            "payouts_require_confirmation",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {
            "currency": {"help_text": "ISO 4217 code; fixed once conversions exist."},
            "default_destination": {"help_text": "Where unknown codes and links without a destination go."},
            "payout_schedule": {
                "help_text": "manual: staff start each run; weekly / monthly: a run is made on the day (UTC). "
                "Changing it clears the weekday or day the new schedule does not use."
            },
            "payouts_require_confirmation": {
                "help_text": "Runs (scheduled ones included) wait for staff to confirm before anything is sent."
            },
        }

    def validate_default_destination(self, value: str) -> str:
        return value.strip()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "payout_threshold_minor" in attrs:
            currency = attrs.get("currency") or (self.instance.currency if self.instance else "USD")
            try:
                currency = money.currency_clean(currency)
            except money.MoneyError as exc:
                raise serializers.ValidationError({"currency": [exc.message]}, code=exc.code) from None
            attrs["payout_threshold_minor"] = _minor(attrs["payout_threshold_minor"], currency, "payout_threshold")
        if any(name in attrs for name in schedules.FIELDS):
            current = {name: getattr(self.instance, name) for name in schedules.FIELDS} if self.instance else {}
            merged = schedules.schedule_merge(current={"payout_schedule": schedules.MANUAL, **current}, changes=attrs)
            errors = schedules.schedule_errors(
                schedule=merged["payout_schedule"],
                weekday=merged["payout_weekday"],
                day_of_month=merged["payout_day_of_month"],
            )
            if errors:
                raise serializers.ValidationError({name: [message] for name, message in errors.items()})
            attrs.update(merged)
        return attrs


# --- affiliates -----------------------------------------------------------------------------


class AffiliateSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)
    name = serializers.CharField(source="user.name", read_only=True)
    parent = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = Affiliate
        fields = [
            "id",
            "program",
            "email",
            "name",
            "status",
            "code",
            "parent",
            "status_reason",
            "status_changed_at",
            "created_at",
        ]
        read_only_fields = fields


class ApplySerializer(serializers.Serializer):
    program = serializers.SlugRelatedField(slug_field="slug", queryset=Program.objects.filter(is_active=True))
    email = StrictEmailField(required=False, help_text="Required when not signed in: creates your account.")
    password = StrictCharField(required=False, write_only=True, min_length=10, max_length=128)
    name = StrictCharField(required=False, max_length=150, allow_blank=True)
    code = StrictCharField(required=False, max_length=64, help_text="Choose your referral code (optional).")
    parent_code = StrictCharField(required=False, max_length=64, help_text="Code of the affiliate who referred you.")


class ReasonSerializer(serializers.Serializer):
    reason = StrictCharField(required=False, allow_blank=True, max_length=500, default="")


# --- links and coupons ----------------------------------------------------------------------


class LinkSerializer(serializers.ModelSerializer):
    affiliate = serializers.PrimaryKeyRelatedField(
        queryset=Affiliate.objects.all(), required=False, help_text="Staff only; affiliates create their own."
    )
    url = serializers.SerializerMethodField()
    slug = StrictCharField(
        max_length=60, help_text="Lower-case letters, digits and hyphens; empty on the default link."
    )
    sub_ids = BoundedDictField(child=StrictCharField(max_length=255), required=False, max_items=5)

    class Meta:
        model = Link
        fields = [
            "id",
            "affiliate",
            "slug",
            "name",
            "campaign",
            "destination_url",
            "sub_ids",
            "is_active",
            "url",
            "created_at",
        ]
        read_only_fields = ["id", "url", "created_at"]
        # The service answers a taken slug with 409; DRF's validator would demand `affiliate`.
        validators: list = []

    def validate_slug(self, value: str) -> str:
        # Checked here, not by a pattern on the field: the default link's slug is empty, and
        # a pattern would also constrain what responses may contain.
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,59}", value):
            raise serializers.ValidationError("Use lower-case letters, digits and hyphens.", code="invalid")
        return value

    def validate_sub_ids(self, value: dict[str, str]) -> dict[str, str]:
        allowed = {"sub1", "sub2", "sub3", "sub4", "sub5"}
        if set(value) - allowed:
            raise serializers.ValidationError(f"Keys must be among {sorted(allowed)}.", code="invalid")
        return value

    def get_url(self, link: Link) -> str:
        request = self.context.get("request")
        path = f"/r/{link.affiliate.code}" + (f"/{link.slug}" if link.slug else "")
        return request.build_absolute_uri(path) if request else path


class LinkUpdateSerializer(LinkSerializer):
    slug = serializers.CharField(read_only=True)

    class Meta(LinkSerializer.Meta):
        read_only_fields = ["id", "url", "created_at", "affiliate", "slug"]


class CouponSerializer(serializers.ModelSerializer):
    affiliate = serializers.PrimaryKeyRelatedField(queryset=Affiliate.objects.all())
    code = StrictCharField(max_length=64)

    class Meta:
        model = Coupon
        fields = ["id", "affiliate", "code", "is_active", "created_at"]
        read_only_fields = ["id", "created_at"]


# --- rules ----------------------------------------------------------------------------------


class TierSerializer(serializers.Serializer):
    metric = serializers.ChoiceField(choices=["revenue", "conversions"])
    threshold = StrictCharField(max_length=32, help_text="Revenue as a decimal string, or a count of conversions.")
    percent = serializers.DecimalField(max_digits=7, decimal_places=4, min_value=0, max_value=100, required=False)
    flat_amount = MinorAmountField(required=False)


class CommissionRuleSerializer(serializers.ModelSerializer):
    flat_amount = MinorAmountField(
        source="flat_minor", currency_from="program.currency", required=False, allow_null=True
    )
    min_amount = MinorAmountField(source="min_minor", currency_from="program.currency", required=False, allow_null=True)
    max_amount = MinorAmountField(source="max_minor", currency_from="program.currency", required=False, allow_null=True)
    percent = serializers.DecimalField(
        max_digits=7, decimal_places=4, min_value=0, max_value=100, required=False, allow_null=True
    )
    event_types = serializers.ListField(child=StrictCharField(max_length=64), required=False, max_length=20)
    product_ids = serializers.ListField(child=StrictCharField(max_length=255), required=False, max_length=200)
    tiers = TierSerializer(many=True, required=False, max_length=20)
    affiliates = serializers.PrimaryKeyRelatedField(many=True, queryset=Affiliate.objects.all(), required=False)

    class Meta:
        model = CommissionRule
        fields = [
            "id",
            "program",
            "name",
            "event_types",
            "kind",
            "percent",
            "flat_amount",
            "min_amount",
            "max_amount",
            "priority",
            "is_active",
            "product_ids",
            "first_purchase_only",
            "recurring_months_max",
            "recurring_payments_max",
            "tiers",
            "affiliates",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {"priority": {"min_value": -1000, "max_value": 1000}}

    def to_representation(self, rule: CommissionRule) -> dict[str, Any]:
        data = super().to_representation(rule)
        currency = rule.program.currency
        data["tiers"] = [
            {
                "metric": t["metric"],
                "threshold": money.format_minor(t["threshold"], currency)
                if t["metric"] == "revenue"
                else str(t["threshold"]),
                "percent": t.get("percent"),
                "flat_amount": money.format_minor(t["flat_minor"], currency)
                if t.get("flat_minor") is not None
                else None,
            }
            for t in rule.tiers
        ]
        return data

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        program: Program = attrs.get("program") or self.instance.program
        currency = program.currency
        for field, name in (("flat_minor", "flat_amount"), ("min_minor", "min_amount"), ("max_minor", "max_amount")):
            if field in attrs:
                attrs[field] = _minor(attrs[field], currency, name)
        if "tiers" in attrs:
            tiers = []
            for index, tier in enumerate(attrs["tiers"]):
                if tier["metric"] == "revenue":
                    threshold = _minor(
                        _decimal(tier["threshold"], f"tiers.{index}.threshold"), currency, f"tiers.{index}.threshold"
                    )
                else:
                    if not tier["threshold"].isdigit() or len(tier["threshold"]) > 9:
                        raise serializers.ValidationError(
                            {f"tiers.{index}.threshold": ["A whole number of conversions."]}
                        )
                    threshold = int(tier["threshold"])
                if tier.get("percent") is None and tier.get("flat_amount") is None:
                    raise serializers.ValidationError({f"tiers.{index}": ["Give a percent or a flat amount."]})
                tiers.append(
                    {
                        "metric": tier["metric"],
                        "threshold": threshold,
                        "percent": str(tier["percent"]) if tier.get("percent") is not None else None,
                        "flat_minor": _minor(tier.get("flat_amount"), currency, f"tiers.{index}.flat_amount"),
                    }
                )
            attrs["tiers"] = tiers
        return attrs


def _decimal(value: str, field: str) -> Decimal:
    try:
        parsed = Decimal(value)
    except ArithmeticError:
        raise serializers.ValidationError({field: ["Not a decimal number."]}) from None
    if not parsed.is_finite():
        raise serializers.ValidationError({field: ["Not a decimal number."]})
    return parsed


# --- tracking data --------------------------------------------------------------------------


class ClickSerializer(serializers.ModelSerializer):
    class Meta:
        model = Click
        fields = [
            "id",
            "program",
            "affiliate",
            "link",
            "visitor_id",
            "created_at",
            "source",
            "landing_url",
            "referrer",
            "user_agent",
            "sub_ids",
            "utm",
            "flagged",
        ]
        read_only_fields = fields


class TrackClickSerializer(serializers.Serializer):
    code = StrictCharField(max_length=64)
    slug = StrictCharField(max_length=60, required=False, allow_blank=True, default="")
    visitor_id = StrictUUIDField(required=False, allow_null=True)
    landing_url = StrictCharField(max_length=2048, required=False, allow_blank=True, default="")
    referrer = StrictCharField(max_length=2048, required=False, allow_blank=True, default="")
    utm = BoundedDictField(child=StrictCharField(max_length=255), required=False, max_items=5, default=dict)
    sub_ids = BoundedDictField(child=StrictCharField(max_length=255), required=False, max_items=5, default=dict)


class TrackedClickSerializer(serializers.Serializer):
    click_id = serializers.UUIDField()
    visitor_id = serializers.UUIDField()
    cookie_days = serializers.IntegerField()


class CustomerSerializer(serializers.ModelSerializer):
    customer_id = serializers.CharField(source="external_id", read_only=True)
    email = serializers.CharField(read_only=True, help_text="Empty when not given.")

    class Meta:
        model = Customer
        fields = [
            "id",
            "program",
            "customer_id",
            "email",
            "referred_by",
            "affiliate",
            "bound_at",
            "first_conversion_at",
            "created_at",
        ]
        read_only_fields = fields


_PROGRAM_HELP = "A program's slug. Default: the first active program."


class CustomerInputSerializer(serializers.Serializer):
    program = StrictCharField(max_length=60, required=False, help_text=_PROGRAM_HELP)
    customer_id = StrictCharField(max_length=255, help_text="Your id for the customer.")
    email = StrictEmailField(required=False, allow_blank=True, default="")
    visitor_id = StrictUUIDField(required=False, allow_null=True)
    click_id = StrictUUIDField(required=False, allow_null=True)
    code = StrictCharField(required=False, max_length=64)


class ConversionInputSerializer(FieldsBuiltOnce, serializers.Serializer):
    program = StrictCharField(max_length=60, required=False, help_text=_PROGRAM_HELP)  # selectors.program_resolve
    external_id = StrictCharField(max_length=255, help_text="Your id for this event: the idempotency key.")
    event_type = StrictCharField(max_length=64, help_text="signup, purchase, subscription_payment or a custom type.")
    amount = StrictCharField(max_length=32, help_text=AMOUNT_HELP)
    currency = StrictCharField(max_length=3, min_length=3)
    customer_id = StrictCharField(max_length=255, required=False)
    customer_email = StrictEmailField(required=False, allow_blank=True, default="")
    product_ids = serializers.ListField(child=StrictCharField(max_length=255), required=False, max_length=100)
    metadata = BoundedDictField(required=False, max_items=50)
    click_id = StrictUUIDField(required=False, allow_null=True)
    visitor_id = StrictUUIDField(required=False, allow_null=True)
    code = StrictCharField(required=False, max_length=64)
    coupon = StrictCharField(required=False, max_length=64)
    occurred_at = serializers.DateTimeField(required=False, help_text="Default: now.")

    def validate_metadata(self, value: dict[str, Any]) -> dict[str, Any]:
        import json

        if len(json.dumps(value)) > 8192:
            raise serializers.ValidationError("Keep metadata under 8 KB.", code="too_large")
        return value


class _Credits(serializers.ListSerializer):
    def get_attribute(self, instance: Conversion) -> Any:
        # A conversion just recorded carries the credits it wrote (conversions.write): no query.
        written = getattr(instance, "written_credits", None)
        return written if written is not None else super().get_attribute(instance)


class CreditSerializer(serializers.Serializer):
    class Meta:
        list_serializer_class = _Credits

    affiliate = serializers.IntegerField(source="affiliate_id")
    weight = serializers.DecimalField(max_digits=7, decimal_places=6)
    revenue = MinorAmountField(source="revenue_minor", currency_from="conversion.currency")


class ConversionSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    amount = MinorAmountField(source="amount_minor")
    refunded = MinorAmountField(source="refunded_minor")
    customer_id = serializers.CharField(source="customer.external_id", default=None, read_only=True)
    credits = CreditSerializer(many=True, read_only=True)
    attribution = serializers.JSONField(read_only=True, help_text="Source, model, touchpoints, weights and notes.")

    class Meta:
        model = Conversion
        fields = [
            "id",
            "program",
            "external_id",
            "event_type",
            "amount",
            "currency",
            "refunded",
            "customer_id",
            "product_ids",
            "metadata",
            "hints",
            "attribution",
            "credits",
            "review",
            "flags",
            "occurred_at",
            "created_at",
        ]
        read_only_fields = fields


class RefundInputSerializer(serializers.Serializer):
    amount = StrictCharField(max_length=32, required=False, help_text="Omit for a full refund. " + AMOUNT_HELP)
    reason = StrictCharField(max_length=500, required=False, allow_blank=True, default="")
    kind = serializers.ChoiceField(choices=["refund", "chargeback"], default="refund")
    external_id = StrictCharField(max_length=255, required=False, help_text="Your refund id: repeats are ignored.")


class ReviewInputSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["clear", "reject"])
    reason = StrictCharField(max_length=500, required=False, allow_blank=True, default="")


class CommissionSerializer(serializers.ModelSerializer):
    amount = MinorAmountField(source="amount_minor")
    original_amount = MinorAmountField(source="original_minor")
    base = MinorAmountField(source="base_minor")

    class Meta:
        model = Commission
        fields = [
            "id",
            "program",
            "conversion",
            "affiliate",
            "link",
            "rule",
            "kind",
            "source",
            "base",
            "original_amount",
            "amount",
            "currency",
            "status",
            "held_for_review",
            "approvable_at",
            "status_changed_at",
            "status_reason",
            "paid_at",
            "created_at",
        ]
        read_only_fields = fields


class ApiKeySerializer(serializers.ModelSerializer):
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=ApiKey.Scope.choices), min_length=1)
    name = StrictCharField(max_length=120)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at", "revoked_at"]


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="Shown once; store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


# --- stats ----------------------------------------------------------------------------------


class StatsQuerySerializer(serializers.Serializer):
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    program = serializers.IntegerField(required=False, min_value=1)
    affiliate = serializers.IntegerField(required=False, min_value=1)
    link = serializers.IntegerField(required=False, min_value=1)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["date_to"] < attrs["date_from"]:
            raise serializers.ValidationError({"date_to": ["Must not be before date_from."]}, code="invalid")
        if (attrs["date_to"] - attrs["date_from"]).days > 731:
            raise serializers.ValidationError({"date_to": ["At most two years per request."]}, code="invalid")
        return attrs


class StatsFiguresSerializer(serializers.Serializer):
    clicks = serializers.IntegerField()
    unique_visitors = serializers.IntegerField(help_text="Distinct visitors per day, summed over the days.")
    conversions = serializers.IntegerField()
    conversion_rate = serializers.CharField(help_text="conversions / clicks, as a decimal string.")
    revenue = serializers.CharField()
    commission_pending = serializers.CharField()
    commission_approved = serializers.CharField()
    commission_paid = serializers.CharField()


class StatsDaySerializer(StatsFiguresSerializer):
    date = serializers.DateField()


class TopLinkSerializer(serializers.Serializer):
    link = serializers.IntegerField(allow_null=True)
    clicks = serializers.IntegerField()
    conversions = serializers.IntegerField()
    revenue = serializers.CharField()


class TopSourceSerializer(serializers.Serializer):
    source = serializers.CharField(help_text="Referring host; empty for direct visits.")
    clicks = serializers.IntegerField()


class StatsSerializer(serializers.Serializer):
    currency = serializers.CharField(allow_null=True)
    totals = StatsFiguresSerializer()
    series = StatsDaySerializer(many=True)
    top_links = TopLinkSerializer(many=True)
    top_sources = TopSourceSerializer(many=True)
