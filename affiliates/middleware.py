"""The referral redirect's short way through the middleware stack."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from affiliates.views import referral_redirect

# The two referral routes of config.urls_tenant (`r/<str:code>` and `r/<str:code>/<str:slug>`;
# `str` matches `[^/]+`), matched here directly: Django's resolve() walks the tenant URL list
# and builds a ResolverMatch, about 17 µs a request, a tenth of what the redirect's own work
# costs. affiliates/tests/test_middleware.py checks that both agree.
REFERRAL_PATH = re.compile(r"/r/(?P<code>[^/]+)(?:/(?P<slug>[^/]+))?")


class ReferralFastPathMiddleware:
    """Serves `/r/...` right after tenant routing when the visitor has no session.

    The redirect is the platform's hottest path, and for an anonymous visitor sessions, CSRF,
    authentication, messages and the other layers below do nothing but cost time (about a tenth
    of the redirect's, measured under load). A request that carries a session cookie takes the
    whole stack, because the view asks whether the signed-in user is the affiliate (a self-click).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            request.path_info.startswith("/r/")
            and getattr(request, "urlconf", None) == settings.ROOT_URLCONF
            and settings.SESSION_COOKIE_NAME not in request.COOKIES
        ):
            match = REFERRAL_PATH.fullmatch(request.path_info)
            if match is not None:
                return referral_redirect(request, code=match["code"], slug=match["slug"] or "")
        return self.get_response(request)
