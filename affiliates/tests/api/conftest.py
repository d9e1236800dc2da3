"""The API tests' world (see support.world_build)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection

from affiliates.tests.api.support import World, world_build


@pytest.fixture
def world(reused_tenant) -> Iterator[World]:
    yield world_build(reused_tenant)
    connection.set_schema_to_public()
