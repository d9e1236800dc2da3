from __future__ import annotations

import django_filters
from django.contrib.auth import login
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from affiliates import services
from affiliates.api import serializers as s
from affiliates.models import Affiliate
from core.api.pagination import NewestFirst
from core.api.viewsets import ScopedViewSet


class AffiliateFilter(django_filters.FilterSet):
    email = django_filters.CharFilter(field_name="user__email", lookup_expr="iexact")

    class Meta:
        model = Affiliate
        fields = ["program", "status", "code", "email"]


@extend_schema_view(
    list=extend_schema(summary="List affiliates"),
    retrieve=extend_schema(summary="An affiliate"),
)
class AffiliateViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, ScopedViewSet):
    scopes = {"list": "read", "retrieve": "read", "apply": None, "approve": None, "reject": None, "suspend": None}
    staff_only = {"approve", "reject", "suspend"}
    public = {"apply"}
    affiliate_field = "id"  # an affiliate sees itself (once per program it joined)
    ordering_fields = ["id", "created_at", "code", "status"]
    serializer_class = s.AffiliateSerializer
    queryset = Affiliate.objects.select_related("user")
    pagination_class = NewestFirst
    filterset_class = AffiliateFilter

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
        program, code, parent_code = data["program"], data.get("code"), data.get("parent_code")
        user = request.user
        if user.is_authenticated and isinstance(user, User):
            affiliate = services.affiliate_apply(program=program, user=user, code=code, parent_code=parent_code)
        else:  # anonymous, or an API key (which has no one to enrol but the account it makes)
            affiliate = services.affiliate_register(
                program=program,
                email=data.get("email"),
                password=data.get("password"),
                name=data.get("name", ""),
                code=code,
                parent_code=parent_code,
            )
        if not request.user.is_authenticated:
            login(request, affiliate.user, backend="django.contrib.auth.backends.ModelBackend")
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
