"""Views of the wiring itself: the liveness ping and the error handlers of both URL roots."""

from __future__ import annotations

import sys

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.defaults import bad_request, page_not_found, server_error
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.errors import DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS, error_body, is_database_outage


@extend_schema(
    summary="Liveness check",
    responses=inline_serializer("Ping", fields={"status": serializers.CharField(), "schema": serializers.CharField()}),
    tags=["platform"],
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def ping(request: Request) -> Response:
    # No tenant only in the routing benchmark's untenanted baseline.
    tenant = getattr(request, "tenant", None)
    return Response({"status": "ok", "schema": tenant.schema_name if tenant else ""}, status=status.HTTP_200_OK)


@csrf_exempt  # nothing is written; a POST to a wrong path is a 404, not a CSRF failure
def api_not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    """The last pattern under /api/: a path no endpoint has (a trailing slash, a typo) gets the
    API's JSON 404 also with DEBUG on, where Django would show its HTML page instead of
    handler404."""
    return JsonResponse(error_body("not_found", "Not found."), status=404)


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # A body over DATA_UPLOAD_MAX_MEMORY_SIZE, a malformed multipart: Django's SuspiciousOperation.
    if request.path.startswith("/api/"):
        if isinstance(exception, RequestDataTooBig):
            return JsonResponse(error_body("too_large", "The request body is too large."), status=400)
        return JsonResponse(error_body("bad_request", "Bad request."), status=400)
    return bad_request(request, exception)


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    # Called inside Django's `except`, so the exception at hand is the one that failed the request.
    if is_database_outage(sys.exc_info()[1] or Exception()):
        response: HttpResponse
        if request.path.startswith("/api/"):
            response = JsonResponse(error_body(*DATABASE_UNAVAILABLE), status=503)
        else:
            response = HttpResponse(DATABASE_UNAVAILABLE[1], status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("server_error", "Internal server error."), status=500)
    return server_error(request)
