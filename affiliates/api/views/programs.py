from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.serializers import BaseSerializer

from affiliates import services
from affiliates.api import serializers as s
from affiliates.api.views.common import NoDelete
from affiliates.models import Program
from core.api.pagination import Pages
from core.api.viewsets import ScopedViewSet


@extend_schema_view(
    list=extend_schema(summary="List programs"),
    create=extend_schema(summary="Create a program"),
    retrieve=extend_schema(summary="A program"),
    partial_update=extend_schema(summary="Change a program's settings"),
)
class ProgramViewSet(NoDelete, ScopedViewSet):
    scopes = {"list": "read", "retrieve": "read", "create": None, "partial_update": None}
    staff_only = {"create", "partial_update"}
    affiliate_field = "affiliates__id"  # the programs it joined
    serializer_class = s.ProgramSerializer
    queryset = Program.objects.all()
    pagination_class = Pages

    def perform_create(self, serializer: BaseSerializer[Program]) -> None:
        serializer.instance = services.program_create(**serializer.validated_data)

    def perform_update(self, serializer: BaseSerializer[Program]) -> None:
        serializer.instance = services.program_update(program=serializer.instance, **serializer.validated_data)
