from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from affiliates import selectors
from affiliates.api import serializers as s
from core.api.viewsets import ScopedAPIView


class StatsView(ScopedAPIView):
    scopes = {"get": "read"}
    http_method_names = ["get", "options"]

    @extend_schema(
        summary="Stats: totals, daily series, top links and sources",
        description="Served from daily rollups. Affiliates always get their own figures.",
        parameters=[s.StatsQuerySerializer],
        responses=s.StatsSerializer,
        tags=["stats"],
    )
    def get(self, request: Request) -> Response:
        query = s.StatsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        named = data.get("affiliate")
        affiliate_ids = None if named is None else [named]
        if self.caller_is_affiliate():
            affiliate_ids = (
                self.own_affiliate_ids()
                if named is None
                else [selectors.affiliate_own(user=request.user, affiliate_id=named).id]
            )
        result = selectors.stats(
            date_from=data["date_from"],
            date_to=data["date_to"],
            program_id=data.get("program"),
            affiliate_ids=affiliate_ids,
            link_id=data.get("link"),
        )
        return Response(s.StatsSerializer(result).data)
