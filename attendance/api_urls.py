from django.urls import path
from rest_framework.routers import SimpleRouter

from attendance import apis

router = SimpleRouter()
router.register("class-sessions", apis.ClassSessionViewSet, basename="classsession")
router.register("attendance-records", apis.AttendanceRecordViewSet, basename="attendancerecord")
router.register("attendance-rates", apis.AttendanceRateViewSet, basename="attendancerate")

urlpatterns = [
    path("check-ins/", apis.CheckInApi.as_view(), name="check-in"),
    *router.urls,
]
