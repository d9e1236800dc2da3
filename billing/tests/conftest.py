"""Fixtures for the billing tests: a tenant whose schema is active (bare, or with a program), and
the local Stripe double with the gateway pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection
from django.test import override_settings

from affiliates.tests import factories
from billing import gateway
from devtools.stripe_double import RunningDouble, running


@pytest.fixture
def tenant(reused_tenant):
    provisioned = reused_tenant()
    connection.set_tenant(provisioned.tenant)
    yield provisioned.tenant
    connection.set_schema_to_public()


@pytest.fixture
def shop(reused_tenant):
    """A tenant (schema active) with a USD program: threshold 50.00, a 10 % rule."""
    provisioned = reused_tenant()
    connection.set_tenant(provisioned.tenant)
    program = factories.program(payout_threshold_minor=5000, currency="USD")
    factories.rule(program, percent="10")
    yield provisioned.tenant, program
    connection.set_schema_to_public()


@pytest.fixture
def stripe_retries() -> int:
    """stripe-python's own retries; a module overrides this to see every failure itself."""
    return 2


@pytest.fixture
def double(stripe_retries: int) -> Iterator[RunningDouble]:
    with running() as d:
        gateway._client.cache_clear()
        with override_settings(
            STRIPE_SECRET_KEY="sk_test_double_tests",
            STRIPE_API_BASE=d.url,
            STRIPE_TIMEOUT_SECONDS=1.0,
            STRIPE_MAX_NETWORK_RETRIES=stripe_retries,
        ):
            yield d
    gateway._client.cache_clear()
