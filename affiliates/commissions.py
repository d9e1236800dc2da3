"""Commission rules applied to credited shares, and the commission lifecycle.

Rule choice (exactly one rule per conversion and credited affiliate): among the program's
active rules whose conditions match, a rule naming the affiliate beats a program-wide one, then
the higher priority, then the lower id. Amounts are rounded once, half-up to the currency's minor
unit: a percentage of the affiliate's credited share, or a flat amount times its weight; then the
rule's minimum and maximum apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.contrib.postgres.aggregates import ArrayAgg
from django.db import transaction
from django.db.models import Count, Q, Sum, Value
from django.utils import timezone

from accounts.models import User
from affiliates import rollups
from affiliates.attribution import round_half_up
from affiliates.errors import AffiliateError
from affiliates.models import Commission, CommissionRule, Conversion, ConversionCredit, Customer

TIER_DAYS = 30


@dataclass(frozen=True)
class RuleContext:
    """What a rule's conditions look at, computed once per conversion."""

    event_type: str
    product_ids: frozenset[str]
    occurred_at: datetime
    is_first_purchase: bool
    customer_first_at: datetime | None
    customer_prior_conversions: int


def rule_matches(rule: CommissionRule, ctx: RuleContext) -> bool:
    if not rule.is_active:
        return False
    if rule.event_types and ctx.event_type not in rule.event_types:
        return False
    if rule.product_ids and not ctx.product_ids.intersection(rule.product_ids):
        return False
    if rule.first_purchase_only and not ctx.is_first_purchase:
        return False
    first = ctx.customer_first_at
    months = rule.recurring_months_max
    if months is not None and first is not None and ctx.occurred_at >= first + relativedelta(months=months):
        return False
    # "N payments": the first conversion is payment 1, so conversions 1..N earn.
    payments = rule.recurring_payments_max
    return payments is None or ctx.customer_prior_conversions < payments


def rule_choose(rules: list[CommissionRule], *, affiliate_id: int, ctx: RuleContext) -> CommissionRule | None:
    """`rules` come with `scoped_ids` (the set of affiliate ids a rule names) prefetched."""
    best: tuple | None = None
    chosen = None
    for rule in rules:
        scoped: set[int] = rule.scoped_ids  # type: ignore[attr-defined]
        if scoped and affiliate_id not in scoped:
            continue
        if not rule_matches(rule, ctx):
            continue
        key = (0 if scoped else 1, -rule.priority, rule.id)
        if best is None or key < best:
            best, chosen = key, rule
    return chosen


def rules_for(program_id: int) -> list[CommissionRule]:
    """Active rules with the ids of the affiliates each names, in one query."""
    return rules_for_programs([program_id])


def rules_for_programs(program_ids: list[int]) -> list[CommissionRule]:
    rules = list(
        CommissionRule.objects.filter(program_id__in=program_ids, is_active=True).annotate(
            scoped=ArrayAgg("affiliates__id", filter=Q(affiliates__isnull=False), default=Value([]))
        )
    )
    for rule in rules:
        rule.scoped_ids = set(rule.scoped)  # type: ignore[attr-defined]
    return rules


def _tier_rate(rule: CommissionRule, *, affiliate_id: int, before: datetime) -> tuple[Decimal | None, int | None]:
    """The rate of the highest tier the affiliate reached over the trailing 30 days, or the
    rule's own rate. Tiers: [{"metric": "revenue"|"conversions", "threshold": int, "percent":
    str|None, "flat_minor": int|None}], threshold in minor units for revenue."""
    if not rule.tiers:
        return rule.percent, rule.flat_minor
    totals = ConversionCredit.objects.filter(
        affiliate_id=affiliate_id, occurred_at__gte=before - timedelta(days=TIER_DAYS), occurred_at__lt=before
    ).aggregate(revenue=Sum("revenue_minor"), conversions=Count("id"))
    measured = {"revenue": totals["revenue"] or 0, "conversions": totals["conversions"] or 0}
    percent, flat = rule.percent, rule.flat_minor
    best_threshold = -1
    for tier in rule.tiers:
        value = measured.get(tier["metric"], 0)
        if value >= tier["threshold"] > best_threshold:
            best_threshold = tier["threshold"]
            percent = Decimal(tier["percent"]) if tier.get("percent") is not None else percent
            flat = tier["flat_minor"] if tier.get("flat_minor") is not None else flat
    return percent, flat


def commission_amount(
    rule: CommissionRule, *, base_minor: int, weight: Decimal, affiliate_id: int, before: datetime
) -> int:
    percent, flat = _tier_rate(rule, affiliate_id=affiliate_id, before=before)
    if rule.kind == CommissionRule.Kind.PERCENT:
        amount = int(round_half_up(Decimal(base_minor) * (percent or Decimal(0)) / Decimal(100)))
    else:
        amount = int(round_half_up(Decimal(flat or 0) * weight))
    if rule.min_minor is not None:
        amount = max(amount, rule.min_minor)
    if rule.max_minor is not None:
        amount = min(amount, rule.max_minor)
    return amount


def rules_count_prior(rules: list[CommissionRule]) -> bool:
    """Whether choosing among `rules` needs the customer's count of earlier conversions."""
    return any(r.first_purchase_only or r.recurring_payments_max is not None for r in rules)


def rule_context(
    *, conversion: Conversion, customer: Customer | None, rules: list[CommissionRule], prior: int | None = None
) -> RuleContext:
    """`prior`: the customer's earlier conversions, if the caller counted them already."""
    if prior is None:
        prior = 0
        if customer is not None and rules_count_prior(rules):
            # Counting costs a query; only rules with these conditions need it.
            prior = (
                Conversion.objects.filter(customer=customer, occurred_at__lt=conversion.occurred_at)
                .exclude(pk=conversion.pk)
                .count()
            )
    return RuleContext(
        event_type=conversion.event_type,
        product_ids=frozenset(conversion.product_ids),
        occurred_at=conversion.occurred_at,
        is_first_purchase=prior == 0,
        customer_first_at=customer.first_conversion_at if customer else None,
        customer_prior_conversions=prior,
    )


# --- lifecycle ------------------------------------------------------------------------------


def _move(commission: Commission, *, old_status: str, old_amount: int) -> None:
    """Keep the daily rollup's pending/approved/paid sums in step with one commission."""
    key = (commission.conversion.occurred_at.date(), commission.program_id, commission.affiliate_id, commission.link_id)
    deltas: dict[str, int] = {}
    old_col, new_col = rollups.commission_column(old_status), rollups.commission_column(commission.status)
    if old_col:
        deltas[old_col] = deltas.get(old_col, 0) - old_amount
    if new_col:
        deltas[new_col] = deltas.get(new_col, 0) + commission.amount_minor
    rollups.stats_add({key: deltas})


def commission_set_status(
    *, commission: Commission, status: str, by: User | None, reason: str = "", when: datetime | None = None
) -> Commission:
    allowed = {
        Commission.Status.APPROVED: {Commission.Status.PENDING},
        Commission.Status.REJECTED: {Commission.Status.PENDING, Commission.Status.APPROVED},
        Commission.Status.REVERSED: {Commission.Status.PENDING, Commission.Status.APPROVED},
    }
    with transaction.atomic():
        commission = Commission.objects.select_for_update().select_related("conversion").get(pk=commission.pk)
        if commission.status == status:
            return commission
        if commission.payout_item_id is not None:
            raise AffiliateError("in_payout", "This commission is in a payout run; cancel the run first.", status=409)
        if commission.status not in allowed.get(status, set()):
            raise AffiliateError(
                "invalid_transition", f"A {commission.status} commission cannot become {status}.", status=409
            )
        if status == Commission.Status.APPROVED and commission.held_for_review:
            raise AffiliateError("held_for_review", "The conversion is waiting for review; clear it first.", status=409)
        if status == Commission.Status.REJECTED and not reason.strip():
            raise AffiliateError("reason_required", "Give a reason; the affiliate will see it.", field="reason")
        old_status = commission.status
        commission.status = status
        commission.status_changed_at = when or timezone.now()
        commission.status_changed_by = by
        commission.status_reason = reason.strip()
        commission.save(update_fields=["status", "status_changed_at", "status_changed_by", "status_reason"])
        _move(commission, old_status=old_status, old_amount=commission.amount_minor)
    return commission


def commissions_approve_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """Approve pending commissions whose hold period has passed, unless their conversion is
    held for review. Safe to run from several workers at once (SKIP LOCKED)."""
    now = now or timezone.now()
    approved = 0
    with transaction.atomic():
        due = list(
            Commission.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("conversion")
            .filter(status=Commission.Status.PENDING, held_for_review=False, approvable_at__lte=now)
            .exclude(amount_minor__lte=0, kind__in=[Commission.Kind.COMMISSION, Commission.Kind.SECOND_TIER])
            .order_by("approvable_at", "id")[:limit]
        )
        for commission in due:
            commission.status = Commission.Status.APPROVED
            commission.status_changed_at = now
            commission.status_reason = "Hold period passed."
            commission.save(update_fields=["status", "status_changed_at", "status_reason"])
            _move(commission, old_status=Commission.Status.PENDING, old_amount=commission.amount_minor)
            approved += 1
    return approved


def review_resolve(*, conversion: Conversion, clear: bool, by: User, reason: str = "") -> Conversion:
    """Staff decide a flagged conversion: cleared commissions go on to approval as usual;
    rejected ones are rejected with the reason."""
    with transaction.atomic():
        conversion = Conversion.objects.select_for_update().get(pk=conversion.pk)
        if conversion.review != Conversion.Review.FLAGGED:
            raise AffiliateError("not_flagged", "This conversion is not waiting for review.", status=409)
        if not clear and not reason.strip():
            raise AffiliateError("reason_required", "Give a reason; the affiliate will see it.", field="reason")
        conversion.review = Conversion.Review.CLEARED if clear else Conversion.Review.REJECTED
        conversion.save(update_fields=["review"])
        held = list(conversion.commissions.filter(held_for_review=True))
        Commission.objects.filter(pk__in=[c.pk for c in held]).update(held_for_review=False)
        if not clear:
            for commission in held:
                commission.held_for_review = False
                commission_set_status(commission=commission, status=Commission.Status.REJECTED, by=by, reason=reason)
    return conversion


def commissions_paid(*, commission_ids: list[int], when: datetime) -> None:
    """Approved commissions (and approved negative adjustments) a payout has just paid. Called
    inside the payout's transaction, which has locked them."""
    # One UPDATE and one rollup upsert for all of them: a payout batch records a hundred items.
    paid = list(
        Commission.objects.select_related("conversion").filter(pk__in=commission_ids, status=Commission.Status.APPROVED)
    )
    if not paid:
        return
    Commission.objects.filter(pk__in=[c.pk for c in paid]).update(
        status=Commission.Status.PAID, paid_at=when, status_changed_at=when, status_reason="Paid out."
    )
    deltas: dict[tuple, dict[str, int]] = {}
    approved, paid_column = (
        rollups.commission_column(Commission.Status.APPROVED),
        rollups.commission_column(Commission.Status.PAID),
    )
    for commission in paid:
        key = (
            commission.conversion.occurred_at.date(),
            commission.program_id,
            commission.affiliate_id,
            commission.link_id,
        )
        row = deltas.setdefault(key, {approved: 0, paid_column: 0})
        row[approved] -= commission.amount_minor
        row[paid_column] += commission.amount_minor
    rollups.stats_add(deltas)


def commissions_reversed(*, commission_ids: list[int], when: datetime, reason: str, by: User | None = None) -> int:
    """Paid commissions whose payout was taken back (a transfer reversal): they become reversed,
    and so do the open adjustments that would still correct them (a refund after payout would
    otherwise be deducted again from money the affiliate no longer has). Called inside the
    reversal's transaction, which has locked the payout item. Returns how many changed."""
    changed = 0
    paid = Commission.objects.select_for_update(of=("self",)).select_related("conversion")
    adjustments = paid.filter(
        source_id__in=commission_ids,
        kind=Commission.Kind.ADJUSTMENT,
        status__in=[Commission.Status.PENDING, Commission.Status.APPROVED],
        payout_item__isnull=True,
    )
    targets = [*paid.filter(pk__in=commission_ids, status=Commission.Status.PAID).order_by("id"), *adjustments]
    for commission in targets:
        old_status = commission.status
        commission.status = Commission.Status.REVERSED
        commission.status_changed_at = when
        commission.status_changed_by = by
        commission.status_reason = reason[:500]
        commission.save(update_fields=["status", "status_changed_at", "status_changed_by", "status_reason"])
        _move(commission, old_status=old_status, old_amount=commission.amount_minor)
        changed += 1
    return changed
