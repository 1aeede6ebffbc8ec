"""The at-risk pages of the portal (included at /portal/)."""

from django.urls import path

from predictions import views

app_name = "predictions"
urlpatterns = [
    path("at-risk/", views.at_risk_dashboard, name="at-risk"),
    path("at-risk/export.csv", views.at_risk_csv, name="at-risk-csv"),
    path("at-risk/report/", views.intervention_report, name="report"),
    path("at-risk/students/<int:student_id>/", views.student_risk, name="student-risk"),
    path("at-risk/students/<int:student_id>/interventions/", views.intervention_create, name="intervention-create"),
    path(
        "at-risk/interventions/<int:intervention_id>/close/", views.intervention_close_view, name="intervention-close"
    ),
    path("at-risk/students/<int:student_id>/feedback/", views.feedback_create, name="feedback-create"),
]
