from django.urls import path

from students import views

app_name = "portal"
urlpatterns = [
    path("", views.index, name="index"),
    path("student/", views.student_dashboard, name="student-dashboard"),
    path("student/profile/", views.student_profile, name="student-profile"),
    path("student/my-data.json", views.student_data_export, name="student-data-export"),
    path("lecturer/sections/", views.lecturer_sections, name="lecturer-sections"),
    path("lecturer/sections/<int:section_id>/", views.section_detail, name="section-detail"),
    path(
        "lecturer/sections/<int:section_id>/assessments/<int:assessment_id>/grades/",
        views.grade_entry,
        name="grade-entry",
    ),
    path("advisor/", views.advisor_dashboard, name="advisor-dashboard"),
    path("advisor/advisees/<int:student_id>/", views.advisee_detail, name="advisee-detail"),
]
