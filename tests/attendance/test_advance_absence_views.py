"""The pages of absences reported in advance: the student's form and list, the lecturers' decisions
beside the excuses, the document served only to those who may see it."""

import datetime

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.roles import Role
from attendance.models import AdvanceAbsence
from tests.factories import AdvanceAbsenceFactory, EnrollmentFactory, StudentFactory, UserFactory

pytestmark = pytest.mark.django_db
MONDAY = datetime.datetime(2026, 9, 14, 8, 0, tzinfo=datetime.UTC)  # the factories' term's first day
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\n"
PAGE = reverse("attendance:advance-absences")


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(MONDAY, tick=False) as traveller:
        yield traveller


def signed_in(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def report(section, **fields):
    return {"section": section.pk, "first_day": "2026-09-15", "last_day": "2026-09-16", "reason": "Surgery", **fields}


def test_a_student_reports_an_absence_and_the_lecturer_approves_it(student, section, lecturer):
    client = signed_in(student.user)
    form = client.get(PAGE)
    assert form.status_code == 200 and section.course.code.encode() in form.content
    attachment = SimpleUploadedFile("certificate.pdf", PDF, content_type="application/pdf")
    sent = client.post(PAGE, report(section, attachment=attachment))
    assert sent.status_code == 302
    absence = AdvanceAbsence.objects.get()
    assert (absence.student, absence.section, absence.state) == (student, section, "submitted")
    assert b"Submitted" in client.get(PAGE).content
    staff = signed_in(lecturer)
    pending = staff.get(reverse("attendance:excuses"))
    assert f"advance-absence-{absence.pk}".encode() in pending.content
    decided = staff.post(reverse("attendance:advance-absence-decide", args=[absence.pk]), {"decision": "approve"})
    assert decided.status_code == 302
    absence.refresh_from_db()
    assert (absence.state, absence.decided_by) == ("approved", lecturer)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"first_day": "2026-09-13"}, b"Report absences from today on"),
        ({"last_day": "2026-09-14", "first_day": "2026-09-15"}, b"The last day cannot be before the first."),
        (
            {"attachment": SimpleUploadedFile("x.pdf", b"MZ\x90\x00", content_type="application/pdf")},
            b"Attach a PDF, JPEG or PNG file.",
        ),
        ({"reason": ""}, b"This field is required."),
    ],
    ids=["past", "reversed", "not-a-pdf", "no-reason"],
)
def test_a_refused_report_says_why_and_writes_nothing(student, section, fields, message):
    response = signed_in(student.user).post(PAGE, report(section, **fields))
    assert response.status_code == 400 and message in response.content
    assert b"Nothing was saved" in response.content
    assert not AdvanceAbsence.objects.exists()


def test_reporting_needs_the_csrf_token(student, section):
    response = signed_in(student.user, enforce_csrf_checks=True).post(PAGE, report(section))
    assert response.status_code == 403 and not AdvanceAbsence.objects.exists()


def test_reporting_is_rate_limited(student, section):
    client = signed_in(student.user)
    statuses = [
        client.post(PAGE, report(section, first_day=f"2026-09-{15 + i}", last_day=f"2026-09-{15 + i}")).status_code
        for i in range(11)
    ]
    assert statuses == [302] * 10 + [429]
    assert AdvanceAbsence.objects.count() == 10


def test_a_student_withdraws_their_pending_report(student, section):
    absence = AdvanceAbsenceFactory(student=student, section=section)
    other = signed_in(
        EnrollmentFactory(section=section, student=StudentFactory(user__roles=[Role.STUDENT])).student.user
    )
    url = reverse("attendance:advance-absence-withdraw", args=[absence.pk])
    assert other.post(url).status_code == 404
    assert signed_in(student.user).post(url).status_code == 302
    absence.refresh_from_db()
    assert absence.state == "withdrawn"


def test_the_document_is_served_only_to_the_student_their_lecturer_and_registry_staff(student, section, lecturer):
    absence = AdvanceAbsenceFactory(student=student, section=section, attachment_content_type="application/pdf",
                                    attachment=SimpleUploadedFile("a.pdf", PDF))  # fmt: skip
    url = reverse("attendance:advance-absence-attachment", args=[absence.pk])
    for user in (student.user, lecturer, UserFactory(roles=[Role.REGISTRAR])):
        response = signed_in(user).get(url)
        assert response.status_code == 200 and response.content == PDF
        assert response["Content-Type"] == "application/pdf"
        assert response["Content-Disposition"].startswith("attachment;")
    classmate = EnrollmentFactory(section=section, student=StudentFactory(user__roles=[Role.STUDENT])).student
    for user in (UserFactory(roles=[Role.LECTURER]), classmate.user, UserFactory(roles=[Role.ADVISOR])):
        assert signed_in(user).get(url).status_code == 404
    assert Client().get(f"/media/{absence.attachment.name}").status_code == 404


def test_the_lecturers_list_takes_the_same_queries_for_more_reports(section, lecturer):
    client = signed_in(lecturer)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("attendance:excuses")).status_code == 200
        return len(captured)

    AdvanceAbsenceFactory(section=section, student=EnrollmentFactory(section=section).student)
    few = queries()
    for _ in range(8):
        AdvanceAbsenceFactory(section=section, student=EnrollmentFactory(section=section).student)
    assert queries() == few
