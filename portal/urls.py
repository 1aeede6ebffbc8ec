"""The portal's pages (included at /portal/, namespace "portal"): those composed here and the campus
pages of students/urls.py, under one namespace so their names stay what they have always been."""

from django.urls import path

from portal import advisees, views
from students.urls import urlpatterns as campus_urlpatterns

app_name = "portal"
urlpatterns = [
    path("", views.index, name="index"),
    path("student/", views.student_dashboard, name="student-dashboard"),
    path("student/profile/", views.student_profile, name="student-profile"),
    path("today/sessions/<int:session_id>/open/", views.today_session_open, name="today-session-open"),
    path("student/my-data.json", views.student_data_export, name="student-data-export"),
    path("advisor/advisees/<int:student_id>/", advisees.advisee_detail, name="advisee-detail"),
    *campus_urlpatterns,
]
