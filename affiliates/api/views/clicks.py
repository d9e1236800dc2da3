from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins

from affiliates.api import serializers as s
from affiliates.models import Click
from core.api.filters import UtcDateTimeFilter
from core.api.pagination import NewestFirst
from core.api.viewsets import ScopedViewSet


class ClickPages(NewestFirst):
    ordering = ("-created_at", "-id")


class ClickFilter(django_filters.FilterSet):
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Click
        fields = ["affiliate", "link", "program", "visitor_id", "created_after", "created_before"]


@extend_schema_view(
    list=extend_schema(summary="List clicks (newest first, cursor pages)"), retrieve=extend_schema(summary="A click")
)
class ClickViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, ScopedViewSet):
    scopes = {"list": "read", "retrieve": "read"}
    affiliate_field = "affiliate_id"
    ordering_fields = ["created_at"]
    serializer_class = s.ClickSerializer
    queryset = Click.objects.all()
    pagination_class = ClickPages
    filterset_class = ClickFilter
