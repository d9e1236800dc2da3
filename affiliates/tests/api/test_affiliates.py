"""Applying, approving, and the affiliate's first link."""

from __future__ import annotations

import pytest
from django.db.models import QuerySet
from django.test import Client

from accounts.models import User
from affiliates import services
from affiliates.errors import AffiliateError
from affiliates.models import Affiliate, Link

pytestmark = pytest.mark.django_db


def test_apply_approve_link_flow(world):
    # an anonymous visitor applies and is signed in
    client = Client(HTTP_HOST=world.host)
    response = client.post(
        "/api/v1/affiliates/apply",
        {"program": "main", "email": "new@example.org", "password": "long enough pw 1", "code": "New-Person"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    assert (response.json()["status"], response.json()["code"]) == ("pending", "new-person")
    assert client.get("/api/v1/me").json()["affiliations"][0]["code"] == "new-person"
    affiliate_id = response.json()["id"]

    # staff approve; the affiliate creates a named link to an allowed domain, not to another
    staff = world.clients["staff"]
    assert (
        staff.post(f"/api/v1/affiliates/{affiliate_id}/approve", {}, content_type="application/json").json()["status"]
        == "approved"
    )
    ok = client.post(
        "/api/v1/links",
        {"slug": "spring", "destination_url": "https://shop.example.com/sale"},
        content_type="application/json",
    )
    evil = client.post(
        "/api/v1/links",
        {"slug": "evil", "destination_url": "https://shop.example.com@evil.com/"},
        content_type="application/json",
    )
    assert ok.status_code == 201, ok.content
    assert ok.json()["url"].endswith("/r/new-person/spring")
    assert evil.status_code == 400 and evil.json()["error"]["code"] == "destination_invalid"
    assert Link.objects.filter(affiliate_id=affiliate_id).count() == 2


def test_applying_without_an_account_needs_an_email_and_a_password(world):
    client = Client(HTTP_HOST=world.host)
    response = client.post(
        "/api/v1/affiliates/apply", {"program": "main", "email": "x@example.org"}, content_type="application/json"
    )
    assert (response.status_code, response.json()["error"]["code"]) == (400, "credentials_required")
    assert not User.objects.filter(email="x@example.org").exists()


def test_applying_with_an_email_that_has_an_account_is_refused_and_makes_nothing(world):
    body = {"program": "main", "email": "AFF@example.org", "password": "long enough pw 1"}
    response = Client(HTTP_HOST=world.host).post("/api/v1/affiliates/apply", body, content_type="application/json")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "email_taken")
    assert Affiliate.objects.filter(user__email__iexact="aff@example.org").count() == 1


def test_two_applications_with_one_email_that_race_past_the_check_leave_one_account(world, monkeypatch):
    # The second one's check ran before the first one's account existed: the unique index decides.
    services.affiliate_register(program=world.program, email="race@example.org", password="long enough pw 1")
    monkeypatch.setattr(QuerySet, "exists", lambda self: False)

    with pytest.raises(AffiliateError) as refused:
        services.affiliate_register(program=world.program, email="race@example.org", password="long enough pw 2")

    assert (refused.value.code, refused.value.status) == ("email_taken", 409)
    assert User.objects.filter(email="race@example.org").count() == 1
    assert Affiliate.objects.filter(user__email="race@example.org").count() == 1
