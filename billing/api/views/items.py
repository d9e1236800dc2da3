from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from billing import reversals
from billing.api import serializers as s
from billing.api.views.stripe_errors import STRIPE_RESPONSES, StripeErrors
from billing.models import PayoutItem
from core.api.pagination import NewestFirst
from core.api.viewsets import ScopedViewSet


class PayoutItemFilter(django_filters.FilterSet):
    class Meta:
        model = PayoutItem
        fields = ["run", "affiliate", "status"]


@extend_schema_view(
    list=extend_schema(summary="List payout items (newest first, cursor pages)"),
    retrieve=extend_schema(summary="A payout item"),
)
class PayoutItemViewSet(StripeErrors, mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    scopes = {"list": None, "retrieve": None, "reverse": None}
    staff_only = set(scopes)
    serializer_class = s.PayoutItemSerializer
    queryset = PayoutItem.objects.select_related("affiliate__user")
    pagination_class = NewestFirst
    filterset_class = PayoutItemFilter
    ordering_fields = ["id"]

    @extend_schema(
        summary="Take a paid payout back (reverses its Stripe transfer)",
        description="The whole transfer comes back to the platform: the payout balance is credited, the item "
        "and its commissions are marked reversed, with the reason (the affiliate sees it). Safe to repeat: one "
        "reversal, one credit.",
        request=s.ReverseSerializer,
        responses={200: s.PayoutItemSerializer, **STRIPE_RESPONSES},
    )
    @action(detail=True, methods=["post"])
    def reverse(self, request: Request, pk: str) -> Response:
        body = s.ReverseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        item = reversals.payout_item_reverse(
            item_id=self.get_object().pk, reason=body.validated_data["reason"], by=request.user
        )
        return Response(s.PayoutItemSerializer(self.get_queryset().get(pk=item.pk)).data)
