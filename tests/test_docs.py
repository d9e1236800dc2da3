"""The API documentation pages load nothing from third parties (a self-hosted platform works
without internet): every asset they reference is a path on the platform's own host, and each
one is a static file the platform ships."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client

_REFERENCES = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


def _references(client: Client) -> list[str]:
    response = client.get("/api/docs/")
    assert response.status_code == 200
    return _REFERENCES.findall(response.content.decode())


@pytest.mark.parametrize("host", ["public", "tenant"])
def test_docs_reference_only_the_platforms_own_static_files(host, public_client, reused_tenant, client_at):
    client = (
        public_client if host == "public" else client_at(f"{reused_tenant().tenant.slug}.{settings.PLATFORM_DOMAIN}")
    )

    references = _references(client)

    assert references, "the page references its script"
    for url in references:
        assert url.startswith("/") and not url.startswith("//"), url
        assert url.startswith(settings.STATIC_URL), url
        assert finders.find(url.removeprefix(settings.STATIC_URL)) is not None, url


def test_docs_page_names_no_other_host(public_client):
    page = public_client.get("/api/docs/").content.decode()

    assert "googleapis" not in page
    assert "jsdelivr" not in page
    assert re.search(r"https?://", page) is None
