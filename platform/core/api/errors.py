"""The API's one error format, the exception handler that produces it, and its documentation in the schema.

Every error is `{"error": {"code": str, "message": str, "fields": {name: [{"code", "message"}]}}}`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404
from drf_spectacular.generators import SchemaGenerator
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from core.errors import DomainError

logger = logging.getLogger(__name__)


class FieldErrorSerializer(serializers.Serializer[Any]):
    code = serializers.CharField()
    message = serializers.CharField()


class ErrorBodySerializer(serializers.Serializer[Any]):
    # `fields` is the error body's own key; DRF's metaclass takes declared fields off the class,
    # so it does not shadow Serializer.fields at run time (only in the stubs' eyes).
    code = serializers.CharField(help_text="Stable, machine-readable error code.")
    message = serializers.CharField(help_text="Human-readable explanation.")
    fields = serializers.DictField(child=FieldErrorSerializer(many=True), help_text="Per-field errors, if any.")  # type: ignore[assignment]


class ErrorSerializer(serializers.Serializer[Any]):
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


# How long a client should wait before retrying a 503: PostgreSQL restarts in a few seconds,
# and Stripe's own busy answers ask for about as much.
RETRY_AFTER_SECONDS = 5

DATABASE_UNAVAILABLE = ("database_unavailable", "The service is briefly unavailable; retry shortly.")


def is_database_outage(exc: BaseException) -> bool:
    """The database could not be reached or dropped the connection (a restart, a failover): a
    503 to retry, not a 500. Django wraps the driver's errors in these two."""
    return isinstance(exc, OperationalError | InterfaceError)


def unavailable_response() -> Response:
    response = Response(error_body(*DATABASE_UNAVAILABLE), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        fields = {exc.field: [{"code": exc.code, "message": exc.message}]} if exc.field else {}
        refused = Response(error_body(exc.code, exc.message, fields), status=exc.status)
        if exc.status == 503:
            refused["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return refused
    if is_database_outage(exc):
        logger.warning("database unavailable during %s", context.get("view"), exc_info=exc)
        set_rollback()
        return unavailable_response()
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


def add_error_responses(
    result: dict[str, Any], generator: SchemaGenerator, request: Request | None, public: bool
) -> dict[str, Any]:
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
