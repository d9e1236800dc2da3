from django.contrib.auth import authenticate, login, logout
from django.middleware.csrf import get_token
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import api_view, authentication_classes, permission_classes, throttle_classes
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle

from accounts.api.serializers import LoginSerializer, MeSerializer
from accounts.models import User


class IsSignedInUser(BasePermission):
    """A person with a session, not a server holding an API key."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, User) and request.user.is_authenticated


@extend_schema(
    summary="The signed-in user (and, for affiliates, their programs)", responses=MeSerializer, tags=["accounts"]
)
@api_view(["GET"])
@permission_classes([IsSignedInUser])
def me(request: Request) -> Response:
    return Response(MeSerializer(request.user, context={"request": request}).data)


@extend_schema(
    summary="Get a CSRF token (set as the csrftoken cookie) before signing in",
    responses=inline_serializer("CsrfToken", fields={"csrf_token": serializers.CharField()}),
    tags=["accounts"],
    auth=[],
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def csrf(request: Request) -> Response:
    return Response({"csrf_token": get_token(request._request)})


@extend_schema(
    summary="Sign in (session cookie); send the CSRF token in X-CSRFToken",
    request=LoginSerializer,
    responses=MeSerializer,
    tags=["accounts"],
    auth=[],
)
@api_view(["POST"])
@authentication_classes([])
@permission_classes([AllowAny])
@throttle_classes([AnonRateThrottle])
def sign_in(request: Request) -> Response:
    # Login CSRF: without the check, a hostile page could sign a visitor into its own account.
    SessionAuthentication().enforce_csrf(request)
    body = LoginSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    user = authenticate(
        request._request, email=body.validated_data["email"].lower(), password=body.validated_data["password"]
    )
    if user is None or not user.is_active:
        raise AuthenticationFailed("Wrong email or password.")
    login(request._request, user)
    return Response(MeSerializer(user, context={"request": request}).data)


@extend_schema(summary="Sign out", request=None, responses={204: None}, tags=["accounts"])
@api_view(["POST"])
@permission_classes([IsSignedInUser])
def sign_out(request: Request) -> Response:
    logout(request._request)
    return Response(status=204)
