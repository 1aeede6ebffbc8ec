"""Views that fail on purpose, mounted under /api/ for the error-format tests only."""

from django.db import OperationalError
from django.urls import path
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from campusiq.core.errors import ConflictError
from campusiq.urls import handler400, handler403, handler404, handler500
from campusiq.urls import urlpatterns as project_urlpatterns


class EnrollmentInput(serializers.Serializer):
    student_number = serializers.RegexField(r"^S\d{6}$")
    credits = serializers.IntegerField(min_value=1, max_value=60)
    tags = serializers.ListField(child=serializers.CharField(max_length=5), required=False)


class EchoApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    def post(self, request):
        data = EnrollmentInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(data.validated_data, status=201)


class ConflictApi(APIView):
    permission_classes = [AllowAny]

    def post(self, request):
        raise ConflictError("already_enrolled", "The student is already enrolled in this section.")


class CrashApi(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        raise RuntimeError("secret internal detail: password=hunter2")


def portal_crash(request):
    raise RuntimeError("portal failure")


DATABASE_DOWN = "connection to server at 127.0.0.1, port 5432 failed: Connection refused"


class DatabaseDownApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    def post(self, request):
        raise OperationalError(DATABASE_DOWN)


def portal_database_down(request):
    raise OperationalError(DATABASE_DOWN)


urlpatterns = [
    path("api/test/echo/", EchoApi.as_view()),
    path("api/test/conflict/", ConflictApi.as_view()),
    path("api/test/crash/", CrashApi.as_view()),
    path("test/crash/", portal_crash),
    path("api/test/database-down/", DatabaseDownApi.as_view()),
    path("test/database-down/", portal_database_down),
    *project_urlpatterns,
]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
