from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.serializers import BaseSerializer

from affiliates import services
from affiliates.api import serializers as s
from affiliates.models import CommissionRule
from core.api.pagination import Pages
from core.api.viewsets import ScopedViewSet


class RuleFilter(django_filters.FilterSet):
    class Meta:
        model = CommissionRule
        fields = ["program", "is_active"]


@extend_schema_view(
    list=extend_schema(summary="List commission rules"),
    create=extend_schema(summary="Create a commission rule"),
    retrieve=extend_schema(summary="A commission rule"),
    partial_update=extend_schema(summary="Change a commission rule"),
    destroy=extend_schema(summary="Delete a commission rule (commissions keep their amounts)"),
)
class CommissionRuleViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    mixins.ListModelMixin,
    ScopedViewSet,
):
    scopes = {"list": None, "retrieve": None, "create": None, "partial_update": None, "destroy": None}
    staff_only = set(scopes)
    serializer_class = s.CommissionRuleSerializer
    queryset = CommissionRule.objects.select_related("program").prefetch_related("affiliates")
    pagination_class = Pages
    filterset_class = RuleFilter
    http_method_names = ["get", "post", "patch", "delete"]

    def perform_create(self, serializer: BaseSerializer[CommissionRule]) -> None:
        data = dict(serializer.validated_data)
        serializer.instance = services.rule_create(affiliates=data.pop("affiliates", None), **data)

    def perform_update(self, serializer: BaseSerializer[CommissionRule]) -> None:
        data = dict(serializer.validated_data)
        serializer.instance = services.rule_update(
            rule=serializer.instance, affiliates=data.pop("affiliates", None), **data
        )
