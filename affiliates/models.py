"""Tables of an affiliate program. Everything here lives in the tenant's schema.

Money is stored as integers in the currency's minor unit (`*_minor`), beside the ISO 4217 code
of the program; the API speaks decimal strings. See `core.money` for the rounding rule.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone


def _str_list() -> list[str]:
    return []


def _ref_params() -> list[str]:
    return ["ref", "via"]


class Program(models.Model):
    class PayoutSchedule(models.TextChoices):
        MANUAL = "manual", "Manual (staff start each run)"
        WEEKLY = "weekly", "Weekly, on a weekday"
        MONTHLY = "monthly", "Monthly, on a day of the month"

    class Model(models.TextChoices):
        FIRST_CLICK = "first_click", "First click"
        LAST_CLICK = "last_click", "Last click"
        LINEAR = "linear", "Linear"
        TIME_DECAY = "time_decay", "Time decay"
        POSITION_BASED = "position_based", "Position based"

    class Precedence(models.TextChoices):
        COUPON = "coupon", "An affiliate's coupon beats a click"
        CLICK = "click", "A click beats a coupon"

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    currency = models.CharField(max_length=3, default="USD")
    cookie_window_days = models.PositiveSmallIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    attribution_model = models.CharField(max_length=20, choices=Model.choices, default=Model.LAST_CLICK)
    time_decay_half_life_days = models.PositiveSmallIntegerField(
        default=7, validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    precedence = models.CharField(max_length=10, choices=Precedence.choices, default=Precedence.COUPON)
    hold_days = models.PositiveSmallIntegerField(default=30, validators=[MaxValueValidator(365)])
    payout_threshold_minor = models.BigIntegerField(default=5000, validators=[MinValueValidator(0)])
    # See affiliates.schedules for what the combinations mean and which are valid.
    payout_schedule = models.CharField(max_length=10, choices=PayoutSchedule.choices, default=PayoutSchedule.MANUAL)
    payout_weekday = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(6)], help_text="Weekly: 0 Monday .. 6 Sunday."
    )
    payout_day_of_month = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(31)],
        help_text="Monthly: 1 to 28, or 31 for the last day of the month (UTC).",
    )
    # On by default: nothing leaves the platform's Stripe balance until staff have looked at the run.
    payouts_require_confirmation = models.BooleanField(default=True)
    auto_approve = models.BooleanField(default=False)
    allowed_domains = ArrayField(models.CharField(max_length=255), default=_str_list, blank=True)
    default_destination = models.URLField(max_length=2048, blank=True)
    second_tier_percent = models.DecimalField(
        max_digits=5, decimal_places=2, default=0, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    ref_params = ArrayField(models.CharField(max_length=32), default=_ref_params)
    custom_event_types = ArrayField(models.CharField(max_length=64), default=_str_list, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(cookie_window_days__gte=1, cookie_window_days__lte=365), name="program_cookie_window_range"
            ),
            models.CheckConstraint(
                condition=Q(second_tier_percent__gte=0, second_tier_percent__lte=100), name="program_second_tier_range"
            ),
            models.CheckConstraint(condition=Q(payout_threshold_minor__gte=0), name="program_threshold_nonneg"),
            models.CheckConstraint(
                condition=(
                    Q(payout_schedule="manual", payout_weekday__isnull=True, payout_day_of_month__isnull=True)
                    | Q(
                        payout_schedule="weekly",
                        payout_weekday__gte=0,
                        payout_weekday__lte=6,
                        payout_day_of_month__isnull=True,
                    )
                    | (
                        Q(payout_schedule="monthly", payout_weekday__isnull=True)
                        & (Q(payout_day_of_month__gte=1, payout_day_of_month__lte=28) | Q(payout_day_of_month=31))
                    )
                ),
                name="program_payout_schedule_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Affiliate(models.Model):
    """A user's membership of one program: status, referral code and parent."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        SUSPENDED = "suspended", "Suspended"

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="affiliates")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="affiliations")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    code = models.CharField(max_length=32, unique=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    status_reason = models.CharField(max_length=500, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["program", "user"], name="affiliate_one_per_program")]

    def __str__(self) -> str:
        return self.code


class Coupon(models.Model):
    affiliate = models.ForeignKey(Affiliate, on_delete=models.CASCADE, related_name="coupons")
    code = models.CharField(max_length=40, unique=True, help_text="Stored upper-case; matched case-insensitively.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.code


class Link(models.Model):
    """A referral link. The default link (slug "") is `/r/<code>`; named ones `/r/<code>/<slug>`."""

    affiliate = models.ForeignKey(Affiliate, on_delete=models.CASCADE, related_name="links")
    slug = models.SlugField(max_length=60, blank=True)
    name = models.CharField(max_length=120, blank=True)
    campaign = models.CharField(max_length=120, blank=True)
    destination_url = models.CharField(max_length=2048, blank=True, help_text="Empty: the program's default.")
    sub_ids = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["affiliate", "slug"], name="link_slug_per_affiliate")]

    def __str__(self) -> str:
        return f"{self.affiliate_id}/{self.slug}"


class Click(models.Model):
    """One counted visit through a referral link. The id is made by the web process (time-ordered),
    so the redirect can hand it to the merchant's site before the row is written."""

    class Source(models.TextChoices):
        REDIRECT = "redirect", "Redirect"
        SCRIPT = "script", "Script"

    id = models.UUIDField(primary_key=True)
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="+", db_index=False)
    affiliate = models.ForeignKey(Affiliate, on_delete=models.PROTECT, related_name="clicks", db_index=False)
    link = models.ForeignKey(Link, null=True, on_delete=models.SET_NULL, related_name="clicks", db_index=False)
    visitor_id = models.UUIDField()
    created_at = models.DateTimeField()
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.REDIRECT)
    landing_url = models.CharField(max_length=2048, blank=True)
    referrer = models.CharField(max_length=2048, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    ip_hash = models.CharField(max_length=32, blank=True, help_text="Keyed hash; the address itself is never kept.")
    sub_ids = models.JSONField(default=dict, blank=True)
    utm = models.JSONField(default=dict, blank=True)
    is_self = models.BooleanField(default=False, help_text="The affiliate clicked its own link while signed in.")
    flagged = models.CharField(max_length=16, blank=True, help_text="Why the click is not counted (e.g. flood).")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["visitor_id", "created_at"], name="click_visitor_time"),
            models.Index(fields=["affiliate", "created_at"], name="click_affiliate_time"),
        ]

    def __str__(self) -> str:
        return f"click {self.id}"


class Customer(models.Model):
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="customers")
    external_id = models.CharField(max_length=255)
    email = models.EmailField(blank=True)
    referred_by = models.ForeignKey(
        Affiliate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="Code given at signup."
    )
    affiliate = models.ForeignKey(
        Affiliate,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="customers",
        help_text="Bound by the customer's first attributed conversion; recurring payments follow it.",
    )
    bound_at = models.DateTimeField(null=True, blank=True)
    first_conversion_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["program", "external_id"], name="customer_external_id")]

    def __str__(self) -> str:
        return self.external_id


class CustomerVisitor(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="visitors")
    visitor_id = models.UUIDField(db_index=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "visitor_id"], name="customer_visitor_once")]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.visitor_id}"


class Conversion(models.Model):
    class Review(models.TextChoices):
        NONE = "none", "Not flagged"
        FLAGGED = "flagged", "Waiting for review"
        CLEARED = "cleared", "Cleared by staff"
        REJECTED = "rejected", "Rejected by staff"

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="conversions")
    external_id = models.CharField(max_length=255)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 (NULL: no key, unique when set)
    event_type = models.CharField(max_length=64)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    refunded_minor = models.BigIntegerField(default=0)
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="conversions")
    product_ids = ArrayField(models.CharField(max_length=255), default=_str_list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    hints = models.JSONField(default=dict, blank=True, help_text="Click id, visitor id, code and coupon as sent.")
    attribution = models.JSONField(default=dict, blank=True, help_text="Touchpoints considered and weights.")
    review = models.CharField(max_length=10, choices=Review.choices, default=Review.NONE)
    flags = ArrayField(models.CharField(max_length=32), default=_str_list, blank=True)
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["program", "external_id"], name="conversion_external_id"),
            models.UniqueConstraint(fields=["program", "idempotency_key"], name="conversion_idempotency_key"),
            models.CheckConstraint(condition=Q(amount_minor__gte=0), name="conversion_amount_nonneg"),
            models.CheckConstraint(
                condition=Q(refunded_minor__gte=0, refunded_minor__lte=models.F("amount_minor")),
                name="conversion_refund_bounds",
            ),
        ]
        indexes = [models.Index(fields=["program", "review"], name="conversion_review")]

    def __str__(self) -> str:
        return self.external_id


class ConversionCredit(models.Model):
    """An affiliate's share of a conversion (the attribution result, one row per credited affiliate)."""

    conversion = models.ForeignKey(Conversion, on_delete=models.CASCADE, related_name="credits")
    affiliate = models.ForeignKey(Affiliate, on_delete=models.PROTECT, related_name="credits")
    link = models.ForeignKey(Link, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    weight = models.DecimalField(max_digits=7, decimal_places=6)
    revenue_minor = models.BigIntegerField()
    occurred_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["conversion", "affiliate"], name="credit_once")]
        indexes = [models.Index(fields=["affiliate", "occurred_at"], name="credit_affiliate_time")]

    def __str__(self) -> str:
        return f"{self.conversion_id} -> {self.affiliate_id} ({self.weight})"


class Refund(models.Model):
    class Kind(models.TextChoices):
        REFUND = "refund", "Refund"
        CHARGEBACK = "chargeback", "Chargeback"

    conversion = models.ForeignKey(Conversion, on_delete=models.PROTECT, related_name="refunds")
    external_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 (NULL: no id, unique when set)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.REFUND)
    amount_minor = models.BigIntegerField()
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["conversion", "external_id"], name="refund_external_id"),
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="refund_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of {self.amount_minor} on {self.conversion_id}"


class CommissionRule(models.Model):
    class Kind(models.TextChoices):
        PERCENT = "percent", "Percentage of the credited amount"
        FLAT = "flat", "Flat amount per conversion (times the affiliate's weight)"

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="rules")
    name = models.CharField(max_length=120)
    event_types = ArrayField(models.CharField(max_length=64), default=_str_list, blank=True, help_text="Empty: all.")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.PERCENT)
    percent = models.DecimalField(max_digits=7, decimal_places=4, null=True, blank=True)
    flat_minor = models.BigIntegerField(null=True, blank=True)
    min_minor = models.BigIntegerField(null=True, blank=True)
    max_minor = models.BigIntegerField(null=True, blank=True)
    priority = models.IntegerField(default=0)
    is_active = models.BooleanField(default=True)
    product_ids = ArrayField(models.CharField(max_length=255), default=_str_list, blank=True, help_text="Empty: any.")
    first_purchase_only = models.BooleanField(default=False)
    recurring_months_max = models.PositiveIntegerField(null=True, blank=True)
    recurring_payments_max = models.PositiveIntegerField(null=True, blank=True)
    tiers = models.JSONField(default=list, blank=True, help_text="Rate steps by trailing-30-day performance.")
    affiliates = models.ManyToManyField(Affiliate, blank=True, related_name="rules", help_text="Empty: program-wide.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-priority", "id"]

    def __str__(self) -> str:
        return self.name


class Commission(models.Model):
    class Kind(models.TextChoices):
        COMMISSION = "commission", "Commission"
        SECOND_TIER = "second_tier", "Second-tier commission"
        ADJUSTMENT = "adjustment", "Adjustment (a refund after payout)"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        PAID = "paid", "Paid"
        REJECTED = "rejected", "Rejected"
        REVERSED = "reversed", "Reversed"

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="commissions")
    conversion = models.ForeignKey(Conversion, on_delete=models.PROTECT, related_name="commissions")
    affiliate = models.ForeignKey(Affiliate, on_delete=models.PROTECT, related_name="commissions")
    link = models.ForeignKey(Link, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    rule = models.ForeignKey(CommissionRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.COMMISSION)
    source = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="derived",
        help_text="The first-tier commission of a second-tier one, or the commission an adjustment corrects.",
    )
    base_minor = models.BigIntegerField(help_text="The credited amount the rule was applied to.")
    original_minor = models.BigIntegerField()
    amount_minor = models.BigIntegerField(help_text="After refunds; negative only for adjustments.")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    held_for_review = models.BooleanField(default=False)
    approvable_at = models.DateTimeField()
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status_reason = models.CharField(max_length=500, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    # The payout item that pays (or is paying) a commission is billing's to know: its link table
    # (billing.PayoutItemCommission) names the commission, and the query name `payout_item`
    # reaches it from here without an import (`commissions.commission_ids_in_payout`).
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversion", "affiliate", "kind"],
                condition=~Q(kind="adjustment"),
                name="commission_once_per_conversion",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "approvable_at"], name="commission_due"),
            models.Index(fields=["affiliate", "status"], name="commission_affiliate_status"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount_minor} {self.currency} ({self.status})"


class DailyStat(models.Model):
    """Per day, affiliate and link (null: not tied to a link) counters, kept current as events
    arrive, so that stats never scan raw clicks. Amounts in the program's minor unit."""

    date = models.DateField()
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    affiliate = models.ForeignKey(Affiliate, on_delete=models.CASCADE, related_name="+")
    link = models.ForeignKey(Link, null=True, on_delete=models.CASCADE, related_name="+")
    clicks = models.BigIntegerField(default=0)
    unique_visitors = models.BigIntegerField(default=0)
    conversions = models.BigIntegerField(default=0)
    revenue_minor = models.BigIntegerField(default=0)
    commission_pending_minor = models.BigIntegerField(default=0)
    commission_approved_minor = models.BigIntegerField(default=0)
    commission_paid_minor = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["date", "affiliate", "link"], nulls_distinct=False, name="dailystat_one_row"
            )
        ]
        indexes = [models.Index(fields=["affiliate", "date"], name="dailystat_affiliate_date")]

    def __str__(self) -> str:
        return f"{self.date} {self.affiliate_id}/{self.link_id}"


class DailySource(models.Model):
    """Clicks per day, affiliate and referring site (host of the Referer, or "" for direct)."""

    date = models.DateField()
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    affiliate = models.ForeignKey(Affiliate, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=255, blank=True)
    clicks = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["date", "affiliate", "source"], name="dailysource_one_row")]
        indexes = [models.Index(fields=["affiliate", "date"], name="dailysource_affiliate_date")]

    def __str__(self) -> str:
        return f"{self.date} {self.affiliate_id} {self.source}"


class ApiKey(models.Model):
    """A server credential. The key is shown once; only its SHA-256 is kept (the key is 32 random
    bytes, so a slow hash would buy nothing)."""

    class Scope(models.TextChoices):
        TRACK = "track", "Track"
        CONVERSIONS_WRITE = "conversions:write", "Write conversions, refunds and customers"
        READ = "read", "Read"

    name = models.CharField(max_length=120)
    prefix = models.CharField(max_length=12, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = ArrayField(models.CharField(max_length=32, choices=Scope.choices))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"
