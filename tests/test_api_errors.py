"""The API answers in its own error format whatever fails: a database that drops out (503 with
Retry-After, not a 500), an oversized body (a JSON 400, not Django's HTML page), a path no
endpoint has (a JSON 404 even with DEBUG on)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from unittest import mock

import pytest
from django.conf import settings
from django.db import OperationalError
from django.db.backends.utils import CursorWrapper
from django.test import Client, override_settings
from django_tenants.utils import tenant_context


@pytest.fixture
def signed_in(reused_tenant) -> Client:
    provisioned = reused_tenant()
    client = Client(HTTP_HOST=f"{provisioned.tenant.slug}.{settings.PLATFORM_DOMAIN}", raise_request_exception=False)
    with tenant_context(provisioned.tenant):
        client.force_login(provisioned.owner)
    return client


@contextlib.contextmanager
def database_down() -> Iterator[None]:
    """Every query fails the way a restarting PostgreSQL makes it fail (for the block only: the
    test's own teardown needs the database)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise OperationalError("server closed the connection unexpectedly")

    with mock.patch.object(CursorWrapper, "execute", refuse), mock.patch.object(CursorWrapper, "executemany", refuse):
        yield


def test_an_api_request_during_a_database_outage_gets_503_with_retry_after(signed_in):
    with database_down():
        response = signed_in.get("/api/v1/me")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "error": {
            "code": "database_unavailable",
            "message": "The service is briefly unavailable; retry shortly.",
            "fields": {},
        }
    }


def test_a_page_during_a_database_outage_gets_503_not_500(signed_in):
    with database_down():
        response = signed_in.get("/")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"


def test_a_body_over_the_upload_limit_gets_the_apis_json_400(signed_in):
    body = b'{"name": "' + b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1) + b'"}'

    response = signed_in.post("/api/v1/programs", data=body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_large"


@pytest.mark.parametrize("path", ["/api/v1/programs/", "/api/v1/ping/", "/api/v1/no-such-thing"])
def test_an_unknown_api_path_gets_a_json_404_also_with_debug_on(signed_in, path):
    with override_settings(DEBUG=True):
        response = signed_in.get(path)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_docs_without_their_slash_still_redirect(signed_in):
    assert signed_in.get("/api/docs").status_code == 301


@pytest.mark.parametrize("method", ["post", "delete", "patch"])
def test_a_write_to_an_unknown_api_path_gets_a_json_404_not_a_csrf_page(reused_tenant, method):
    client = Client(HTTP_HOST=f"{reused_tenant().tenant.slug}.{settings.PLATFORM_DOMAIN}", enforce_csrf_checks=True)

    response = getattr(client, method)("/api/v1/commission-rules/0.5")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
