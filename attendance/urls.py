"""The attendance pages. Included at the site root: the check-in link the QR code carries is short
(/c/<token>/), so the code stays small and easy to scan from the back of a lecture hall."""

from django.urls import path

from attendance import views

app_name = "attendance"
urlpatterns = [
    # Students
    path("c/<str:token>/", views.check_in_scan, name="check-in"),
    path("attendance/check-in/confirm/", views.check_in_confirm, name="check-in-confirm"),
    path("attendance/check-in/code/", views.check_in_code, name="check-in-code"),
    path("attendance/check-in/done/<int:record_id>/", views.check_in_done, name="check-in-done"),
    path("attendance/me/", views.my_attendance, name="my-attendance"),
    path("attendance/me/absences/<int:record_id>/excuse/", views.excuse_submit, name="excuse-submit"),
    # Lecturers (and registrars, admins)
    path("attendance/sections/<int:section_id>/sessions/", views.section_sessions, name="section-sessions"),
    path("attendance/sections/<int:section_id>/sessions/new/", views.session_create, name="session-create"),
    path("attendance/sections/<int:section_id>/sessions/series/", views.series_create, name="series-create"),
    path("attendance/sections/<int:section_id>/roster/", views.section_roster, name="section-roster"),
    path("attendance/sections/<int:section_id>/roster.csv", views.section_roster_csv, name="section-roster-csv"),
    path("attendance/sessions/<int:session_id>/", views.session_detail, name="session-detail"),
    path("attendance/sessions/<int:session_id>/open/", views.session_open, name="session-open"),
    path("attendance/sessions/<int:session_id>/close/", views.session_close, name="session-close"),
    path("attendance/sessions/<int:session_id>/cancel/", views.session_cancel, name="session-cancel"),
    path("attendance/sessions/<int:session_id>/display/", views.session_display, name="session-display"),
    path("attendance/sessions/<int:session_id>/display.json", views.session_display_json, name="session-display-json"),
    path("attendance/sessions/<int:session_id>/records/", views.record_set, name="record-set"),
    path("attendance/records/<int:record_id>/void/", views.record_void, name="record-void"),
    path("attendance/excuses/", views.excuses, name="excuses"),
    path("attendance/excuses/<int:excuse_id>/decide/", views.excuse_decide, name="excuse-decide"),
]
