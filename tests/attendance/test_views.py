"""The attendance pages: check-in by rotating QR code or numeric code (every refusal its own message,
nothing written but by the confirming POST), the lecturer's sessions, display, corrections, grid and
excuses, the student's attendance page. List pages run as many queries for 5 rows as for 100."""

import csv
import datetime
import html
import io
import re
from decimal import Decimal

import pytest
import time_machine
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.roles import Role
from attendance import devices, qr
from attendance.models import AbsenceExcuse, AttendanceRecord, ClassSession, ProxyFlag
from attendance.views.messages import REFUSALS
from campusiq.core.models import AuditLogEntry
from students.models import Enrollment, Student
from tests.factories import (
    AbsenceExcuseFactory,
    AssessmentFactory,
    AttendanceRecordFactory,
    AttendanceStatusFactory,
    AttendanceStatusSetFactory,
    ClassSessionFactory,
    CourseFactory,
    EnrollmentFactory,
    ProxyFlagFactory,
    SectionFactory,
    SectionGroupFactory,
    StudentFactory,
    TermFactory,
    TermHolidayFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-staple"
# A Wednesday in the term (Lisbon is on UTC in November); the session runs 10:00-11:30.
NOW = datetime.datetime(2026, 11, 25, 10, 5, tzinfo=datetime.UTC)
SESSION_START = datetime.datetime(2026, 11, 25, 10, 0, tzinfo=datetime.UTC)
Status = AttendanceRecord.Status


# --- Fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def term():
    return TermFactory(name="Autumn 2026")


@pytest.fixture
def lecturer():
    return UserFactory(roles=[Role.LECTURER], first_name="Lena", last_name="Lecturer")


@pytest.fixture
def section(term, lecturer):
    return SectionFactory(term=term, lecturers=[lecturer], course=CourseFactory(code="CS101", title="Programming One"))


@pytest.fixture
def ana(section):
    student = StudentFactory(
        user__first_name="Ana", user__last_name="Almeida", user__email="ana@campus.example", student_number="S1000001"
    )
    EnrollmentFactory(student=student, section=section)
    return student


@pytest.fixture
def ben(section):
    student = StudentFactory(user__first_name="Ben", user__last_name="Brandauer", student_number="S1000002")
    EnrollmentFactory(student=student, section=section)
    return student


@pytest.fixture
def session(section):
    return ClassSessionFactory(
        section=section,
        starts_at=SESSION_START,
        ends_at=SESSION_START + datetime.timedelta(minutes=90),
        state=ClassSession.State.OPEN,
    )


@pytest.fixture
def other_lecturer():
    return UserFactory(roles=[Role.LECTURER])


@pytest.fixture
def registrar():
    return UserFactory(roles=[Role.REGISTRAR])


def signed_in(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def text(response) -> str:
    return html.unescape(response.content.decode())


def scan(client: Client, session: ClassSession, step: int | None = None):
    return client.get(reverse("attendance:check-in", args=[qr.qr_token_make(session, step)]))


def confirm_url() -> str:
    return reverse("attendance:check-in-confirm")


def assert_refused(response, code: str) -> None:
    message, status = REFUSALS[code]
    assert response.status_code == status, (code, response.status_code)
    assert f'data-code="{code}"' in response.content.decode()
    assert str(message) in text(response)


def assert_nothing_recorded() -> None:
    assert not AttendanceRecord.objects.exists()
    assert not ProxyFlag.objects.exists()


# --- Access -----------------------------------------------------------------------------------


LECTURER_GET_PAGES = [
    ("attendance:section-sessions", "section"),
    ("attendance:section-roster", "section"),
    ("attendance:section-roster-csv", "section"),
    ("attendance:session-detail", "session"),
    ("attendance:session-display", "session"),
    ("attendance:session-display-json", "session"),
]


@pytest.mark.parametrize(("name", "arg"), LECTURER_GET_PAGES)
def test_lecturer_pages_by_role(name, arg, section, session, lecturer, other_lecturer, registrar, ana, clock):
    kwarg = {"section": {"section_id": section.pk}, "session": {"session_id": session.pk}}[arg]
    url = reverse(name, kwargs=kwarg)
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and anonymous.url.startswith(reverse("login"))
    assert signed_in(ana.user).get(url).status_code == 403
    assert signed_in(other_lecturer).get(url).status_code == 404
    assert signed_in(lecturer).get(url).status_code == 200
    assert signed_in(registrar).get(url).status_code == 200


def test_lecturer_actions_on_someone_elses_session_are_not_found(session, other_lecturer, ana, clock):
    client = signed_in(other_lecturer)
    record = AttendanceRecordFactory(session=session, student=ana)
    for url, data in [
        (reverse("attendance:session-close", args=[session.pk]), {}),
        (reverse("attendance:session-cancel", args=[session.pk]), {"reason": "strike"}),
        (reverse("attendance:record-void", args=[record.pk]), {"reason": "proxy"}),
        (reverse("attendance:record-set", args=[session.pk]), {"student": ana.pk, "status": "late", "reason": "x"}),
        (reverse("attendance:session-create", args=[session.section_id]), {}),
        (reverse("attendance:series-create", args=[session.section_id]), {}),
    ]:
        assert client.post(url, data).status_code == 404, url
    session.refresh_from_db()
    record.refresh_from_db()
    assert session.state == ClassSession.State.OPEN and record.status == Status.PRESENT and not record.voided


def test_student_pages_are_for_students(lecturer, ana, clock):
    for name in ("attendance:my-attendance", "attendance:check-in-code", "attendance:check-in-confirm"):
        url = reverse(name)
        assert signed_in(lecturer).get(url).status_code == 403
        assert Client().get(url).status_code == 302
    assert signed_in(ana.user).get(reverse("attendance:excuses")).status_code == 403


def test_section_page_links_to_attendance(section, lecturer):
    page = text(signed_in(lecturer).get(reverse("portal:section-detail", args=[section.pk])))
    assert reverse("attendance:section-sessions", args=[section.pk]) in page
    assert reverse("attendance:section-roster", args=[section.pk]) in page


# --- Check-in by QR code --------------------------------------------------------------------------


def test_scan_then_confirm_checks_the_student_in(session, ana, clock):
    client = signed_in(ana.user)
    response = scan(client, session)
    assert response.status_code == 302 and response.url == confirm_url()
    page = client.get(confirm_url())
    assert page.status_code == 200
    assert "CS101 Programming One" in text(page) and "Check me in" in text(page)
    assert_nothing_recorded()

    clock.shift(20)  # the confirmation counts the scan's moment, not the button's
    done = client.post(confirm_url())
    record = AttendanceRecord.objects.get()
    assert done.status_code == 302 and done.url == reverse("attendance:check-in-done", args=[record.pk])
    assert (record.student, record.session, record.status, record.method) == (ana, session, Status.PRESENT, "qr")
    assert record.recorded_at == NOW and record.ip == "127.0.0.1"
    result = text(client.get(done.url))
    assert "You are checked in" in result and "present" in result and "CS101 Programming One" in result
    assert "already" not in result


def test_scan_after_the_late_threshold_is_late(session, ana, clock):
    clock.move_to(SESSION_START + datetime.timedelta(minutes=session.late_after_minutes, seconds=1))
    client = signed_in(ana.user)
    scan(client, session)
    client.post(confirm_url())
    record = AttendanceRecord.objects.get()
    assert record.status == Status.LATE
    assert "late" in text(client.get(reverse("attendance:check-in-done", args=[record.pk])))


def test_gets_never_write(session, ana, clock):
    client = signed_in(ana.user)
    scan(client, session)
    for _ in range(3):
        assert client.get(confirm_url()).status_code == 200
    assert scan(client, session).status_code == 302
    assert_nothing_recorded()


def test_anonymous_scan_detours_through_sign_in_and_is_held(session, ana, clock, settings):
    client = Client()
    response = scan(client, session)
    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={confirm_url()}"
    clock.shift(settings.ATTENDANCE_SCAN_HOLD_SECONDS - 10)  # the token is long dead; the held scan is not
    signed = client.post(
        reverse("login"), {"username": "ana@campus.example", "password": PASSWORD, "next": confirm_url()}
    )
    assert signed.status_code == 302 and signed.url == confirm_url()
    assert "Check me in" in text(client.get(confirm_url()))
    client.post(confirm_url())
    record = AttendanceRecord.objects.get()
    # Recorded at the scan, not at the confirmation.
    assert record.recorded_at == NOW and record.status == Status.PRESENT


def test_held_scan_older_than_the_hold_expires(session, ana, clock, settings):
    client = Client()
    scan(client, session)
    clock.shift(settings.ATTENDANCE_SCAN_HOLD_SECONDS + 1)
    client.post(reverse("login"), {"username": "ana@campus.example", "password": PASSWORD, "next": confirm_url()})
    assert_refused(client.get(confirm_url()), "scan_expired")
    # The expired scan is forgotten: confirming again has nothing to confirm.
    assert client.post(confirm_url()).url == reverse("attendance:check-in-code")
    assert_nothing_recorded()


def test_a_held_scan_handed_to_another_browser_after_its_code_died_is_refused(session, ana, section, clock):
    # Someone in the room scans without signing in; the code dies; their session cookie is given to a
    # browser elsewhere, where an absent student signs in and confirms.
    absent = StudentFactory(user__email="absent@campus.example")
    absent.user.set_password(PASSWORD)
    absent.user.save()
    EnrollmentFactory(student=absent, section=section)
    in_room = Client()
    scan(in_room, session)
    clock.shift(60)  # the code shown at the scan is long dead
    elsewhere = Client()
    elsewhere.cookies[django_settings.SESSION_COOKIE_NAME] = in_room.cookies[django_settings.SESSION_COOKIE_NAME].value
    elsewhere.post(reverse("login"), {"username": "absent@campus.example", "password": PASSWORD})
    assert_refused(elsewhere.post(confirm_url()), "scan_other_device")
    assert_nothing_recorded()
    # The scanning device itself, signed in, still confirms within the hold.
    in_room.post(reverse("login"), {"username": "ana@campus.example", "password": PASSWORD})
    scan(in_room, session, step=None)
    assert in_room.post(confirm_url()).status_code == 302
    assert AttendanceRecord.objects.get().student == ana


def test_held_scan_expiring_on_the_confirmation_page_is_refused_on_post(session, ana, clock, settings):
    client = signed_in(ana.user)
    scan(client, session)
    client.get(confirm_url())
    clock.shift(settings.ATTENDANCE_SCAN_HOLD_SECONDS + 1)
    assert_refused(client.post(confirm_url()), "scan_expired")
    assert_nothing_recorded()


def test_invalid_token_is_refused_even_before_sign_in(session):
    for token in ("garbage", "1.2.3", f"{session.pk}.{qr.step_at(NOW)}.AAAAAAAAAAAAAAAA"):
        assert_refused(Client().get(reverse("attendance:check-in", args=[token])), "token_invalid")
    assert "attendance.held_scan" not in Client().session


def test_expired_token_is_refused_when_the_page_is_opened(session, ana, clock, settings):
    old_step = qr.step_at(NOW) - 2
    assert_refused(scan(signed_in(ana.user), session, old_step), "token_expired")
    # The previous step's token is still good (a scan across the rotation).
    assert scan(signed_in(ana.user), session, qr.step_at(NOW) - 1).status_code == 302
    assert_nothing_recorded()


def _not_started(session, ana):
    ClassSession.objects.filter(pk=session.pk).update(
        starts_at=NOW + datetime.timedelta(minutes=30), ends_at=NOW + datetime.timedelta(minutes=120)
    )


def _ended(session, ana):
    ClassSession.objects.filter(pk=session.pk).update(
        starts_at=NOW - datetime.timedelta(minutes=100), ends_at=NOW - datetime.timedelta(minutes=10)
    )


def _state(state):
    return lambda session, ana: ClassSession.objects.filter(pk=session.pk).update(state=state)


def _student_status(status):
    return lambda session, ana: Student.objects.filter(pk=ana.pk).update(status=status)


def _dropped(session, ana):
    Enrollment.objects.filter(student=ana).update(status=Enrollment.Status.DROPPED, ended_on=NOW.date())


def _other_group(session, ana):
    ClassSession.objects.filter(pk=session.pk).update(group=SectionGroupFactory(section=session.section))


REFUSED_WHEN_OPENED = [
    ("session_not_started", _not_started),
    ("session_ended", _ended),
    ("session_not_open", _state(ClassSession.State.SCHEDULED)),
    ("session_closed", _state(ClassSession.State.CLOSED)),
    ("session_cancelled", _state(ClassSession.State.CANCELLED)),
    ("not_enrolled", _dropped),
    ("not_in_group", _other_group),
    ("student_suspended", _student_status(Student.Status.SUSPENDED)),
    ("student_not_active", _student_status(Student.Status.GRADUATED)),
]


@pytest.mark.parametrize(("code", "arrange"), REFUSED_WHEN_OPENED)
def test_each_refusal_is_shown_when_the_confirmation_opens(code, arrange, session, ana, clock):
    arrange(session, ana)
    client = signed_in(ana.user)
    scan(client, session)
    assert_refused(client.get(confirm_url()), code)
    assert client.post(confirm_url()).status_code == 302  # nothing held any more
    assert_nothing_recorded()


REFUSED_WHEN_CONFIRMING = [
    ("session_not_open", _state(ClassSession.State.SCHEDULED)),
    ("session_closed", _state(ClassSession.State.CLOSED)),
    ("session_cancelled", _state(ClassSession.State.CANCELLED)),
    ("not_enrolled", _dropped),
    ("student_suspended", _student_status(Student.Status.SUSPENDED)),
    ("student_not_active", _student_status(Student.Status.WITHDRAWN)),
]


@pytest.mark.parametrize(("code", "change"), REFUSED_WHEN_CONFIRMING)
def test_each_refusal_is_shown_when_confirming(code, change, session, ana, clock):
    client = signed_in(ana.user)
    scan(client, session)
    assert client.get(confirm_url()).status_code == 200
    change(session, ana)  # meanwhile, the world changed
    assert_refused(client.post(confirm_url()), code)
    assert_nothing_recorded()


def test_proxy_refused_when_the_institution_refuses_shared_devices(session, ana, ben, clock, settings):
    settings.ATTENDANCE_REFUSE_FLAGS = ["shared_device"]
    AttendanceRecordFactory(session=session, student=ben, device_id="bens-phone")
    client = signed_in(ana.user)
    client.cookies[devices.COOKIE_NAME] = devices._signer().sign("bens-phone")
    scan(client, session)
    assert_refused(client.post(confirm_url()), "proxy_refused")
    assert AttendanceRecord.objects.filter(student=ana).count() == 0
    assert not ProxyFlag.objects.exists()


def test_shared_device_is_flagged_for_the_lecturer_by_default(session, ana, ben, lecturer, clock):
    AttendanceRecordFactory(session=session, student=ben, device_id="bens-phone")
    client = signed_in(ana.user)
    client.cookies[devices.COOKIE_NAME] = devices._signer().sign("bens-phone")
    scan(client, session)
    client.post(confirm_url())
    assert AttendanceRecord.objects.get(student=ana).device_id == "bens-phone"
    assert ProxyFlag.objects.filter(kind="shared_device").count() == 2
    page = text(signed_in(lecturer).get(reverse("attendance:session-detail", args=[session.pk])))
    assert "One device checked in several students" in page and "Void check-in" in page


def test_second_check_in_shows_the_existing_record(session, ana, clock):
    client = signed_in(ana.user)
    scan(client, session)
    client.post(confirm_url())
    clock.shift(60)
    scan(client, session)
    page = client.get(confirm_url())
    assert page.status_code == 200 and "You were already checked in" in text(page)
    assert AttendanceRecord.objects.count() == 1


def test_second_confirmation_in_a_race_does_not_record_twice(session, ana, clock):
    phone, laptop = signed_in(ana.user), signed_in(ana.user)
    for client in (phone, laptop):
        scan(client, session)
        client.get(confirm_url())
    phone.post(confirm_url())
    again = laptop.post(confirm_url())
    assert AttendanceRecord.objects.count() == 1
    page = text(laptop.get(again.url))
    assert "You were already checked in" in page and "this is your existing record" in page


def test_confirmation_is_csrf_protected(session, ana, clock):
    client = signed_in(ana.user, enforce_csrf_checks=True)
    scan(client, session)
    page = client.get(confirm_url())
    refused = client.post(confirm_url())
    assert refused.status_code == 403 and "Form expired" in text(refused)
    assert_nothing_recorded()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]
    assert client.post(confirm_url(), {"csrfmiddlewaretoken": token}).status_code == 302
    assert AttendanceRecord.objects.count() == 1


def test_confirmation_without_a_scan_points_to_the_code_form(ana):
    client = signed_in(ana.user)
    response = client.get(confirm_url(), follow=True)
    assert response.redirect_chain == [(reverse("attendance:check-in-code"), 302)]
    assert "Scan the QR code on the screen" in text(response)


def test_result_page_is_the_students_own(session, ana, ben, clock):
    record = AttendanceRecordFactory(session=session, student=ben)
    assert signed_in(ana.user).get(reverse("attendance:check-in-done", args=[record.pk])).status_code == 404


# --- Check-in by numeric code ------------------------------------------------------------------


def code_url() -> str:
    return reverse("attendance:check-in-code")


def test_numeric_code_leads_to_the_same_confirmation(session, ana, clock):
    client = signed_in(ana.user)
    assert client.get(code_url()).status_code == 200
    code = qr.numeric_code(session, qr.step_at(NOW))
    response = client.post(code_url(), {"code": f"{code[:3]} {code[3:]}"})  # spaces are forgiven
    assert response.status_code == 302 and response.url == confirm_url()
    assert_nothing_recorded()
    assert "CS101 Programming One" in text(client.get(confirm_url()))
    client.post(confirm_url())
    record = AttendanceRecord.objects.get()
    assert (record.student, record.method, record.status) == (ana, "code", Status.PRESENT)


def test_code_of_the_previous_step_still_works_older_ones_do_not(session, ana, clock):
    client = signed_in(ana.user)
    step = qr.step_at(NOW)
    assert client.post(code_url(), {"code": qr.numeric_code(session, step - 1)}).status_code == 302
    refused = client.post(code_url(), {"code": qr.numeric_code(session, step - 2)})
    assert refused.status_code == 400 and str(REFUSALS["code_invalid"][0]) in text(refused)


def test_unknown_code_and_other_courses_codes_are_invalid(session, ana, term, clock):
    other_session = ClassSessionFactory(
        section=SectionFactory(term=term), starts_at=SESSION_START, state=ClassSession.State.OPEN
    )
    client = signed_in(ana.user)
    for code in (qr.numeric_code(other_session, qr.step_at(NOW)), _wrong_code(session)):
        refused = client.post(code_url(), {"code": code})
        assert refused.status_code == 400 and str(REFUSALS["code_invalid"][0]) in text(refused)
    bad_format = client.post(code_url(), {"code": "12ab"})
    assert bad_format.status_code == 400 and "Enter the six digits" in text(bad_format)
    assert "attendance.held_scan" not in client.session
    assert_nothing_recorded()


def _wrong_code(session) -> str:
    step = qr.step_at(NOW)
    valid = {qr.numeric_code(session, s) for s in (step, step - 1)}
    return next(c for c in ("123456", "654321", "111111") if c not in valid)


def test_code_of_a_closed_session_is_invalid(session, ana, clock):
    ClassSession.objects.filter(pk=session.pk).update(state=ClassSession.State.CLOSED)
    refused = signed_in(ana.user).post(code_url(), {"code": qr.numeric_code(session, qr.step_at(NOW))})
    assert refused.status_code == 400 and str(REFUSALS["code_invalid"][0]) in text(refused)


# --- Device cookie and rate limits ----------------------------------------------------------------


def test_each_browser_gets_a_signed_device_cookie(session, ana, clock):
    client = signed_in(ana.user)
    response = scan(client, session)
    cookie = response.cookies[devices.COOKIE_NAME]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and not cookie["secure"]
    assert int(cookie["max-age"]) >= 700 * 24 * 3600
    device_id = devices._signer().unsign(cookie.value)
    client.post(confirm_url())
    assert AttendanceRecord.objects.get().device_id == device_id
    # The same browser keeps its id.
    again = client.get(code_url())
    assert devices._signer().unsign(again.cookies[devices.COOKIE_NAME].value) == device_id


def test_device_cookie_is_secure_over_https(session, ana, clock):
    response = signed_in(ana.user).get(code_url(), secure=True)
    assert response.cookies[devices.COOKIE_NAME]["secure"]


def test_forged_device_cookie_is_replaced(session, ana, clock):
    client = signed_in(ana.user)
    client.cookies[devices.COOKIE_NAME] = "bens-phone:forged-signature"
    response = scan(client, session)
    fresh = devices._signer().unsign(response.cookies[devices.COOKIE_NAME].value)
    assert fresh != "bens-phone" and len(fresh) >= 32
    client.post(confirm_url())
    assert AttendanceRecord.objects.get().device_id == fresh


def test_check_in_is_rate_limited_per_user(session, ana, clock, settings):
    settings.ATTENDANCE_CHECK_IN_RATE_PER_USER = "3/m"
    client = signed_in(ana.user)
    for _ in range(3):
        assert client.post(code_url(), {"code": _wrong_code(session)}).status_code == 400
    limited = client.post(code_url(), {"code": qr.numeric_code(session, qr.step_at(NOW))})
    assert limited.status_code == 429 and "Too many attempts" in text(limited)
    assert client.post(confirm_url()).status_code == 429  # one budget for both forms
    assert_nothing_recorded()


def test_check_in_is_rate_limited_per_address(session, section, clock, settings):
    settings.ATTENDANCE_CHECK_IN_RATE_PER_IP = "2/m"
    students = [StudentFactory() for _ in range(3)]
    for student in students:
        EnrollmentFactory(student=student, section=section)
    statuses = []
    for student in students:
        client = signed_in(student.user)
        scan(client, session)
        statuses.append(client.post(confirm_url()).status_code)
    assert statuses == [302, 302, 429]
    assert AttendanceRecord.objects.count() == 2


# --- Lecturers: the display ------------------------------------------------------------------------


def display_json(client, session):
    response = client.get(reverse("attendance:session-display-json", args=[session.pk]))
    assert response.status_code == 200
    return response.json()


def test_display_json_rotates_token_and_code(session, lecturer, ana, clock, settings):
    client = signed_in(lecturer)
    first = display_json(client, session)
    step = qr.step_at(NOW)
    assert first["open"] and first["step"] == step and first["checked_in"] == 0
    assert first["code"] == qr.numeric_code(session, step)
    assert 0 < first["seconds_left"] <= settings.ATTENDANCE_QR_ROTATION_SECONDS
    assert first["svg"].startswith("<svg viewBox=") and "<script" not in first["svg"]
    token = first["url"].rsplit("/c/", 1)[1].strip("/")
    assert first["url"].startswith("http://testserver/c/")
    assert qr.qr_token_verify(token) == (session, step)

    clock.shift(settings.ATTENDANCE_QR_ROTATION_SECONDS)
    second = display_json(client, session)
    assert second["step"] == step + 1
    assert second["code"] != first["code"] and second["url"] != first["url"] and second["svg"] != first["svg"]

    AttendanceRecordFactory(session=session, student=ana)
    assert display_json(client, session)["checked_in"] == 1


def test_display_json_of_a_closed_session_has_no_code(session, lecturer, clock):
    ClassSession.objects.filter(pk=session.pk).update(state=ClassSession.State.CLOSED)
    data = display_json(signed_in(lecturer), session)
    assert data == {"open": False, "state": "closed", "checked_in": 0}


def test_display_page_shows_qr_code_and_count_without_inline_script(session, lecturer, clock):
    response = signed_in(lecturer).get(reverse("attendance:session-display", args=[session.pk]))
    page = response.content.decode()
    assert response.status_code == 200
    assert "<svg viewBox=" in page and qr.numeric_code(session, qr.step_at(NOW)) in page
    assert 'src="/static/js/attendance-display.js"' in page
    assert 'data-display-url="/attendance/sessions/' in page and "data-check-in-url=" in page
    assert '<noscript><meta http-equiv="refresh"' in page
    assert "<script>" not in page and "style=" not in page and not re.search(r"\son\w+=", page)
    assert page.count("<h1") == 1
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]


# --- Lecturers: sessions -----------------------------------------------------------------------------


def test_sessions_page_lists_sessions_with_counts(session, section, lecturer, ana, ben, clock):
    AttendanceRecordFactory(session=session, student=ana)
    AttendanceRecordFactory(session=session, student=ben, status=Status.ABSENT)
    page = text(signed_in(lecturer).get(reverse("attendance:section-sessions", args=[section.pk])))
    row = re.search(rf'<tr id="session-{session.pk}">(.*?)</tr>', page, re.S)[1]
    assert "Open" in row and "B-101" in row and '<td class="num">1</td>' in row and "Show QR code" in row


def test_create_one_session(section, lecturer, clock):
    response = signed_in(lecturer).post(
        reverse("attendance:session-create", args=[section.pk]),
        {
            "session-date": "2026-11-27",
            "session-start_time": "14:00",
            "session-end_time": "15:30",
            "session-room": "C-2",
            "session-late_after_minutes": "5",
        },
    )
    assert response.status_code == 302
    created = ClassSession.objects.get()
    assert created.starts_at == datetime.datetime(2026, 11, 27, 14, 0, tzinfo=datetime.UTC)  # Lisbon = UTC in winter
    assert (created.room, created.late_after_minutes, created.state) == ("C-2", 5, "scheduled")
    assert AuditLogEntry.objects.filter(verb="class_session.created", actor=lecturer).exists()


def test_create_session_refusals_show_on_the_form(section, lecturer, clock):
    client = signed_in(lecturer)
    url = reverse("attendance:session-create", args=[section.pk])
    base = {"session-start_time": "14:00", "session-end_time": "15:30", "session-late_after_minutes": "10"}
    backwards = client.post(url, {**base, "session-date": "2026-11-27", "session-end_time": "13:00"})
    assert backwards.status_code == 200 and "The session must end after it starts." in text(backwards)
    outside = client.post(url, {**base, "session-date": "2027-03-01"})
    assert "must fall within the term Autumn 2026" in text(outside)
    assert not ClassSession.objects.exists()


def test_create_weekly_series_skips_holidays_and_keeps_local_time_across_dst(section, term, lecturer, clock):
    TermHolidayFactory(term=term, date=datetime.date(2026, 11, 2), name="All Saints (moved)")
    response = signed_in(lecturer).post(
        reverse("attendance:series-create", args=[section.pk]),
        {
            "series-first_date": "2026-10-19",  # Lisbon leaves summer time on 25 October
            "series-start_time": "10:00",
            "series-duration_minutes": "90",
            "series-until": "2026-11-09",
            "series-room": "B-101",
            "series-late_after_minutes": "10",
        },
    )
    assert response.status_code == 302
    sessions = list(ClassSession.objects.order_by("starts_at"))
    from django.utils import timezone

    local = [timezone.localtime(s.starts_at) for s in sessions]
    assert [d.date().isoformat() for d in local] == ["2026-10-19", "2026-10-26", "2026-11-09"]
    assert all((d.hour, d.minute) == (10, 0) for d in local)
    assert len({s.series for s in sessions}) == 1 and sessions[0].series is not None
    assert all(s.ends_at - s.starts_at == datetime.timedelta(minutes=90) for s in sessions)


def test_series_with_until_before_first_date_is_refused(section, lecturer, clock):
    response = signed_in(lecturer).post(
        reverse("attendance:series-create", args=[section.pk]),
        {
            "series-first_date": "2026-11-30",
            "series-start_time": "10:00",
            "series-duration_minutes": "90",
            "series-until": "2026-11-01",
            "series-late_after_minutes": "10",
        },
    )
    assert "The last date cannot be before the first." in text(response)
    assert not ClassSession.objects.exists()


def test_open_close_and_cancel(section, lecturer, ana, ben, clock):
    client = signed_in(lecturer)
    session = ClassSessionFactory(section=section, starts_at=NOW + datetime.timedelta(minutes=10))
    response = client.post(reverse("attendance:session-open", args=[session.pk]), follow=True)
    assert "Check-in is open" in text(response)
    session.refresh_from_db()
    assert session.state == ClassSession.State.OPEN and session.opened_at == NOW
    assert AuditLogEntry.objects.filter(verb="class_session.opened", actor=lecturer).exists()

    AttendanceRecordFactory(session=session, student=ana)
    page = text(client.get(reverse("attendance:session-detail", args=[session.pk])))
    assert "Close session" not in page  # it would mark everyone absent before they could come
    too_early = client.post(reverse("attendance:session-close", args=[session.pk]), follow=True)
    assert "A session cannot be closed before it starts." in text(too_early)
    assert not AttendanceRecord.objects.filter(student=ben).exists()

    clock.shift(60 * 60)
    assert "Close session" in text(client.get(reverse("attendance:session-detail", args=[session.pk])))
    response = client.post(reverse("attendance:session-close", args=[session.pk]), follow=True)
    assert "1 student without a check-in was marked absent" in text(response)
    session.refresh_from_db()
    assert session.state == ClassSession.State.CLOSED
    assert AttendanceRecord.objects.get(student=ben).status == Status.ABSENT

    refused = client.post(reverse("attendance:session-cancel", args=[session.pk]), {"reason": " "}, follow=True)
    assert "Say why the session is cancelled" in text(refused)
    session.refresh_from_db()
    assert session.state == ClassSession.State.CLOSED
    client.post(reverse("attendance:session-cancel", args=[session.pk]), {"reason": "Fire drill"})
    session.refresh_from_db()
    assert session.state == ClassSession.State.CANCELLED
    assert AuditLogEntry.objects.get(verb="class_session.cancelled").reason == "Fire drill"


def test_opening_too_early_is_refused_with_a_message(section, lecturer, clock):
    session = ClassSessionFactory(section=section, starts_at=NOW + datetime.timedelta(hours=2))
    response = signed_in(lecturer).post(reverse("attendance:session-open", args=[session.pk]), follow=True)
    assert "Check-in cannot open yet: it opens 15 minutes before the session starts." in text(response)
    session.refresh_from_db()
    assert session.state == ClassSession.State.SCHEDULED


def test_lecturer_actions_are_post_only(session, lecturer, clock):
    client = signed_in(lecturer)
    for name in ("session-open", "session-cancel", "record-set"):
        assert client.get(reverse(f"attendance:{name}", args=[session.pk])).status_code == 405


# --- Lecturers: corrections ------------------------------------------------------------------------


def test_void_a_flagged_check_in_is_audited(session, lecturer, ana, clock):
    record = AttendanceRecordFactory(session=session, student=ana, device_id="shared")
    ProxyFlagFactory(record=record)
    client = signed_in(lecturer)
    url = reverse("attendance:record-void", args=[record.pk])
    refused = client.post(url, {"reason": ""}, follow=True)
    assert "Say why the check-in is voided" in text(refused)
    record.refresh_from_db()
    assert not record.voided

    response = client.post(url, {"reason": "Ana was not in the room"})
    assert response.status_code == 302 and response.url.endswith("#flags")
    record.refresh_from_db()
    assert record.voided and record.status == Status.ABSENT
    entry = AuditLogEntry.objects.get(verb="attendance.voided")
    assert (entry.actor, entry.reason, entry.changes) == (
        lecturer,
        "Ana was not in the room",
        {"status": ["present", "absent"]},
    )
    page = text(client.get(reverse("attendance:session-detail", args=[session.pk])))
    assert "absent (check-in voided)" in page


def test_set_any_students_status_is_audited(session, lecturer, ana, clock):
    client = signed_in(lecturer)
    url = reverse("attendance:record-set", args=[session.pk])
    no_reason = client.post(url, {"student": ana.pk, "status": "present", "reason": ""})
    assert no_reason.status_code == 200 and "This field is required." in text(no_reason)
    assert not AttendanceRecord.objects.exists()

    response = client.post(url, {"student": ana.pk, "status": "late", "reason": "Phone battery died"})
    assert response.status_code == 302
    record = AttendanceRecord.objects.get()
    assert (record.student, record.status, record.method, record.recorded_by) == (ana, "late", "manual", lecturer)
    entry = AuditLogEntry.objects.get(verb="attendance.changed")
    assert (entry.actor, entry.reason, entry.changes) == (lecturer, "Phone battery died", {"status": [None, "late"]})


def test_set_status_of_someone_not_on_the_roster_is_refused(session, lecturer, ana, clock):
    stranger = StudentFactory()
    response = signed_in(lecturer).post(
        reverse("attendance:record-set", args=[session.pk]),
        {"student": stranger.pk, "status": "present", "reason": "x"},
    )
    assert response.status_code == 200 and "Select a valid choice" in text(response)
    assert not AttendanceRecord.objects.exists()


def test_set_status_in_a_cancelled_session_shows_the_refusal(session, lecturer, ana, clock):
    ClassSession.objects.filter(pk=session.pk).update(state=ClassSession.State.CANCELLED)
    response = signed_in(lecturer).post(
        reverse("attendance:record-set", args=[session.pk]), {"student": ana.pk, "status": "present", "reason": "x"}
    )
    assert "This session was cancelled." in text(response)
    assert not AttendanceRecord.objects.exists()


# --- Excuses ---------------------------------------------------------------------------------------


def test_student_submits_an_excuse_and_sees_its_state(session, ana, clock):
    record = AttendanceRecordFactory(session=session, student=ana, status=Status.ABSENT)
    client = signed_in(ana.user)
    page = text(client.get(reverse("attendance:my-attendance")))
    assert f'id="excuse-reason-{record.pk}"' in page and f'for="excuse-reason-{record.pk}"' in page
    response = client.post(reverse("attendance:excuse-submit", args=[record.pk]), {"reason": "Flu, note attached"})
    assert response.status_code == 302
    excuse = AbsenceExcuse.objects.get()
    assert (excuse.record, excuse.state, excuse.reason) == (record, "submitted", "Flu, note attached")
    page = text(client.get(reverse("attendance:my-attendance")))
    assert "waiting for your lecturer" in page and "Flu, note attached" in page
    again = client.post(reverse("attendance:excuse-submit", args=[record.pk]), {"reason": "again"}, follow=True)
    assert "cannot be excused" in text(again) and AbsenceExcuse.objects.count() == 1


def test_excuse_needs_a_reason_and_ones_own_absence(session, ana, ben, clock):
    own = AttendanceRecordFactory(session=session, student=ana, status=Status.ABSENT)
    bens = AttendanceRecordFactory(session=session, student=ben, status=Status.ABSENT)
    client = signed_in(ana.user)
    assert client.post(reverse("attendance:excuse-submit", args=[bens.pk]), {"reason": "x"}).status_code == 404
    empty = client.post(reverse("attendance:excuse-submit", args=[own.pk]), {"reason": "  "}, follow=True)
    assert "Say why you were absent" in text(empty)
    assert not AbsenceExcuse.objects.exists()


@pytest.mark.parametrize(
    ("decision", "state", "status"), [("approve", "approved", "excused"), ("reject", "rejected", "absent")]
)
def test_lecturer_decides_an_excuse(decision, state, status, session, lecturer, ana, clock):
    excuse = AbsenceExcuseFactory(record__session=session, record__student=ana)
    client = signed_in(lecturer)
    page = text(client.get(reverse("attendance:excuses")))
    assert "I had the flu." in page and "Ana Almeida" in page
    response = client.post(reverse("attendance:excuse-decide", args=[excuse.pk]), {"decision": decision, "note": "ok"})
    assert response.status_code == 302
    excuse.refresh_from_db()
    excuse.record.refresh_from_db()
    assert (excuse.state, excuse.record.status, excuse.decided_by) == (state, status, lecturer)
    assert AuditLogEntry.objects.filter(verb="attendance.excuse_decided", actor=lecturer).exists()
    assert "No excuses are waiting for you." in text(client.get(reverse("attendance:excuses")))
    twice = client.post(reverse("attendance:excuse-decide", args=[excuse.pk]), {"decision": "approve"}, follow=True)
    assert "This excuse was already decided." in text(twice)
    student_page = text(signed_in(ana.user).get(reverse("attendance:my-attendance")))
    assert state in student_page


def test_other_lecturers_cannot_see_or_decide_an_excuse(session, other_lecturer, ana, clock):
    excuse = AbsenceExcuseFactory(record__session=session, record__student=ana)
    client = signed_in(other_lecturer)
    assert "I had the flu." not in text(client.get(reverse("attendance:excuses")))
    assert (
        client.post(reverse("attendance:excuse-decide", args=[excuse.pk]), {"decision": "approve"}).status_code == 404
    )
    excuse.refresh_from_db()
    assert excuse.state == "submitted"


# --- The student's attendance page ---------------------------------------------------------------


def past_sessions(section, count: int, *, start=SESSION_START) -> list[ClassSession]:
    return [
        ClassSessionFactory(
            section=section, starts_at=start - datetime.timedelta(weeks=n + 1), state=ClassSession.State.CLOSED
        )
        for n in range(count)
    ]


def test_my_attendance_shows_rate_counts_and_the_strip(section, ana, clock):
    held = past_sessions(section, 4)
    for session, status in zip(held, ["present", "late", "absent", "excused"], strict=True):
        AttendanceRecordFactory(session=session, student=ana, status=status)
    ClassSessionFactory(section=section, starts_at=SESSION_START + datetime.timedelta(weeks=1))  # upcoming
    response = signed_in(ana.user).get(reverse("attendance:my-attendance"))
    page = text(response)
    # 2 attended of 3 counted (the excused one is not counted): 67 %.
    assert "<strong>67&nbsp;%</strong>" in response.content.decode()
    counts = re.search(r'<dl class="counts">(.*?)</dl>', page, re.S)[1]
    for label, value in [("Present", "1"), ("Late", "1"), ("Absent", "1"), ("Excused", "1")]:
        assert re.search(rf"<dt>{label}</dt><dd>{value}</dd>", counts), label
    assert "You may miss" in page
    assert 'role="img"' in page and page.count('class="strip-cell strip-') == 5
    assert "Every session of CS101 as text" in page
    assert "cannot reach" not in page and "no longer reach" not in page


def test_my_attendance_warns_when_the_minimum_is_out_of_reach(section, ana, clock):
    for session in past_sessions(section, 6):
        AttendanceRecordFactory(session=session, student=ana, status=Status.ABSENT)
    ClassSessionFactory(section=section, starts_at=SESSION_START + datetime.timedelta(weeks=1))
    page = text(signed_in(ana.user).get(reverse("attendance:my-attendance")))
    assert "you can no longer reach the minimum attendance of 75 %" in page
    assert 'role="alert"' in page


def test_my_attendance_shows_only_the_students_own(section, ana, ben, clock):
    session = past_sessions(section, 1)[0]
    AttendanceRecordFactory(session=session, student=ben, status=Status.ABSENT)
    page = text(signed_in(ana.user).get(reverse("attendance:my-attendance")))
    assert "Brandauer" not in page and "S1000002" not in page and "No absences this term." in page


# --- The lecturer's grid ----------------------------------------------------------------------------


def test_roster_grid_marks_statuses_and_students_below_the_minimum(section, lecturer, ana, ben, clock):
    held = past_sessions(section, 4)
    for session in held:
        AttendanceRecordFactory(session=session, student=ana)
        AttendanceRecordFactory(session=session, student=ben, status=Status.ABSENT)
    ProxyFlagFactory(record=AttendanceRecord.objects.filter(student=ana).first())
    ClassSessionFactory(section=section, starts_at=SESSION_START + datetime.timedelta(weeks=1))
    page = text(signed_in(lecturer).get(reverse("attendance:section-roster", args=[section.pk])))
    ana_row = re.search(r"<tr class=\"\">\s*<th scope=\"row\">Ana Almeida(.*?)</tr>", page, re.S)[1]
    ben_row = re.search(r"<tr class=\"is-critical\">\s*<th scope=\"row\">Ben Brandauer(.*?)</tr>", page, re.S)[1]
    assert "100\xa0%" in ana_row
    assert "<strong>1</strong>" in ana_row  # one proxy flag
    assert "cannot reach the minimum" in ben_row and ben_row.count("cell-absent") == 4
    assert '<span class="visually-hidden">absent</span>' in ben_row


def test_roster_csv_neutralises_formulas(section, lecturer, clock):
    evil = StudentFactory(
        user__first_name='=HYPERLINK("http://evil.example")', user__last_name="x", student_number="-S1000003"
    )
    EnrollmentFactory(student=evil, section=section)
    session = past_sessions(section, 1)[0]
    AttendanceRecordFactory(session=session, student=evil)
    response = signed_in(lecturer).get(reverse("attendance:section-roster-csv", args=[section.pk]))
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:3] == ["student_number", "name", "email"]
    evil_row = rows[1]
    assert evil_row[0] == "'-S1000003"
    assert evil_row[1].startswith("'=HYPERLINK")
    assert evil_row[3] == "1.0000" and evil_row[-1] == "present"
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


# --- Query counts: the same for 5 rows as for 100 ------------------------------------------------------


def count_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def enrol_students(section, sessions, count: int) -> None:
    students = [StudentFactory() for _ in range(count)]
    for student in students:
        EnrollmentFactory(student=student, section=section)
    AttendanceRecord.objects.bulk_create(
        [
            AttendanceRecord(
                session=session, student=student, status=Status.PRESENT, recorded_at=session.starts_at, method="qr"
            )
            for session in sessions
            for student in students
        ]
    )


@pytest.mark.parametrize("page", ["attendance:section-roster", "attendance:section-roster-csv"])
def test_roster_grid_queries_do_not_grow_with_students(page, term, lecturer, clock):
    counts = []
    for size in (5, 100):
        section = SectionFactory(term=term, lecturers=[lecturer])
        sessions = past_sessions(section, 3)
        enrol_students(section, sessions, size)
        ProxyFlagFactory(record=AttendanceRecord.objects.filter(session__section=section).first())
        counts.append(count_queries(signed_in(lecturer), reverse(page, args=[section.pk])))
    assert counts[0] == counts[1], counts


def test_session_page_queries_do_not_grow_with_students(term, lecturer, clock):
    counts = []
    for size in (5, 100):
        section = SectionFactory(term=term, lecturers=[lecturer])
        session = past_sessions(section, 1)[0]
        enrol_students(section, [session], size)
        for record in AttendanceRecord.objects.filter(session=session)[:3]:
            ProxyFlagFactory(record=record)
        counts.append(count_queries(signed_in(lecturer), reverse("attendance:session-detail", args=[session.pk])))
    assert counts[0] == counts[1], counts


def test_sessions_page_queries_do_not_grow_with_sessions(term, lecturer, clock):
    counts = []
    for size in (2, 20):
        section = SectionFactory(term=term, lecturers=[lecturer])
        enrol_students(section, past_sessions(section, size), 3)
        counts.append(count_queries(signed_in(lecturer), reverse("attendance:section-sessions", args=[section.pk])))
    assert counts[0] == counts[1], counts


def test_excuses_page_queries_do_not_grow_with_excuses(term, lecturer, clock):
    section = SectionFactory(term=term, lecturers=[lecturer])
    client = signed_in(lecturer)
    counts = []
    for size in (1, 10):
        for _ in range(size):
            AbsenceExcuseFactory(record__session=past_sessions(section, 1)[0])
        counts.append(count_queries(client, reverse("attendance:excuses")))
    assert counts[0] == counts[1], counts


def test_student_page_queries_do_not_grow_with_courses(term, clock):
    counts = []
    for size in (1, 5):
        student = StudentFactory()
        for _ in range(size):
            section = SectionFactory(term=term)
            EnrollmentFactory(student=student, section=section)
            records = [
                AttendanceRecordFactory(session=session, student=student, status=Status.ABSENT)
                for session in past_sessions(section, 3)
            ]
            AbsenceExcuseFactory(record=records[0])
        counts.append(count_queries(signed_in(student.user), reverse("attendance:my-attendance")))
    assert counts[0] == counts[1], counts


# --- Every page: no inline script or style, one h1, labelled inputs ----------------------------------


def test_pages_have_no_inline_script_or_style_and_label_every_input(section, session, lecturer, ana, clock):
    record = AttendanceRecordFactory(session=session, student=ana, status=Status.ABSENT)
    ProxyFlagFactory(record=record)
    AbsenceExcuseFactory(
        record=AttendanceRecordFactory(session=past_sessions(section, 1)[0], student=ana, status="absent")
    )
    pages = [
        (lecturer, reverse("attendance:section-sessions", args=[section.pk])),
        (lecturer, reverse("attendance:session-detail", args=[session.pk])),
        (lecturer, reverse("attendance:section-roster", args=[section.pk])),
        (lecturer, reverse("attendance:section-roster", args=[section.pk]) + f"?edit={session.pk}"),
        (lecturer, reverse("attendance:session-take", args=[session.pk])),
        (lecturer, reverse("attendance:session-close", args=[session.pk])),
        (lecturer, reverse("attendance:excuses")),
        (ana.user, reverse("attendance:my-attendance")),
        (ana.user, reverse("attendance:check-in-code")),
    ]
    for user, url in pages:
        page = signed_in(user).get(url).content.decode()
        assert "<script>" not in page and not re.search(r"<script(?![^>]*\bsrc=)", page), url
        assert "<script>" not in page and "style=" not in page and not re.search(r"\son[a-z]+=", page), url
        assert page.count("<h1") == 1, url
        for input_id in re.findall(r'<(?:input|select|textarea)[^>]*\bid="([^"]+)"', page):
            assert f'for="{input_id}"' in page, (url, input_id)


# --- The attendance grade page ---------------------------------------------------------------------


def grade_page(section) -> str:
    return reverse("attendance:attendance-grade", kwargs={"section_id": section.pk})


def test_a_lecturer_counts_attendance_as_a_grade_and_the_scores_follow(lecturer, section, ana, ben):
    closed = ClassSessionFactory(section=section, starts_at=SESSION_START, ends_at=SESSION_START + datetime.timedelta(
        minutes=90), state=ClassSession.State.CLOSED)  # fmt: skip
    AttendanceRecordFactory(session=closed, student=ana, status=Status.LATE)
    AttendanceRecordFactory(session=closed, student=ben, status=Status.PRESENT)
    client = signed_in(lecturer)
    page = text(client.get(grade_page(section)))
    assert "does not count towards the grade" in page
    assert '<label for="id_weight">' in page and '<label for="id_drop_lowest">' in page
    response = client.post(grade_page(section), {"weight": "10", "drop_lowest": "0"}, follow=True)
    assert response.redirect_chain == [(grade_page(section), 302)]
    page = text(response)
    assert "Attendance counts as a grade" in page and "10 % of the final grade" in page
    scores = dict(section.assessments.get(name="Attendance").grades.values_list("student_id", "score"))
    assert scores == {ana.pk: Decimal("50.00"), ben.pk: Decimal("100.00")}
    assert AuditLogEntry.objects.get(verb="attendance_grade.enabled").actor == lecturer
    client.post(grade_page(section), {"weight": "15", "drop_lowest": "1"})
    assessment = section.assessments.get(name="Attendance")
    assert assessment.weight == Decimal(15) and not assessment.grades.exists()  # one session, left out


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"weight": "70", "drop_lowest": "0"}, "would weigh more than 100 %"),
        ({"weight": "ten", "drop_lowest": "0"}, "Enter a number."),
        ({"weight": "10", "drop_lowest": "-2"}, "greater than or equal to 0"),
    ],
)
def test_a_refused_attendance_grade_says_why_and_writes_nothing(lecturer, section, body, message):
    AssessmentFactory(section=section, weight=Decimal(40))
    response = signed_in(lecturer).post(grade_page(section), body)
    assert response.status_code == 200
    assert "Nothing was saved" in text(response) and message in text(response)
    assert section.assessments.count() == 1 and not AuditLogEntry.objects.exists()


def test_another_lecturer_cannot_reach_the_attendance_grade(other_lecturer, section):
    assert signed_in(other_lecturer).post(grade_page(section), {"weight": "10", "drop_lowest": "0"}).status_code == 404
    assert not section.assessments.exists()


def test_the_attendance_grade_form_is_csrf_protected(lecturer, section):
    client = signed_in(lecturer, enforce_csrf_checks=True)
    assert client.post(grade_page(section), {"weight": "10", "drop_lowest": "0"}).status_code == 403
    assert not section.assessments.exists()


# --- Taking attendance by hand ----------------------------------------------------------------------


def take_url(session) -> str:
    return reverse("attendance:session-take", args=[session.pk])


def test_take_page_lists_the_roster_by_number_with_one_radio_group_each(session, lecturer, ana, ben, clock):
    AttendanceRecordFactory(session=session, student=ben, status=Status.LATE)
    page = text(signed_in(lecturer).get(take_url(session)))
    assert page.index("S1000001") < page.index("S1000002")  # the roster grid's order
    for student in (ana, ben):
        for code in ("present", "late", "absent", "excused"):
            assert f'name="mark-{student.pk}" value="{code}" id="mark-{student.pk}-{code}"' in page
    assert f'value="late" id="mark-{ben.pk}-late" checked' in page
    assert "checked" not in re.search(rf'<tr data-student="{ana.pk}">(.*?)</tr>', page, re.S)[1]
    assert '<span class="visually-hidden">Present</span>' in page and 'aria-hidden="true">P</span>' in page
    assert 'name="reason"' not in page  # no reason while the session runs
    assert "1 student has no mark yet" in page


def test_take_saves_every_mark_and_sets_the_unmarked(session, section, lecturer, ana, ben, clock):
    cleo = StudentFactory(student_number="S1000003")
    EnrollmentFactory(student=cleo, section=section)
    AttendanceRecordFactory(session=session, student=ben)  # checked in
    client = signed_in(lecturer)
    response = client.post(take_url(session), {f"mark-{ana.pk}": "late", "unmarked_to": "absent"}, follow=True)
    assert "2 marks saved." in text(response)
    statuses = dict(AttendanceRecord.objects.values_list("student_id", "status"))
    assert statuses == {ana.pk: "late", ben.pk: "present", cleo.pk: "absent"}
    entry = AuditLogEntry.objects.get(verb="attendance.marks_saved")
    assert entry.actor == lecturer and entry.changes[cleo.student_number] == [None, "absent"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (lambda ana, ben: {f"mark-{ben.pk}": "present", f"mark-{ana.pk}": "asleep"}, "One of the marks is not offered"),
        (lambda ana, ben: {f"mark-{ana.pk}": "late", "unmarked_to": "gone"}, "One of the marks is not offered"),
        (lambda ana, ben: {f"mark-{ben.pk}": "present", "mark-x1": "late"}, "The form named a student that does not"),
        (lambda ana, ben: {f"mark-{ben.pk}": "present", f"mark-{ana.pk + 999}": "late"}, "was not enrolled in the"),
        (lambda ana, ben: {f"mark-{ben.pk}": "", "unmarked_to": ""}, "Choose a mark for at least one student"),
    ],
)
def test_take_refusals_are_readable_and_save_nothing(data, message, session, lecturer, ana, ben, clock):
    response = signed_in(lecturer).post(take_url(session), data(ana, ben))
    assert response.status_code == 400 and message in text(response)
    assert 'role="alert"' in response.content.decode()
    assert not AttendanceRecord.objects.exists()


def test_take_keeps_the_choices_of_a_refused_save(session, lecturer, ana, ben, clock):
    response = signed_in(lecturer).post(take_url(session), {f"mark-{ana.pk}": "excused", f"mark-{ben.pk}": "zzz"})
    assert f'value="excused" id="mark-{ana.pk}-excused" checked' in text(response)


def test_take_is_csrf_protected(session, lecturer, ana, clock):
    client = signed_in(lecturer, enforce_csrf_checks=True)
    assert client.post(take_url(session), {f"mark-{ana.pk}": "present"}).status_code == 403
    assert not AttendanceRecord.objects.exists()


def test_changing_a_check_in_after_the_end_needs_a_reason(session, lecturer, ana, clock):
    AttendanceRecordFactory(session=session, student=ana)
    clock.shift(2 * 60 * 60)
    client = signed_in(lecturer)
    assert 'name="reason"' in text(client.get(take_url(session)))
    refused = client.post(take_url(session), {f"mark-{ana.pk}": "absent"})
    assert refused.status_code == 400 and "Say why these marks change" in text(refused)
    assert AttendanceRecord.objects.get().status == Status.PRESENT
    client.post(take_url(session), {f"mark-{ana.pk}": "absent", "reason": "Left after ten minutes"})
    record = AttendanceRecord.objects.get()
    assert (record.status, record.note) == (Status.ABSENT, "Left after ten minutes")
    assert AuditLogEntry.objects.get(verb="attendance.marks_saved").reason == "Left after ten minutes"


def test_marks_json_gives_the_session_marks(session, lecturer, ana, ben, clock):
    AttendanceRecordFactory(session=session, student=ana, status=Status.LATE)
    data = signed_in(lecturer).get(reverse("attendance:session-marks-json", args=[session.pk])).json()
    assert data == {
        "state": "open",
        "checked_in": 1,
        "marks": {str(ana.pk): {"status": "late", "voided": False, "method": "qr"}},
    }


def test_take_page_of_a_cancelled_session_offers_nothing(session, lecturer, ana, clock):
    ClassSession.objects.filter(pk=session.pk).update(state=ClassSession.State.CANCELLED)
    client = signed_in(lecturer)
    assert 'name="mark-' not in text(client.get(take_url(session)))
    refused = client.post(take_url(session), {f"mark-{ana.pk}": "present"})
    assert refused.status_code == 400 and "This session was cancelled." in text(refused)


def test_saving_marks_is_rate_limited(session, lecturer, ana, clock, settings):
    client = signed_in(lecturer)
    from attendance import limits

    count, _ = limits.RateLimit("x", "y", limits.MARKS_SAVE_RATE_PER_USER).limit_and_period()
    for _ in range(count):
        assert client.post(take_url(session), {f"mark-{ana.pk}": "present"}).status_code == 302
    assert client.post(take_url(session), {f"mark-{ana.pk}": "late"}).status_code == 429
    assert AttendanceRecord.objects.get().status == Status.PRESENT


# --- Closing behind a confirmation ------------------------------------------------------------------


def test_close_asks_first_and_says_how_many_will_be_marked_absent(session, section, lecturer, ana, ben, clock):
    AttendanceRecordFactory(session=session, student=ana)
    client = signed_in(lecturer)
    detail = text(client.get(reverse("attendance:session-detail", args=[session.pk])))
    assert f'href="{reverse("attendance:session-close", args=[session.pk])}"' in detail
    confirm = text(client.get(reverse("attendance:session-close", args=[session.pk])))
    assert "1 student has no mark and will be marked absent." in confirm
    assert not AttendanceRecord.objects.filter(student=ben).exists()  # asking wrote nothing
    response = client.post(reverse("attendance:session-close", args=[session.pk]), follow=True)
    assert "1 student without a check-in was marked absent" in text(response)
    assert AttendanceRecord.objects.get(student=ben).status == Status.ABSENT


def test_closing_a_session_never_opened_says_it_becomes_not_taken(section, lecturer, ana, clock):
    session = ClassSessionFactory(section=section, starts_at=SESSION_START)
    client = signed_in(lecturer)
    confirm = text(client.get(reverse("attendance:session-close", args=[session.pk])))
    assert "will be recorded as not taken" in confirm and "marked absent." not in confirm
    response = client.post(reverse("attendance:session-close", args=[session.pk]), follow=True)
    assert "it is marked not taken and counts for no one" in text(response)
    session.refresh_from_db()
    assert session.state == ClassSession.State.NOT_TAKEN and not AttendanceRecord.objects.exists()
    take = text(client.get(take_url(session)))
    assert "Check-in was never opened for this session" in take and "Not taken" in take
    client.post(take_url(session), {f"mark-{ana.pk}": "present"})
    session.refresh_from_db()
    assert session.state == ClassSession.State.CLOSED and AttendanceRecord.objects.get().status == Status.PRESENT


# --- The roster grid: a column at a time, and its exports ----------------------------------------------


def roster_url(section) -> str:
    return reverse("attendance:section-roster", args=[section.pk])


def test_roster_column_is_changed_through_the_bulk_save(section, lecturer, ana, ben, clock):
    held, other = past_sessions(section, 2)
    AttendanceRecordFactory(session=held, student=ana)
    AttendanceRecordFactory(session=held, student=ben, status=Status.ABSENT)
    client = signed_in(lecturer)
    page = text(client.get(roster_url(section) + f"?edit={held.pk}"))
    assert f'<select name="mark-{ana.pk}" id="cell-{ana.pk}" form="grid-form">' in page
    assert f'for="cell-{ana.pk}"' in page and f'name="session" value="{held.pk}"' in page
    assert page.count("<select") == 2  # only that session's column
    data = {"session": held.pk, f"mark-{ana.pk}": "present", f"mark-{ben.pk}": "excused"}
    refused = client.post(roster_url(section), data)  # a closed session: say why
    assert refused.status_code == 400 and "Say why these marks change" in text(refused)
    response = client.post(roster_url(section), {**data, "reason": "Medical note"})
    assert response.status_code == 302 and response.url.endswith(f"#session-{held.pk}")
    assert AttendanceRecord.objects.get(session=held, student=ben).status == Status.EXCUSED
    entry = AuditLogEntry.objects.get(verb="attendance.marks_saved")
    assert entry.object_id == str(held.pk) and entry.changes == {
        "marks_changed": [None, 1],
        "S1000002": ["absent", "excused"],
    }
    assert not AttendanceRecord.objects.filter(session=other).exists()


def test_roster_save_of_a_session_of_another_section_is_refused(section, term, lecturer, ana, clock):
    foreign = past_sessions(SectionFactory(term=term), 1)[0]
    response = signed_in(lecturer).post(
        roster_url(section), {"session": foreign.pk, f"mark-{ana.pk}": "present", "reason": "x"}
    )
    assert response.status_code == 400 and "Choose a session of this section" in text(response)
    assert not AttendanceRecord.objects.exists()


def xlsx_rows(response) -> list[tuple]:
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(response.content))
    return list(book.active.iter_rows(values_only=True))


def test_roster_xlsx_covers_the_chosen_days_and_neutralises_formulas(section, lecturer, clock):
    evil = StudentFactory(user__first_name="=cmd|' /C calc'!A0", user__last_name="x", student_number="@S1")
    EnrollmentFactory(student=evil, section=section)
    newest, middle, oldest = past_sessions(section, 3)
    for session in (newest, middle, oldest):
        AttendanceRecordFactory(session=session, student=evil)
    day = timezone_day(middle)
    response = signed_in(lecturer).get(
        reverse("attendance:section-roster-xlsx", args=[section.pk]), {"date_from": day, "date_to": day}
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert response["Content-Disposition"].endswith('.xlsx"')
    header, row = xlsx_rows(response)
    assert header[:3] == ("student_number", "name", "email") and len(header) == 12  # one session column
    assert header[-1].startswith(day)
    assert row[0] == "'@S1" and row[1].startswith("'=cmd") and row[-1] == "present"
    everything = xlsx_rows(signed_in(lecturer).get(reverse("attendance:section-roster-xlsx", args=[section.pk])))
    assert len(everything[0]) == 14


def timezone_day(session) -> str:
    from django.utils import timezone

    return f"{timezone.localtime(session.starts_at):%Y-%m-%d}"


@pytest.mark.parametrize("name", ["attendance:section-roster-xlsx", "attendance:section-roster-csv"])
@pytest.mark.parametrize("query", [{"date_from": "2026-11-20", "date_to": "2026-11-01"}, {"date_from": "yesterday"}])
def test_roster_export_with_a_bad_range_says_so(name, query, section, lecturer, clock):
    response = signed_in(lecturer).get(reverse(name, args=[section.pk]), query)
    assert response.status_code == 400 and "Choose a valid date range" in text(response)


# --- Query counts of the marking pages: the same for 5, 50 and 500 students --------------------------


@pytest.mark.parametrize(
    "url",
    [
        lambda session: take_url(session),
        lambda session: reverse("attendance:session-marks-json", args=[session.pk]),
        lambda session: reverse("attendance:session-close", args=[session.pk]),
        lambda session: reverse("attendance:section-roster", args=[session.section_id]) + f"?edit={session.pk}",
    ],
    ids=["take", "marks-json", "close-confirm", "roster-edit"],
)
def test_marking_pages_queries_do_not_grow_with_students(url, term, lecturer, clock):
    counts = []
    for size in (5, 50, 500):
        section = SectionFactory(term=term, lecturers=[lecturer])
        sessions = past_sessions(section, 3)
        enrol_students(section, sessions[1:], size)
        counts.append(count_queries(signed_in(lecturer), url(sessions[0])))
    assert counts[0] == counts[1] == counts[2], counts


def test_students_strip_shows_a_not_taken_session_as_not_counted(section, ana, clock):
    held = past_sessions(section, 1)[0]
    ClassSession.objects.filter(pk=held.pk).update(state=ClassSession.State.NOT_TAKEN)
    page = text(signed_in(ana.user).get(reverse("attendance:my-attendance")))
    assert "strip-not_taken" in page and "attendance not taken" in page
    assert "strip-cell strip-missing" not in page and "strip-cell strip-not_taken" in page


# --- A section's own statuses on the marking page and the grid --------------------------------------


@pytest.fixture
def own_statuses(section):
    """The section's own set: Present, Late, Absent, Excused and Remote (counted as present)."""
    made = AttendanceStatusSetFactory(department=None, section=section)
    for order, (code, kind, points) in enumerate(
        [("p", "present", 2), ("l", "late", 1), ("a", "absent", 0), ("e", "excused", None), ("remote", "present", 2)]
    ):
        AttendanceStatusFactory(
            status_set=made, code=code, label=code.title(), acronym=code[:3].upper(), kind=kind, order=order,
            points=None if points is None else Decimal(points),
        )  # fmt: skip
    return made


def test_the_marking_page_offers_the_sections_own_statuses_and_saves_their_kind(
    session, lecturer, ana, ben, own_statuses, clock
):
    client = signed_in(lecturer)
    page = text(client.get(take_url(session)))
    assert f'name="mark-{ana.pk}" value="remote" id="mark-{ana.pk}-remote"' in page
    assert f'value="present" id="mark-{ana.pk}-present"' not in page  # not a code of this set
    client.post(take_url(session), {f"mark-{ana.pk}": "remote", f"mark-{ben.pk}": "late"})
    marks = {r.student_id: (r.status, r.status_choice.code) for r in AttendanceRecord.objects.all()}
    assert marks == {ana.pk: ("present", "remote"), ben.pk: ("late", "l")}
    page = text(client.get(take_url(session)))
    assert f'value="remote" id="mark-{ana.pk}-remote" checked' in page


def test_the_grid_edits_a_column_with_the_code_each_record_was_given(session, lecturer, ana, ben, own_statuses, clock):
    AttendanceRecordFactory(session=session, student=ana, status="present", status_choice=own_statuses.statuses.get(
        code="remote"))  # fmt: skip
    AttendanceRecordFactory(session=session, student=ben, status="present")  # checked in: the set's first present
    url = reverse("attendance:section-roster", args=[session.section_id]) + f"?edit={session.pk}"
    page = text(signed_in(lecturer).get(url))
    ana_cell = re.search(rf'<select name="mark-{ana.pk}".*?</select>', page, re.S)[0]
    ben_cell = re.search(rf'<select name="mark-{ben.pk}".*?</select>', page, re.S)[0]
    assert '<option value="remote" selected>' in ana_cell and " selected" not in ana_cell.replace(
        '<option value="remote" selected>', ""
    )
    assert '<option value="p" selected>' in ben_cell
