"""The campus pages of the portal: lecturers' sections and grade sheets, advisors' dashboards. Their
patterns join portal/urls.py (namespace "portal")."""

from django.urls import path

from students import views

urlpatterns = [
    path("lecturer/sections/", views.lecturer_sections, name="lecturer-sections"),
    path("lecturer/sections/<int:section_id>/", views.section_detail, name="section-detail"),
    path(
        "lecturer/sections/<int:section_id>/assessments/<int:assessment_id>/grades/",
        views.grade_entry,
        name="grade-entry",
    ),
    path("advisor/", views.advisor_dashboard, name="advisor-dashboard"),
]
