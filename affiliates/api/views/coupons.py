from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.serializers import BaseSerializer

from affiliates import services
from affiliates.api import serializers as s
from affiliates.api.views.common import NoDelete
from affiliates.models import Coupon
from core.api.pagination import Pages
from core.api.viewsets import ScopedViewSet


@extend_schema_view(
    list=extend_schema(summary="List coupons"),
    create=extend_schema(summary="Assign a coupon code to an affiliate"),
    retrieve=extend_schema(summary="A coupon"),
    partial_update=extend_schema(summary="Activate or deactivate a coupon"),
)
class CouponViewSet(NoDelete, ScopedViewSet):
    scopes = {"list": "read", "retrieve": "read", "create": None, "partial_update": None}
    staff_only = {"create", "partial_update"}
    affiliate_field = "affiliate_id"
    serializer_class = s.CouponSerializer
    queryset = Coupon.objects.all()
    pagination_class = Pages
    filterset_fields = ["affiliate", "is_active"]

    def perform_create(self, serializer: BaseSerializer[Coupon]) -> None:
        data = serializer.validated_data
        serializer.instance = services.coupon_create(affiliate=data["affiliate"], code=data["code"])

    def perform_update(self, serializer: BaseSerializer[Coupon]) -> None:
        serializer.instance = services.coupon_update(
            coupon=serializer.instance, is_active=serializer.validated_data.get("is_active")
        )
