from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.serializers import MeSerializer


@extend_schema(summary="The signed-in user", responses=MeSerializer, tags=["accounts"])
@api_view(["GET"])
def me(request: Request) -> Response:
    return Response(MeSerializer(request.user, context={"request": request}).data)
