"""Commission rules: which rule applies to a credited share, and what it earns.

Rule choice (exactly one rule per conversion and credited affiliate): among the program's
active rules whose conditions match, a rule naming the affiliate beats a program-wide one, then
the higher priority, then the lower id. Amounts are rounded once, half-up to the currency's minor
unit: a percentage of the affiliate's credited share, or a flat amount times its weight; then the
rule's minimum and maximum apply.

The decisions are pure: what they need of the database (the customer's earlier conversions, an
affiliate's trailing performance for tiers) comes in as data, read by the loaders at the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import Count, Q, Sum, Value

from affiliates.attribution import round_half_up
from affiliates.models import CommissionRule, ConversionCredit

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


@dataclass(frozen=True)
class TierTotals:
    """An affiliate's credited revenue (minor units) and conversions over the trailing
    `TIER_DAYS` before a conversion: what a tier's threshold is compared with."""

    revenue: int = 0
    conversions: int = 0


NO_TOTALS = TierTotals()


def rule_context(
    *,
    event_type: str,
    product_ids: Iterable[str],
    occurred_at: datetime,
    customer_first_at: datetime | None,
    prior: int,
) -> RuleContext:
    """`prior`: the customer's earlier conversions (0 when not counted, see `rules_count_prior`)."""
    return RuleContext(
        event_type=event_type,
        product_ids=frozenset(product_ids),
        occurred_at=occurred_at,
        is_first_purchase=prior == 0,
        customer_first_at=customer_first_at,
        customer_prior_conversions=prior,
    )


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


def rule_scoped_ids(rule: CommissionRule) -> set[int]:
    """The affiliates a rule names (empty: program-wide), as `rules_for` loaded them."""
    scoped: set[int] = rule.scoped_ids  # type: ignore[attr-defined]
    return scoped


def rule_choose(rules: Sequence[CommissionRule], *, affiliate_id: int, ctx: RuleContext) -> CommissionRule | None:
    """`rules` come with `scoped_ids` (the set of affiliate ids a rule names), as `rules_for` gives them."""
    best: tuple[int, int, int] | None = None
    chosen = None
    for rule in rules:
        scoped = rule_scoped_ids(rule)
        if scoped and affiliate_id not in scoped:
            continue
        if not rule_matches(rule, ctx):
            continue
        key = (0 if scoped else 1, -rule.priority, rule.id)
        if best is None or key < best:
            best, chosen = key, rule
    return chosen


def tier_rate(rule: CommissionRule, totals: TierTotals) -> tuple[Decimal | None, int | None]:
    """The rate of the highest tier the affiliate reached (`totals`), or the rule's own rate.
    Tiers: [{"metric": "revenue"|"conversions", "threshold": int, "percent": str|None,
    "flat_minor": int|None}], threshold in minor units for revenue."""
    percent, flat = rule.percent, rule.flat_minor
    if not rule.tiers:
        return percent, flat
    measured = {"revenue": totals.revenue, "conversions": totals.conversions}
    best_threshold = -1
    for tier in rule.tiers:
        value = measured.get(tier["metric"], 0)
        if value >= tier["threshold"] > best_threshold:
            best_threshold = tier["threshold"]
            percent = Decimal(tier["percent"]) if tier.get("percent") is not None else percent
            flat = tier["flat_minor"] if tier.get("flat_minor") is not None else flat
    return percent, flat


def commission_amount(rule: CommissionRule, *, base_minor: int, weight: Decimal, totals: TierTotals = NO_TOTALS) -> int:
    """`totals`: the affiliate's trailing performance, which only a rule with tiers reads."""
    percent, flat = tier_rate(rule, totals)
    if rule.kind == CommissionRule.Kind.PERCENT:
        amount = int(round_half_up(Decimal(base_minor) * (percent or Decimal(0)) / Decimal(100)))
    else:
        amount = int(round_half_up(Decimal(flat or 0) * weight))
    if rule.min_minor is not None:
        amount = max(amount, rule.min_minor)
    if rule.max_minor is not None:
        amount = min(amount, rule.max_minor)
    return amount


def rules_count_prior(rules: Sequence[CommissionRule]) -> bool:
    """Whether choosing among `rules` needs the customer's count of earlier conversions."""
    return any(r.first_purchase_only or r.recurring_payments_max is not None for r in rules)


# --- loaders ---------------------------------------------------------------------------------


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


def tier_totals(affiliate_ids: Iterable[int], *, before: datetime) -> dict[int, TierTotals]:
    """Each affiliate's `TierTotals` over the `TIER_DAYS` before `before`, in one query; an
    affiliate without credits in that time is absent (its totals are zero)."""
    rows = (
        ConversionCredit.objects.filter(
            affiliate_id__in=list(affiliate_ids),
            occurred_at__gte=before - timedelta(days=TIER_DAYS),
            occurred_at__lt=before,
        )
        .values("affiliate_id")
        .annotate(revenue=Sum("revenue_minor"), conversions=Count("id"))
        .values_list("affiliate_id", "revenue", "conversions")
    )
    return {affiliate_id: TierTotals(revenue or 0, conversions or 0) for affiliate_id, revenue, conversions in rows}
