"""API conventions shared by both URL roots: one error format, documented in the schema.

Every error is `{"error": {"code": str, "message": str, "fields": {name: [{"code", "message"}]}}}`.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.errors import DomainError


class _StrictString:
    """Refuses numbers and booleans instead of quietly turning them into text (DRF's default):
    the schema promises a string, so a client sending 0 has a bug worth hearing about."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)

    def run_validation(self, data: Any = serializers.empty) -> Any:
        # DRF checks max_length after trimming whitespace (which for str.strip includes control
        # characters such as \x1d), so 300 characters could pass a field the schema caps at 255.
        # The limit is on what the client sent.
        if isinstance(data, str) and self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().run_validation(data)


class StrictCharField(_StrictString, serializers.CharField):
    pass


class StrictEmailField(_StrictString, serializers.EmailField):
    pass


class StrictUUIDField(serializers.UUIDField):
    """DRF would read an integer (and so `false`) as UUID(int=...): only text is an id here."""

    def to_internal_value(self, data: Any):
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class FieldsBuiltOnce:
    """For serializers on hot paths: fields built and bound once per class. DRF otherwise deep-
    copies (a ModelSerializer: rebuilds from the model) every field for every instance, which on
    `POST /api/v1/conversions` cost more than validating the body or rendering the response.
    The fields stay bound to a blank instance, so only for serializers whose fields keep no
    state of their own: none reads the context (the request), and none is used with
    `partial=True` (a field asks its root whether the validation is partial)."""

    @property
    def fields(self):
        cls = type(self)
        built = cls.__dict__.get("_fields_built")
        if built is None:
            # Bound to a blank instance of their own, not to this one: nothing of a request or
            # of the rendered rows stays referenced for the life of the process.
            blank = cls.__new__(cls)
            serializers.BaseSerializer.__init__(blank)
            built = super(FieldsBuiltOnce, blank).fields
            cls._fields_built = built
        return built


class FieldErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, machine-readable error code.")
    message = serializers.CharField(help_text="Human-readable explanation.")
    fields = serializers.DictField(child=FieldErrorSerializer(many=True), help_text="Per-field errors, if any.")


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


def error_body(code: str, message: str, fields: dict[str, list[dict[str, str]]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _field_errors(detail: Any, prefix: str = "") -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for k, v in _field_errors(value, name).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(detail, list):
        for index, item in enumerate(detail):
            if isinstance(item, (dict, list)):
                for k, v in _field_errors(item, f"{prefix}.{index}" if prefix else str(index)).items():
                    out.setdefault(k, []).extend(v)
            else:
                out.setdefault(prefix or "non_field_errors", []).append(
                    {"code": getattr(item, "code", "invalid"), "message": str(item)}
                )
    else:
        out.setdefault(prefix or "non_field_errors", []).append(
            {"code": getattr(detail, "code", "invalid"), "message": str(detail)}
        )
    return out


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        fields = {exc.field: [{"code": exc.code, "message": exc.message}]} if exc.field else {}
        return Response(error_body(exc.code, exc.message, fields), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _field_errors(exc.detail)
        response.data = error_body("invalid", "The request has invalid fields.", fields)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        response.data = error_body(str(code), str(detail))
    return response


def add_error_responses(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """Document the shared error body on every operation (spectacular postprocessing hook)."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault(
        "Error",
        {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message", "fields"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "fields": {
                            "type": "object",
                            "additionalProperties": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["code", "message"],
                                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                                },
                            },
                        },
                    },
                }
            },
        },
    )
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    descriptions = {
        "400": "Invalid input; `error.fields` names each bad field.",
        "401": "Not signed in, or a missing, invalid or revoked API key.",
        "403": "Not allowed (or the tenant is suspended).",
        "404": "Not found (or no tenant at this host).",
    }
    writes = {"409": "Conflicts with the current state (taken, already done, not allowed from this state)."}
    for path in result.get("paths", {}).values():
        for method, operation in path.items():
            responses = operation.setdefault("responses", {})
            for code, description in descriptions.items():
                responses.setdefault(code, {"description": description, **ref})
            if method in ("post", "patch", "put", "delete"):
                for code, description in writes.items():
                    responses.setdefault(code, {"description": description, **ref})
            # The throttled endpoints (rate limits per client address).
            if operation.get("operationId", "").endswith(("track_clicks_create", "auth_login_create")):
                responses.setdefault("429", {"description": "Too many requests; retry later.", **ref})
    return result


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
