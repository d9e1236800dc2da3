"""Property-based API testing: schemathesis generates valid and invalid requests from each
host's OpenAPI schema and checks that no input gets a 5xx and every answer matches the schema."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import schemathesis
from django.conf import settings
from django.db import connection
from django.test import override_settings
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from config.wsgi import application
from tests.support.tenants import host_of


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


# Operations that call Stripe. No Stripe double runs here, and Stripe's address is one where
# nothing listens (below), so a well-formed request to one of them gets 503 `stripe_unavailable`,
# as it would when Stripe is down: the right answer, and a 5xx. For these operations only, the
# 5xx check is off; every other check (the 503 body against the schema included) still runs, and
# billing/tests/test_api.py asserts the 503 and that nothing was written when Stripe is down.
CALLS_STRIPE = {
    ("POST", "/api/v1/fundings"),
    ("POST", "/api/v1/fundings/{id}/refresh"),
    ("POST", "/api/v1/payout-items/{id}/reverse"),
    ("POST", "/api/v1/payout-account/onboarding"),
    ("POST", "/api/v1/payout-account/refresh"),
    ("POST", "/api/v1/payout-account/dashboard-link"),
}


def _stripe_excluded(case) -> list:
    return [not_a_server_error] if (case.method.upper(), case.path) in CALLS_STRIPE else []


@pytest.fixture(autouse=True)
def _stripe_unreachable():
    # Fails at once and the same way on every machine, whether or not a double of `make run`
    # listens on the default address.
    from billing import gateway

    gateway._client.cache_clear()
    with override_settings(STRIPE_API_BASE="http://127.0.0.1:9", STRIPE_MAX_NETWORK_RETRIES=0):
        yield
    gateway._client.cache_clear()


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
    affiliate_session: str


def _session_for(user) -> str:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


@pytest.fixture
def seeded_tenant(reused_tenant) -> Seeded:
    """A tenant with a program, an approved affiliate, a rule, a staff session and the affiliate's
    (made without the test client, which would reconnect the connection-closing signal) and an
    all-scopes API key."""
    from django.middleware.csrf import _get_new_csrf_string

    from affiliates import services
    from affiliates.tests import factories

    provisioned = reused_tenant()
    connection.set_tenant(provisioned.tenant)
    program = factories.program(slug="main")
    affiliate = factories.affiliate(program)
    factories.rule(program)
    key = services.api_key_create(name="fuzz", scopes=["read", "conversions:write", "track"], by=provisioned.owner)
    staff_session, affiliate_session = _session_for(provisioned.owner), _session_for(affiliate.user)
    connection.set_schema_to_public()
    return Seeded(host_of(provisioned), staff_session, _get_new_csrf_string(), key.secret, affiliate_session)


@pytest.fixture
def tenant_host(reused_tenant) -> str:
    return host_of(reused_tenant())


@public_schema.parametrize()
@HYPOTHESIS
def test_public_api_never_errors_and_matches_its_schema(case, platform_ready):
    case.call_and_validate(headers={"Host": settings.PLATFORM_DOMAIN}, excluded_checks=EXCLUDED)


@tenant_schema.parametrize()
@HYPOTHESIS
def test_tenant_api_anonymous_never_errors_and_matches_its_schema(case, tenant_host):
    case.call_and_validate(headers={"Host": tenant_host}, excluded_checks=[*EXCLUDED, *_stripe_excluded(case)])


def _call_signed_in(case, seeded: Seeded, session: str) -> None:
    case.call_and_validate(
        headers={"Host": seeded.host, "X-CSRFToken": seeded.csrf, "Authorization": ""},
        cookies={"sessionid": session, "csrftoken": seeded.csrf},
        excluded_checks=[*EXCLUDED, *_stripe_excluded(case)],
    )


@tenant_schema.parametrize()
@HYPOTHESIS
def test_tenant_api_as_staff_never_errors_and_matches_its_schema(case, seeded_tenant):
    _call_signed_in(case, seeded_tenant, seeded_tenant.session)


@tenant_schema.parametrize()
@HYPOTHESIS
def test_tenant_api_as_an_affiliate_never_errors_and_matches_its_schema(case, seeded_tenant):
    # The portal's caller: most staff operations answer it 403, its own (links, clicks, stats, `me`,
    # payouts) answer with its rows only.
    _call_signed_in(case, seeded_tenant, seeded_tenant.affiliate_session)


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
    excluded = [*EXCLUDED, negative_data_rejection] if case.method == "GET" else EXCLUDED
    return [*excluded, *_stripe_excluded(case)]


def test_the_fuzzed_sessions_are_signed_in_as_staff_and_as_the_affiliate(seeded_tenant, client_at):
    """Without this, a session that no longer signed anyone in would leave both runs above fuzzing
    only the 403 answer."""

    def me(session: str) -> dict:
        client = client_at(seeded_tenant.host)
        client.cookies["sessionid"] = session
        response = client.get("/api/v1/me")
        assert response.status_code == 200, response.content
        return response.json()

    assert me(seeded_tenant.session)["role"] == "owner"
    assert me(seeded_tenant.affiliate_session)["role"] == "affiliate"
