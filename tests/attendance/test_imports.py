"""Registrars' imports of class sessions and attendance marks (long, and mod_attendance's wide export),
through the admin's preview and confirmation: the preview writes nothing, errors are listed by row,
one bad row writes nothing, importing the same file again changes nothing, and marks are written by
attendance_marks_save (one audit entry per session)."""

import csv
import datetime
import io
import zoneinfo

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.roles import Role
from attendance.models import AttendanceRecord, ClassSession
from attendance.resources import session_start_read
from campusiq.core.models import AuditLogEntry
from tests.factories import (
    ClassSessionFactory,
    CourseFactory,
    EnrollmentFactory,
    SectionFactory,
    StudentFactory,
    TermFactory,
    UserFactory,
)
from tests.support.uploads import csv_upload

pytestmark = pytest.mark.django_db
LISBON = zoneinfo.ZoneInfo("Europe/Lisbon")


@pytest.fixture
def registrar_client(client):
    client.force_login(UserFactory(roles=[Role.REGISTRAR]))
    return client


@pytest.fixture
def campus():
    """Section CS101-A of 2026 Autumn with two sessions (Mondays 10:00 Lisbon time), students Ada and
    Bo enrolled, Cy enrolled elsewhere only."""
    term = TermFactory(name="2026 Autumn")
    section = SectionFactory(term=term, course=CourseFactory(code="CS101"), code="A")
    elsewhere = SectionFactory(term=term, course=CourseFactory(code="MA201"), code="A")
    ada = StudentFactory(student_number="S1001", user__email="ada@campus.example")
    bo = StudentFactory(student_number="S1002", user__email="bo@campus.example")
    cy = StudentFactory(student_number="S1003", user__email="cy@campus.example")
    for student in (ada, bo):
        EnrollmentFactory(student=student, section=section)
    EnrollmentFactory(student=cy, section=elsewhere)
    first, second = (
        ClassSessionFactory(
            section=section,
            starts_at=datetime.datetime(2026, 9, day, 10, 0, tzinfo=LISBON),
            ends_at=datetime.datetime(2026, 9, day, 11, 30, tzinfo=LISBON),
        )
        for day in (14, 21)
    )
    return {"section": section, "ada": ada, "bo": bo, "cy": cy, "first": first, "second": second}


def xlsx_upload(rows: list[list], name: str = "upload.xlsx") -> SimpleUploadedFile:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return SimpleUploadedFile(name, buffer.getvalue())


def preview(client, model_name: str, upload, *, file_format: str = "0", resource: str = "0"):
    url = reverse(f"admin:attendance_{model_name}_import")
    response = client.post(url, {"resource": resource, "format": file_format, "import_file": upload})
    assert response.status_code == 200
    return response


def confirm(client, model_name: str, preview_response):
    confirm_form = preview_response.context["confirm_form"]
    url = reverse(f"admin:attendance_{model_name}_process_import")
    return client.post(url, confirm_form.initial, follow=True)


def errors_of(response) -> list[tuple[int | None, str, str]]:
    return [(error.row, error.column, error.message) for error in response.context["import_row_errors"]]


def statuses() -> dict[tuple[int, str], str]:
    records = AttendanceRecord.objects.select_related("student")
    return {(record.session_id, record.student.student_number): record.status for record in records}


# --- Sessions -----------------------------------------------------------------------------------


def session_row(**overrides) -> dict:
    return {
        "course": "CS101",
        "term": "2026 Autumn",
        "section": "A",
        "date": "2026-10-05",
        "start": "14:00",
        "end": "15:30",
        "room": "B-201",
        "state": "",
    } | overrides


def test_sessions_import_previews_then_creates_through_the_service(registrar_client, campus):
    rows = [session_row(), session_row(date="2026-10-12", room="")]
    before = ClassSession.objects.count()
    previewed = preview(registrar_client, "classsession", csv_upload(rows))
    assert "import_row_errors" not in previewed.context
    assert ClassSession.objects.count() == before  # the preview wrote nothing

    confirm(registrar_client, "classsession", previewed)
    created = ClassSession.objects.filter(starts_at__month=10).order_by("starts_at")
    assert [(s.starts_at, s.ends_at, s.room, s.state) for s in created] == [
        (datetime.datetime(2026, 10, 5, 14, 0, tzinfo=LISBON), datetime.datetime(2026, 10, 5, 15, 30, tzinfo=LISBON),
         "B-201", "scheduled"),
        (datetime.datetime(2026, 10, 12, 14, 0, tzinfo=LISBON), datetime.datetime(2026, 10, 12, 15, 30, tzinfo=LISBON),
         "", "scheduled"),
    ]  # fmt: skip
    assert AuditLogEntry.objects.filter(verb="class_session.created").count() == 2


def test_importing_the_same_sessions_again_changes_nothing(registrar_client, campus):
    upload = [session_row(), session_row(date="2026-10-12")]
    confirm(registrar_client, "classsession", preview(registrar_client, "classsession", csv_upload(upload)))
    count, audits = ClassSession.objects.count(), AuditLogEntry.objects.count()
    again = preview(registrar_client, "classsession", csv_upload(upload))
    assert [row.import_type for row in again.context["result"].rows] == ["skip", "skip"]
    confirm(registrar_client, "classsession", again)
    assert (ClassSession.objects.count(), AuditLogEntry.objects.count()) == (count, audits)


def test_a_cancelled_row_cancels_the_existing_session_and_a_moved_one_is_refused(registrar_client, campus):
    confirm(registrar_client, "classsession", preview(registrar_client, "classsession", csv_upload([session_row()])))
    confirm(
        registrar_client,
        "classsession",
        preview(registrar_client, "classsession", csv_upload([session_row(state="Cancelled")])),
    )
    session = ClassSession.objects.get(starts_at__month=10)
    assert session.state == "cancelled"
    moved = preview(registrar_client, "classsession", csv_upload([session_row(end="16:00", state="cancelled")]))
    [(row, _column, message)] = errors_of(moved)
    assert row == 1 and "another end" in message


@pytest.mark.parametrize(
    ("bad", "column", "message"),
    [
        ({"course": "NOPE"}, "section", "No section NOPE-A in term 2026 Autumn."),
        ({"start": "25:00"}, "start", "'25:00' is not a time: write it as HH:MM, as in 09:30."),
        ({"end": "13:00"}, "end", "The session must end after it starts."),
        ({"date": "next Monday"}, "date", "'next Monday' is not a date: write it as YYYY-MM-DD."),
        ({"date": "2027-03-01"}, "", "The session must fall within term 2026 Autumn."),
        ({"state": "closed"}, "state", "An imported session is scheduled or cancelled."),
    ],
)
def test_one_bad_session_row_writes_nothing_and_names_its_error(registrar_client, campus, bad, column, message):
    before = ClassSession.objects.count()
    rows = [session_row(), session_row(**({"date": "2026-10-12"} | bad))]
    response = preview(registrar_client, "classsession", csv_upload(rows))
    assert (2, column, message) in errors_of(response)
    assert "confirm_form" not in response.context or response.context["confirm_form"] is None
    assert ClassSession.objects.count() == before


# --- Marks, long shape ----------------------------------------------------------------------------


def mark_row(number: str, start: str, status: str, **overrides) -> dict:
    return {
        "student_number": number,
        "course": "CS101",
        "term": "2026 Autumn",
        "section": "A",
        "session": start,
        "status": status,
    } | overrides


def test_long_marks_are_saved_per_session_by_the_bulk_service(registrar_client, campus):
    rows = [
        mark_row("S1001", "2026-09-14 10:00", "P"),
        mark_row("S1002", "2026-09-14 10:00", "late"),
        mark_row("S1001", "2026-09-21 10:00", "Absent"),
    ]
    previewed = preview(registrar_client, "attendancerecord", csv_upload(rows))
    assert "import_row_errors" not in previewed.context
    assert not AttendanceRecord.objects.exists()

    confirm(registrar_client, "attendancerecord", previewed)
    first, second = campus["first"].pk, campus["second"].pk
    assert statuses() == {(first, "S1001"): "present", (first, "S1002"): "late", (second, "S1001"): "absent"}
    assert AuditLogEntry.objects.filter(verb="attendance.marks_saved").count() == 2  # one per session
    assert set(AttendanceRecord.objects.values_list("note", flat=True)) == {"Imported from upload.csv"}

    audits = AuditLogEntry.objects.count()
    again = preview(registrar_client, "attendancerecord", csv_upload(rows))
    assert {row.import_type for row in again.context["result"].rows} == {"skip"}
    confirm(registrar_client, "attendancerecord", again)
    assert AuditLogEntry.objects.count() == audits


def test_bad_mark_rows_are_listed_per_row_and_nothing_is_written(registrar_client, campus):
    rows = [
        mark_row("S1001", "2026-09-14 10:00", "P"),  # fine, but the file has bad rows
        mark_row("S9999", "2026-09-14 10:00", "P"),
        mark_row("S1002", "2026-09-15 10:00", "P"),
        mark_row("S1002", "2026-09-14 10:00", "X"),
        mark_row("S1003", "2026-09-14 10:00", "P"),
        mark_row("S1002", "14 Sept", "P"),
    ]
    response = preview(registrar_client, "attendancerecord", csv_upload(rows))
    errors = errors_of(response)
    assert (2, "student_number", "No student has the number S9999.") in errors
    assert (3, "session", "CS101-A (2026 Autumn) has no session starting 2026-09-15 10:00.") in errors
    assert any(row == 4 and column == "status" and "'X' is not a status" in m for row, column, m in errors)
    assert (5, "status", "S1003 was not enrolled in CS101-A (2026 Autumn) on the session's day.") in errors
    assert any(row == 6 and column == "session" for row, column, _ in errors)
    assert 1 not in {row for row, _, _ in errors}
    assert not AttendanceRecord.objects.exists()


def test_marks_of_a_cancelled_session_are_refused(registrar_client, campus):
    ClassSession.objects.filter(pk=campus["first"].pk).update(state="cancelled")
    response = preview(registrar_client, "attendancerecord", csv_upload([mark_row("S1001", "2026-09-14 10:00", "P")]))
    [(row, _column, message)] = errors_of(response)
    assert row == 1 and "was cancelled" in message
    assert not AttendanceRecord.objects.exists()


# --- Marks, mod_attendance's wide export ------------------------------------------------------------


def moodle_export(*student_rows: list) -> list[list]:
    """An Attendance plugin "Export" as Moodle downloads it in XLSX: course and group lines, then the
    table with the chosen identity columns, a column per session ("<date> <time> All students"), the
    count per status acronym and the summary columns."""
    sessions = ["14 Sep 2026 10.00AM All students", "21 Sep 2026 10.00AM All students"]
    header = ["Last name", "First name", "ID number", "Email address", *sessions]
    header += ["P", "L", "E", "A", "Taken sessions", "Points", "Percentage"]
    return [["Course: CS101 Programming"], ["Group: All participants"], [], header, *student_rows]


def test_mod_attendances_wide_export_is_read_student_by_id_number_or_email(registrar_client, campus):
    file = moodle_export(
        ["Lovelace", "Ada", "S1001", "ada@campus.example", "P", "L", 1, 1, 0, 0, 2, "3 / 4", "75.0%"],
        ["Bo", "Bo", "", "bo@campus.example", "E", "?", 0, 0, 1, 0, 1, "0 / 0", "0.0%"],
    )
    previewed = preview(registrar_client, "attendancerecord", xlsx_upload(file), file_format="1", resource="1")
    assert "import_row_errors" not in previewed.context, errors_of(previewed)
    assert not AttendanceRecord.objects.exists()
    confirm(registrar_client, "attendancerecord", previewed)
    first, second = campus["first"].pk, campus["second"].pk
    assert statuses() == {(first, "S1001"): "present", (second, "S1001"): "late", (first, "S1002"): "excused"}

    again = preview(registrar_client, "attendancerecord", xlsx_upload(file), file_format="1", resource="1")
    assert {row.import_type for row in again.context["result"].rows} == {"skip"}


def test_a_bad_cell_of_the_wide_export_names_its_row_and_column_and_writes_nothing(registrar_client, campus):
    file = moodle_export(
        ["Lovelace", "Ada", "S1001", "", "P", "X", 1, 0, 0, 0, 1, "2 / 2", "100.0%"],
        ["Nobody", "No", "S7777", "", "P", "P", 2, 0, 0, 0, 2, "4 / 4", "100.0%"],
        ["Cy", "Cy", "S1003", "", "P", "", 1, 0, 0, 0, 1, "2 / 2", "100.0%"],
    )
    response = preview(registrar_client, "attendancerecord", xlsx_upload(file), file_format="1", resource="1")
    errors = errors_of(response)
    assert any(r == 1 and c == "21 Sep 2026 10.00AM All students" and "'X' is not a status" in m for r, c, m in errors)
    assert (2, "", "No student is S7777.") in errors
    first_column = "14 Sep 2026 10.00AM All students"
    assert (3, first_column, f"S1003 has no session of their sections at {first_column}.") in errors
    assert not AttendanceRecord.objects.exists()


def moodle_csv_upload(rows: list[list], *, delimiter: str = ",") -> SimpleUploadedFile:
    """The same export as Moodle downloads it in CSV: UTF-8 with a byte order mark, the course and group
    lines as short rows above the table, CRLF line ends."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows(rows)
    return SimpleUploadedFile("attendance.csv", buffer.getvalue().encode("utf-8-sig"), content_type="text/csv")


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_mod_attendances_csv_export_is_read_with_its_header_lines_and_bom(registrar_client, campus, delimiter):
    file = moodle_export(
        ["Lovelace", "Ada", "S1001", "ada@campus.example", "P", "L", 1, 1, 0, 0, 2, "3 / 4", "75.0%"],
        ["Bo", "Bo", "", "Bo@Campus.Example", "E", "?", 0, 0, 1, 0, 1, "0 / 0", "0.0%"],
    )
    upload = moodle_csv_upload(file, delimiter=delimiter)
    previewed = preview(registrar_client, "attendancerecord", upload, file_format="0", resource="1")
    assert "import_row_errors" not in previewed.context, errors_of(previewed)
    assert len(previewed.context["result"].rows) == 2
    assert not AttendanceRecord.objects.exists()

    confirm(registrar_client, "attendancerecord", previewed)
    first, second = campus["first"].pk, campus["second"].pk
    assert statuses() == {(first, "S1001"): "present", (second, "S1001"): "late", (first, "S1002"): "excused"}


def test_moodles_columns_are_read_whatever_their_case(registrar_client, campus):
    header = ["LAST NAME", "first name", "email ADDRESS", "14 Sep 2026 10.00AM All students"]
    file = [["Course: CS101 Programming"], header, ["Lovelace", "Ada", "ADA@campus.example", "P"]]
    previewed = preview(registrar_client, "attendancerecord", moodle_csv_upload(file), resource="1")
    assert "import_row_errors" not in previewed.context, errors_of(previewed)
    confirm(registrar_client, "attendancerecord", previewed)
    assert statuses() == {(campus["first"].pk, "S1001"): "present"}


def test_bad_rows_of_a_moodle_csv_get_their_own_errors_and_nothing_is_written(registrar_client, campus):
    file = moodle_export(
        ["Lovelace", "Ada", "S1001", "", "P", "X", 1, 0, 0, 0, 1, "2 / 2", "100.0%"],
        ["Nobody", "No", "S7777", "", "P", "P", 2, 0, 0, 0, 2, "4 / 4", "100.0%"],
        ["Bo", "Bo", "S1002", "", "P", "P", 2, 0, 0, 0, 2, "4 / 4", "100.0%"],
    )
    response = preview(registrar_client, "attendancerecord", moodle_csv_upload(file), resource="1")
    errors = errors_of(response)
    assert any(r == 1 and c == "21 Sep 2026 10.00AM All students" and "'X' is not a status" in m for r, c, m in errors)
    assert (2, "", "No student is S7777.") in errors
    assert not any(r == 3 for r, _, _ in errors)
    assert not AttendanceRecord.objects.exists()


def test_a_moodle_csv_row_longer_than_its_header_is_refused_readably(registrar_client, campus):
    header = ["Last name", "First name", "ID number", "14 Sep 2026 10.00AM All students"]
    file = [["Course: CS101 Programming"], header, ["Lovelace", "Ada", "S1001", "P", "stray"]]
    response = preview(registrar_client, "attendancerecord", moodle_csv_upload(file), resource="1")
    assert response.context["form"].errors["import_file"] == ["Row 1 has more cells than the header row names columns."]
    assert not AttendanceRecord.objects.exists()


def test_a_long_marks_csv_is_still_read_as_tablib_reads_it(registrar_client, campus):
    upload = csv_upload([mark_row("S1001", "2026-09-14 10:00", "P")])
    previewed = preview(registrar_client, "attendancerecord", upload, resource="0")
    assert "import_row_errors" not in previewed.context, errors_of(previewed)
    confirm(registrar_client, "attendancerecord", previewed)
    assert statuses() == {(campus["first"].pk, "S1001"): "present"}


def test_a_file_with_no_session_column_says_so(registrar_client, campus):
    file = [["Last name", "First name", "ID number"], ["Lovelace", "Ada", "S1001"]]
    response = preview(registrar_client, "attendancerecord", xlsx_upload(file), file_format="1", resource="1")
    assert any("No column is headed by a session's date and time" in m for _, _, m in errors_of(response))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("14 Sep 2026 10.00AM All students", (2026, 9, 14, 10, 0)),
        ("14 Sep 2026 02.30PM Group B", (2026, 9, 14, 14, 30)),
        ("14 Sep 2026 12.15AM All students", (2026, 9, 14, 0, 15)),
        ("14.09.2026 10.00 Common", (2026, 9, 14, 10, 0)),
        ("14/09/2026 10:00", (2026, 9, 14, 10, 0)),
        ("2026-09-14 10:00", (2026, 9, 14, 10, 0)),
        ("Taken sessions", None),
        ("P", None),
        ("31 Feb 2026 10.00AM", None),
    ],
)
def test_session_headers_are_read_in_campus_time(text, expected):
    start = session_start_read(text)
    assert start == (None if expected is None else datetime.datetime(*expected, tzinfo=LISBON))


def test_the_import_pages_offer_both_shapes_of_marks_and_templates(registrar_client):
    sessions = registrar_client.get(reverse("admin:attendance_classsession_import"))
    assert sessions.status_code == 200
    template = registrar_client.get(reverse("admin:attendance_classsession_import_template", args=["csv"]))
    assert template.content.decode().splitlines()[0] == "course,term,section,date,start,end,room,state"
    marks = registrar_client.get(reverse("admin:attendance_attendancerecord_import"))
    assert marks.status_code == 200
    assert b"Moodle Attendance export" in marks.content and b"Marks, one a row" in marks.content


def test_importing_marks_needs_the_registrars_permissions(client, campus):
    client.force_login(UserFactory(roles=[Role.LECTURER], is_staff=True))
    upload = csv_upload([mark_row("S1001", "2026-09-14 10:00", "P")])
    response = client.post(reverse("admin:attendance_attendancerecord_import"), {"format": "0", "import_file": upload})
    assert response.status_code == 403
    assert not AttendanceRecord.objects.exists()
