from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from billing import funding
from billing.api import serializers as s
from billing.api.views.stripe_errors import STRIPE_RESPONSES, StripeErrors
from billing.models import Funding
from core.api.pagination import NewestFirst
from core.api.viewsets import ScopedViewSet


class FundingFilter(django_filters.FilterSet):
    class Meta:
        model = Funding
        fields = ["status", "currency"]


@extend_schema_view(
    list=extend_schema(summary="List fundings (newest first, cursor pages)"),
    retrieve=extend_schema(summary="A funding, as last known (POST .../refresh asks Stripe)"),
)
class FundingViewSet(StripeErrors, mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    scopes = {"list": None, "retrieve": None, "create": None, "refresh": None}
    staff_only = set(scopes)
    serializer_class = s.FundingSerializer
    pagination_class = NewestFirst
    filterset_class = FundingFilter
    ordering_fields = ["id"]
    queryset = Funding.objects.all()

    @extend_schema(
        summary="Add money to the payout balance (Stripe Checkout)",
        description="Answers with Checkout's `url`, where the business pays; the balance is credited once Stripe "
        "reports the payment (its webhook, or POST .../refresh on return). Nothing is recorded when Stripe "
        "cannot be reached.",
        request=s.FundingCreateSerializer,
        responses={201: s.FundingSerializer, **STRIPE_RESPONSES},
    )
    def create(self, request: Request) -> Response:
        body = s.FundingCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        back = request.build_absolute_uri("/console/payouts/funding")
        started = funding.funding_start(
            amount_minor=body.validated_data["amount_minor"],
            currency=body.validated_data["currency"],
            # Stripe fills in {CHECKOUT_SESSION_ID}; appended after building the URL, which would escape it.
            success_url=f"{back}?checkout=success&session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{back}?checkout=cancelled",
            by=request.user,
        )
        return Response(s.FundingSerializer(started).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Ask Stripe whether a funding was paid (credits the balance once)",
        request=None,
        responses={200: s.FundingSerializer, **STRIPE_RESPONSES},
    )
    @action(detail=True, methods=["post"])
    def refresh(self, request: Request, pk: str) -> Response:
        found = self.get_object()
        if found.status == Funding.Status.OPEN:
            found = funding.funding_refresh(funding=found)
        return Response(s.FundingSerializer(found).data)
