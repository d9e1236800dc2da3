"""The payouts REST API (`/api/v1/` on the tenant host). Views validate and delegate to the
billing services; querysets of affiliates' endpoints are narrowed to the caller's own rows.

Who may call what: staff (owner, admin), signed in, make and confirm runs, fund the ledger and
read it all; an affiliate, signed in, sets up and reads only its own payout account and payouts.
API keys reach none of it: keys are for merchants' servers sending conversions, and money (its
balance, who was paid what, Checkout links) stays behind a person's session. A key scope for
payouts can be added when a merchant's server has a use for it.

Stripe errors never come out as a 500: `StripeErrors` answers them as 503 `stripe_unavailable`
(Stripe unreachable, overloaded or rate limiting: try again), 422 `stripe_refused` (Stripe
refused this request's content), 409 `stripe_busy` (the same request is still in flight at
Stripe) or 502 `stripe_error` (the platform's own Stripe setup is at fault: logged).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import django_filters
from django.conf import settings
from django.db.models import Prefetch
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from affiliates import selectors as affiliate_selectors
from affiliates.api.permissions import IsAffiliate, IsStaff
from affiliates.models import Affiliate
from billing import funding, gateway, payouts, reversals, selectors
from billing.api import serializers as s
from billing.connect import services as connect
from billing.errors import BillingError
from billing.models import Funding, LedgerEntry, PayoutItem, PayoutRun
from core import money
from core.api.csv import csv_response
from core.api.errors import ErrorSerializer
from core.api.pagination import NewestFirst, Pages

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30


def billing_error_from(exc: gateway.GatewayError) -> BillingError:
    """What the caller is told when a Stripe call failed (see the module's docstring)."""
    if exc.code == "not_configured":
        return BillingError("payouts_not_configured", "Payouts are not set up on this platform.", status=503)
    if exc.transient:
        return BillingError(
            "stripe_unavailable", "Stripe could not be reached or is busy; try again in a minute.", status=503
        )
    if exc.code == "idempotency_key_in_use":
        return BillingError("stripe_busy", "Stripe is still working on the same request; try again.", status=409)
    if exc.refused_request:
        return BillingError("stripe_refused", f"Stripe refused the request ({exc.code}).", status=422)
    logger.error("Stripe refused the platform's request: %s (HTTP %s): %s", exc.code, exc.http_status, exc.message)
    return BillingError("stripe_error", "Stripe refused the platform's request; the operators are told.", status=502)


class StripeErrors:
    """For views that call Stripe (through the services): a GatewayError becomes a BillingError,
    which the API's exception handler answers with its status and code."""

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, gateway.GatewayError):
            exc = billing_error_from(exc)
        response = super().handle_exception(exc)  # type: ignore[misc]
        if response.status_code == 503:  # Stripe unavailable (also as the services say it)
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


_ERROR = ErrorSerializer
STRIPE_RESPONSES = {
    422: OpenApiResponse(_ERROR, description="Stripe refused the request (`stripe_refused`)."),
    502: OpenApiResponse(_ERROR, description="The platform's Stripe setup is at fault (`stripe_error`)."),
    503: OpenApiResponse(
        _ERROR, description="Stripe unreachable or busy (`stripe_unavailable`; retry after `Retry-After` seconds)."
    ),
}


# --- runs and items (staff) ------------------------------------------------------------------


class PayoutRunFilter(django_filters.FilterSet):
    class Meta:
        model = PayoutRun
        fields = ["program", "status"]


def _run_with_items():
    items = PayoutItem.objects.select_related("affiliate__user").order_by("id")
    return PayoutRun.objects.prefetch_related(Prefetch("items", queryset=items))


@extend_schema_view(
    list=extend_schema(summary="List payout runs (newest first)"),
    retrieve=extend_schema(summary="A payout run, with its items and who rolled over"),
)
class PayoutRunViewSet(StripeErrors, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [IsStaff]
    pagination_class = Pages
    filterset_class = PayoutRunFilter
    ordering_fields = ["id", "created_at"]

    def get_queryset(self):
        return PayoutRun.objects.all() if self.action == "list" else _run_with_items()

    def get_serializer_class(self):
        return s.PayoutRunSerializer if self.action == "list" else s.PayoutRunDetailSerializer

    def _detail(self, run: PayoutRun) -> dict[str, Any]:
        return s.PayoutRunDetailSerializer(_run_with_items().get(pk=run.pk)).data

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


class PayoutItemFilter(django_filters.FilterSet):
    class Meta:
        model = PayoutItem
        fields = ["run", "affiliate", "status"]


@extend_schema_view(
    list=extend_schema(summary="List payout items (newest first, cursor pages)"),
    retrieve=extend_schema(summary="A payout item"),
)
class PayoutItemViewSet(StripeErrors, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.PayoutItemSerializer
    permission_classes = [IsStaff]
    pagination_class = NewestFirst
    filterset_class = PayoutItemFilter
    ordering_fields = ["id"]

    def get_queryset(self):
        return PayoutItem.objects.select_related("affiliate__user")

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


# --- ledger (staff) --------------------------------------------------------------------------


class LedgerView(APIView):
    permission_classes = [IsStaff]

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
class LedgerEntryViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = s.LedgerEntrySerializer
    permission_classes = [IsStaff]
    pagination_class = NewestFirst
    filterset_class = LedgerEntryFilter
    ordering_fields = ["id"]

    def get_queryset(self):
        return LedgerEntry.objects.select_related("account")


# --- funding (staff) -------------------------------------------------------------------------


class FundingFilter(django_filters.FilterSet):
    class Meta:
        model = Funding
        fields = ["status", "currency"]


@extend_schema_view(
    list=extend_schema(summary="List fundings (newest first, cursor pages)"),
    retrieve=extend_schema(summary="A funding, as last known (POST .../refresh asks Stripe)"),
)
class FundingViewSet(StripeErrors, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.FundingSerializer
    permission_classes = [IsStaff]
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


# --- the affiliate's payout account ----------------------------------------------------------


def _own_affiliate(request: Request, affiliate_id: int | None) -> Affiliate:
    """The caller's affiliate (one per program it joined): the one named, or its only one."""
    own = list(Affiliate.objects.filter(user=request.user).select_related("user").order_by("id"))
    if affiliate_id is not None:
        for affiliate in own:
            if affiliate.id == affiliate_id:
                return affiliate
        raise BillingError("not_found", "You have no affiliate account with that id.", field="affiliate", status=404)
    if len(own) == 1:
        return own[0]
    if not own:
        raise BillingError("not_found", "You are not an affiliate of any program here.", status=404)
    raise BillingError(
        "affiliate_required", "You are in several programs: name the affiliate id to use.", field="affiliate"
    )


_AFFILIATE_PARAM = OpenApiParameter(
    "affiliate", OpenApiTypes.INT, description="Your affiliate id; needed only when you are in several programs."
)


class PayoutAccountView(StripeErrors, APIView):
    permission_classes = [IsAffiliate]

    @extend_schema(
        summary="Your payout account (Stripe), as last known",
        parameters=[s.AffiliateChoiceSerializer],
        responses={
            200: s.PayoutAccountSerializer,
            404: OpenApiResponse(_ERROR, description="No payout account yet (`no_payout_account`)."),
        },
    )
    def get(self, request: Request) -> Response:
        query = s.AffiliateChoiceSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        affiliate = _own_affiliate(request, query.validated_data.get("affiliate"))
        account = connect.account_for(tenant=request.tenant, affiliate_id=affiliate.id)
        if account is None:
            raise BillingError(
                "no_payout_account", "No payout account yet: POST /api/v1/payout-account/onboarding.", status=404
            )
        return Response(s.PayoutAccountSerializer(account).data)


class PayoutAccountOnboardingView(StripeErrors, APIView):
    permission_classes = [IsAffiliate]

    @extend_schema(
        summary="Set up (or finish setting up) your payout account",
        description="Creates your Stripe account the first time, then answers with a fresh, single-use link to "
        "Stripe's onboarding. Stripe sends you back to the portal when you are done or the link expired.",
        request=s.OnboardingSerializer,
        responses={200: s.StripeLinkSerializer, **STRIPE_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        body = s.OnboardingSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        affiliate = _own_affiliate(request, body.validated_data.get("affiliate"))
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


class PayoutAccountRefreshView(StripeErrors, APIView):
    permission_classes = [IsAffiliate]

    @extend_schema(
        summary="Ask Stripe for your payout account's state now (on return from onboarding)",
        request=s.AffiliateChoiceSerializer,
        responses={200: s.PayoutAccountSerializer, **STRIPE_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        body = s.AffiliateChoiceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        affiliate = _own_affiliate(request, body.validated_data.get("affiliate"))
        account = connect.account_refresh(tenant=request.tenant, affiliate_id=affiliate.id)
        return Response(s.PayoutAccountSerializer(account).data)


class PayoutAccountDashboardLinkView(StripeErrors, APIView):
    permission_classes = [IsAffiliate]

    @extend_schema(
        summary="A single-use link into your Stripe Express dashboard",
        request=s.AffiliateChoiceSerializer,
        responses={200: s.StripeLinkSerializer, **STRIPE_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        body = s.AffiliateChoiceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        affiliate = _own_affiliate(request, body.validated_data.get("affiliate"))
        url = connect.dashboard_link(tenant=request.tenant, affiliate_id=affiliate.id)
        return Response(s.StripeLinkSerializer({"url": url, "expires_at": None}).data)


def _when(unix: int | None) -> datetime | None:
    return datetime.fromtimestamp(unix, UTC) if unix else None


# --- the affiliate's payouts -----------------------------------------------------------------


class MyPayoutsView(APIView):
    permission_classes = [IsAffiliate]

    @extend_schema(
        summary="Your payouts (newest first), with the commissions each paid, and what rolled over",
        parameters=[
            OpenApiParameter("limit", OpenApiTypes.INT, description="Items per page (default 50, at most 500)."),
            OpenApiParameter("offset", OpenApiTypes.INT, description="Items to skip."),
        ],
        responses=s.MyPayoutsPageSerializer,
    )
    def get(self, request: Request) -> Response:
        ids = affiliate_selectors.affiliate_ids_of(request.user)
        paginator = Pages()
        page = paginator.paginate_queryset(selectors.payout_items_of_affiliates(ids), request, view=self)
        data = paginator.get_paginated_response(s.MyPayoutSerializer(page, many=True).data).data
        data["rolled_over"] = s.RolloverSerializer(selectors.rollovers_of_affiliates(ids), many=True).data
        data["bank_payouts"] = s.BankPayoutSerializer(selectors.bank_payouts_of_affiliates(ids), many=True).data
        return Response(data)


MY_PAYOUTS_CSV = [
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


class MyPayoutsCsvView(APIView):
    permission_classes = [IsAffiliate]

    @extend_schema(
        summary="Your payouts as CSV (one row per payout, newest first)",
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        items = selectors.payout_items_of_affiliates(affiliate_selectors.affiliate_ids_of(request.user))

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

        return csv_response("payouts.csv", MY_PAYOUTS_CSV, rows())
