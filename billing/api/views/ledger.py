from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.request import Request
from rest_framework.response import Response

from billing import selectors
from billing.api import serializers as s
from billing.models import LedgerEntry
from core import money
from core.api.pagination import NewestFirst
from core.api.viewsets import ScopedAPIView, ScopedViewSet


class LedgerView(ScopedAPIView):
    scopes = {"get": None}
    staff_only = {"get"}

    @extend_schema(summary="The payout balance, per currency", responses=s.LedgerSerializer)
    def get(self, request: Request) -> Response:
        balances = [
            {"currency": currency, "balance": money.format_minor(minor, currency)}
            for currency, minor in sorted(selectors.ledger_balances().items())
        ]
        return Response(s.LedgerSerializer({"balances": balances}).data)


class LedgerEntryFilter(django_filters.FilterSet):
    currency = django_filters.CharFilter(field_name="account__currency", lookup_expr="iexact")

    class Meta:
        model = LedgerEntry
        fields = ["kind", "currency"]


@extend_schema_view(list=extend_schema(summary="Ledger entries (newest first, cursor pages)"))
class LedgerEntryViewSet(mixins.ListModelMixin, ScopedViewSet):
    scopes = {"list": None}
    staff_only = {"list"}
    serializer_class = s.LedgerEntrySerializer
    queryset = LedgerEntry.objects.select_related("account")
    pagination_class = NewestFirst
    filterset_class = LedgerEntryFilter
    ordering_fields = ["id"]
