"""Fixtures for the affiliates app: a provisioned tenant whose schema is active for the test."""

from __future__ import annotations

import pytest
from django.db import connection

from affiliates.tests import factories


@pytest.fixture
def tenant(reused_tenant):
    provisioned = reused_tenant()
    connection.set_tenant(provisioned.tenant)
    yield provisioned
    connection.set_schema_to_public()


@pytest.fixture
def program(tenant):
    return factories.program()


@pytest.fixture
def staff(tenant):
    return tenant.owner
