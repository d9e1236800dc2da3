"""Conversions end to end in a tenant schema: attribution, commissions, idempotency, refunds."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import redis
from django.db import connection
from django.utils import timezone

from affiliates import commissions, conversions
from affiliates.errors import AffiliateError
from affiliates.models import Affiliate, Click, Commission, Conversion, Customer, DailyStat, Program
from affiliates.tests import factories

pytestmark = pytest.mark.django_db


def _record(program, **fields):
    fields.setdefault("external_id", f"order-{uuid.uuid4().hex[:8]}")
    fields.setdefault("event_type", "purchase")
    fields.setdefault("currency", program.currency)
    return conversions.conversion_record(program=program, **fields)


def test_one_click_credits_its_affiliate_with_the_rule_percentage(program):
    # given an approved affiliate, a 10 % rule and one click by a visitor
    aff = factories.affiliate(program)
    factories.rule(program, percent="10")
    visitor = uuid.uuid4()
    now = timezone.now()
    factories.click(aff, visitor=visitor, at=now - timedelta(days=2))

    # when the visitor buys for 99.99
    conversion, created = _record(program, amount="99.99", visitor_id=visitor, occurred_at=now)

    # then the affiliate has 10.00 pending (9.999 rounded half-up), approvable after the hold
    assert created
    commission = Commission.objects.get(conversion=conversion)
    assert (commission.affiliate_id, commission.base_minor, commission.amount_minor) == (aff.id, 9999, 1000)
    assert commission.status == Commission.Status.PENDING
    assert commission.approvable_at == now + timedelta(days=30)
    assert conversion.attribution["source"] == "clicks"
    assert conversion.attribution["weights"] == {str(aff.id): "1.000000"}
    click_day = DailyStat.objects.get(affiliate=aff, date=(now - timedelta(days=2)).date(), link__slug="")
    assert (click_day.clicks, click_day.unique_visitors, click_day.conversions) == (1, 1, 0)
    sale_day = DailyStat.objects.get(affiliate=aff, date=now.date(), link__slug="")
    assert (sale_day.clicks, sale_day.conversions, sale_day.revenue_minor, sale_day.commission_pending_minor) == (
        0,
        1,
        9999,
        1000,
    )


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("first_click", {"a": 1000, "b": None}),
        ("last_click", {"a": 1000, "b": None}),
        ("linear", {"a": 667, "b": 333}),
        ("position_based", {"a": 800, "b": 200}),
        ("time_decay", {"a": 668, "b": 332}),
    ],
)
def test_three_clicks_by_two_affiliates_under_each_model(tenant, model, expected):
    # given clicks by A (3 days before), B (2 days before), A (1 day before) and a 10 % rule
    program = factories.program(attribution_model=model)
    a, b = factories.affiliate(program), factories.affiliate(program)
    factories.rule(program, percent="10")
    visitor, now = uuid.uuid4(), timezone.now()
    for aff, days in ((a, 3), (b, 2), (a, 1)):
        factories.click(aff, visitor=visitor, at=now - timedelta(days=days))

    # when a 100.00 purchase arrives
    conversion, _ = _record(program, amount="100.00", visitor_id=visitor, occurred_at=now)

    # then each affiliate's commission is 10 % of its weighted share, to the cent
    amounts = dict(conversion.commissions.values_list("affiliate_id", "amount_minor"))
    got = {"a": amounts.get(a.id), "b": amounts.get(b.id)}
    assert got == expected
    shares = sum(c.revenue_minor for c in conversion.credits.all())
    assert shares == 10000
    assert len(conversion.attribution["touchpoints"]) == 3


def test_clicks_outside_the_window_do_not_count(tenant):
    program = factories.program(cookie_window_days=7)
    old, recent = factories.affiliate(program), factories.affiliate(program)
    factories.rule(program)
    visitor, now = uuid.uuid4(), timezone.now()
    factories.click(old, visitor=visitor, at=now - timedelta(days=8))
    factories.click(recent, visitor=visitor, at=now - timedelta(days=6, hours=23))

    conversion, _ = _record(program, amount="50.00", visitor_id=visitor, occurred_at=now)

    assert list(conversion.commissions.values_list("affiliate_id", "amount_minor")) == [(recent.id, 500)]


def test_no_touchpoint_means_no_commission_with_the_reason_recorded(program):
    factories.rule(program)
    conversion, _ = _record(program, amount="10.00", visitor_id=uuid.uuid4())
    assert conversion.commissions.count() == 0
    assert conversion.attribution["source"] == "none"
    assert conversion.attribution["notes"][0]["reason"] == "no_touchpoint"


@pytest.mark.parametrize(("precedence", "winner"), [("coupon", "coupon_owner"), ("click", "clicker")])
def test_coupon_versus_click_under_both_precedences(tenant, precedence, winner):
    from affiliates import services

    program = factories.program(precedence=precedence)
    people = {"clicker": factories.affiliate(program), "coupon_owner": factories.affiliate(program)}
    services.coupon_create(affiliate=people["coupon_owner"], code="save10")
    factories.rule(program, percent="20")
    visitor, now = uuid.uuid4(), timezone.now()
    factories.click(people["clicker"], visitor=visitor, at=now - timedelta(hours=1))

    conversion, _ = _record(program, amount="40.00", visitor_id=visitor, coupon="SAVE10", occurred_at=now)

    assert list(conversion.commissions.values_list("affiliate_id", "amount_minor")) == [(people[winner].id, 800)]


def test_repeat_external_id_returns_the_first_and_creates_nothing(program):
    aff = factories.affiliate(program)
    factories.rule(program)
    visitor = uuid.uuid4()
    factories.click(aff, visitor=visitor, at=timezone.now())
    first, created = _record(program, external_id="ord-1", amount="10.00", visitor_id=visitor)
    again, created_again = _record(program, external_id="ord-1", amount="999.00", visitor_id=visitor)
    assert (created, created_again) == (True, False)
    assert again.pk == first.pk and again.amount_minor == 1000
    assert Conversion.objects.count() == 1 and Commission.objects.count() == 1


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"amount": "-1.00"}, "amount_negative"),
        ({"amount": "1.001"}, "amount_precision"),
        ({"amount": "abc"}, "amount_invalid"),
        ({"amount": "NaN"}, "amount_invalid"),
        ({"amount": "1e30"}, "amount_too_large"),
        ({"amount": "1.00", "currency": "ZZZ"}, "currency_unknown"),
        ({"amount": "1.00", "currency": "EUR"}, "currency_mismatch"),
        ({"amount": "1.00", "event_type": "teleport"}, "event_type_unknown"),
        ({"amount": "1.00", "visitor_id": "not-a-uuid"}, "visitor_invalid"),
    ],
)
def test_bad_conversions_are_refused_and_write_nothing(program, fields, code):
    with pytest.raises(AffiliateError) as caught:
        _record(program, **fields)
    assert caught.value.code == code
    assert Conversion.objects.count() == 0


def test_second_tier_pays_the_parent_its_rate_of_the_commission(tenant):
    program = factories.program(second_tier_percent=Decimal("10"))
    parent = factories.affiliate(program)
    child = factories.affiliate(program, parent=parent)
    factories.rule(program, percent="25")
    visitor = uuid.uuid4()
    factories.click(child, visitor=visitor, at=timezone.now())

    conversion, _ = _record(program, amount="123.45", visitor_id=visitor)

    rows = {(c.affiliate_id, c.kind): c.amount_minor for c in conversion.commissions.all()}
    # 25 % of 123.45 = 30.8625 -> 30.86; 10 % of that = 3.086 -> 3.09
    assert rows == {(child.id, "commission"): 3086, (parent.id, "second_tier"): 309}


def test_partial_then_full_refund_reverses_unpaid_commissions_in_proportion(program):
    aff = factories.affiliate(program)
    factories.rule(program, percent="10")
    visitor = uuid.uuid4()
    factories.click(aff, visitor=visitor, at=timezone.now())
    conversion, _ = _record(program, amount="100.00", visitor_id=visitor)

    conversions.conversion_refund(conversion=conversion, amount="25.00", reason="returned one item")
    commission = Commission.objects.get(conversion=conversion)
    assert (commission.amount_minor, commission.status) == (750, "pending")

    conversions.conversion_refund(conversion=conversion, amount=None, reason="chargeback", kind="chargeback")
    commission.refresh_from_db()
    assert (commission.amount_minor, commission.status) == (0, "reversed")
    with pytest.raises(AffiliateError) as caught:
        conversions.conversion_refund(conversion=conversion, amount="0.01")
    assert caught.value.code == "amount_exceeds_remaining"
    stat = DailyStat.objects.get(affiliate=aff, link__slug="")
    assert (stat.revenue_minor, stat.commission_pending_minor) == (0, 0)


def test_refund_after_payout_creates_a_negative_adjustment(program):
    aff = factories.affiliate(program)
    factories.rule(program, percent="10")
    visitor = uuid.uuid4()
    factories.click(aff, visitor=visitor, at=timezone.now())
    conversion, _ = _record(program, amount="80.00", visitor_id=visitor)
    Commission.objects.filter(conversion=conversion).update(status="paid")

    conversions.conversion_refund(conversion=conversion, amount="20.00", reason="partial")

    adjustment = Commission.objects.get(kind="adjustment")
    assert (adjustment.amount_minor, adjustment.status, adjustment.affiliate_id) == (-200, "approved", aff.id)


def test_hold_period_then_automatic_approval(program):
    aff = factories.affiliate(program)
    factories.rule(program)
    visitor = uuid.uuid4()
    factories.click(aff, visitor=visitor, at=timezone.now())
    conversion, _ = _record(program, amount="10.00", visitor_id=visitor)

    assert commissions.commissions_approve_due(now=timezone.now()) == 0
    assert commissions.commissions_approve_due(now=timezone.now() + timedelta(days=31)) == 1
    assert Commission.objects.get(conversion=conversion).status == "approved"


def test_self_referral_is_flagged_and_held_for_review(program):
    aff = factories.affiliate(program, email="cheater@example.org")
    factories.rule(program)
    visitor = uuid.uuid4()
    factories.click(aff, visitor=visitor, at=timezone.now())

    conversion, _ = _record(
        program, amount="10.00", visitor_id=visitor, customer_external_id="c1", customer_email="Cheater@example.org"
    )

    assert conversion.review == "flagged" and conversion.flags == ["self_referral"]
    assert commissions.commissions_approve_due(now=timezone.now() + timedelta(days=60)) == 0
    commissions.review_resolve(conversion=conversion, clear=False, by=program_owner(), reason="own purchase")
    assert Commission.objects.get(conversion=conversion).status == "rejected"


def program_owner():
    from accounts.models import User

    return User.objects.filter(role="owner").first()


def test_subscription_payments_follow_the_customer_binding(program):
    first_aff, later_aff = factories.affiliate(program), factories.affiliate(program)
    factories.rule(program, percent="30", event_types=["purchase", "subscription_payment"])
    visitor, now = uuid.uuid4(), timezone.now()
    factories.click(first_aff, visitor=visitor, at=now - timedelta(days=3))
    _record(
        program, amount="20.00", visitor_id=visitor, customer_external_id="cust-9", occurred_at=now - timedelta(days=2)
    )
    # a later click by someone else does not steal the recurring revenue
    factories.click(later_aff, visitor=visitor, at=now - timedelta(days=1))

    renewal, _ = _record(
        program, amount="20.00", event_type="subscription_payment", customer_external_id="cust-9", occurred_at=now
    )

    assert list(renewal.commissions.values_list("affiliate_id", "amount_minor")) == [(first_aff.id, 600)]
    assert renewal.attribution["source"] == "binding"


def test_customer_visitor_binding_attributes_across_devices(program):
    aff = factories.affiliate(program)
    factories.rule(program)
    phone = uuid.uuid4()
    factories.click(aff, visitor=phone, at=timezone.now() - timedelta(hours=2))
    conversions.customer_upsert(program=program, external_id="u-1", visitor_id=phone)

    # the purchase comes from a laptop with no clicks of its own
    conversion, _ = _record(program, amount="30.00", visitor_id=uuid.uuid4(), customer_external_id="u-1")

    assert list(conversion.commissions.values_list("affiliate_id", flat=True)) == [aff.id]
    assert Click.objects.count() == 1


def test_a_code_or_the_customers_referrer_attributes_when_nothing_else_does(program):
    # given a customer referred by one affiliate at signup, and another affiliate's code
    referrer, coder = factories.affiliate(program), factories.affiliate(program)
    factories.rule(program, percent="10")
    conversions.customer_upsert(program=program, external_id="ref-1", code=referrer.code)

    # when the customer buys without a click, first with the other affiliate's code, then without
    by_code, _ = _record(program, amount="10.00", customer_external_id="ref-1", code=coder.code.upper())
    Customer.objects.filter(external_id="ref-1").update(affiliate=None)  # undo the first one's binding
    by_referrer, _ = _record(program, amount="20.00", customer_external_id="ref-1")

    # then the code wins over the referrer, and the referrer counts without a code
    assert by_code.attribution["source"] == "code"
    assert list(by_code.commissions.values_list("affiliate_id", "amount_minor")) == [(coder.id, 100)]
    assert by_referrer.attribution["source"] == "code"
    assert list(by_referrer.commissions.values_list("affiliate_id", "amount_minor")) == [(referrer.id, 200)]


def test_a_binding_to_an_affiliate_no_longer_approved_does_not_count(program):
    # given a customer bound to an affiliate by a first purchase, then the affiliate suspended
    aff = factories.affiliate(program)
    factories.rule(program, percent="10", event_types=["purchase", "subscription_payment"])
    visitor, now = uuid.uuid4(), timezone.now()
    factories.click(aff, visitor=visitor, at=now - timedelta(days=2))
    _record(
        program, amount="10.00", visitor_id=visitor, customer_external_id="b-1", occurred_at=now - timedelta(days=1)
    )
    assert Customer.objects.get(external_id="b-1").affiliate_id == aff.id
    Affiliate.objects.filter(pk=aff.pk).update(status=Affiliate.Status.SUSPENDED)

    # when a renewal arrives
    renewal, _ = _record(program, amount="10.00", event_type="subscription_payment", customer_external_id="b-1")

    # then nobody is credited
    assert renewal.attribution["source"] == "none"
    assert renewal.commissions.count() == 0


def test_a_coupon_owners_parent_earns_the_second_tier(tenant):
    from affiliates import services

    program = factories.program(second_tier_percent=Decimal("10"))
    parent = factories.affiliate(program)
    child = factories.affiliate(program, parent=parent)
    services.coupon_create(affiliate=child, code="kid10")
    factories.rule(program, percent="20")

    conversion, _ = _record(program, amount="50.00", coupon="kid10", customer_email="buyer@example.org")

    rows = {(c.affiliate_id, c.kind): c.amount_minor for c in conversion.commissions.all()}
    assert rows == {(child.id, "commission"): 1000, (parent.id, "second_tier"): 100}
    assert conversion.flags == []


def test_the_recorded_conversion_answers_the_api_without_a_query_and_as_a_reread_would(
    program, django_assert_num_queries
):
    from affiliates.api.serializers import ConversionSerializer

    # given a recorded conversion with two credits
    a, b = factories.affiliate(program), factories.affiliate(program)
    program.attribution_model = "linear"
    program.save(update_fields=["attribution_model"])
    factories.rule(program)
    visitor, now = uuid.uuid4(), timezone.now()
    factories.click(a, visitor=visitor, at=now - timedelta(days=2))
    factories.click(b, visitor=visitor, at=now - timedelta(days=1))
    conversion, created = _record(
        program, amount="10.01", visitor_id=visitor, customer_external_id="c-9", occurred_at=now
    )

    # when the API renders it
    with django_assert_num_queries(0):
        answered = ConversionSerializer(conversion).data

    # then it is what the API renders for the row read back
    reread = Conversion.objects.select_related("customer").prefetch_related("credits__conversion").get(pk=conversion.pk)
    assert created
    assert answered == ConversionSerializer(reread).data
    assert [credit["revenue"] for credit in answered["credits"]] == [
        "5.00",
        "5.01",
    ]  # the odd cent comes off the lower id
    assert answered["customer_id"] == "c-9"


def test_program_defaults(tenant):
    program = factories.program(currency="jpy")
    assert (program.currency, program.payout_threshold_minor, program.cookie_window_days) == ("JPY", 50, 30)
    assert (program.attribution_model, program.hold_days, program.time_decay_half_life_days) == ("last_click", 30, 7)
    assert Program.objects.count() == 1


def test_clicks_fall_back_to_a_direct_insert_when_redis_is_down(program, monkeypatch):
    import redis as redis_lib

    from affiliates import tracking
    from affiliates.tracking import buffer

    aff = factories.affiliate(program)
    target = tracking.target_resolve(code=aff.code)
    # a real client to a port nobody listens on: the same error a dead Redis gives
    dead = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    monkeypatch.setattr(buffer, "_client", dead)
    visitor = uuid.uuid4()

    result = tracking.click_record(target=target, visitor_id=visitor, ip="10.9.9.9", user_agent="Mozilla/5.0 Safari")
    conversion, _ = _record(program, amount="10.00", visitor_id=visitor)

    assert result.recorded and Click.objects.filter(pk=result.click_id).exists()
    assert conversion.attribution["source"] == "clicks"
    assert DailyStat.objects.get(affiliate=aff, link__slug="").clicks == 1


def test_a_click_flood_from_one_address_is_stored_flagged_and_not_counted(program):
    from affiliates import tracking

    aff = factories.affiliate(program)
    target = tracking.target_resolve(code=aff.code)
    for _ in range(tracking.FLOOD_LIMIT_PER_IP + 5):
        tracking.click_record(target=target, visitor_id=uuid.uuid4(), ip="203.0.113.7", user_agent="Mozilla/5.0")
    tracking.clicks_drain()

    assert Click.objects.filter(flagged="flood").count() == 5
    assert DailyStat.objects.get(affiliate=aff, link__slug="").clicks == tracking.FLOOD_LIMIT_PER_IP


def test_a_conversion_right_behind_its_click_sees_it_before_any_drain(program):
    from affiliates import tracking

    aff = factories.affiliate(program)
    factories.rule(program)
    target = tracking.target_resolve(code=aff.code)
    visitor = uuid.uuid4()
    tracking.click_record(target=target, visitor_id=visitor, ip="10.0.0.1", user_agent="Mozilla/5.0")
    assert Click.objects.count() == 0  # still in the buffer

    conversion, _ = _record(program, amount="10.00", visitor_id=visitor)

    assert list(conversion.commissions.values_list("affiliate_id", flat=True)) == [aff.id]


def test_the_drain_fills_the_rollups_once_even_when_a_crash_repeats_a_batch(program, monkeypatch):
    from affiliates import tracking
    from affiliates.models import DailySource

    aff = factories.affiliate(program)
    target = tracking.target_resolve(code=aff.code)
    returning, first_day = uuid.uuid4(), timezone.now() - timedelta(days=1)
    plan = [
        (returning, "https://Blog.Example.net/post", first_day),
        (returning, "https://blog.example.net/other", timezone.now()),  # a new day: unique again
        (uuid.uuid4(), "", timezone.now()),
        (uuid.uuid4(), "https://[2001:db8::1]:8080/x", timezone.now()),
    ]
    for visitor, referrer, at in plan:
        tracking.click_record(
            target=target, visitor_id=visitor, ip="10.2.3.4", user_agent="Mozilla/5.0", referrer=referrer, at=at
        )
        # simulated times: the real-time dedupe must not merge the returning visitor's clicks
        tracking.redis_client().delete(tracking.dedupe_key(connection.schema_name, visitor, target.link_id))
    # a crash after the commit and before XDEL: the next drain reads the same entries again
    monkeypatch.setattr(redis.Redis, "xdel", lambda self, *a: 0)
    assert tracking.clicks_drain() == 4
    monkeypatch.undo()
    assert tracking.clicks_drain() == 0

    stats = {s.date: (s.clicks, s.unique_visitors) for s in DailyStat.objects.filter(affiliate=aff)}
    assert stats == {first_day.date(): (1, 1), timezone.now().date(): (3, 3)}
    sources = sorted(DailySource.objects.filter(affiliate=aff).values_list("source", "date", "clicks"))
    today, yesterday = timezone.now().date(), first_day.date()
    assert sources == [
        ("", today, 1),
        ("2001:db8::1", today, 1),
        ("blog.example.net", yesterday, 1),
        ("blog.example.net", today, 1),
    ]
    assert Click.objects.count() == 4 and not tracking.redis_client().xlen(tracking.stream_key(connection.schema_name))
