from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from affiliates import services
from affiliates.api import serializers as s
from affiliates.models import ApiKey
from core.api.pagination import Pages
from core.api.viewsets import ScopedViewSet


@extend_schema_view(
    list=extend_schema(summary="List API keys (never the keys themselves)"),
    retrieve=extend_schema(summary="An API key"),
)
class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    # People only: a key cannot make or revoke keys.
    scopes = {"list": None, "retrieve": None, "create": None, "revoke": None}
    staff_only = set(scopes)
    serializer_class = s.ApiKeySerializer
    pagination_class = Pages
    queryset = ApiKey.objects.all()

    @extend_schema(
        summary="Create an API key (the key is shown once)",
        request=s.ApiKeySerializer,
        responses={201: s.ApiKeyCreatedSerializer},
    )
    def create(self, request: Request) -> Response:
        body = s.ApiKeySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        issued = services.api_key_create(
            name=body.validated_data["name"], scopes=body.validated_data["scopes"], by=request.user
        )
        data = s.ApiKeySerializer(issued.api_key).data | {"key": issued.secret}
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Revoke an API key", request=None, responses=s.ApiKeySerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:
        return Response(s.ApiKeySerializer(services.api_key_revoke(api_key=self.get_object())).data)
