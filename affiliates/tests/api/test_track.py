"""The tracking snippet's click endpoint, and odd inputs found by fuzzing."""

from __future__ import annotations

import pytest
from django.test import Client

from affiliates.models import Click

pytestmark = pytest.mark.django_db


def test_track_click_endpoint_cors_only_for_allowed_domains(world):
    from affiliates import tracking

    client = Client(HTTP_HOST=world.host, HTTP_USER_AGENT="Mozilla/5.0 (X11) Firefox/120")
    body = {"code": world.aff.code, "landing_url": "https://shop.example.com/?ref=x"}
    ok = client.post(
        "/api/v1/track/clicks", body, content_type="application/json", HTTP_ORIGIN="https://shop.example.com"
    )
    assert ok.status_code == 201 and ok["Access-Control-Allow-Origin"] == "https://shop.example.com"
    evil = client.post("/api/v1/track/clicks", body, content_type="application/json", HTTP_ORIGIN="https://evil.com")
    assert evil.status_code == 403 and "Access-Control-Allow-Origin" not in evil
    preflight = client.options("/api/v1/track/clicks", HTTP_ORIGIN="https://www.example.org")
    assert preflight.status_code == 204 and preflight["Access-Control-Allow-Origin"] == "https://www.example.org"
    unknown = client.post("/api/v1/track/clicks", {"code": "zzzzzz"}, content_type="application/json")
    assert unknown.status_code == 404
    tracking.clicks_drain()
    assert Click.objects.count() == 1 and Click.objects.get().source == "script"


def test_odd_inputs_found_by_fuzzing_get_4xx(world):
    # a NUL byte in the code reached the database before validation; an ISO offset beyond what
    # PostgreSQL accepts reached the query
    client = Client(HTTP_HOST=world.host, HTTP_USER_AGENT="Mozilla/5.0")
    assert client.post("/api/v1/track/clicks", {"code": "a\x00b"}, content_type="application/json").status_code == 400
    reader = world.clients["key_read"]
    assert reader.get("/api/v1/conversions?occurred_after=1000-10-11T07:00:07-19:47").status_code == 200
    assert reader.get("/api/v1/conversions?occurred_after=0001-01-01T00:00:00%2B05:00").status_code == 400
