"""Tracking endpoints served on the tenant host outside the REST API: the referral redirect
and the snippet. The redirect is the platform's hot path; see `affiliates.tracking.clicks`."""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import http_date
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from affiliates import destinations, selectors
from affiliates.tracking.clicks import CLICK_PARAM, click_record
from affiliates.tracking.targets import target_resolve
from affiliates.tracking.visitors import VISITOR_COOKIE, client_ip, visitor_from_cookie

_UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
_SUB = ("sub1", "sub2", "sub3", "sub4", "sub5")
_SCRIPT = Path(__file__).parent / "static" / "affiliates" / "t.js"


def _params(request: HttpRequest, names: tuple[str, ...]) -> dict[str, str]:
    return {name: request.GET[name][:255] for name in names if request.GET.get(name)}


_expires_by_age: dict[int, tuple[int, str]] = {}


def _expires(max_age: int) -> str:
    """The cookie's Expires date, formatted once a second rather than once a redirect (Django
    formats it through email.utils, about 3 % of a redirect's time under load)."""
    now = int(time.time())
    hit = _expires_by_age.get(max_age)
    if hit is None or hit[0] != now:
        hit = _expires_by_age[max_age] = (now, http_date(now + max_age))
    return hit[1]


@require_GET
def referral_redirect(request: HttpRequest, code: str, slug: str = "") -> HttpResponse:
    target = target_resolve(code=code, slug=slug)
    if target is None or not target.usable or not target.destination:
        program = selectors.programs_snapshot().default
        if program is not None and program.default_destination:
            # Unknown or inactive codes still reach the merchant, but nothing is recorded.
            return HttpResponseRedirect(program.default_destination)
        return render(request, "affiliates/link_not_found.html", status=404)
    visitor = visitor_from_cookie(request.COOKIES.get(VISITOR_COOKIE))
    # Only a request that already carries a session can be the affiliate itself; looking the
    # session up costs a query, which ordinary visitors never pay.
    is_self = False
    if settings.SESSION_COOKIE_NAME in request.COOKIES:
        user = request.user
        is_self = bool(user.is_authenticated and user.pk == target.affiliate_user_id)
    # Most visitors arrive with no query at all; then there is nothing to parse.
    has_query = bool(request.META.get("QUERY_STRING"))
    result = click_record(
        target=target,
        visitor_id=visitor,
        ip=client_ip(request.META),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        landing_url=target.destination,
        referrer=request.META.get("HTTP_REFERER", ""),
        sub_ids=_params(request, _SUB) if has_query else {},
        utm=_params(request, _UTM) if has_query else {},
        is_self=is_self,
    )
    location = destinations.url_with_params(target.destination, {CLICK_PARAM: str(result.click_id)})
    response = HttpResponseRedirect(location)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer-when-downgrade"
    max_age = target.cookie_days * 86400
    response.set_cookie(
        VISITOR_COOKIE,
        str(result.visitor_id),
        max_age=max_age,
        expires=_expires(max_age),
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
    return response


@require_GET
@cache_control(public=True, max_age=3600)
def tracking_script(request: HttpRequest) -> HttpResponse:
    return HttpResponse(_SCRIPT.read_bytes(), content_type="application/javascript; charset=utf-8")
