"""Property-based API testing: schemathesis generates valid and invalid requests from each
host's OpenAPI schema and checks that no input gets a 5xx and every answer matches the schema."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import schemathesis
from django.conf import settings
from django.db import connection
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from config.wsgi import application
from conftest import host_of


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
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
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


@dataclass
class Seeded:
    host: str
    session: str
    csrf: str
    key: str


@pytest.fixture
def seeded_tenant(make_tenant) -> Seeded:
    """A tenant with a program, an approved affiliate, a rule, a staff session (made without the
    test client, which would reconnect the connection-closing signal) and an all-scopes API key."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.middleware.csrf import _get_new_csrf_string

    from affiliates import services
    from affiliates.tests import factories

    provisioned = make_tenant()
    connection.set_tenant(provisioned.tenant)
    program = factories.program(slug="main")
    factories.affiliate(program)
    factories.rule(program)
    key = services.api_key_create(name="fuzz", scopes=["read", "conversions:write", "track"], by=provisioned.owner)
    session = SessionStore()
    session[SESSION_KEY] = str(provisioned.owner.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = provisioned.owner.get_session_auth_hash()
    session.create()
    connection.set_schema_to_public()
    return Seeded(host_of(provisioned), session.session_key, _get_new_csrf_string(), key.secret)


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
def test_tenant_api_as_staff_never_errors_and_matches_its_schema(case, seeded_tenant):
    seeded = seeded_tenant
    case.call_and_validate(
        headers={"Host": seeded.host, "X-CSRFToken": seeded.csrf, "Authorization": ""},
        cookies={"sessionid": seeded.session, "csrftoken": seeded.csrf},
        excluded_checks=EXCLUDED,
    )


@tenant_schema.parametrize()
@HYPOTHESIS
def test_tenant_api_with_an_api_key_never_errors_and_matches_its_schema(case, seeded_tenant):
    case.call_and_validate(
        headers={"Host": seeded_tenant.host, "Authorization": f"Bearer {seeded_tenant.key}"},
        excluded_checks=_excluded_for(case),
    )


def _excluded_for(case) -> list:
    # List filters and paging ignore a malformed value (django-filter and DRF treat it as absent)
    # rather than refuse it; request bodies, where a mistake would be written, must be refused.
    return [*EXCLUDED, negative_data_rejection] if case.method == "GET" else EXCLUDED
