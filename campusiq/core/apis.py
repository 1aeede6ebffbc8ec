from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from campusiq.core.imports import import_job_progress
from campusiq.core.models import ImportJob


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


class ImportJobProgressApi(APIView):
    """A big import's progress (rows done, errors so far, seconds left), polled by its admin page.
    Registry staff who may see import jobs only; any other caller gets 403, an unknown job 404."""

    @extend_schema(
        responses=inline_serializer(
            "ImportJobProgress",
            {
                "id": serializers.IntegerField(),
                "kind": serializers.CharField(),
                "status": serializers.CharField(),
                "rows_done": serializers.IntegerField(),
                "rows_total": serializers.IntegerField(),
                "errors": serializers.IntegerField(),
                "seconds_left": serializers.IntegerField(allow_null=True),
                "rows_written": serializers.IntegerField(),
            },
        )
    )
    def get(self, request: Request, job_id: int) -> Response:
        if not request.user.has_perm("core.view_importjob"):
            raise PermissionDenied
        return Response(import_job_progress(get_object_or_404(ImportJob, pk=job_id)))
