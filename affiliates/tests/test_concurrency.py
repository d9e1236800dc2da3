"""Races against the real database, with real threads: the unique indexes and locks decide."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from affiliates import codes, conversions, services, tracking
from affiliates.errors import AffiliateError
from affiliates.models import Affiliate, Click, Commission, Conversion
from affiliates.tests import factories
from tests.support.race import race


@pytest.mark.django_db(transaction=True)
def test_racing_requests_with_one_external_id_record_one_conversion(make_tenant):
    provisioned = make_tenant()
    connection.set_tenant(provisioned.tenant)
    program = factories.program()
    aff = factories.affiliate(program)
    factories.rule(program, percent="10")
    visitor = uuid.uuid4()
    factories.click(aff, visitor=visitor, at=timezone.now() - timedelta(minutes=1))

    def record(_index: int):
        return conversions.conversion_record(
            program=program,
            external_id="same-order",
            event_type="purchase",
            amount="20.00",
            currency="USD",
            visitor_id=visitor,
            customer_external_id="cust-1",
        )

    results = race(record, times=6, tenant=provisioned.tenant).outcomes

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(created for _, created in results) == [False] * 5 + [True]
    assert len({conversion.pk for conversion, _ in results}) == 1
    assert Conversion.objects.count() == 1 and Commission.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_generated_codes_survive_collisions_and_a_chosen_code_goes_to_one_applicant(make_tenant, monkeypatch):
    provisioned = make_tenant()
    connection.set_tenant(provisioned.tenant)
    program = factories.program(auto_approve=True)
    users = [factories.UserFactory() for _ in range(8)]

    # every applicant first draws the same "random" code, as an unlucky generator would
    draws = threading.local()
    real_generate = codes.code_generate

    def unlucky(**kwargs):
        draws.n = getattr(draws, "n", 0) + 1
        return "samecod" if draws.n == 1 else real_generate(**kwargs)

    monkeypatch.setattr(codes, "code_generate", unlucky)
    results = race(
        lambda i: services.affiliate_apply(program=program, user=users[i]), times=8, tenant=provisioned.tenant
    ).outcomes
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len({a.code for a in results}) == 8 and "samecod" in {a.code for a in results}

    more = [factories.UserFactory() for _ in range(4)]
    chosen = race(
        lambda i: services.affiliate_apply(program=program, user=more[i], code="Vanity"),
        times=4,
        tenant=provisioned.tenant,
    ).outcomes
    winners = [r for r in chosen if isinstance(r, Affiliate)]
    losers = [r for r in chosen if isinstance(r, AffiliateError)]
    assert len(winners) == 1 and winners[0].code == "vanity"
    assert [e.code for e in losers] == ["code_taken"] * 3
    assert Affiliate.objects.filter(code="vanity").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_drains_store_each_click_once(make_tenant):
    provisioned = make_tenant()
    connection.set_tenant(provisioned.tenant)
    program = factories.program()
    aff = factories.affiliate(program)
    target = tracking.target_resolve(code=aff.code)
    for i in range(300):
        tracking.click_record(
            target=target,
            visitor_id=uuid.uuid4(),
            ip=f"10.1.{i % 200}.{i // 200}",
            user_agent="Mozilla/5.0 Firefox/120",
        )

    results = race(lambda _i: tracking.clicks_drain(), times=4, tenant=provisioned.tenant).outcomes

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(results) == 300 and Click.objects.count() == 300
    from affiliates.models import DailyStat

    assert sum(DailyStat.objects.values_list("clicks", flat=True)) == 300
