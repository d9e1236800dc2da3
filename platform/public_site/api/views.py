from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view, authentication_classes, permission_classes, throttle_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.errors import ErrorSerializer
from public_site.api.serializers import SignupRequestSerializer, SignupResponseSerializer
from public_site.throttles import SignupThrottle
from tenants.services import tenant_provision


@extend_schema(
    summary="Sign a business up",
    description="Creates the tenant (schema, subdomain, owner account) and returns its URL and a "
    "single-use sign-in link for the owner.",
    request=SignupRequestSerializer,
    responses={
        201: SignupResponseSerializer,
        400: OpenApiResponse(ErrorSerializer, description="Invalid field; `error.fields` says which and why."),
        409: OpenApiResponse(ErrorSerializer, description="The subdomain is taken (`subdomain_taken`)."),
        429: OpenApiResponse(ErrorSerializer, description="Too many signups from this address (`throttled`)."),
    },
    examples=[
        OpenApiExample(
            "Signup",
            request_only=True,
            value={"name": "Acme", "subdomain": "acme", "owner_email": "owner@acme.test", "password": "a long pass"},
        )
    ],
    tags=["signup"],
)
@api_view(["POST"])
# Anonymous and cookie-less by design: programmatic onboarding has no session to protect.
@authentication_classes([])
@permission_classes([AllowAny])
@throttle_classes([SignupThrottle])
def signup(request: Request) -> Response:
    serializer = SignupRequestSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    provisioned = tenant_provision(
        name=data["name"],
        subdomain=data["subdomain"],
        owner_email=data["owner_email"],
        owner_password=data["password"],
    )
    body = {
        "tenant": {"name": provisioned.tenant.name, "subdomain": provisioned.tenant.slug, "url": provisioned.url},
        "login_url": provisioned.login_url,
    }
    return Response(SignupResponseSerializer(body).data, status=status.HTTP_201_CREATED)
