"""`affiliates.conversions.plan`, table-driven and without a database: each test builds a
`ConversionContext` as `context_load` would return it (unsaved model instances for the program,
the customer and the rules) and asserts what the plan decides. What only the database can
show (the attribution window, cross-device visitors, the unique index, locks) stays in
test_conversions.py and test_concurrency.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from affiliates import rules
from affiliates.conversions.context import ConversionContext, Party, Touch
from affiliates.conversions.plan import CommissionLine, CreditLine, CustomerChange, SecondTierLine, plan
from affiliates.conversions.validate import ConversionInput
from affiliates.models import CommissionRule, Customer, Program

T = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)  # the conversion
NOW = T + timedelta(seconds=1)  # when it is recorded
DAY = T.date()
PROGRAM_ID = 1
A, B, C, D, PARENT = 11, 12, 13, 14, 10


def program(**fields: Any) -> Program:
    return Program(**{"id": PROGRAM_ID, "currency": "USD", "precedence": "click", **fields})


def order(**fields: Any) -> ConversionInput:
    base: dict[str, Any] = {
        "external_id": "order-1",
        "idempotency_key": None,
        "event_type": "purchase",
        "amount_minor": 10000,
        "currency": "USD",
        "customer_external_id": None,
        "customer_email": "",
        "product_ids": [],
        "metadata": {},
        "hints": {},
        "occurred_at": T,
        "visitor": None,
        "click_id": None,
        "code": None,
        "coupon": None,
    }
    return ConversionInput(**{**base, **fields})


def rule(rule_id: int = 1, *, scoped: tuple[int, ...] = (), **fields: Any) -> CommissionRule:
    fields.setdefault("percent", Decimal("10") if fields.get("kind", "percent") == "percent" else None)
    built = CommissionRule(id=rule_id, program_id=PROGRAM_ID, name=f"Rule {rule_id}", **fields)
    built.scoped_ids = set(scoped)  # type: ignore[attr-defined]  # as rules_for loads it
    return built


def click(affiliate_id: int, days_before: float, *, link: int | None = None, is_self: bool = False) -> Touch:
    at = T - timedelta(days=days_before)
    return Touch(uuid.uuid5(uuid.NAMESPACE_URL, f"{affiliate_id}/{at}"), affiliate_id, link, at, is_self)


def party(affiliate_id: int, *, parent: int | None = None, parent_approved: bool = True) -> Party:
    return Party(affiliate_id, f"aff{affiliate_id}@example.org", parent, parent_approved)


def customer(**fields: Any) -> Customer:
    return Customer(**{"id": 5, "program_id": PROGRAM_ID, "external_id": "cust-1", "email": "", **fields})


def context(
    *,
    clicks: tuple[Touch, ...] = (),
    coupon: int | None = None,
    code: int | None = None,
    bound: int | None = None,
    parties: dict[int, Party] | None = None,
    rules_: tuple[CommissionRule, ...] = (rule(),),
    **fields: Any,
) -> ConversionContext:
    named = {c.affiliate_id for c in clicks} | {i for i in (coupon, code, bound) if i is not None}
    values: dict[str, Any] = {
        "program": program(),
        "order": order(),
        "customer": None,
        "clicks": sorted(clicks, key=lambda c: c.created_at, reverse=True),  # newest first, as loaded
        "flooded": False,
        "parties": {**{i: party(i) for i in named}, **(parties or {})},
        "coupon_affiliate_id": coupon,
        "code_affiliate_id": code,
        "bound_affiliate_id": bound,
        "prior": 0,
        "rules": rules_,
        "tier_totals": {},
        "now": NOW,
    }
    return ConversionContext(**{**values, **fields})


def amounts(ctx: ConversionContext) -> dict[int, int]:
    return {line.affiliate_id: line.amount_minor for line in plan(ctx).commissions}


# --- one click, in full -------------------------------------------------------------------------


def test_one_click_credits_its_affiliate_with_the_rule_percentage():
    ten = rule(percent=Decimal("10"))
    ctx = context(clicks=(click(A, 2, link=5),), order=order(amount_minor=9999), rules_=(ten,))

    result = plan(ctx)

    assert result.credits == [CreditLine(A, 5, Decimal("1.000000"), 9999)]
    assert result.commissions == [CommissionLine(A, 5, ten, 9999, 1000)]  # 9.999 rounded half-up
    assert result.second_tier == []
    assert result.approvable_at == T + timedelta(days=30)
    assert (result.flags, result.review, result.held_for_review) == ([], "none", False)
    assert result.attribution["source"] == "clicks"
    assert result.attribution["model"] == "last_click"
    assert result.attribution["weights"] == {str(A): "1.000000"}
    assert result.attribution["notes"] == []
    assert result.stats == {
        (DAY, PROGRAM_ID, A, 5): {"conversions": 1, "revenue_minor": 9999, "commission_pending_minor": 1000}
    }
    assert result.customer_change == CustomerChange()


def test_the_attribution_record_names_its_keys_in_order():
    result = plan(context(clicks=(click(A, 1),)))
    assert list(result.attribution) == [
        "model",
        "precedence",
        "source",
        "window_days",
        "touchpoints",
        "weights",
        "notes",
    ]
    assert result.attribution["touchpoints"][0]["affiliate_id"] == A
    assert result.attribution["window_days"] == 30


# --- models -------------------------------------------------------------------------------------

_A_B_A = (click(A, 3), click(B, 2), click(A, 1))


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("first_click", {A: 1000}),
        ("last_click", {A: 1000}),
        ("linear", {A: 667, B: 333}),
        ("position_based", {A: 800, B: 200}),
        ("time_decay", {A: 668, B: 332}),
    ],
)
def test_three_clicks_by_two_affiliates_under_each_model(model, expected):
    ctx = context(clicks=_A_B_A, program=program(attribution_model=model))
    result = plan(ctx)
    assert amounts(ctx) == expected
    assert sum(line.revenue_minor for line in result.credits) == 10000
    assert len(result.attribution["touchpoints"]) == 3


def test_an_affiliates_link_is_that_of_its_latest_click():
    ctx = context(clicks=(click(A, 3, link=1), click(A, 1, link=2)))
    assert [line.link_id for line in plan(ctx).credits] == [2]


# --- sources and precedence ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("precedence", "given", "event_type", "source", "credited"),
    [
        ("click", {"clicks": (click(A, 1),), "coupon": B}, "purchase", "clicks", A),
        ("coupon", {"clicks": (click(A, 1),), "coupon": B}, "purchase", "coupon", B),
        ("coupon", {"clicks": (click(A, 1),)}, "purchase", "clicks", A),
        ("click", {"coupon": B}, "purchase", "coupon", B),
        ("click", {"coupon": B, "code": C}, "purchase", "coupon", B),
        ("click", {"clicks": (click(A, 1),), "code": C}, "purchase", "clicks", A),
        ("click", {"code": C, "bound": D}, "purchase", "code", C),
        ("click", {"bound": D}, "purchase", "binding", D),
        # a bound customer's subscription payments stay with its affiliate, whatever came since
        ("click", {"clicks": (click(A, 1),), "bound": D}, "purchase", "clicks", A),
        ("coupon", {"clicks": (click(A, 1),), "coupon": B, "bound": D}, "subscription_payment", "binding", D),
        ("click", {"clicks": (click(A, 1),)}, "subscription_payment", "clicks", A),
    ],
)
def test_attribution_sources_and_their_precedence(precedence, given, event_type, source, credited):
    ctx = context(program=program(precedence=precedence), order=order(event_type=event_type), **given)
    result = plan(ctx)
    assert result.attribution["source"] == source
    assert [line.affiliate_id for line in result.credits] == [credited]
    assert result.attribution["model"] == ("last_click" if source == "clicks" else None)


def test_nothing_to_attribute_by_means_no_commission_with_the_reason_recorded():
    result = plan(context())
    assert result.attribution["source"] == "none"
    assert result.attribution["notes"] == [
        {"affiliate_id": None, "reason": "no_touchpoint", "message": "No qualifying click, coupon or code."}
    ]
    assert (result.credits, result.commissions, result.stats) == ([], [], {})


# --- fraud flags --------------------------------------------------------------------------------

_CHEAT = Party(A, "Cheater@example.org", None, False)


@pytest.mark.parametrize(
    ("given", "flags"),
    [
        ({}, []),
        ({"order": order(customer_email="cheater@example.org")}, ["self_referral"]),
        ({"customer": customer(email="cheater@example.org")}, ["self_referral"]),
        ({"customer": customer(external_id="CHEATER@example.org")}, ["self_referral"]),
        ({"clicks": (click(A, 1, is_self=True),)}, ["self_click"]),
        # a self-click of an affiliate that gets no credit (first click wins) is not held against A
        ({"clicks": (click(A, 2), click(B, 1, is_self=True)), "program": program(attribution_model="first_click")}, []),
        ({"flooded": True}, ["click_flood"]),
        # the customer used the coupon of their own affiliate account
        (
            {"clicks": (), "coupon": A, "order": order(customer_email="cheater@example.org")},
            ["own_coupon", "self_referral"],
        ),
        ({"flooded": True, "clicks": (click(A, 1, is_self=True),)}, ["click_flood", "self_click"]),
    ],
)
def test_fraud_flags(given, flags):
    given = {"clicks": (click(A, 1),), **given}
    result = plan(context(parties={A: _CHEAT}, **given))
    assert result.flags == flags
    assert result.review == ("flagged" if flags else "none")
    assert result.held_for_review is bool(flags)


# --- commissions by rule ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules_", "given", "expected"),
    [
        # an affiliate-specific rule beats program-wide ones, then the priority decides
        (
            (
                rule(1, priority=100),
                rule(2, percent=Decimal("30"), scoped=(A,)),
                rule(3, percent=Decimal("15"), priority=50),
            ),
            {},
            {A: 3000},
        ),
        (
            (
                rule(1, priority=100),
                rule(2, percent=Decimal("30"), scoped=(B,)),
                rule(3, percent=Decimal("15"), priority=50),
            ),
            {},
            {A: 1000},
        ),
        # first purchase only: the flat rule on the first conversion, the 1 % with its minimum after
        (
            (
                rule(1, kind="flat", flat_minor=500, first_purchase_only=True, priority=10),
                rule(2, percent=Decimal("1"), min_minor=50),
            ),
            {"prior": 0},
            {A: 500},
        ),
        (
            (
                rule(1, kind="flat", flat_minor=500, first_purchase_only=True, priority=10),
                rule(2, percent=Decimal("1"), min_minor=50),
            ),
            {"prior": 1, "order": order(amount_minor=1000)},
            {A: 50},
        ),
        # recurring limit in payments: the third conversion earns nothing
        ((rule(percent=Decimal("50"), recurring_payments_max=2),), {"prior": 1}, {A: 5000}),
        ((rule(percent=Decimal("50"), recurring_payments_max=2),), {"prior": 2}, {}),
        # tiers by the trailing revenue the context brings
        (
            (rule(tiers=[{"metric": "revenue", "threshold": 10000, "percent": "20", "flat_minor": None}]),),
            {},
            {A: 1000},
        ),
        (
            (rule(tiers=[{"metric": "revenue", "threshold": 10000, "percent": "20", "flat_minor": None}]),),
            {"tier_totals": {A: rules.TierTotals(11000, 2)}},
            {A: 2000},
        ),
        # the rule's event types
        ((rule(event_types=["signup"]),), {}, {}),
    ],
)
def test_commissions_by_rule(rules_, given, expected):
    assert amounts(context(clicks=(click(A, 1),), rules_=rules_, **given)) == expected


def test_a_share_without_a_matching_rule_is_credited_with_a_note():
    result = plan(context(clicks=(click(A, 1, link=3),), rules_=(rule(event_types=["signup"]),)))
    assert result.credits == [CreditLine(A, 3, Decimal("1.000000"), 10000)]
    assert result.attribution["notes"] == [
        {
            "affiliate_id": A,
            "reason": "no_matching_rule",
            "message": "No active commission rule matches this conversion.",
        }
    ]
    assert result.stats == {(DAY, PROGRAM_ID, A, 3): {"conversions": 1, "revenue_minor": 10000}}


def test_subscription_payments_follow_the_binding_at_the_rules_rate():
    ctx = context(
        clicks=(click(B, 1),),
        bound=A,
        order=order(event_type="subscription_payment", amount_minor=2000),
        rules_=(rule(percent=Decimal("30"), event_types=["purchase", "subscription_payment"]),),
    )
    assert amounts(ctx) == {A: 600}


def test_the_hold_period_sets_when_commissions_become_approvable():
    assert plan(context(clicks=(click(A, 1),), program=program(hold_days=7))).approvable_at == T + timedelta(days=7)


# --- second tier --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("percent", "parent", "approved", "second"),
    [
        # 25 % of 123.45 = 30.8625 -> 30.86; 10 % of that = 3.086 -> 3.09
        (Decimal("10"), PARENT, True, [SecondTierLine(PARENT, A, 3086, 309)]),
        (Decimal("10"), PARENT, False, []),
        (Decimal("10"), None, True, []),
        (Decimal("0"), PARENT, True, []),
    ],
)
def test_second_tier_pays_an_approved_parent_its_rate_of_the_commission(percent, parent, approved, second):
    ctx = context(
        clicks=(click(A, 1),),
        program=program(second_tier_percent=percent),
        order=order(amount_minor=12345),
        parties={A: party(A, parent=parent, parent_approved=approved)},
        rules_=(rule(percent=Decimal("25")),),
    )
    result = plan(ctx)
    assert amounts(ctx) == {A: 3086}
    assert result.second_tier == second
    if second:
        assert result.stats[(DAY, PROGRAM_ID, PARENT, None)] == {"commission_pending_minor": 309}


def test_no_second_tier_without_a_first_tier_commission():
    ctx = context(
        clicks=(click(A, 1),),
        program=program(second_tier_percent=Decimal("10")),
        parties={A: party(A, parent=PARENT)},
        rules_=(),
    )
    assert plan(ctx).second_tier == []


# --- the customer ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "change"),
    [
        ({}, CustomerChange()),  # no customer
        ({"customer": customer()}, CustomerChange(first_conversion_at=T, affiliate_id=A, bound_at=NOW)),
        (
            {"customer": customer(first_conversion_at=T - timedelta(days=9))},
            CustomerChange(affiliate_id=A, bound_at=NOW),
        ),
        ({"customer": customer(affiliate_id=D)}, CustomerChange(first_conversion_at=T)),
        ({"customer": customer(affiliate_id=D, first_conversion_at=T - timedelta(days=9))}, CustomerChange()),
        ({"customer": customer(), "clicks": ()}, CustomerChange(first_conversion_at=T)),  # nobody to bind to
        # the largest share wins the customer
        (
            {"customer": customer(), "clicks": _A_B_A, "program": program(attribution_model="linear")},
            CustomerChange(first_conversion_at=T, affiliate_id=A, bound_at=NOW),
        ),
        # equal shares: the later in the weights' order
        (
            {
                "customer": customer(),
                "clicks": (click(A, 1), click(B, 2)),
                "program": program(attribution_model="linear"),
            },
            CustomerChange(first_conversion_at=T, affiliate_id=B, bound_at=NOW),
        ),
    ],
)
def test_the_customers_first_conversion_and_binding(given, change):
    given = {"clicks": (click(A, 1),), **given}
    assert plan(context(**given)).customer_change == change


def test_customer_change_names_the_fields_it_sets_in_a_fixed_order():
    assert CustomerChange(first_conversion_at=T, affiliate_id=A, bound_at=NOW).fields() == [
        "first_conversion_at",
        "affiliate_id",
        "bound_at",
    ]
    assert CustomerChange(affiliate_id=A, bound_at=NOW).fields() == ["affiliate_id", "bound_at"]
    assert CustomerChange().fields() == []
