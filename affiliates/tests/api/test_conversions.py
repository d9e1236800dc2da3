"""Conversions through the API: idempotency, the credit explained, bad and malformed bodies, and the
per-process caches of keys and rules."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from affiliates import services
from affiliates.models import ApiKey, Commission, CommissionRule, Conversion
from affiliates.tests import factories
from core.localcache import local_cache

pytestmark = pytest.mark.django_db


def test_conversion_api_is_idempotent_and_explains_its_credit(world):
    visitor = uuid.uuid4()
    click = factories.click(world.aff, visitor=visitor, at=timezone.now() - timedelta(hours=1))
    body = {
        "external_id": "order-77",
        "event_type": "purchase",
        "amount": "49.90",
        "currency": "USD",
        "click_id": str(click.click_id),
        "customer_id": "cus-1",
    }
    client = world.clients["key_write"]

    first = client.post("/api/v1/conversions", body, content_type="application/json")
    again = client.post("/api/v1/conversions", body, content_type="application/json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    data = first.json()
    assert data["amount"] == "49.90" and data["credits"] == [
        {"affiliate": world.aff.id, "weight": "1.000000", "revenue": "49.90"}
    ]
    assert data["attribution"]["touchpoints"][0]["click_id"] == str(click.click_id)
    assert Conversion.objects.count() == 1
    assert Commission.objects.get().amount_minor == 499


def test_idempotency_key_header_returns_the_first_result(world):
    client = world.clients["key_write"]
    body = {"external_id": "a-1", "event_type": "purchase", "amount": "1.00", "currency": "USD"}
    first = client.post("/api/v1/conversions", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1")
    second = client.post(
        "/api/v1/conversions", dict(body, external_id="a-2"), content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["external_id"] == "a-1" and Conversion.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "-5.00"}, "amount"),
        ({"amount": "1.234"}, "amount"),
        ({"amount": 5}, "amount"),
        ({"amount": "1e400"}, "amount"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "EURO"}, "currency"),
        ({"event_type": ""}, "event_type"),
        ({"external_id": "x" * 300}, "external_id"),
        ({"visitor_id": "nope"}, "visitor_id"),
        ({"metadata": {"k": "v" * 9000}}, "metadata"),
        ({"product_ids": "p1"}, "product_ids"),
        ({"occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at"),
        ({"program": "no-such-program"}, "program"),
    ],
)
def test_bad_conversion_bodies_get_a_field_error_and_write_nothing(world, body, field):
    full = {"external_id": "bad-1", "event_type": "purchase", "amount": "1.00", "currency": "USD", **body}
    response = world.clients["key_write"].post("/api/v1/conversions", full, content_type="application/json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert Conversion.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "content_type"),
    [
        (b"\xff\xfe{not json", "application/json"),
        (b'{"external_id": "x"', "application/json"),
        (b"external_id=x", "application/x-www-form-urlencoded"),
        (b"[1, 2, 3]", "application/json"),
    ],
)
def test_malformed_bodies_get_a_4xx(world, payload, content_type):
    response = world.clients["key_write"].generic("POST", "/api/v1/conversions", payload, content_type=content_type)
    assert 400 <= response.status_code < 500
    assert Conversion.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        # what schemathesis sent in CI: a lone UTF-16 surrogate and a NUL in a slug lookup
        '{"program": "\\udb72\\ude0e\\u00a5_K\\u0000", "external_id": "x", "event_type": "purchase", '
        '"amount": "1.00", "currency": "USD"}',
        '{"program": "\\udb72", "external_id": "x", "event_type": "purchase", "amount": "1.00"}',
        '{"external_id": "\\ud800", "event_type": "purchase", "amount": "1.00"}',
        '{"external_id": "x", "event_type": "purchase", "amount": "1.00", "metadata": {"\\udfff": 1}}',
        '{"external_id": "x", "event_type": "purchase", "amount": "1.00", "metadata": {"k": "a\\u0000"}}',
    ],
)
def test_strings_postgresql_cannot_store_are_a_400(world, body):
    response = world.clients["key_write"].generic("POST", "/api/v1/conversions", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert Conversion.objects.count() == 0


def test_json_nested_too_deeply_is_a_400(world):
    body = "[" * 100_000 + "]" * 100_000
    response = world.clients["key_write"].generic("POST", "/api/v1/conversions", body, content_type="application/json")
    assert response.status_code == 400


@pytest.mark.parametrize("key", ["a\x00b", "tab\there", "k" * 256])
def test_unusable_idempotency_keys_are_a_400(world, key):
    body = {"external_id": "x", "event_type": "purchase", "amount": "1.00", "currency": "USD"}
    response = world.clients["key_write"].post(
        "/api/v1/conversions", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key
    )
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["fields"]
    assert Conversion.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_cached_keys_and_rules_change_at_once_outside_a_test_transaction(world):
    """Outside a transaction the API key and the program's rules come from the per-process
    cache; revoking the key and changing the rule must still take effect on the next request."""
    from affiliates import selectors

    assert local_cache.wait_until_subscribed(10)
    writer = world.clients["key_write"]
    body = {"event_type": "purchase", "amount": "100.00", "currency": "USD", "code": world.aff.code}
    first = writer.post("/api/v1/conversions", {**body, "external_id": "c-1"}, content_type="application/json")
    assert first.status_code == 201
    assert local_cache.get(selectors._programs_key()) is not None  # it is cached
    rule = CommissionRule.objects.get(program=world.program)
    rule.percent = Decimal("50")
    services.rule_save(rule=rule)
    second = writer.post("/api/v1/conversions", {**body, "external_id": "c-2"}, content_type="application/json")
    assert second.status_code == 201
    amounts = dict(Commission.objects.values_list("conversion__external_id", "amount_minor"))
    assert amounts["c-2"] == 5000 and amounts["c-1"] != 5000
    assert selectors.programs_snapshot().rules[world.program.id][0].percent == 50

    services.api_key_revoke(api_key=ApiKey.objects.get(prefix=world.keys["conversions:write"].split("_")[1]))
    third = writer.post("/api/v1/conversions", {**body, "external_id": "c-3"}, content_type="application/json")
    assert third.status_code == 401
