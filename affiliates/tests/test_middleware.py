"""The referral short path matches exactly the paths that Django's resolver sends to the redirect."""

from __future__ import annotations

import pytest
from django.urls import Resolver404, resolve

from affiliates.middleware import REFERRAL_PATH
from affiliates.views import referral_redirect

PATHS = [
    "/r/abc",
    "/r/abc/",
    "/r/abc/spring-sale",
    "/r/abc/spring-sale/",
    "/r/abc/spring/sale",
    "/r/",
    "/r//x",
    "/r/%41bc",
    "/r/ab%2Fc/x",
    "/r/ä",
    "/r/abc/ü-link",
    "/r/abc\n",
    "/r/abc/x\n",
    "/rr/abc",
    "/r",
]


@pytest.mark.parametrize("path", PATHS)
def test_the_short_path_agrees_with_the_tenant_urlconf(path):
    try:
        match = resolve(path, urlconf="config.urls_tenant")
    except Resolver404:
        match = None
    expected = None
    if match is not None and match.func is referral_redirect:
        expected = {"code": match.kwargs["code"], "slug": match.kwargs.get("slug", "")}

    found = REFERRAL_PATH.fullmatch(path)

    assert ({"code": found["code"], "slug": found["slug"] or ""} if found else None) == expected
