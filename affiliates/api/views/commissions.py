from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import django_filters
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from affiliates import commissions
from affiliates.api import serializers as s
from affiliates.models import Commission
from core import money
from core.api.csv import csv_response
from core.api.filters import UtcDateTimeFilter
from core.api.pagination import NewestFirst
from core.api.viewsets import ScopedViewSet


class CommissionFilter(django_filters.FilterSet):
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Commission
        fields = [
            "program",
            "affiliate",
            "status",
            "kind",
            "conversion",
            "held_for_review",
            "created_after",
            "created_before",
        ]


CSV_COLUMNS = [
    "id",
    "conversion",
    "affiliate",
    "kind",
    "amount",
    "original_amount",
    "currency",
    "status",
    "approvable_at",
    "status_reason",
    "created_at",
]


@extend_schema_view(
    list=extend_schema(summary="List commissions (newest first, cursor pages)"),
    retrieve=extend_schema(summary="A commission"),
)
class CommissionViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, ScopedViewSet):
    scopes = {"list": "read", "retrieve": "read", "export": "read", "approve": None, "reject": None}
    staff_only = {"approve", "reject"}
    affiliate_field = "affiliate_id"
    ordering_fields = ["id", "created_at", "amount_minor", "approvable_at"]
    serializer_class = s.CommissionSerializer
    queryset = Commission.objects.all()
    pagination_class = NewestFirst
    filterset_class = CommissionFilter

    @extend_schema(summary="Approve a pending commission", request=None, responses=s.CommissionSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        commission = commissions.commission_set_status(
            commission=self.get_object(),
            status=Commission.Status.APPROVED,
            by=request.user,
            reason="Approved by staff.",
        )
        return Response(s.CommissionSerializer(commission).data)

    @extend_schema(
        summary="Reject a commission (reason required)", request=s.ReasonSerializer, responses=s.CommissionSerializer
    )
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str) -> Response:
        body = s.ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        commission = commissions.commission_set_status(
            commission=self.get_object(),
            status=Commission.Status.REJECTED,
            by=request.user,
            reason=body.validated_data["reason"],
        )
        return Response(s.CommissionSerializer(commission).data)

    @extend_schema(
        summary="Export commissions as CSV (same filters as the list)", responses={(200, "text/csv"): OpenApiTypes.STR}
    )
    @action(detail=False, methods=["get"], url_path="export")
    def export(self, request: Request) -> StreamingHttpResponse:
        qs = self.filter_queryset(self.get_queryset()).order_by("-id")

        def rows() -> Iterator[list[Any]]:
            for c in qs.iterator(chunk_size=2000):
                yield [
                    c.id,
                    c.conversion_id,
                    c.affiliate_id,
                    c.kind,
                    money.format_minor(c.amount_minor, c.currency),
                    money.format_minor(c.original_minor, c.currency),
                    c.currency,
                    c.status,
                    c.approvable_at.isoformat(),
                    c.status_reason,
                    c.created_at.isoformat(),
                ]

        return csv_response("commissions.csv", CSV_COLUMNS, rows())
