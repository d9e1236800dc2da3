"""The permission matrix of every endpoint (anonymous, affiliate, other affiliate, staff, API keys
with and without the scope, and another tenant's session and key on this tenant's host), and
an affiliate's rows."""

from __future__ import annotations

import pytest
from django.utils import timezone

from affiliates import services
from affiliates.models import CommissionRule, Link
from affiliates.tests.api.support import ALL, conversion_for, expect
from core.api.viewsets import ScopedView
from core.tests.support import views_of

pytestmark = pytest.mark.django_db


def _matrix():
    today = timezone.now().date().isoformat()
    return [
        (
            "get",
            "/api/v1/programs",
            None,
            expect({"affiliate": 200, "other_affiliate": 200, "staff": 200, "key_read": 200}),
        ),
        ("post", "/api/v1/programs", {"name": "X", "slug": "x-prog", "currency": "EUR"}, expect({"staff": 201})),
        ("get", "/api/v1/commission-rules", None, expect({"staff": 200})),
        (
            "get",
            "/api/v1/affiliates",
            None,
            expect({"affiliate": 200, "other_affiliate": 200, "staff": 200, "key_read": 200}),
        ),
        ("post", "/api/v1/affiliates/{aff}/suspend", {"reason": "fraud"}, expect({"staff": 200})),
        (
            "get",
            "/api/v1/links",
            None,
            expect({"affiliate": 200, "other_affiliate": 200, "staff": 200, "key_read": 200}),
        ),
        (
            "get",
            "/api/v1/links/{link}",
            None,
            expect({"affiliate": 200, "other_affiliate": 404, "staff": 200, "key_read": 200}),
        ),
        (
            "get",
            "/api/v1/coupons",
            None,
            expect({"affiliate": 200, "other_affiliate": 200, "staff": 200, "key_read": 200}),
        ),
        (
            "get",
            "/api/v1/clicks",
            None,
            expect({"affiliate": 200, "other_affiliate": 200, "staff": 200, "key_read": 200}),
        ),
        ("get", "/api/v1/customers", None, expect({"staff": 200, "key_read": 200})),
        ("post", "/api/v1/customers", {"customer_id": "c-1"}, expect({"staff": 201, "key_write": 201})),
        (
            "get",
            "/api/v1/conversions",
            None,
            expect({"affiliate": 200, "other_affiliate": 200, "staff": 200, "key_read": 200}),
        ),
        (
            "get",
            "/api/v1/conversions/{conversion}",
            None,
            expect({"affiliate": 200, "other_affiliate": 404, "staff": 200, "key_read": 200}),
        ),
        (
            "post",
            "/api/v1/conversions",
            {"external_id": "m-1", "event_type": "purchase", "amount": "5.00", "currency": "USD"},
            expect({"staff": 201, "key_write": 201}),
        ),
        (
            "post",
            "/api/v1/conversions/{conversion}/refund",
            {"amount": "1.00"},
            expect({"staff": 200, "key_write": 200}),
        ),
        (
            "get",
            "/api/v1/conversions/export",
            None,
            expect({"affiliate": 200, "other_affiliate": 200, "staff": 200, "key_read": 200}),
        ),
        (
            "get",
            "/api/v1/commissions",
            None,
            expect({"affiliate": 200, "other_affiliate": 200, "staff": 200, "key_read": 200}),
        ),
        (
            "get",
            "/api/v1/commissions/{commission}",
            None,
            expect({"affiliate": 200, "other_affiliate": 404, "staff": 200, "key_read": 200}),
        ),
        # staff may approve before the hold period ends (an explicit override)
        ("post", "/api/v1/commissions/{commission}/approve", None, expect({"staff": 200})),
        (
            "get",
            f"/api/v1/stats?date_from={today}&date_to={today}",
            None,
            expect({"affiliate": 200, "other_affiliate": 200, "staff": 200, "key_read": 200}),
        ),
        (
            "get",
            f"/api/v1/stats?date_from={today}&date_to={today}&affiliate={{aff}}",
            None,
            expect({"affiliate": 200, "other_affiliate": 404, "staff": 200, "key_read": 200}),
        ),
        ("get", "/api/v1/api-keys", None, expect({"staff": 200})),
        ("post", "/api/v1/api-keys", {"name": "new", "scopes": ["read"]}, expect({"staff": 201})),
        ("get", "/api/v1/me", None, expect({"affiliate": 200, "other_affiliate": 200, "staff": 200})),
        ("patch", "/api/v1/programs/{program}", {"hold_days": 10}, expect({"staff": 200})),
        (
            "post",
            "/api/v1/commission-rules",
            {"program": "{program}", "name": "r", "percent": "5"},
            expect({"staff": 201}),
        ),
        ("patch", "/api/v1/commission-rules/{rule}", {"priority": 3}, expect({"staff": 200})),
        ("delete", "/api/v1/commission-rules/{rule}", None, expect({"staff": 204})),
        ("post", "/api/v1/coupons", {"affiliate": "{aff}", "code": "SAVE5"}, expect({"staff": 201})),
        # the affiliate makes its link; another affiliate cannot name it; staff then find the slug taken
        (
            "post",
            "/api/v1/links",
            {"affiliate": "{aff}", "slug": "spring", "destination_url": "https://shop.example.com/s"},
            expect({"affiliate": 201, "other_affiliate": 404, "staff": 409}),
        ),
        (
            "patch",
            "/api/v1/links/{link}",
            {"campaign": "x"},
            expect({"affiliate": 200, "other_affiliate": 404, "staff": 200}),
        ),
        ("post", "/api/v1/affiliates/{other}/reject", {"reason": "no"}, expect({"staff": 409})),  # approved already
        ("post", "/api/v1/conversions/{conversion}/review", {"decision": "clear"}, expect({"staff": 409})),
        ("post", "/api/v1/api-keys/{key}/revoke", None, expect({"staff": 200})),
    ]


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"), _matrix(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_permission_matrix(world, method, path, body, expected):
    conversion = conversion_for(world)
    from accounts.models import User

    ids = {
        "aff": world.aff.id,
        "other": world.other.id,
        "program": world.program.id,
        "rule": CommissionRule.objects.filter(program=world.program).first().id,
        # a key of its own to revoke: revoking one the matrix calls with would change later answers
        "key": services.api_key_create(name="spare", scopes=["read"], by=User.objects.get(role="owner")).api_key.id,
        "link": Link.objects.get(affiliate=world.aff, slug="").id,
        "conversion": conversion.id,
        "commission": conversion.commissions.get().id,
    }
    url = path.format(**ids)
    if body:
        body = {k: (int(v.format(**ids)) if isinstance(v, str) and v.startswith("{") else v) for k, v in body.items()}
    got = {}
    for who in ALL:
        client = world.clients[who]
        kwargs = {"content_type": "application/json", "data": body} if method in ("post", "patch") else {}
        response = getattr(client, method)(url, **kwargs)
        got[who] = response.status_code
        if method == "post" and response.status_code in (200, 201) and "programs" in url:
            # Creating the same program twice would turn the second caller's 201 into a 409.
            url_body = dict(body, slug=f"{body['slug']}-{len(got)}")
            body = url_body
        if method == "post" and "conversions" in url and "refund" not in url and response.status_code == 201:
            body = dict(body, external_id=f"{body['external_id']}-{len(got)}")
        if method == "post" and "customers" in url and response.status_code == 201:
            body = dict(body, customer_id=f"{body['customer_id']}-{len(got)}")
    assert got == expected


def test_affiliates_see_only_their_own_rows(world):
    conversion_for(world)
    mine = world.clients["affiliate"].get("/api/v1/clicks").json()["results"]
    theirs = world.clients["other_affiliate"].get("/api/v1/clicks").json()["results"]
    assert [c["affiliate"] for c in mine] == [world.aff.id] and theirs == []
    assert world.clients["other_affiliate"].get("/api/v1/conversions").json()["results"] == []
    assert world.clients["other_affiliate"].get("/api/v1/commissions").json()["results"] == []
    links = world.clients["other_affiliate"].get("/api/v1/links").json()["results"]
    assert [link["affiliate"] for link in links] == [world.other.id]


def test_every_endpoint_declares_its_access_on_the_base_class():
    views = views_of("config.urls_tenant", "affiliates.api.")
    assert len(set(views)) == 12
    assert [view for view in views if not issubclass(view, ScopedView)] == []
