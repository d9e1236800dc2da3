"""API keys: shown once, and locked out when revoked."""

from __future__ import annotations

import pytest

from affiliates.tests.api.support import key_client

pytestmark = pytest.mark.django_db


def test_api_key_shown_once_and_revocation_locks_it_out(world):
    staff = world.clients["staff"]
    created = staff.post("/api/v1/api-keys", {"name": "shop", "scopes": ["read"]}, content_type="application/json")
    secret = created.json()["key"]
    listed = staff.get("/api/v1/api-keys").json()["results"]
    assert all("key" not in row for row in listed)
    client = key_client(world.host, secret)
    assert client.get("/api/v1/programs").status_code == 200
    staff.post(f"/api/v1/api-keys/{created.json()['id']}/revoke", content_type="application/json")
    assert client.get("/api/v1/programs").status_code == 401
