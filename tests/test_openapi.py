"""Both OpenAPI schemas validate, and each describes only its own host's endpoints."""

import pytest
import yaml
from django.core.management import call_command

from tests.support.tenants import host_of


@pytest.mark.parametrize("urlconf", ["config.urls_public", "config.urls_tenant"])
def test_schema_validates_without_warnings(urlconf, tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--urlconf", urlconf, "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    assert schema["openapi"].startswith("3.")
    assert "Error" in schema["components"]["schemas"]


def test_public_schema_is_served_on_the_public_host(public_client):
    response = public_client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/signup" in paths
    assert "/api/v1/me" not in paths
    assert "/api/v1/payout-runs" not in paths
    assert set(paths["/api/v1/signup"]["post"]["responses"]) >= {"201", "400", "409"}
    assert public_client.get("/api/docs/").status_code == 200


def test_tenant_schema_is_served_on_tenant_hosts(make_tenant, client_at):
    client = client_at(host_of(make_tenant()))
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/me" in paths
    assert "/api/v1/signup" not in paths
    payouts = {
        "/api/v1/payout-runs",
        "/api/v1/payout-runs/{id}",
        "/api/v1/payout-runs/{id}/confirm",
        "/api/v1/payout-runs/{id}/cancel",
        "/api/v1/payout-items",
        "/api/v1/payout-items/{id}",
        "/api/v1/payout-items/{id}/reverse",
        "/api/v1/ledger",
        "/api/v1/ledger/entries",
        "/api/v1/fundings",
        "/api/v1/fundings/{id}",
        "/api/v1/fundings/{id}/refresh",
        "/api/v1/payout-account",
        "/api/v1/payout-account/onboarding",
        "/api/v1/payout-account/refresh",
        "/api/v1/payout-account/dashboard-link",
        "/api/v1/my/payouts",
        "/api/v1/my/payouts.csv",
    }
    assert payouts <= set(paths)
    # Stripe being down is a documented answer of the operations that call it.
    assert {"422", "502", "503"} <= set(paths["/api/v1/fundings"]["post"]["responses"])
    assert client.get("/api/docs/").status_code == 200
