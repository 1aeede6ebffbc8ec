from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView


class ApiRootApi(APIView):
    """Entry point of API v1: links to the documentation and the caller's identity."""

    permission_classes = [AllowAny]

    @extend_schema(
        responses=inline_serializer(
            "ApiRoot",
            {"version": serializers.CharField(), "links": serializers.DictField(child=serializers.URLField())},
        )
    )
    def get(self, request: Request) -> Response:
        return Response(
            {
                "version": "1",
                "links": {
                    "me": reverse("api-me", request=request),
                    "schema": reverse("api-schema", request=request),
                    "docs": reverse("api-docs", request=request),
                },
            }
        )


class MeApi(APIView):
    """The authenticated caller."""

    @extend_schema(
        responses=inline_serializer(
            "Me",
            {"id": serializers.IntegerField(), "email": serializers.EmailField(), "name": serializers.CharField()},
        )
    )
    def get(self, request: Request) -> Response:
        user = request.user
        return Response({"id": user.pk, "email": user.email, "name": user.get_full_name()})
