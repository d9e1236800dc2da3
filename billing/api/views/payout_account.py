from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from affiliates import selectors as affiliate_selectors
from affiliates.models import Affiliate
from billing.api import serializers as s
from billing.api.views.stripe_errors import ERROR, STRIPE_RESPONSES, StripeErrors
from billing.connect import services as connect
from billing.errors import BillingError
from core.api.viewsets import ScopedViewSet


class PayoutAccountViewSet(StripeErrors, ScopedViewSet):
    # The caller's own payout account (Stripe Connect), at four URLs: `payout-account` (GET) and its
    # `onboarding`, `refresh` and `dashboard-link` (POST). An affiliate in several programs names
    # which of its affiliates it means.
    scopes = {"retrieve": None, "onboarding": None, "refresh": None, "dashboard_link": None}
    affiliate_only = set(scopes)

    def _affiliate(self, affiliate_id: int | None) -> Affiliate:
        return affiliate_selectors.affiliate_own(user=self.request.user, affiliate_id=affiliate_id)

    @extend_schema(
        summary="Your payout account (Stripe), as last known",
        parameters=[s.AffiliateChoiceSerializer],
        responses={
            200: s.PayoutAccountSerializer,
            404: OpenApiResponse(ERROR, description="No payout account yet (`no_payout_account`)."),
        },
    )
    def retrieve(self, request: Request) -> Response:
        query = s.AffiliateChoiceSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        affiliate = self._affiliate(query.validated_data.get("affiliate"))
        account = connect.account_for(tenant=request.tenant, affiliate_id=affiliate.id)
        if account is None:
            raise BillingError(
                "no_payout_account", "No payout account yet: POST /api/v1/payout-account/onboarding.", status=404
            )
        return Response(s.PayoutAccountSerializer(account).data)

    @extend_schema(
        summary="Set up (or finish setting up) your payout account",
        description="Creates your Stripe account the first time, then answers with a fresh, single-use link to "
        "Stripe's onboarding. Stripe sends you back to the portal when you are done or the link expired.",
        request=s.OnboardingSerializer,
        responses={200: s.StripeLinkSerializer, **STRIPE_RESPONSES},
    )
    @action(detail=False, methods=["post"])
    def onboarding(self, request: Request) -> Response:
        body = s.OnboardingSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        affiliate = self._affiliate(body.validated_data.get("affiliate"))
        if affiliate.status != Affiliate.Status.APPROVED:
            raise BillingError(
                "affiliate_not_approved", "Payouts can be set up once the program approves you.", status=409
            )
        back = request.build_absolute_uri("/portal/payouts")
        _, link = connect.onboarding_start(
            tenant=request.tenant,
            affiliate_id=affiliate.id,
            email=affiliate.user.email,
            country=body.validated_data.get("country") or settings.PAYOUT_DEFAULT_COUNTRY,
            refresh_url=f"{back}?onboarding=expired",
            return_url=f"{back}?onboarding=done",
        )
        return Response(s.StripeLinkSerializer({"url": link.url, "expires_at": _when(link.get("expires_at"))}).data)

    @extend_schema(
        summary="Ask Stripe for your payout account's state now (on return from onboarding)",
        request=s.AffiliateChoiceSerializer,
        responses={200: s.PayoutAccountSerializer, **STRIPE_RESPONSES},
    )
    @action(detail=False, methods=["post"])
    def refresh(self, request: Request) -> Response:
        body = s.AffiliateChoiceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        affiliate = self._affiliate(body.validated_data.get("affiliate"))
        account = connect.account_refresh(tenant=request.tenant, affiliate_id=affiliate.id)
        return Response(s.PayoutAccountSerializer(account).data)

    @extend_schema(
        summary="A single-use link into your Stripe Express dashboard",
        request=s.AffiliateChoiceSerializer,
        responses={200: s.StripeLinkSerializer, **STRIPE_RESPONSES},
    )
    @action(detail=False, methods=["post"], url_path="dashboard-link")
    def dashboard_link(self, request: Request) -> Response:
        body = s.AffiliateChoiceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        affiliate = self._affiliate(body.validated_data.get("affiliate"))
        url = connect.dashboard_link(tenant=request.tenant, affiliate_id=affiliate.id)
        return Response(s.StripeLinkSerializer({"url": url, "expires_at": None}).data)


def _when(unix: int | None) -> datetime | None:
    return datetime.fromtimestamp(unix, UTC) if unix else None
