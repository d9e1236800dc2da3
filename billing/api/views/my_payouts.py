from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from billing import selectors
from billing.api import serializers as s
from core import money
from core.api.csv import csv_response
from core.api.pagination import Pages
from core.api.viewsets import ScopedAPIView


class MyPayoutsView(ScopedAPIView):
    scopes = {"get": None}
    affiliate_only = {"get"}

    @extend_schema(
        summary="Your payouts (newest first), with the commissions each paid, and what rolled over",
        parameters=[
            OpenApiParameter("limit", OpenApiTypes.INT, description="Items per page (default 50, at most 500)."),
            OpenApiParameter("offset", OpenApiTypes.INT, description="Items to skip."),
        ],
        responses=s.MyPayoutsPageSerializer,
    )
    def get(self, request: Request) -> Response:
        ids = self.own_affiliate_ids()
        paginator = Pages()
        page = paginator.paginate_queryset(selectors.payout_items_of_affiliates(ids), request, view=self)
        data = paginator.get_paginated_response(s.MyPayoutSerializer(page, many=True).data).data
        data["rolled_over"] = s.RolloverSerializer(selectors.rollovers_of_affiliates(ids), many=True).data
        data["bank_payouts"] = s.BankPayoutSerializer(selectors.bank_payouts_of_affiliates(ids), many=True).data
        return Response(data)


CSV_COLUMNS = [
    "payout_id",
    "run",
    "program",
    "status",
    "amount",
    "currency",
    "paid_at",
    "stripe_transfer_id",
    "commission_ids",
    "conversion_ids",
    "reversed_at",
    "reversal_reason",
]


class MyPayoutsCsvView(ScopedAPIView):
    scopes = {"get": None}
    affiliate_only = {"get"}

    @extend_schema(
        summary="Your payouts as CSV (one row per payout, newest first)",
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        items = selectors.payout_items_of_affiliates(self.own_affiliate_ids())

        def rows() -> Iterator[list[Any]]:
            for item in items.iterator(chunk_size=500):
                covered = list(item.commissions.all())
                yield [
                    item.id,
                    item.run_id,
                    item.run.program_id,
                    item.status,
                    money.format_minor(item.amount_minor, item.currency),
                    item.currency,
                    item.paid_at.isoformat() if item.paid_at else "",
                    item.stripe_transfer_id,
                    " ".join(str(c.id) for c in covered),
                    " ".join(str(c.conversion_id) for c in covered),
                    item.reversed_at.isoformat() if item.reversed_at else "",
                    item.reversal_reason,
                ]

        return csv_response("payouts.csv", CSV_COLUMNS, rows())
