from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.serializers import BaseSerializer

from affiliates import selectors, services
from affiliates.api import serializers as s
from affiliates.api.views.common import NoDelete
from affiliates.errors import AffiliateError
from affiliates.models import Link
from core.api.pagination import Pages
from core.api.viewsets import ScopedViewSet


@extend_schema_view(
    list=extend_schema(summary="List referral links"),
    create=extend_schema(summary="Create a named link"),
    retrieve=extend_schema(summary="A link"),
    partial_update=extend_schema(summary="Change a link", request=s.LinkUpdateSerializer),
)
class LinkViewSet(NoDelete, ScopedViewSet):
    # Affiliates make and change their own links; API keys only read them.
    scopes = {"list": "read", "retrieve": "read", "create": None, "partial_update": None}
    affiliate_field = "affiliate_id"
    queryset = Link.objects.select_related("affiliate__program")
    pagination_class = Pages
    filterset_fields = ["affiliate", "is_active"]

    def get_serializer_class(self) -> type[BaseSerializer[Link]]:
        return s.LinkUpdateSerializer if self.action == "partial_update" else s.LinkSerializer

    def perform_create(self, serializer: BaseSerializer[Link]) -> None:
        data = dict(serializer.validated_data)
        affiliate = data.pop("affiliate", None)
        if self.caller_is_affiliate():
            # An affiliate creates links for itself; one in several programs names which one.
            affiliate = selectors.affiliate_own(
                user=self.request.user, affiliate_id=affiliate.id if affiliate is not None else None
            )
        if affiliate is None:
            raise AffiliateError("affiliate_required", "Name the affiliate the link belongs to.", field="affiliate")
        serializer.instance = services.link_create(affiliate=affiliate, **data)

    def perform_update(self, serializer: BaseSerializer[Link]) -> None:
        serializer.instance = services.link_update(link=serializer.instance, **serializer.validated_data)
