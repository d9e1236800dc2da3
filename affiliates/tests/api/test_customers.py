"""Customers (signups and leads) through the API."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_customers_name_their_program_by_slug(world):
    writer = world.clients["key_write"]
    unknown = writer.post(
        "/api/v1/customers", {"program": "nope", "customer_id": "c1"}, content_type="application/json"
    )
    assert unknown.status_code == 400 and "program" in unknown.json()["error"]["fields"]
    known = writer.post("/api/v1/customers", {"program": "main", "customer_id": "c1"}, content_type="application/json")
    assert known.status_code == 201 and known.json()["program"] == world.program.id


def test_length_limits_apply_to_what_was_sent_not_to_what_trimming_leaves(world):
    # schemathesis: "Ê\x07" and 300 times "\x1d" passed max_length=255, because DRF trims first
    body = {"customer_id": "\u00ca\u0007" + "\u001d" * 300}
    response = world.clients["key_write"].post("/api/v1/customers", body, content_type="application/json")
    assert response.status_code == 400 and "customer_id" in response.json()["error"]["fields"]
