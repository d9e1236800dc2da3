from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from billing import payouts
from billing.api import serializers as s
from billing.api.views.stripe_errors import StripeErrors
from billing.models import PayoutItem, PayoutRun
from core.api.pagination import Pages
from core.api.viewsets import ScopedViewSet


class PayoutRunFilter(django_filters.FilterSet):
    class Meta:
        model = PayoutRun
        fields = ["program", "status"]


def _with_items(runs: QuerySet[PayoutRun]) -> QuerySet[PayoutRun]:
    items = PayoutItem.objects.select_related("affiliate__user").order_by("id")
    return runs.prefetch_related(Prefetch("items", queryset=items))


@extend_schema_view(
    list=extend_schema(summary="List payout runs (newest first)"),
    retrieve=extend_schema(summary="A payout run, with its items and who rolled over"),
)
class PayoutRunViewSet(StripeErrors, mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    scopes = {"list": None, "retrieve": None, "create": None, "confirm": None, "cancel": None}
    staff_only = set(scopes)
    queryset = PayoutRun.objects.all()
    pagination_class = Pages
    filterset_class = PayoutRunFilter
    ordering_fields = ["id", "created_at"]

    def safely_get_queryset(self, queryset: QuerySet[PayoutRun]) -> QuerySet[PayoutRun]:
        return queryset if self.action == "list" else _with_items(queryset)

    def get_serializer_class(self) -> type[BaseSerializer[PayoutRun]]:
        return s.PayoutRunSerializer if self.action == "list" else s.PayoutRunDetailSerializer

    def _detail(self, run: PayoutRun) -> dict[str, Any]:
        return s.PayoutRunDetailSerializer(_with_items(PayoutRun.objects.all()).get(pk=run.pk)).data

    @extend_schema(
        summary="Make a payout run for a program",
        description="Each affiliate whose approved commissions reach the program's threshold and whose Stripe "
        "account can receive transfers gets an item; the others roll over (`skipped`, with the reason). Sent "
        "in the background at once, or after `confirm` when the body asks for confirmation.",
        request=s.PayoutRunCreateSerializer,
        responses={201: s.PayoutRunDetailSerializer},
    )
    def create(self, request: Request) -> Response:
        body = s.PayoutRunCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = payouts.payout_run_create(
            program=body.validated_data["program"], by=request.user, confirm=body.validated_data["confirm"]
        )
        return Response(self._detail(run), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Confirm a run that waits for confirmation (it is then sent)",
        request=None,
        responses=s.PayoutRunDetailSerializer,
    )
    @action(detail=True, methods=["post"])
    def confirm(self, request: Request, pk: str) -> Response:
        return Response(self._detail(payouts.payout_run_confirm(run=self.get_object())))

    @extend_schema(
        summary="Cancel a run",
        description="Its pending items end and their commissions go to the next run; items already sending or "
        "paid are not touched (the run ends when they do).",
        request=None,
        responses=s.PayoutRunDetailSerializer,
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        return Response(self._detail(payouts.payout_run_cancel(run=self.get_object())))
