"""The tenant REST API (`/api/v1/` on the tenant host). Views validate and delegate to the
services; querysets are narrowed to the caller (an affiliate sees only its own rows)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import django_filters
from django.contrib.auth import login
from django.db import IntegrityError, transaction
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action, api_view, authentication_classes, permission_classes, throttle_classes
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from affiliates import commissions, conversions, destinations, selectors, services, tracking
from affiliates.api import serializers as s
from affiliates.api.permissions import IsStaff, StaffOrAffiliate, is_affiliate, scoped
from affiliates.api.throttles import TrackThrottle
from affiliates.errors import AffiliateError
from affiliates.models import (
    Affiliate,
    ApiKey,
    Click,
    Commission,
    CommissionRule,
    Conversion,
    Coupon,
    Customer,
    Link,
    Program,
)
from core import money
from core.api.csv import csv_response
from core.api.filters import UtcDateTimeFilter
from core.api.pagination import NewestFirst, Pages


class ClickPages(NewestFirst):
    ordering = ("-created_at", "-id")


def _own_ids(request: Request) -> list[int] | None:
    """None for staff and API keys (the whole tenant); the caller's affiliate ids otherwise."""
    if is_affiliate(request):
        return selectors.affiliate_ids_of(request.user)
    return None


def _mine(request: Request, qs, field: str = "affiliate_id__in"):
    """The whole queryset for staff and API keys; only the caller's rows for an affiliate."""
    ids = _own_ids(request)
    return qs if ids is None else qs.filter(**{field: ids})


class NoDeleteViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Rows that others refer to (programs, links, coupons) are deactivated, never deleted."""

    http_method_names = ["get", "post", "patch"]


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > 255 or any(not char.isprintable() for char in key):
        raise ValidationError({"Idempotency-Key": ["At most 255 printable characters."]})
    return key or None


# --- programs -------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List programs"),
    create=extend_schema(summary="Create a program"),
    retrieve=extend_schema(summary="A program"),
    partial_update=extend_schema(summary="Change a program's settings"),
)
class ProgramViewSet(NoDeleteViewSet):
    serializer_class = s.ProgramSerializer
    queryset = Program.objects.all()
    pagination_class = Pages

    def get_permissions(self):
        if self.action in ("list", "retrieve"):
            return [scoped("read", affiliates=True)()]
        return [IsStaff()]

    def get_queryset(self):
        return _mine(self.request, Program.objects.all(), "affiliates__id__in").distinct()

    def perform_create(self, serializer):
        serializer.instance = services.program_create(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.program_update(program=serializer.instance, **serializer.validated_data)


# --- commission rules -----------------------------------------------------------------------


class RuleFilter(django_filters.FilterSet):
    class Meta:
        model = CommissionRule
        fields = ["program", "is_active"]


@extend_schema_view(
    list=extend_schema(summary="List commission rules"),
    create=extend_schema(summary="Create a commission rule"),
    retrieve=extend_schema(summary="A commission rule"),
    partial_update=extend_schema(summary="Change a commission rule"),
    destroy=extend_schema(summary="Delete a commission rule (commissions keep their amounts)"),
)
class CommissionRuleViewSet(viewsets.ModelViewSet):
    serializer_class = s.CommissionRuleSerializer
    queryset = CommissionRule.objects.select_related("program").prefetch_related("affiliates")
    permission_classes = [IsStaff]
    pagination_class = Pages
    filterset_class = RuleFilter
    http_method_names = ["get", "post", "patch", "delete"]

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        affiliates = data.pop("affiliates", None)
        serializer.instance = services.rule_save(rule=CommissionRule(**data), affiliates=affiliates)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        affiliates = data.pop("affiliates", None)
        if "program" in data and data["program"] != serializer.instance.program:
            raise AffiliateError("program_locked", "A rule cannot move to another program.", field="program")
        for key, value in data.items():
            setattr(serializer.instance, key, value)
        serializer.instance = services.rule_save(rule=serializer.instance, affiliates=affiliates)


# --- affiliates -----------------------------------------------------------------------------


class AffiliateFilter(django_filters.FilterSet):
    email = django_filters.CharFilter(field_name="user__email", lookup_expr="iexact")

    class Meta:
        model = Affiliate
        fields = ["program", "status", "code", "email"]


@extend_schema_view(
    list=extend_schema(summary="List affiliates"),
    retrieve=extend_schema(summary="An affiliate"),
)
class AffiliateViewSet(viewsets.ReadOnlyModelViewSet):
    ordering_fields = ["id", "created_at", "code", "status"]
    serializer_class = s.AffiliateSerializer
    pagination_class = NewestFirst
    filterset_class = AffiliateFilter

    def get_permissions(self):
        if self.action == "apply":
            return [AllowAny()]
        if self.action in ("list", "retrieve"):
            return [scoped("read", affiliates=True)()]
        return [IsStaff()]

    def get_queryset(self):
        return _mine(self.request, Affiliate.objects.select_related("user"), "id__in")

    @extend_schema(
        summary="Apply to a program",
        description="Signed in: enrols you. Not signed in: creates your affiliate account (email and password) "
        "and signs you in. Auto-approving programs approve at once.",
        request=s.ApplySerializer,
        responses={201: s.AffiliateSerializer, 409: OpenApiResponse(description="Already applied, or code taken.")},
    )
    @action(detail=False, methods=["post"])
    def apply(self, request: Request) -> Response:
        body = s.ApplySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        with transaction.atomic():
            user = request.user if request.user.is_authenticated and isinstance(request.user, User) else None
            if user is None:
                if not data.get("email") or not data.get("password"):
                    raise AffiliateError("credentials_required", "Give an email and a password.", field="email")
                if User.objects.filter(email__iexact=data["email"]).exists():
                    raise AffiliateError(
                        "email_taken", "That email has an account here; sign in first.", field="email", status=409
                    )
                try:
                    with transaction.atomic():
                        user = User.objects.create_user(
                            data["email"], data["password"], name=data.get("name", ""), role=User.Role.AFFILIATE
                        )
                except IntegrityError:
                    # Two applications with one email raced past the check; the unique index decided.
                    raise AffiliateError(
                        "email_taken", "That email has an account here; sign in first.", field="email", status=409
                    ) from None
            affiliate = services.affiliate_apply(
                program=data["program"], user=user, code=data.get("code"), parent_code=data.get("parent_code")
            )
        if not request.user.is_authenticated:
            login(request._request, user, backend="django.contrib.auth.backends.ModelBackend")
        return Response(s.AffiliateSerializer(affiliate).data, status=status.HTTP_201_CREATED)

    def _status(self, request: Request, new_status: str) -> Response:
        body = s.ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        affiliate = services.affiliate_set_status(
            affiliate=self.get_object(), status=new_status, by=request.user, reason=body.validated_data["reason"]
        )
        return Response(s.AffiliateSerializer(affiliate).data)

    @extend_schema(summary="Approve an affiliate", request=s.ReasonSerializer, responses=s.AffiliateSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        return self._status(request, Affiliate.Status.APPROVED)

    @extend_schema(
        summary="Reject an application (reason required)", request=s.ReasonSerializer, responses=s.AffiliateSerializer
    )
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str) -> Response:
        return self._status(request, Affiliate.Status.REJECTED)

    @extend_schema(
        summary="Suspend an affiliate (reason required)", request=s.ReasonSerializer, responses=s.AffiliateSerializer
    )
    @action(detail=True, methods=["post"])
    def suspend(self, request: Request, pk: str) -> Response:
        return self._status(request, Affiliate.Status.SUSPENDED)


# --- links and coupons ----------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List referral links"),
    create=extend_schema(summary="Create a named link"),
    retrieve=extend_schema(summary="A link"),
    partial_update=extend_schema(summary="Change a link", request=s.LinkUpdateSerializer),
)
class LinkViewSet(NoDeleteViewSet):
    pagination_class = Pages
    filterset_fields = ["affiliate", "is_active"]

    def get_serializer_class(self):
        return s.LinkUpdateSerializer if self.action == "partial_update" else s.LinkSerializer

    def get_permissions(self):
        if self.action in ("list", "retrieve"):
            return [scoped("read", affiliates=True)()]
        return [StaffOrAffiliate()]

    def get_queryset(self):
        return _mine(self.request, Link.objects.select_related("affiliate__program"))

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        ids = _own_ids(self.request)
        affiliate = data.pop("affiliate", None)
        if ids is not None:
            # An affiliate creates links for itself; one in several programs names which one.
            own = Affiliate.objects.filter(id__in=ids)
            if affiliate is not None and affiliate.id not in ids:
                raise AffiliateError("not_found", "No such affiliate.", field="affiliate", status=404)
            affiliate = affiliate or (own.first() if len(ids) == 1 else None)
        if affiliate is None:
            raise AffiliateError("affiliate_required", "Name the affiliate the link belongs to.", field="affiliate")
        serializer.instance = services.link_create(affiliate=affiliate, **data)

    def perform_update(self, serializer):
        serializer.instance = services.link_update(link=serializer.instance, **serializer.validated_data)


@extend_schema_view(
    list=extend_schema(summary="List coupons"),
    create=extend_schema(summary="Assign a coupon code to an affiliate"),
    retrieve=extend_schema(summary="A coupon"),
    partial_update=extend_schema(summary="Activate or deactivate a coupon"),
)
class CouponViewSet(NoDeleteViewSet):
    serializer_class = s.CouponSerializer
    pagination_class = Pages
    filterset_fields = ["affiliate", "is_active"]

    def get_permissions(self):
        if self.action in ("list", "retrieve"):
            return [scoped("read", affiliates=True)()]
        return [IsStaff()]

    def get_queryset(self):
        return _mine(self.request, Coupon.objects.all())

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.coupon_create(affiliate=data["affiliate"], code=data["code"])

    def perform_update(self, serializer):
        # Only the active flag changes: a code that was handed out must keep meaning the same person.
        coupon = serializer.instance
        if "is_active" in serializer.validated_data:
            coupon.is_active = serializer.validated_data["is_active"]
            coupon.save(update_fields=["is_active"])


# --- clicks ---------------------------------------------------------------------------------


class ClickFilter(django_filters.FilterSet):
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Click
        fields = ["affiliate", "link", "program", "visitor_id", "created_after", "created_before"]


@extend_schema_view(
    list=extend_schema(summary="List clicks (newest first, cursor pages)"), retrieve=extend_schema(summary="A click")
)
class ClickViewSet(viewsets.ReadOnlyModelViewSet):
    ordering_fields = ["created_at"]
    serializer_class = s.ClickSerializer
    pagination_class = ClickPages
    filterset_class = ClickFilter

    def get_permissions(self):
        return [scoped("read", affiliates=True)()]

    def get_queryset(self):
        return _mine(self.request, Click.objects.all())


@extend_schema(
    summary="Register a click from the tracking snippet",
    description="Called by `/t.js` from the merchant's site (CORS: the program's allowed domains only). "
    "Unknown or inactive codes get 404 and record nothing.",
    request=s.TrackClickSerializer,
    responses={
        201: s.TrackedClickSerializer,
        200: s.TrackedClickSerializer,
        429: OpenApiResponse(description="Slow down."),
    },
    tags=["tracking"],
    auth=[],
)
@api_view(["POST", "OPTIONS"])
@authentication_classes([])
@permission_classes([AllowAny])
@throttle_classes([TrackThrottle])
def track_click(request: Request) -> Response:
    origin = request.META.get("HTTP_ORIGIN", "")
    if request.method == "OPTIONS":
        response = Response(status=status.HTTP_204_NO_CONTENT)
        return _with_cors(response, origin if _origin_allowed_any(origin) else None)
    body = s.TrackClickSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    target = tracking.target_resolve(code=body.validated_data["code"], slug=body.validated_data["slug"])
    allowed_origin = _cors_origin(origin, target)
    if target is None or not target.usable:
        return _with_cors(
            Response(
                {"error": {"code": "code_unknown", "message": "Unknown or inactive referral code.", "fields": {}}},
                status=404,
            ),
            allowed_origin,
        )
    if origin and allowed_origin is None:
        raise AffiliateError("origin_not_allowed", "This site is not one of the program's allowed domains.", status=403)
    data = body.validated_data
    result = tracking.click_record(
        target=target,
        visitor_id=data.get("visitor_id"),
        ip=tracking.client_ip(request.META),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        landing_url=data["landing_url"],
        referrer=data["referrer"],
        sub_ids=data["sub_ids"],
        utm=data["utm"],
        source=Click.Source.SCRIPT,
    )
    payload = {"click_id": result.click_id, "visitor_id": result.visitor_id, "cookie_days": target.cookie_days}
    code_status = status.HTTP_201_CREATED if result.recorded else status.HTTP_200_OK
    return _with_cors(Response(s.TrackedClickSerializer(payload).data, status=code_status), allowed_origin)


def _origin_host(origin: str) -> str:
    from urllib.parse import urlsplit

    try:
        return (urlsplit(origin).hostname or "").lower()
    except ValueError:
        return ""


def _cors_origin(origin: str, target: tracking.Target | None) -> str | None:
    if not origin or target is None:
        return None
    return origin if destinations.host_allowed(_origin_host(origin), target.allowed_domains) else None


def _origin_allowed_any(origin: str) -> bool:
    # A preflight carries no body, so it cannot name the program: allow an origin that any
    # active program of this tenant allows; the POST itself is checked against its program.
    host = _origin_host(origin)
    return bool(host) and any(
        destinations.host_allowed(host, domains)
        for domains in Program.objects.filter(is_active=True).values_list("allowed_domains", flat=True)
    )


def _with_cors(response: Response, origin: str | None) -> Response:
    if origin:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = "Content-Type"
        response["Access-Control-Max-Age"] = "600"
        response["Vary"] = "Origin"
    return response


# --- customers and conversions --------------------------------------------------------------


class CustomerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    ordering_fields = ["id", "created_at"]
    serializer_class = s.CustomerSerializer
    pagination_class = NewestFirst
    filterset_fields = ["program", "affiliate"]

    def get_permissions(self):
        if self.action == "create":
            return [scoped("conversions:write")()]
        return [scoped("read")()]

    def get_queryset(self):
        return Customer.objects.all()

    @extend_schema(
        summary="Record a customer (a signup or lead) and bind its visitor",
        request=s.CustomerInputSerializer,
        responses={201: s.CustomerSerializer, 200: s.CustomerSerializer},
        examples=[
            OpenApiExample(
                "Lead",
                value={
                    "customer_id": "cus_123",
                    "email": "ann@example.com",
                    "visitor_id": "0d9f1c52-5d8c-4a8e-9b53-3f8f5a0f6c1e",
                },
                request_only=True,
            )
        ],
    )
    def create(self, request: Request) -> Response:
        body = s.CustomerInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        customer, created = conversions.customer_upsert(
            program=selectors.program_resolve(data.get("program")),
            external_id=data["customer_id"],
            email=data["email"],
            visitor_id=data.get("visitor_id"),
            click_id=str(data["click_id"]) if data.get("click_id") else None,
            code=data.get("code"),
        )
        return Response(s.CustomerSerializer(customer).data, status=201 if created else 200)


class ConversionFilter(django_filters.FilterSet):
    occurred_after = UtcDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = UtcDateTimeFilter(field_name="occurred_at", lookup_expr="lt")
    affiliate = django_filters.NumberFilter(field_name="credits__affiliate_id", distinct=True)

    class Meta:
        model = Conversion
        fields = ["program", "event_type", "review", "external_id", "affiliate", "occurred_after", "occurred_before"]


_CONVERSION_CSV = [
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
_COMMISSION_CSV = [
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
    list=extend_schema(summary="List conversions (newest first, cursor pages)"),
    retrieve=extend_schema(summary="A conversion, with why it was credited"),
)
class ConversionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    ordering_fields = ["id", "occurred_at", "amount_minor"]
    serializer_class = s.ConversionSerializer
    pagination_class = NewestFirst
    filterset_class = ConversionFilter

    def get_permissions(self):
        if self.action in ("create", "refund"):
            return [scoped("conversions:write")()]
        if self.action == "review":
            return [IsStaff()]
        return [scoped("read", affiliates=True)()]

    def get_queryset(self):
        ids = _own_ids(self.request)
        qs = Conversion.objects.select_related("customer").prefetch_related("credits__conversion")
        return qs if ids is None else qs.filter(pk__in=selectors.conversions_for_affiliates(ids).values("pk"))

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

        return csv_response("conversions.csv", _CONVERSION_CSV, rows())


# --- commissions ----------------------------------------------------------------------------


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


@extend_schema_view(
    list=extend_schema(summary="List commissions (newest first, cursor pages)"),
    retrieve=extend_schema(summary="A commission"),
)
class CommissionViewSet(viewsets.ReadOnlyModelViewSet):
    ordering_fields = ["id", "created_at", "amount_minor", "approvable_at"]
    serializer_class = s.CommissionSerializer
    pagination_class = NewestFirst
    filterset_class = CommissionFilter

    def get_permissions(self):
        if self.action in ("approve", "reject"):
            return [IsStaff()]
        return [scoped("read", affiliates=True)()]

    def get_queryset(self):
        return _mine(self.request, Commission.objects.all())

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

        return csv_response("commissions.csv", _COMMISSION_CSV, rows())


# --- stats ----------------------------------------------------------------------------------


@extend_schema(
    summary="Stats: totals, daily series, top links and sources",
    description="Served from daily rollups. Affiliates always get their own figures.",
    parameters=[s.StatsQuerySerializer],
    responses=s.StatsSerializer,
    tags=["stats"],
)
@api_view(["GET"])
@permission_classes([scoped("read", affiliates=True)])
def stats(request: Request) -> Response:
    query = s.StatsQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    data = query.validated_data
    own = _own_ids(request)
    affiliate_ids = own
    if data.get("affiliate") is not None:
        if own is not None and data["affiliate"] not in own:
            raise AffiliateError("not_found", "No such affiliate.", field="affiliate", status=404)
        affiliate_ids = [data["affiliate"]]
    result = selectors.stats(
        date_from=data["date_from"],
        date_to=data["date_to"],
        program_id=data.get("program"),
        affiliate_ids=affiliate_ids,
        link_id=data.get("link"),
    )
    return Response(s.StatsSerializer(result).data)


# --- API keys -------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List API keys (never the keys themselves)"),
    retrieve=extend_schema(summary="An API key"),
)
class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.ApiKeySerializer
    permission_classes = [IsStaff]
    pagination_class = Pages
    queryset = ApiKey.objects.all()

    @extend_schema(
        summary="Create an API key (the key is shown once)",
        request=s.ApiKeySerializer,
        responses={201: s.ApiKeyCreatedSerializer},
    )
    def create(self, request: Request) -> Response:
        body = s.ApiKeySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        issued = services.api_key_create(
            name=body.validated_data["name"], scopes=body.validated_data["scopes"], by=request.user
        )
        data = s.ApiKeySerializer(issued.api_key).data | {"key": issued.secret}
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Revoke an API key", request=None, responses=s.ApiKeySerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:
        return Response(s.ApiKeySerializer(services.api_key_revoke(api_key=self.get_object())).data)
