"""Views of the wiring itself: the liveness ping and the error handlers of both URL roots."""

from __future__ import annotations

from django.http import JsonResponse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.errors import error_body


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


def handler404(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request):
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("server_error", "Internal server error."), status=500)
    from django.views.defaults import server_error

    return server_error(request)
