"""*plan*: what a conversion writes, decided from its `ConversionContext` alone. Pure: no I/O,
no clock, nothing written, so every rule here is tested without a database (test_plan.py).

- Attribution: a subscription payment of a customer bound to an approved affiliate goes to that
  affiliate; otherwise the clicks (weighted by the program's model) and the coupon, in the
  program's precedence; then the code (or whoever referred the customer); then the binding.
- Fraud flags: self-referral (a credited affiliate's email is the customer's email or id), a
  self-click, a customer using the coupon of their own affiliate account, a click flood. Any
  flag holds the commissions for review.
- Commissions: per credited share, the rule `rules.rule_choose` picks; second tier for an
  approved parent; the customer's first conversion and binding (the largest share); the
  rollup deltas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from affiliates import attribution
from affiliates import rules as rule_eval
from affiliates.conversions.context import ConversionContext
from affiliates.models import CommissionRule, Conversion, Program
from affiliates.rollups import StatDeltas, StatKey


@dataclass(frozen=True)
class Attributed:
    source: str  # clicks | coupon | code | binding | none
    weights: dict[int, Decimal]  # affiliate -> weight, summing to 1 (empty: none)
    touchpoints: list[dict[str, Any]]  # JSON, as the conversion's attribution shows them
    links: dict[int, int | None]  # affiliate -> link of its latest touchpoint


@dataclass(frozen=True)
class CreditLine:
    affiliate_id: int
    link_id: int | None
    weight: Decimal
    revenue_minor: int


@dataclass(frozen=True)
class CommissionLine:
    """A first-tier commission on a credited share."""

    affiliate_id: int
    link_id: int | None
    rule: CommissionRule
    base_minor: int
    amount_minor: int


@dataclass(frozen=True)
class SecondTierLine:
    """The parent's commission on its child's (`source_affiliate_id`'s) first-tier one."""

    affiliate_id: int
    source_affiliate_id: int
    base_minor: int
    amount_minor: int


@dataclass(frozen=True)
class CustomerChange:
    """What the conversion sets on its customer (None: unchanged)."""

    first_conversion_at: datetime | None = None
    affiliate_id: int | None = None
    bound_at: datetime | None = None

    def fields(self) -> list[str]:
        """The changed attributes, in a fixed order."""
        return [name for name in ("first_conversion_at", "affiliate_id", "bound_at") if getattr(self, name) is not None]


@dataclass(frozen=True)
class Plan:
    attribution: dict[str, Any]  # JSON: model, precedence, source, window, touchpoints, weights, notes
    flags: list[str]
    review: str
    held_for_review: bool
    approvable_at: datetime
    credits: list[CreditLine]
    commissions: list[CommissionLine]
    second_tier: list[SecondTierLine]
    customer_change: CustomerChange = field(default_factory=CustomerChange)
    stats: StatDeltas = field(default_factory=dict)


def _one(source: str, affiliate_id: int, link: dict[int, int | None] | None = None) -> Attributed:
    return Attributed(source, {affiliate_id: Decimal(1)}, [], link or {})


def attributed_by_clicks(ctx: ConversionContext) -> Attributed | None:
    """The clicks' credit under the program's model (affiliates whose weight rounds to 0 get none)."""
    if not ctx.clicks:
        return None
    program = ctx.program
    touchpoints = [
        attribution.Touchpoint(ref=str(c.id), affiliate_id=c.affiliate_id, at=c.created_at) for c in ctx.clicks
    ]
    credit = attribution.credit(
        touchpoints=touchpoints,
        model=program.attribution_model,
        converted_at=ctx.order.occurred_at,
        half_life_days=program.time_decay_half_life_days,
    )
    assert credit is not None  # there are touchpoints
    links: dict[int, int | None] = {}
    for click in sorted(ctx.clicks, key=lambda c: c.created_at):
        links[click.affiliate_id] = click.link_id
    return Attributed(
        "clicks",
        {aff: w for aff, w in credit.affiliate_weights.items() if w > 0},
        [
            {"click_id": tp.ref, "affiliate_id": tp.affiliate_id, "at": tp.at.isoformat(), "weight": str(w)}
            for tp, w in credit.touchpoint_weights
        ],
        links,
    )


def attributed(ctx: ConversionContext) -> Attributed:
    """Who gets the credit, and by which source (see the module's docstring)."""
    bound = ctx.bound_affiliate_id
    if ctx.order.event_type == "subscription_payment" and bound is not None:
        return _one("binding", bound, {bound: None})
    by_click = attributed_by_clicks(ctx)
    by_coupon = _one("coupon", ctx.coupon_affiliate_id) if ctx.coupon_affiliate_id is not None else None
    coupon_first = ctx.program.precedence == Program.Precedence.COUPON
    for candidate in [by_coupon, by_click] if coupon_first else [by_click, by_coupon]:
        if candidate is not None:
            return candidate
    if ctx.code_affiliate_id is not None:
        return _one("code", ctx.code_affiliate_id)
    if bound is not None:
        return _one("binding", bound)
    return Attributed("none", {}, [], {})


def fraud_flags(ctx: ConversionContext, result: Attributed) -> list[str]:
    """The flags, sorted; any one sends the conversion to the review queue."""
    flags: set[str] = set()
    email = ctx.order.customer_email
    customer = ctx.customer
    emails = {ctx.parties[a].email.lower() for a in result.weights}
    # Merchants often use the email as the customer id, so that is compared too.
    customer_keys = {email, customer.email, customer.external_id.lower()} if customer else {email}
    if (customer_keys - {""}) & emails:
        flags.add("self_referral")
    if any(c.is_self and c.affiliate_id in result.weights for c in ctx.clicks):
        flags.add("self_click")
    coupon = ctx.coupon_affiliate_id
    if result.source == "coupon" and coupon is not None and email == ctx.parties[coupon].email.lower():
        flags.add("own_coupon")
    if ctx.flooded:
        flags.add("click_flood")
    return sorted(flags)


@dataclass
class _Tally:
    """What the commission step builds up: the lines, the notes and the rollup deltas."""

    credits: list[CreditLine] = field(default_factory=list)
    commissions: list[CommissionLine] = field(default_factory=list)
    second_tier: list[SecondTierLine] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    stats: StatDeltas = field(default_factory=dict)

    def add(self, key: StatKey, column: str, value: int) -> None:
        row = self.stats.setdefault(key, {})
        row[column] = row.get(column, 0) + value


def _commissions(ctx: ConversionContext, result: Attributed, tally: _Tally) -> None:
    """Credits and first-tier commissions of each share, by the rule each affiliate earns by."""
    order = ctx.order
    shares = attribution.split_minor(amount_minor=order.amount_minor, weights=result.weights) if result.weights else {}
    rule_ctx = rule_eval.rule_context(
        event_type=order.event_type,
        product_ids=order.product_ids,
        occurred_at=order.occurred_at,
        customer_first_at=ctx.customer.first_conversion_at if ctx.customer else None,
        prior=ctx.prior,
    )
    day = order.occurred_at.date()
    for affiliate_id, share in shares.items():
        link_id = result.links.get(affiliate_id)
        weight = result.weights[affiliate_id]
        tally.credits.append(CreditLine(affiliate_id, link_id, weight, share))
        key = (day, ctx.program.id, affiliate_id, link_id)
        tally.add(key, "conversions", 1)
        tally.add(key, "revenue_minor", share)
        rule = rule_eval.rule_choose(ctx.rules, affiliate_id=affiliate_id, ctx=rule_ctx)
        if rule is None:
            tally.notes.append(
                {
                    "affiliate_id": affiliate_id,
                    "reason": "no_matching_rule",
                    "message": "No active commission rule matches this conversion.",
                }
            )
            continue
        totals = ctx.tier_totals.get(affiliate_id, rule_eval.NO_TOTALS)
        amount = rule_eval.commission_amount(rule, base_minor=share, weight=weight, totals=totals)
        tally.commissions.append(CommissionLine(affiliate_id, link_id, rule, share, amount))
        tally.add(key, "commission_pending_minor", amount)


def _second_tier(ctx: ConversionContext, tally: _Tally) -> None:
    """The approved parent of each affiliate with a commission earns the program's second-tier
    percentage of it."""
    percent = ctx.program.second_tier_percent
    day = ctx.order.occurred_at.date()
    for first in tally.commissions:
        party = ctx.parties[first.affiliate_id]
        if party.parent_id is not None and percent > 0 and party.parent_approved:
            amount = int(attribution.round_half_up(Decimal(first.amount_minor) * percent / 100))
            tally.second_tier.append(SecondTierLine(party.parent_id, first.affiliate_id, first.amount_minor, amount))
            tally.add((day, ctx.program.id, party.parent_id, None), "commission_pending_minor", amount)


def customer_change(ctx: ConversionContext, result: Attributed) -> CustomerChange:
    """The customer's first conversion, and its binding to the affiliate with the largest share
    (ties: the later in the weights' order) if it has none yet."""
    customer = ctx.customer
    if customer is None:
        return CustomerChange()
    first = ctx.order.occurred_at if customer.first_conversion_at is None else None
    if customer.affiliate_id is not None or not result.weights:
        return CustomerChange(first_conversion_at=first)
    top, best = 0, Decimal(-1)
    for affiliate_id, weight in result.weights.items():
        if weight >= best:
            top, best = affiliate_id, weight
    return CustomerChange(first_conversion_at=first, affiliate_id=top, bound_at=ctx.now)


def plan(ctx: ConversionContext) -> Plan:
    program, order = ctx.program, ctx.order
    result = attributed(ctx)
    flags = fraud_flags(ctx, result)
    tally = _Tally()
    if result.source == "none":
        tally.notes.append(
            {"affiliate_id": None, "reason": "no_touchpoint", "message": "No qualifying click, coupon or code."}
        )
    _commissions(ctx, result, tally)
    _second_tier(ctx, tally)
    return Plan(
        attribution={
            "model": program.attribution_model if result.source == "clicks" else None,
            "precedence": program.precedence,
            "source": result.source,
            "window_days": program.cookie_window_days,
            "touchpoints": result.touchpoints,
            "weights": {str(a): str(w) for a, w in result.weights.items()},
            "notes": tally.notes,
        },
        flags=flags,
        review=Conversion.Review.FLAGGED if flags else Conversion.Review.NONE,
        held_for_review=bool(flags),
        approvable_at=order.occurred_at + timedelta(days=program.hold_days),
        credits=tally.credits,
        commissions=tally.commissions,
        second_tier=tally.second_tier,
        customer_change=customer_change(ctx, result),
        stats=tally.stats,
    )
