"""The payouts API tests' world (see support.world_build), against the Stripe double."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection

from billing.tests.api.support import World, world_build
from devtools.stripe_double import RunningDouble


@pytest.fixture
def stripe_retries() -> int:
    return 0  # a failure is answered at once, not after stripe-python's backoff


@pytest.fixture
def world(reused_tenant, double: RunningDouble) -> Iterator[World]:
    yield world_build(reused_tenant, double)
    connection.set_schema_to_public()
