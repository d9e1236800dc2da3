"""`affiliates.rules`: rule choice, conditions, tiers and amounts, table-driven and without a
database (rules are unsaved instances; tier totals and prior counts come in as data). The
loaders (`rules_for`, `tier_totals`) run in the conversion tests against PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from affiliates import rules
from affiliates.models import CommissionRule

T = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
VIP, REGULAR = 7, 8


def rule(rule_id: int = 1, *, scoped: tuple[int, ...] = (), **fields: Any) -> CommissionRule:
    fields.setdefault("percent", Decimal("10") if fields.get("kind", "percent") == "percent" else None)
    built = CommissionRule(id=rule_id, program_id=1, name=f"Rule {rule_id}", **fields)
    built.scoped_ids = set(scoped)  # type: ignore[attr-defined]  # as rules_for loads it
    return built


def ctx(
    *,
    event_type: str = "purchase",
    product_ids: tuple[str, ...] = (),
    prior: int = 0,
    first_at: datetime | None = None,
    at: datetime = T,
) -> rules.RuleContext:
    return rules.rule_context(
        event_type=event_type, product_ids=product_ids, occurred_at=at, customer_first_at=first_at, prior=prior
    )


# --- conditions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "context", "matches"),
    [
        ({}, ctx(), True),
        ({"is_active": False}, ctx(), False),
        ({"event_types": ["purchase", "subscription_payment"]}, ctx(event_type="subscription_payment"), True),
        ({"event_types": ["purchase"]}, ctx(event_type="signup"), False),
        ({"product_ids": ["plan-a"]}, ctx(product_ids=("plan-b", "plan-a")), True),
        ({"product_ids": ["plan-a"]}, ctx(product_ids=("plan-b",)), False),
        ({"first_purchase_only": True}, ctx(prior=0), True),
        ({"first_purchase_only": True}, ctx(prior=1), False),
        # "N payments": the first conversion is payment 1, so conversions 1..N earn
        ({"recurring_payments_max": 2}, ctx(prior=0), True),
        ({"recurring_payments_max": 2}, ctx(prior=1), True),
        ({"recurring_payments_max": 2}, ctx(prior=2), False),
        # "N months" from the customer's first conversion, by calendar month
        ({"recurring_months_max": 1}, ctx(first_at=T - timedelta(days=27), at=T), True),
        ({"recurring_months_max": 1}, ctx(first_at=datetime(2025, 2, 14, 12, tzinfo=UTC), at=T), False),
        ({"recurring_months_max": 1}, ctx(first_at=None), True),  # no conversion yet: this is the first
    ],
)
def test_rule_conditions(fields, context, matches):
    assert rules.rule_matches(rule(**fields), context) is matches


def test_a_rule_context_counts_a_first_purchase_by_the_prior_conversions():
    assert ctx(prior=0).is_first_purchase is True
    assert ctx(prior=3).is_first_purchase is False
    assert ctx(prior=3).customer_prior_conversions == 3


# --- choice -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("candidates", "affiliate_id", "chosen"),
    [
        # a rule naming the affiliate beats a program-wide one, whatever the priorities
        ([rule(1, priority=100), rule(2, priority=0, scoped=(VIP,)), rule(3, priority=50)], VIP, 2),
        # then the higher priority
        ([rule(1, priority=100), rule(2, priority=0, scoped=(VIP,)), rule(3, priority=50)], REGULAR, 1),
        # then the lower id
        ([rule(5, priority=10), rule(4, priority=10)], REGULAR, 4),
        # a rule whose conditions fail is passed over
        ([rule(1, priority=10, first_purchase_only=True), rule(2)], REGULAR, 1),
        ([rule(1, priority=10, event_types=["signup"]), rule(2)], REGULAR, 2),
        # none matches
        ([rule(1, scoped=(VIP,))], REGULAR, None),
        ([], REGULAR, None),
    ],
)
def test_rule_choice(candidates, affiliate_id, chosen):
    picked = rules.rule_choose(candidates, affiliate_id=affiliate_id, ctx=ctx())
    assert (picked.id if picked else None) == chosen


def test_rules_count_prior_only_when_a_rule_needs_it():
    assert rules.rules_count_prior([rule(1), rule(2, recurring_months_max=3)]) is False
    assert rules.rules_count_prior([rule(1), rule(2, first_purchase_only=True)]) is True
    assert rules.rules_count_prior([rule(1, recurring_payments_max=2)]) is True


# --- amounts ----------------------------------------------------------------------------------

_REVENUE_TIER = [{"metric": "revenue", "threshold": 10000, "percent": "20", "flat_minor": None}]
_STEPS = [
    {"metric": "conversions", "threshold": 5, "percent": None, "flat_minor": 700},
    {"metric": "conversions", "threshold": 10, "percent": None, "flat_minor": 900},
]


@pytest.mark.parametrize(
    ("fields", "base", "weight", "totals", "amount"),
    [
        # a percentage of the share, rounded half-up once: 10 % of 99.99 = 9.999 -> 10.00
        ({"percent": Decimal("10")}, 9999, Decimal(1), rules.NO_TOTALS, 1000),
        ({"percent": Decimal("25")}, 12345, Decimal(1), rules.NO_TOTALS, 3086),
        # a flat amount times the weight
        ({"kind": "flat", "flat_minor": 500}, 1000, Decimal(1), rules.NO_TOTALS, 500),
        ({"kind": "flat", "flat_minor": 500}, 1000, Decimal("0.333333"), rules.NO_TOTALS, 167),
        # then the minimum and the maximum: 1 % of 10.00 is 0.10, raised to 0.50
        ({"percent": Decimal("1"), "min_minor": 50}, 1000, Decimal(1), rules.NO_TOTALS, 50),
        ({"percent": Decimal("50"), "max_minor": 300}, 1000, Decimal(1), rules.NO_TOTALS, 300),
        # tiers by trailing revenue: below the threshold the rule's own rate, from it the tier's
        ({"tiers": _REVENUE_TIER}, 1000, Decimal(1), rules.TierTotals(revenue=9999, conversions=2), 100),
        ({"tiers": _REVENUE_TIER}, 1000, Decimal(1), rules.TierTotals(revenue=11000, conversions=2), 200),
        # tiers by conversions: the highest reached wins
        ({"kind": "flat", "flat_minor": 500, "tiers": _STEPS}, 0, Decimal(1), rules.TierTotals(0, 4), 500),
        ({"kind": "flat", "flat_minor": 500, "tiers": _STEPS}, 0, Decimal(1), rules.TierTotals(0, 5), 700),
        ({"kind": "flat", "flat_minor": 500, "tiers": _STEPS}, 0, Decimal(1), rules.TierTotals(0, 12), 900),
    ],
)
def test_commission_amount(fields, base, weight, totals, amount):
    assert rules.commission_amount(rule(**fields), base_minor=base, weight=weight, totals=totals) == amount


def test_a_tier_without_a_rate_of_its_kind_keeps_the_rules_rate():
    tiered = rule(percent=Decimal("10"), tiers=[{"metric": "revenue", "threshold": 0, "flat_minor": 900}])
    assert rules.tier_rate(tiered, rules.NO_TOTALS) == (Decimal("10"), 900)
