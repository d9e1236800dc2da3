from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import mixins
from rest_framework.request import Request
from rest_framework.response import Response

from affiliates import conversions, selectors
from affiliates.api import serializers as s
from affiliates.models import Customer
from core.api.pagination import NewestFirst
from core.api.viewsets import ScopedViewSet


class CustomerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    # The merchant's customers: its staff and servers only.
    scopes = {"list": "read", "retrieve": "read", "create": "conversions:write"}
    staff_only = set(scopes)
    ordering_fields = ["id", "created_at"]
    serializer_class = s.CustomerSerializer
    queryset = Customer.objects.all()
    pagination_class = NewestFirst
    filterset_fields = ["program", "affiliate"]

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
