"""Property-based API testing: schemathesis generates valid and invalid requests from each
host's OpenAPI schema and checks that no input gets a 5xx and every answer matches the schema."""

from __future__ import annotations

import pytest
import schemathesis
from django.conf import settings
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from config.wsgi import application
from conftest import OWNER_PASSWORD, host_of


def _load(urlconf: str) -> schemathesis.schemas.BaseSchema:
    spec = SchemaGenerator(urlconf=urlconf).get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(spec)
    loaded.app = application  # requests go through the real WSGI stack, routing included
    return loaded


public_schema = _load("config.urls_public")
tenant_schema = _load("config.urls_tenant")

# A schema-valid request may still be refused for a business reason (a reserved or taken
# subdomain, a weak password); those are 4xx by design, not failures.
EXCLUDED = [positive_data_acceptance]
HYPOTHESIS = hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    # Django's WSGI handler closes the connection after each request when it finds a transaction
    # open -- here, the test's own. Django's test client disconnects the same handler.
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def signed_in_tenant(make_tenant, client_at):
    provisioned = make_tenant()
    client = client_at(host_of(provisioned))
    response = client.post("/admin/login/", {"username": provisioned.owner.email, "password": OWNER_PASSWORD})
    assert response.status_code == 302
    return host_of(provisioned), client.cookies["sessionid"].value


@pytest.fixture
def tenant_host(make_tenant) -> str:
    return host_of(make_tenant())


@public_schema.parametrize()
@HYPOTHESIS
def test_public_api_never_errors_and_matches_its_schema(case, platform_ready):
    case.call_and_validate(headers={"Host": settings.PLATFORM_DOMAIN}, excluded_checks=EXCLUDED)


@tenant_schema.parametrize()
@HYPOTHESIS
def test_tenant_api_anonymous_never_errors_and_matches_its_schema(case, tenant_host):
    case.call_and_validate(headers={"Host": tenant_host}, excluded_checks=EXCLUDED)


@tenant_schema.parametrize()
@HYPOTHESIS
def test_tenant_api_signed_in_never_errors_and_matches_its_schema(case, signed_in_tenant):
    host, session = signed_in_tenant
    response = case.call_and_validate(headers={"Host": host}, cookies={"sessionid": session}, excluded_checks=EXCLUDED)
    assert response.status_code < 500
