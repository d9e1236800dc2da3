"""On a tenant cloned from the template, code that recognises a unique constraint by its name
still does: applying twice to one program answers 409, not 503 (issue 14, item 7)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context

from tests.support.tenants import host_of

pytestmark = pytest.mark.django_db


def _affiliate_count(provisioned) -> int:
    with tenant_context(provisioned.tenant), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM affiliates_affiliate")
        return cursor.fetchone()[0]


def test_applying_twice_to_a_program_of_a_cloned_tenant_answers_409(reused_tenant):
    # Given a program of a tenant that signup cloned from the template, and an affiliate of it.
    provisioned = reused_tenant()
    staff = Client(HTTP_HOST=host_of(provisioned))
    with tenant_context(provisioned.tenant):
        staff.force_login(provisioned.owner)
    created = staff.post("/api/v1/programs", {"name": "Main", "slug": "main"}, content_type="application/json")
    assert created.status_code == 201, created.content
    applicant = Client(HTTP_HOST=host_of(provisioned))
    first = applicant.post(
        "/api/v1/affiliates/apply",
        {"program": "main", "email": "twice@example.org", "password": "long enough pw 1"},
        content_type="application/json",
    )
    assert first.status_code == 201, first.content

    # When the affiliate, now signed in, applies again.
    second = applicant.post("/api/v1/affiliates/apply", {"program": "main"}, content_type="application/json")

    # Then the second application is refused as a conflict, and nothing more was written.
    assert second.status_code == 409, second.content
    assert second.json()["error"]["code"] == "already_applied"
    assert _affiliate_count(provisioned) == 1
