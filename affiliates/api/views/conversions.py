from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import django_filters
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from affiliates import commissions, conversions, selectors
from affiliates.api import serializers as s
from affiliates.models import Conversion
from core import money
from core.api.csv import csv_response
from core.api.filters import UtcDateTimeFilter
from core.api.pagination import NewestFirst
from core.api.viewsets import ScopedViewSet


class ConversionFilter(django_filters.FilterSet):
    occurred_after = UtcDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = UtcDateTimeFilter(field_name="occurred_at", lookup_expr="lt")
    affiliate = django_filters.NumberFilter(field_name="credits__affiliate_id", distinct=True)

    class Meta:
        model = Conversion
        fields = ["program", "event_type", "review", "external_id", "affiliate", "occurred_after", "occurred_before"]


CSV_COLUMNS = [
    "id",
    "external_id",
    "event_type",
    "amount",
    "refunded",
    "currency",
    "customer_id",
    "review",
    "flags",
    "credited_affiliates",
    "occurred_at",
]


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > 255 or any(not char.isprintable() for char in key):
        raise ValidationError({"Idempotency-Key": ["At most 255 printable characters."]})
    return key or None


@extend_schema_view(
    list=extend_schema(summary="List conversions (newest first, cursor pages)"),
    retrieve=extend_schema(summary="A conversion, with why it was credited"),
)
class ConversionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    scopes = {
        "list": "read",
        "retrieve": "read",
        "export": "read",
        "create": "conversions:write",
        "refund": "conversions:write",
        "review": None,
    }
    staff_only = {"create", "refund", "review"}
    # An affiliate sees the conversions it was credited with, not the merchant's whole book.
    affiliate_field = "credits__affiliate_id"
    ordering_fields = ["id", "occurred_at", "amount_minor"]
    serializer_class = s.ConversionSerializer
    queryset = Conversion.objects.select_related("customer").prefetch_related("credits__conversion")
    pagination_class = NewestFirst
    filterset_class = ConversionFilter

    @extend_schema(
        summary="Record a conversion (server to server)",
        description="Idempotent by `external_id` (and by the `Idempotency-Key` header): a repeat returns the "
        "first result with 200 and creates nothing.",
        request=s.ConversionInputSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False)],
        responses={201: s.ConversionSerializer, 200: s.ConversionSerializer},
        examples=[
            OpenApiExample(
                "Purchase",
                request_only=True,
                value={
                    "external_id": "order_1001",
                    "event_type": "purchase",
                    "amount": "49.90",
                    "currency": "USD",
                    "customer_id": "cus_123",
                    "click_id": "018f3c1e-8a7b-7c2d-9e4f-0a1b2c3d4e5f",
                },
            )
        ],
    )
    def create(self, request: Request) -> Response:
        body = s.ConversionInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        key = _idempotency_key(request)
        program = selectors.program_resolve(data.get("program"))
        conversion, created = conversions.conversion_record(
            program=program,
            rules=selectors.program_rules(program),
            external_id=data["external_id"],
            event_type=data["event_type"],
            amount=data["amount"],
            currency=data["currency"],
            customer_external_id=data.get("customer_id"),
            customer_email=data["customer_email"],
            product_ids=data.get("product_ids"),
            metadata=data.get("metadata"),
            click_id=str(data["click_id"]) if data.get("click_id") else None,
            visitor_id=data.get("visitor_id"),
            code=data.get("code"),
            coupon=data.get("coupon"),
            occurred_at=data.get("occurred_at"),
            idempotency_key=key,
        )
        if not created:  # a new one is answered from memory: its credits are attached
            conversion = self.get_queryset().get(pk=conversion.pk)
        return Response(s.ConversionSerializer(conversion).data, status=201 if created else 200)

    @extend_schema(
        summary="Refund a conversion (full or partial; also chargebacks)",
        request=s.RefundInputSerializer,
        responses=s.ConversionSerializer,
    )
    @action(detail=True, methods=["post"])
    def refund(self, request: Request, pk: str) -> Response:
        body = s.RefundInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        conversion = self.get_object()
        conversions.conversion_refund(
            conversion=conversion,
            amount=data.get("amount"),
            reason=data["reason"],
            kind=data["kind"],
            external_id=data.get("external_id"),
        )
        return Response(s.ConversionSerializer(self.get_queryset().get(pk=conversion.pk)).data)

    @extend_schema(
        summary="Decide a flagged conversion", request=s.ReviewInputSerializer, responses=s.ConversionSerializer
    )
    @action(detail=True, methods=["post"])
    def review(self, request: Request, pk: str) -> Response:
        body = s.ReviewInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        conversion = commissions.review_resolve(
            conversion=self.get_object(),
            clear=body.validated_data["decision"] == "clear",
            by=request.user,
            reason=body.validated_data["reason"],
        )
        return Response(s.ConversionSerializer(self.get_queryset().get(pk=conversion.pk)).data)

    @extend_schema(
        summary="Export conversions as CSV (same filters as the list)", responses={(200, "text/csv"): OpenApiTypes.STR}
    )
    @action(detail=False, methods=["get"], url_path="export")
    def export(self, request: Request) -> StreamingHttpResponse:
        qs = self.filter_queryset(self.get_queryset()).order_by("-id")

        def rows() -> Iterator[list[Any]]:
            for c in qs.iterator(chunk_size=2000):
                yield [
                    c.id,
                    c.external_id,
                    c.event_type,
                    money.format_minor(c.amount_minor, c.currency),
                    money.format_minor(c.refunded_minor, c.currency),
                    c.currency,
                    c.customer.external_id if c.customer else "",
                    c.review,
                    " ".join(c.flags),
                    " ".join(str(cr.affiliate_id) for cr in c.credits.all()),
                    c.occurred_at.isoformat(),
                ]

        return csv_response("conversions.csv", CSV_COLUMNS, rows())
