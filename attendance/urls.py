"""The attendance pages. Included at the site root: the check-in link the QR code carries is short
(/c/<token>/), so the code stays small and easy to scan from the back of a lecture hall."""

from django.urls import path

from attendance.views import (
    calendar,
    check_in,
    display,
    excuses,
    grading,
    groups,
    my_attendance,
    roster,
    sessions,
    taking,
)

app_name = "attendance"
urlpatterns = [
    # Students
    path("c/<str:token>/", check_in.check_in_scan, name="check-in"),
    path("attendance/check-in/confirm/", check_in.check_in_confirm, name="check-in-confirm"),
    path("attendance/check-in/code/", check_in.check_in_code, name="check-in-code"),
    path("attendance/check-in/done/<int:record_id>/", check_in.check_in_done, name="check-in-done"),
    path("attendance/me/", my_attendance.my_attendance, name="my-attendance"),
    path("attendance/me/absences/<int:record_id>/excuse/", excuses.excuse_submit, name="excuse-submit"),
    # Students and lecturers: their private timetable feed
    path("attendance/calendar/", calendar.calendar_feed_page, name="calendar"),
    path("attendance/calendar/revoke/", calendar.calendar_feed_revoke_view, name="calendar-revoke"),
    path("calendar/<str:token>.ics", calendar.calendar_feed, name="calendar-feed"),
    path("attendance/me/advance-absences/", excuses.advance_absences, name="advance-absences"),
    path(
        "attendance/me/advance-absences/<int:absence_id>/withdraw/",
        excuses.advance_absence_withdraw_view,
        name="advance-absence-withdraw",
    ),
    path(
        "attendance/advance-absences/<int:absence_id>/attachment/",
        excuses.advance_absence_attachment,
        name="advance-absence-attachment",
    ),
    # Lecturers (and registrars, admins)
    path("attendance/sections/<int:section_id>/sessions/", sessions.section_sessions, name="section-sessions"),
    path("attendance/sections/<int:section_id>/sessions/new/", sessions.session_create, name="session-create"),
    path("attendance/sections/<int:section_id>/sessions/series/", sessions.series_create, name="series-create"),
    path("attendance/sections/<int:section_id>/sessions/series/cancel/", sessions.series_cancel, name="series-cancel"),
    path(
        "attendance/sections/<int:section_id>/attendance-grade/disable/",
        grading.attendance_grade_disable,
        name="attendance-grade-disable",
    ),
    path("attendance/sections/<int:section_id>/roster/", roster.section_roster, name="section-roster"),
    path("attendance/sections/<int:section_id>/roster.csv", roster.section_roster_csv, name="section-roster-csv"),
    path("attendance/sections/<int:section_id>/attendance-grade/", grading.attendance_grade, name="attendance-grade"),
    path("attendance/sections/<int:section_id>/roster.xlsx", roster.section_roster_xlsx, name="section-roster-xlsx"),
    path("attendance/sessions/<int:session_id>/", sessions.session_detail, name="session-detail"),
    path("attendance/sessions/<int:session_id>/open/", sessions.session_open, name="session-open"),
    path("attendance/sessions/<int:session_id>/close/", sessions.session_close, name="session-close"),
    path("attendance/sessions/<int:session_id>/cancel/", sessions.session_cancel, name="session-cancel"),
    path("attendance/sessions/<int:session_id>/take/", taking.session_take, name="session-take"),
    path("attendance/sessions/<int:session_id>/marks.json", taking.session_marks_json, name="session-marks-json"),
    path("attendance/sessions/<int:session_id>/display/", display.session_display, name="session-display"),
    path(
        "attendance/sessions/<int:session_id>/display.json", display.session_display_json, name="session-display-json"
    ),
    path("attendance/sessions/<int:session_id>/records/", sessions.record_set, name="record-set"),
    path("attendance/records/<int:record_id>/void/", sessions.record_void, name="record-void"),
    path("attendance/excuses/", excuses.excuses, name="excuses"),
    path("attendance/excuses/<int:excuse_id>/decide/", excuses.excuse_decide, name="excuse-decide"),
    path(
        "attendance/advance-absences/<int:absence_id>/decide/",
        excuses.advance_absence_decide_view,
        name="advance-absence-decide",
    ),
    path("attendance/sections/<int:section_id>/groups/", groups.section_groups_page, name="section-groups"),
    path("attendance/groups/<int:group_id>/", groups.group_detail, name="group-detail"),
    path("attendance/groups/<int:group_id>/members/", groups.group_members, name="group-members"),
    path("attendance/groups/<int:group_id>/delete/", groups.group_delete, name="group-delete"),
    path("attendance/sections/<int:section_id>/networks/", groups.section_networks, name="section-networks"),
]
