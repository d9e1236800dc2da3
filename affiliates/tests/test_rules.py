"""`affiliates.rules`: rule choice, conditions, tiers and amounts, table-driven and without a
database (rules are unsaved instances; tier totals and prior counts come in as data); then, at
the end, rules applied to recorded conversions through PostgreSQL, where the loaders
(`rules_for`'s named affiliates, `tier_totals`) and the count of earlier conversions are read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from affiliates import conversions, rules
from affiliates.models import CommissionRule
from affiliates.tests import factories

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


# --- applied to recorded conversions (PostgreSQL) ----------------------------------------------


def _record(program, **fields):
    fields.setdefault("external_id", f"order-{uuid.uuid4().hex[:8]}")
    fields.setdefault("event_type", "purchase")
    fields.setdefault("currency", program.currency)
    return conversions.conversion_record(program=program, **fields)


@pytest.mark.django_db
def test_affiliate_specific_rule_beats_program_wide_then_priority(program):
    vip, regular = factories.affiliate(program), factories.affiliate(program)
    factories.rule(program, percent="10", priority=100)
    factories.rule(program, percent="30", priority=0, affiliates=[vip])
    factories.rule(program, percent="15", priority=50)
    now = timezone.now()
    results = {}
    for aff in (vip, regular):
        visitor = uuid.uuid4()
        factories.click(aff, visitor=visitor, at=now)
        conversion, _ = _record(program, amount="10.00", visitor_id=visitor)
        results[aff.id] = conversion.commissions.get().amount_minor
    assert results == {vip.id: 300, regular.id: 100}


@pytest.mark.django_db
def test_flat_rule_with_min_max_and_first_purchase_only(program):
    aff = factories.affiliate(program)
    factories.rule(program, kind="flat", flat_minor=500, first_purchase_only=True, priority=10)
    factories.rule(program, percent="1", min_minor=50)
    visitor = uuid.uuid4()
    factories.click(aff, visitor=visitor, at=timezone.now())
    first, _ = _record(program, amount="10.00", visitor_id=visitor, customer_external_id="k")
    second, _ = _record(program, amount="10.00", visitor_id=visitor, customer_external_id="k")
    assert first.commissions.get().amount_minor == 500
    assert second.commissions.get().amount_minor == 50  # 1 % of 10.00 is 0.10, raised to the 0.50 minimum


@pytest.mark.django_db
def test_performance_tiers_raise_the_rate_after_enough_trailing_revenue(program):
    aff = factories.affiliate(program)
    factories.rule(
        program, percent="10", tiers=[{"metric": "revenue", "threshold": 10000, "percent": "20", "flat_minor": None}]
    )
    now = timezone.now()
    amounts = []
    for i, amount in enumerate(("60.00", "50.00", "10.00")):
        visitor = uuid.uuid4()
        factories.click(aff, visitor=visitor, at=now - timedelta(days=3 - i, minutes=1))
        conversion, _ = _record(program, amount=amount, visitor_id=visitor, occurred_at=now - timedelta(days=3 - i))
        amounts.append(conversion.commissions.get().amount_minor)
    # 60 and 50 earn 10 %; by the third sale the trailing 30 days hold 110.00 >= 100.00: 20 %
    assert amounts == [600, 500, 200]


@pytest.mark.django_db
def test_recurring_limit_in_payments(program):
    aff = factories.affiliate(program)
    factories.rule(program, percent="50", event_types=["purchase", "subscription_payment"], recurring_payments_max=2)
    visitor, now = uuid.uuid4(), timezone.now()
    factories.click(aff, visitor=visitor, at=now - timedelta(days=70))
    earned = []
    for month in range(3):
        conversion, _ = _record(
            program,
            amount="10.00",
            event_type="purchase" if month == 0 else "subscription_payment",
            visitor_id=visitor,
            customer_external_id="sub-1",
            occurred_at=now - timedelta(days=60 - 30 * month),
        )
        earned.append(list(conversion.commissions.values_list("amount_minor", flat=True)))
    assert earned == [[500], [500], []]
    assert conversion.attribution["notes"][0]["reason"] == "no_matching_rule"
