"""Routes each request to its tenant by host, before sessions and auth run.

Replaces django-tenants' TenantMainMiddleware for two costs it pays on every request: an
uncached domain query, and a `SET search_path` even when the pooled connection already points
at the right schema. Suspended tenants are stopped here, on every route, API included."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseNotFound, JsonResponse
from django.template.loader import render_to_string
from django.urls import set_urlconf

from tenants.models import Tenant
from tenants.selectors import tenant_for_host


def _error(request: HttpRequest, *, status: int, code: str, message: str, template: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"error": {"code": code, "message": message, "fields": {}}}, status=status)
    body = render_to_string(template, {"message": message})
    response_class = HttpResponseNotFound if status == 404 else HttpResponseForbidden
    return response_class(body)


def _in_platform_domain(request: HttpRequest) -> bool:
    forwarded = settings.USE_X_FORWARDED_HOST and "HTTP_X_FORWARDED_HOST" in request.META
    raw = request.META.get("HTTP_X_FORWARDED_HOST" if forwarded else "HTTP_HOST", "")
    # Not split_domain_port: it returns nothing for exactly the names get_host() refused.
    return raw.lower().split(":", 1)[0].endswith("." + settings.PLATFORM_DOMAIN)


class TenantRoutingMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # get_host() enforces ALLOWED_HOSTS (DisallowedHost becomes a 400); IP literals never
        # name a tenant. A malformed name under the platform's domain (`a_b.<domain>`) names no
        # tenant either: it gets the same 404 as an unknown one, not Django's 400 page.
        try:
            host = request.get_host()
        except DisallowedHost:
            if not _in_platform_domain(request):
                raise
            host = ""
        hostname = "" if host.startswith("[") else host.rsplit(":", 1)[0].lower()
        tenant = tenant_for_host(host=hostname) if hostname else None
        if tenant is None or tenant.kind == Tenant.Kind.TEMPLATE:
            connection.set_schema_to_public()
            return _error(
                request,
                status=404,
                code="tenant_not_found",
                message="There is no business at this address.",
                template="tenants/not_found.html",
            )

        if connection.schema_name != tenant.schema_name:
            connection.set_tenant(tenant)
        else:
            # Same schema as this connection's last request: keep the search_path it already
            # has instead of paying another SET on the next query.
            connection.tenant = tenant
        request.tenant = tenant

        is_public = tenant.schema_name == settings.PUBLIC_SCHEMA_NAME
        request.urlconf = settings.PUBLIC_SCHEMA_URLCONF if is_public else settings.ROOT_URLCONF
        set_urlconf(request.urlconf)

        if tenant.is_suspended:
            return _error(
                request,
                status=403,
                code="tenant_suspended",
                message="This business's account is suspended.",
                template="tenants/suspended.html",
            )
        return self.get_response(request)
