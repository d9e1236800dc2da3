"""The tracking snippet's click endpoint: called from merchants' sites, without credentials."""

from __future__ import annotations

from urllib.parse import urlsplit

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from affiliates import destinations, tracking
from affiliates.api import serializers as s
from affiliates.api.throttles import TrackThrottle
from affiliates.errors import AffiliateError
from affiliates.models import Click, Program
from core.api.viewsets import ScopedAPIView


class TrackClickView(ScopedAPIView):
    scopes = {"post": None, "options": None}
    public = {"post", "options"}
    authentication_classes = []
    throttle_classes = [TrackThrottle]
    http_method_names = ["post", "options"]

    @extend_schema(
        summary="Register a click from the tracking snippet",
        description="Called by `/t.js` from the merchant's site (CORS: the program's allowed domains only). "
        "Unknown or inactive codes get 404 and record nothing.",
        request=s.TrackClickSerializer,
        responses={
            201: s.TrackedClickSerializer,
            200: s.TrackedClickSerializer,
            429: OpenApiResponse(description="Slow down."),
        },
        tags=["tracking"],
        auth=[],
    )
    def post(self, request: Request) -> Response:
        origin = request.META.get("HTTP_ORIGIN", "")
        body = s.TrackClickSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        target = tracking.target_resolve(code=body.validated_data["code"], slug=body.validated_data["slug"])
        allowed_origin = _cors_origin(origin, target)
        if target is None or not target.usable:
            return _with_cors(
                Response(
                    {"error": {"code": "code_unknown", "message": "Unknown or inactive referral code.", "fields": {}}},
                    status=404,
                ),
                allowed_origin,
            )
        if origin and allowed_origin is None:
            raise AffiliateError(
                "origin_not_allowed", "This site is not one of the program's allowed domains.", status=403
            )
        data = body.validated_data
        result = tracking.click_record(
            target=target,
            visitor_id=data.get("visitor_id"),
            ip=tracking.client_ip(request.META),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
            landing_url=data["landing_url"],
            referrer=data["referrer"],
            sub_ids=data["sub_ids"],
            utm=data["utm"],
            source=Click.Source.SCRIPT,
        )
        payload = {"click_id": result.click_id, "visitor_id": result.visitor_id, "cookie_days": target.cookie_days}
        code_status = status.HTTP_201_CREATED if result.recorded else status.HTTP_200_OK
        return _with_cors(Response(s.TrackedClickSerializer(payload).data, status=code_status), allowed_origin)

    def options(self, request: Request, *args: object, **kwargs: object) -> Response:
        # The CORS preflight.
        origin = request.META.get("HTTP_ORIGIN", "")
        response = Response(status=status.HTTP_204_NO_CONTENT)
        return _with_cors(response, origin if _origin_allowed_any(origin) else None)


def _origin_host(origin: str) -> str:
    try:
        return (urlsplit(origin).hostname or "").lower()
    except ValueError:
        return ""


def _cors_origin(origin: str, target: tracking.Target | None) -> str | None:
    if not origin or target is None:
        return None
    return origin if destinations.host_allowed(_origin_host(origin), target.allowed_domains) else None


def _origin_allowed_any(origin: str) -> bool:
    # A preflight carries no body, so it cannot name the program: allow an origin that any
    # active program of this tenant allows; the POST itself is checked against its program.
    host = _origin_host(origin)
    return bool(host) and any(
        destinations.host_allowed(host, domains)
        for domains in Program.objects.filter(is_active=True).values_list("allowed_domains", flat=True)
    )


def _with_cors(response: Response, origin: str | None) -> Response:
    if origin:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = "Content-Type"
        response["Access-Control-Max-Age"] = "600"
        response["Vary"] = "Origin"
    return response
