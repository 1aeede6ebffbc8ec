"""Attendance services: sessions, check-in and its refusals, proxy signs, closing, corrections, excuses."""

import datetime
import threading

import pytest
import time_machine
from django.db import connection

from accounts.roles import Role
from attendance import services
from attendance.errors import AttendanceErrorCode as Code
from attendance.models import AbsenceExcuse, AttendanceRecord, ClassSession, DeviceSighting, ProxyFlag, TermHoliday
from campusiq.core.errors import ServiceError
from campusiq.core.models import AuditLogEntry
from students.models import Enrollment, Student
from tests.factories import (
    AttendanceRecordFactory,
    ClassSessionFactory,
    EnrollmentFactory,
    SectionFactory,
    StudentFactory,
    TermFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
UTC = datetime.UTC
START = datetime.datetime(2026, 9, 14, 10, 0, tzinfo=UTC)  # the factories' session start


@pytest.fixture
def session():
    return ClassSessionFactory(late_after_minutes=10, state="open")


@pytest.fixture
def student(session):
    return EnrollmentFactory(section=session.section).student


def check_in(session, student, at=START + datetime.timedelta(minutes=2), **kwargs):
    return services.attendance_check_in(student=student, session=session, method="qr", scanned_at=at, **kwargs)


def refusal(session, student, at=START + datetime.timedelta(minutes=2), **kwargs) -> str:
    with pytest.raises(ServiceError) as error:
        check_in(session, student, at=at, **kwargs)
    assert not AttendanceRecord.objects.filter(session=session, student=student).exists()
    return error.value.code


# --- sessions --------------------------------------------------------------------------------


def test_weekly_series_keeps_wall_clock_time_across_dst_and_skips_holidays(settings):
    settings.TIME_ZONE = "Europe/Lisbon"
    term = TermFactory(start_date=datetime.date(2026, 9, 14), end_date=datetime.date(2026, 12, 18),
                       add_drop_deadline=datetime.date(2026, 9, 28))  # fmt: skip
    TermHoliday.objects.create(term=term, date=datetime.date(2026, 10, 5), name="Republic Day")
    section = SectionFactory(term=term)
    sessions = services.class_session_series_create(
        section=section, first_date=datetime.date(2026, 9, 14), start_time=datetime.time(10, 0),
        duration=datetime.timedelta(minutes=90), room="A-1",
    )  # fmt: skip
    days = [s.starts_at.date() for s in sessions]
    assert datetime.date(2026, 10, 5) not in days
    assert days[0] == datetime.date(2026, 9, 14) and days[-1] == datetime.date(2026, 12, 14)
    assert len(sessions) == 14 - 1  # Mondays 14 Sep to 14 Dec, less the holiday
    # Lisbon is UTC+1 in summer time and UTC+0 after 25 October: 10:00 local both sides.
    utc_hours = {s.starts_at.astimezone(UTC).date(): s.starts_at.astimezone(UTC).hour for s in sessions}
    assert utc_hours[datetime.date(2026, 10, 19)] == 9 and utc_hours[datetime.date(2026, 10, 26)] == 10
    assert len({s.series for s in sessions}) == 1


def test_session_must_fall_in_its_term_and_end_after_start(session):
    section = session.section
    with pytest.raises(ServiceError):
        services.class_session_create(section=section, starts_at=START, ends_at=START)
    with pytest.raises(ServiceError):
        outside = datetime.datetime(2030, 1, 1, 10, tzinfo=UTC)
        services.class_session_create(section=section, starts_at=outside, ends_at=outside + datetime.timedelta(hours=1))


def test_open_only_shortly_before_start_until_end():
    session = ClassSessionFactory(state=ClassSession.State.SCHEDULED)
    with time_machine.travel(START - datetime.timedelta(minutes=16)), pytest.raises(ServiceError) as error:
        services.class_session_open(session=session, actor=None)
    assert error.value.code == Code.SESSION_NOT_STARTED
    with time_machine.travel(START - datetime.timedelta(minutes=14)):
        assert services.class_session_open(session=session, actor=None).state == ClassSession.State.OPEN
    assert AuditLogEntry.objects.filter(verb="class_session.opened").count() == 1


def test_cancel_needs_a_reason_and_is_audited(session):
    with pytest.raises(ServiceError):
        services.class_session_cancel(session=session, actor=None, reason="  ")
    services.class_session_cancel(session=session, actor=None, reason="lecturer ill")
    session.refresh_from_db()
    assert session.state == ClassSession.State.CANCELLED
    assert AuditLogEntry.objects.get(verb="class_session.cancelled").reason == "lecturer ill"


# --- check-in --------------------------------------------------------------------------------


def test_present_then_late_after_the_threshold(session, student):
    result = check_in(session, student, at=START + datetime.timedelta(minutes=10))
    assert result.created and result.record.status == "present"
    other = EnrollmentFactory(section=session.section).student
    assert check_in(session, other, at=START + datetime.timedelta(minutes=10, seconds=1)).record.status == "late"


def test_second_check_in_returns_the_existing_record(session, student):
    first = check_in(session, student)
    again = check_in(session, student, at=START + datetime.timedelta(minutes=30))
    assert not again.created and again.record.pk == first.record.pk and again.record.status == "present"
    assert AttendanceRecord.objects.count() == 1


@pytest.mark.parametrize(
    ("state", "offset_minutes", "code"),
    [
        (ClassSession.State.OPEN, -16, Code.SESSION_NOT_STARTED),
        (ClassSession.State.OPEN, 91, Code.SESSION_ENDED),
        (ClassSession.State.SCHEDULED, 5, Code.SESSION_NOT_OPEN),
        (ClassSession.State.CLOSED, 5, Code.SESSION_CLOSED),
        (ClassSession.State.CANCELLED, 5, Code.SESSION_CANCELLED),
    ],
)
def test_session_not_open_refusals(state, offset_minutes, code):
    session = ClassSessionFactory(state=state)
    student = EnrollmentFactory(section=session.section).student
    assert refusal(session, student, at=START + datetime.timedelta(minutes=offset_minutes)) == code


def test_student_refusals(session):
    assert refusal(session, StudentFactory()) == Code.NOT_ENROLLED
    suspended = EnrollmentFactory(section=session.section, student=StudentFactory(status=Student.Status.SUSPENDED))
    assert refusal(session, suspended.student) == Code.STUDENT_SUSPENDED
    graduated = EnrollmentFactory(section=session.section, student=StudentFactory(status=Student.Status.GRADUATED))
    assert refusal(session, graduated.student) == Code.STUDENT_NOT_ACTIVE
    dropped = EnrollmentFactory(section=session.section, status=Enrollment.Status.DROPPED, ended_on=START.date())
    assert refusal(session, dropped.student) == Code.NOT_ENROLLED


def test_check_in_keeps_its_evidence(session, student):
    record = check_in(session, student, ip="10.1.2.3", user_agent="Phone/1.0", device_id="dev-a").record
    assert (record.ip, record.user_agent, record.device_id, record.method) == ("10.1.2.3", "Phone/1.0", "dev-a", "qr")
    assert DeviceSighting.objects.get(student=student, device_id="dev-a").check_ins == 1


# --- anti-proxy ------------------------------------------------------------------------------


def test_one_device_checking_in_two_students_flags_both(session, student):
    friend = EnrollmentFactory(section=session.section).student
    first = check_in(session, student, device_id="shared-phone")
    second = check_in(session, friend, device_id="shared-phone")
    assert first.flags == [] and second.flags == ["shared_device"]
    flagged = set(ProxyFlag.objects.filter(kind="shared_device").values_list("record__student_id", flat=True))
    assert flagged == {student.pk, friend.pk}


def test_new_device_while_the_usual_one_is_absent_is_flagged(session, student):
    DeviceSighting.objects.create(
        student=student, device_id="own-phone", first_seen=START, last_seen=START, check_ins=5
    )
    result = check_in(session, student, device_id="someone-elses-phone")
    assert result.flags == ["new_device"]


def test_new_device_is_not_flagged_for_a_student_without_history(session, student):
    DeviceSighting.objects.create(
        student=student, device_id="own-phone", first_seen=START, last_seen=START, check_ins=2
    )
    assert check_in(session, student, device_id="new-phone").flags == []


def test_off_campus_only_when_networks_are_configured(session, student, settings):
    settings.ATTENDANCE_CAMPUS_NETWORKS = ["193.136.0.0/16", "2001:690::/32"]
    assert check_in(session, student, ip="8.8.8.8").flags == ["off_campus"]
    other = EnrollmentFactory(section=session.section).student
    assert check_in(session, other, ip="193.136.4.20").flags == []


def test_institution_can_turn_a_flag_into_a_refusal(session, student, settings):
    settings.ATTENDANCE_CAMPUS_NETWORKS = ["193.136.0.0/16"]
    settings.ATTENDANCE_REFUSE_FLAGS = ["off_campus"]
    assert refusal(session, student, ip="8.8.8.8") == Code.PROXY_REFUSED
    assert not ProxyFlag.objects.exists() and not DeviceSighting.objects.exists()


# --- closing ---------------------------------------------------------------------------------


def test_close_marks_the_missing_absent_once(session, student):
    check_in(session, student)
    absent = EnrollmentFactory(section=session.section, enrolled_on=START.date()).student
    late_joiner = EnrollmentFactory(section=session.section, enrolled_on=START.date() + datetime.timedelta(days=1))
    left_later = EnrollmentFactory(section=session.section, status=Enrollment.Status.WITHDRAWN,
                                   ended_on=START.date() + datetime.timedelta(days=30))  # fmt: skip
    assert services.class_session_close(session=session, actor=None) == 2
    statuses = dict(AttendanceRecord.objects.filter(session=session).values_list("student_id", "status"))
    assert statuses == {student.pk: "present", absent.pk: "absent", left_later.student_id: "absent"}
    assert late_joiner.student_id not in statuses
    assert services.class_session_close(session=session, actor=None) == 0
    assert AttendanceRecord.objects.filter(session=session).count() == 3
    assert AuditLogEntry.objects.filter(verb="class_session.closed").count() == 1


def test_closing_a_cancelled_session_is_refused():
    session = ClassSessionFactory(state=ClassSession.State.CANCELLED)
    EnrollmentFactory(section=session.section)
    with pytest.raises(ServiceError):
        services.class_session_close(session=session, actor=None)
    assert not AttendanceRecord.objects.exists()


def test_periodic_task_closes_sessions_that_ended(settings):
    from attendance.tasks import close_finished_sessions

    ended = ClassSessionFactory(state="open")
    EnrollmentFactory(section=ended.section)
    running = ClassSessionFactory(
        starts_at=START + datetime.timedelta(days=7), ends_at=START + datetime.timedelta(days=7, hours=2), state="open"
    )
    with time_machine.travel(START + datetime.timedelta(hours=2, minutes=1)):
        assert close_finished_sessions.delay().get() == 1
    ended.refresh_from_db()
    running.refresh_from_db()
    assert ended.state == "closed" and running.state == "open"
    assert AttendanceRecord.objects.filter(session=ended, status="absent").count() == 1


# --- corrections and excuses -----------------------------------------------------------------


def test_lecturer_sets_a_status_with_reason_audited(session, student):
    lecturer = UserFactory(roles=[Role.LECTURER])
    check_in(session, student)
    record = services.attendance_record_set(session=session, student=student, status="excused", actor=lecturer,
                                            reason="medical note")  # fmt: skip
    assert record.status == "excused"
    entry = AuditLogEntry.objects.get(verb="attendance.changed")
    assert (entry.changes, entry.reason, entry.actor_id) == (
        {"status": ["present", "excused"]},
        "medical note",
        lecturer.pk,
    )
    with pytest.raises(ServiceError):
        services.attendance_record_set(session=session, student=student, status="present", actor=lecturer, reason="")
    with pytest.raises(ServiceError):
        services.attendance_record_set(
            session=session, student=StudentFactory(), status="present", actor=lecturer, reason="x"
        )


def test_void_makes_a_check_in_an_absence(session, student):
    record = check_in(session, student, device_id="x").record
    services.attendance_record_void(record=record, actor=None, reason="proxy: friend's phone")
    record.refresh_from_db()
    assert (record.status, record.voided) == ("absent", True)
    assert check_in(session, student).record.status == "absent"  # no second chance by scanning again
    assert AuditLogEntry.objects.filter(verb="attendance.voided").exists()


def test_excuse_submitted_and_approved(session, student):
    record = AttendanceRecordFactory(session=session, student=student, status="absent")
    excuse = services.absence_excuse_submit(record=record, student=student, reason="hospital")
    with pytest.raises(ServiceError) as error:
        services.absence_excuse_submit(record=record, student=student, reason="again")
    assert error.value.status == 409
    services.absence_excuse_decide(excuse=excuse, approve=True, actor=None, note="ok")
    record.refresh_from_db()
    assert record.status == "excused"
    with pytest.raises(ServiceError):
        services.absence_excuse_decide(excuse=excuse, approve=False, actor=None)


def test_excuse_rejected_keeps_the_absence(session, student):
    record = AttendanceRecordFactory(session=session, student=student, status="absent")
    excuse = services.absence_excuse_submit(record=record, student=student, reason="overslept")
    services.absence_excuse_decide(excuse=excuse, approve=False, actor=None, note="not a valid reason")
    record.refresh_from_db()
    assert record.status == "absent" and AbsenceExcuse.objects.get().state == "rejected"


def test_only_own_absences_can_be_excused(session, student):
    present = AttendanceRecordFactory(session=session, student=student, status="present")
    with pytest.raises(ServiceError):
        services.absence_excuse_submit(record=present, student=student, reason="x")
    other = AttendanceRecordFactory(session=session, status="absent")
    with pytest.raises(ServiceError):
        services.absence_excuse_submit(record=other, student=student, reason="x")


# --- privacy (warnings: test_warnings.py) --------------------------------------------------------------------


def test_evidence_is_purged_after_retention(session, student, settings):
    settings.ATTENDANCE_EVIDENCE_RETENTION_DAYS = 180
    record = check_in(session, student, ip="10.0.0.1", user_agent="UA", device_id="dev")
    with time_machine.travel(START + datetime.timedelta(days=181)):
        assert services.attendance_evidence_purge() == 1
    record.record.refresh_from_db()
    assert (record.record.ip, record.record.user_agent, record.record.device_id) == (None, "", "")
    assert record.record.status == "present"


# --- concurrency (real PostgreSQL) -----------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_check_ins_of_one_student_make_one_record():
    session = ClassSessionFactory(state="open")
    student = EnrollmentFactory(section=session.section).student
    barrier, results, errors = threading.Barrier(6), [], []

    def tap(n: int) -> None:
        try:
            barrier.wait()
            results.append(check_in(session, student, device_id=f"tap-{n}"))
        except Exception as error:  # collected and asserted below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=tap, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert AttendanceRecord.objects.filter(session=session, student=student).count() == 1
    assert sum(result.created for result in results) == 1
    assert len({result.record.pk for result in results}) == 1


def test_a_session_cannot_be_closed_before_it_starts():
    session = ClassSessionFactory(state=ClassSession.State.SCHEDULED)
    EnrollmentFactory(section=session.section)
    with time_machine.travel(START - datetime.timedelta(minutes=1)), pytest.raises(ServiceError) as error:
        services.class_session_close(session=session, actor=None)
    assert error.value.code == Code.SESSION_NOT_STARTED
    assert not AttendanceRecord.objects.exists()


def test_approving_an_excuse_of_a_record_changed_meanwhile(session, student):
    record = AttendanceRecordFactory(session=session, student=student, status="absent")
    excuse = services.absence_excuse_submit(record=record, student=student, reason="bus strike")
    services.attendance_record_set(session=session, student=student, status="late", actor=None, reason="was there")
    services.absence_excuse_decide(excuse=excuse, approve=True, actor=None)
    record.refresh_from_db()
    assert record.status == "late"


def test_approving_an_excuse_of_a_voided_check_in_excuses_it(session, student):
    record = AttendanceRecordFactory(session=session, student=student, status="absent")
    excuse = services.absence_excuse_submit(record=record, student=student, reason="ill")
    services.attendance_record_void(record=record, actor=None, reason="checked in by a friend")
    services.absence_excuse_decide(excuse=excuse, approve=True, actor=None)
    record.refresh_from_db()
    assert (record.status, record.voided) == ("excused", False)


def test_voiding_twice_is_one_change_and_cancelled_sessions_are_left_alone(session, student):
    record = check_in(session, student).record
    services.attendance_record_void(record=record, actor=None, reason="proxy")
    services.attendance_record_void(record=record, actor=None, reason="proxy again")
    assert AuditLogEntry.objects.filter(verb="attendance.voided").count() == 1
    other = EnrollmentFactory(section=session.section).student
    kept = check_in(session, other).record
    services.class_session_cancel(session=session, actor=None, reason="fire drill")
    with pytest.raises(ServiceError) as error:
        services.attendance_record_void(record=kept, actor=None, reason="x")
    assert error.value.code == Code.SESSION_CANCELLED


# --- taking attendance: the bulk save -----------------------------------------------------------

DURING_SESSION = START + datetime.timedelta(minutes=20)
AFTER_SESSION = START + datetime.timedelta(hours=3)


def enrolled(session, count: int) -> list[Student]:
    return [EnrollmentFactory(section=session.section).student for _ in range(count)]


def marks_of(session) -> dict[int, str]:
    return dict(AttendanceRecord.objects.filter(session=session).values_list("student_id", "status"))


def test_marks_save_writes_every_mark_with_one_audit_entry(session):
    lecturer = UserFactory(roles=[Role.LECTURER])
    ana, ben, cleo = enrolled(session, 3)
    check_in(session, cleo)
    with time_machine.travel(DURING_SESSION):
        saved = services.attendance_marks_save(
            session=session, marks={ana.pk: "late", ben.pk: "absent", cleo.pk: "present"}, actor=lecturer
        )
    assert marks_of(session) == {ana.pk: "late", ben.pk: "absent", cleo.pk: "present"}
    assert saved.changed == {ana.pk: [None, "late"], ben.pk: [None, "absent"]}  # Cleo's check-in unchanged
    record = AttendanceRecord.objects.get(student=ana)
    assert (record.method, record.recorded_by) == ("manual", lecturer)
    entry = AuditLogEntry.objects.get(verb="attendance.marks_saved")
    assert (entry.actor, entry.object_id, entry.reason) == (lecturer, str(session.pk), "")
    assert entry.changes == {
        "marks_changed": [None, 2],
        ana.student_number: [None, "late"],
        ben.student_number: [None, "absent"],
    }


@pytest.mark.parametrize(
    ("marks", "code"),
    [
        (lambda ana, stranger: {ana.pk: "present", stranger.pk: "present"}, Code.NOT_ENROLLED),
        (lambda ana, stranger: {ana.pk: "present", ana.pk + 10_000: "late"}, Code.NOT_ENROLLED),
        (lambda ana, stranger: {ana.pk: "sleeping"}, Code.STATUS_INVALID),
    ],
)
def test_marks_save_is_all_or_nothing(marks, code, session):
    ana, ben = enrolled(session, 2)
    check_in(session, ben)
    stranger = StudentFactory()
    before = list(AttendanceRecord.objects.values_list("pk", "student_id", "status", "updated_at"))
    with time_machine.travel(DURING_SESSION), pytest.raises(ServiceError) as error:
        services.attendance_marks_save(session=session, marks={ben.pk: "absent", **marks(ana, stranger)}, actor=None)
    assert error.value.code == code
    assert list(AttendanceRecord.objects.values_list("pk", "student_id", "status", "updated_at")) == before
    assert not AuditLogEntry.objects.filter(verb="attendance.marks_saved").exists()


def test_marks_of_a_cancelled_session_are_refused(session):
    [ana] = enrolled(session, 1)
    ClassSession.objects.filter(pk=session.pk).update(state="cancelled")
    with pytest.raises(ServiceError) as error:
        services.attendance_marks_save(session=session, marks={ana.pk: "present"}, actor=None)
    assert error.value.code == Code.SESSION_CANCELLED and not AttendanceRecord.objects.exists()


def test_a_reason_is_needed_to_change_recorded_marks_after_the_end_not_to_take_them(session):
    ana, ben = enrolled(session, 2)
    check_in(session, ana)
    with time_machine.travel(DURING_SESSION):  # during the session, changing a check-in needs no reason
        services.attendance_marks_save(session=session, marks={ana.pk: "late"}, actor=None)
    with time_machine.travel(AFTER_SESSION):
        services.attendance_marks_save(session=session, marks={ben.pk: "absent"}, actor=None)  # a first mark
        with pytest.raises(ServiceError) as error:
            services.attendance_marks_save(session=session, marks={ana.pk: "present"}, actor=None)
        assert (error.value.code, error.value.field) == (Code.REASON_REQUIRED, "reason")
        assert marks_of(session) == {ana.pk: "late", ben.pk: "absent"}
        services.attendance_marks_save(session=session, marks={ana.pk: "present"}, actor=None, reason="Sat at the back")
    assert marks_of(session)[ana.pk] == "present"
    assert AttendanceRecord.objects.get(student=ana).note == "Sat at the back"


def test_every_change_of_a_closed_session_needs_a_reason(session):
    ana, ben = enrolled(session, 2)
    check_in(session, ana)
    with time_machine.travel(DURING_SESSION):
        services.class_session_close(session=session, actor=None)
        with pytest.raises(ServiceError) as error:
            services.attendance_marks_save(session=session, marks={ben.pk: "excused"}, actor=None)
        assert error.value.code == Code.REASON_REQUIRED
        # Marks as they are need no reason: nothing changes.
        saved = services.attendance_marks_save(session=session, marks={ben.pk: "absent"}, actor=None)
    assert saved.changed == {} and not AuditLogEntry.objects.filter(verb="attendance.marks_saved").exists()


def test_set_all_unmarked_marks_only_those_without_a_mark(session):
    ana, ben, cleo = enrolled(session, 3)
    check_in(session, ana)
    with time_machine.travel(DURING_SESSION):
        services.attendance_marks_save(session=session, marks={ben.pk: "excused"}, actor=None, unmarked_to="absent")
    assert marks_of(session) == {ana.pk: "present", ben.pk: "excused", cleo.pk: "absent"}


def test_a_voided_check_in_saved_as_absent_stays_voided(session):
    [ana] = enrolled(session, 1)
    record = check_in(session, ana).record
    services.attendance_record_void(record=record, actor=None, reason="proxy")
    with time_machine.travel(DURING_SESSION):
        saved = services.attendance_marks_save(session=session, marks={ana.pk: "absent"}, actor=None)
    record.refresh_from_db()
    assert saved.changed == {} and record.voided


def count_statements(action, **kwargs) -> int:
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        action(**kwargs)
    return len(queries)


def test_marks_save_runs_as_many_statements_for_500_students_as_for_5():
    counts = []
    for size in (5, 50, 500):
        session = ClassSessionFactory(state="open")
        students = enrolled(session, size)
        half = size // 2
        AttendanceRecord.objects.bulk_create(
            [
                AttendanceRecord(session=session, student=s, status="present", recorded_at=START, method="qr")
                for s in students[:half]
            ]
        )
        marks = {s.pk: "late" for s in students[: half // 2]} | {s.pk: "excused" for s in students[half : half + 2]}
        with time_machine.travel(DURING_SESSION):
            counts.append(
                count_statements(
                    services.attendance_marks_save, session=session, marks=marks, actor=None, unmarked_to="absent"
                )
            )
        assert len(marks_of(session)) == size
    assert counts[0] == counts[1] == counts[2], counts


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_check_ins_landing_during_a_bulk_save_are_kept_once():
    """Half the class checks in while the lecturer saves "everyone unmarked absent": each student ends
    with exactly one record, and no check-in that succeeded is overwritten."""
    session = ClassSessionFactory(state="open")
    students = enrolled(session, 40)
    lecturer = UserFactory(roles=[Role.LECTURER])
    arriving = students[::2]
    barrier, results, errors = threading.Barrier(len(arriving) + 1), {}, []

    def tap(student) -> None:
        try:
            barrier.wait()
            results[student.pk] = check_in(session, student, at=START + datetime.timedelta(minutes=3))
        except Exception as error:  # collected and asserted below
            errors.append(error)
        finally:
            connection.close()

    def save() -> None:
        try:
            barrier.wait()
            with time_machine.travel(DURING_SESSION, tick=True):
                results["saved"] = services.attendance_marks_save(
                    session=session, marks={}, actor=lecturer, unmarked_to="absent"
                )
        except Exception as error:  # collected and asserted below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=tap, args=(s,)) for s in arriving] + [threading.Thread(target=save)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    marks = marks_of(session)
    assert len(marks) == len(students)
    assert AttendanceRecord.objects.filter(session=session).count() == len(students)
    saved = results["saved"]
    for student in arriving:
        if results[student.pk].created:  # the check-in wrote the record: it stands
            assert marks[student.pk] == "present", student.pk
        else:  # the lecturer's mark came first: the check-in found it
            assert marks[student.pk] == "absent" and student.pk in saved.changed
    assert {s.pk for s in students if s not in arriving} <= set(saved.changed)
    assert all(marks[s.pk] == "absent" for s in students if s not in arriving)
    assert set(saved.checked_in_meanwhile).isdisjoint(saved.changed)


# --- sessions not taken -----------------------------------------------------------------------


def never_opened(email: str = "lena@campus.example") -> ClassSession:
    lecturer = UserFactory(roles=[Role.LECTURER], email=email)
    session = ClassSessionFactory(section=SectionFactory(lecturers=[lecturer]))
    EnrollmentFactory(section=session.section, enrolled_on=START.date())
    return session


def test_closing_a_session_never_opened_makes_it_not_taken_and_reminds_once(
    mailoutbox, django_capture_on_commit_callbacks
):
    session = never_opened()
    with django_capture_on_commit_callbacks(execute=True):
        assert services.class_session_close(session=session, actor=None) == 0
    session.refresh_from_db()
    assert session.state == ClassSession.State.NOT_TAKEN and not AttendanceRecord.objects.exists()
    assert [message.to for message in mailoutbox] == [["lena@campus.example"]]
    assert "take" in mailoutbox[0].body.lower() and session.section.course.code in mailoutbox[0].subject
    with django_capture_on_commit_callbacks(execute=True):
        assert services.class_session_close(session=session, actor=None) == 0
        assert services.class_session_not_taken_remind(session_id=session.pk) is False
    assert len(mailoutbox) == 1


def test_the_periodic_close_turns_sessions_never_taken_into_not_taken(mailoutbox, django_capture_on_commit_callbacks):
    from attendance.tasks import close_finished_sessions

    untaken = never_opened()
    marked = never_opened("max@campus.example")
    AttendanceRecordFactory(session=marked, student=Student.objects.filter(enrollments__section=marked.section)[0])
    EnrollmentFactory(section=marked.section, enrolled_on=START.date())
    with time_machine.travel(AFTER_SESSION), django_capture_on_commit_callbacks(execute=True):
        assert close_finished_sessions.delay().get() == 2
    untaken.refresh_from_db()
    marked.refresh_from_db()
    assert (untaken.state, marked.state) == ("not_taken", "closed")
    assert AttendanceRecord.objects.filter(session=marked, status="absent").count() == 1  # a mark: closed as usual
    reminders = [message.to for message in mailoutbox if message.subject.startswith("Attendance not taken")]
    assert reminders == [["lena@campus.example"]]


def test_a_not_taken_session_counts_for_no_one():
    from attendance.selectors import attendance_rates_for_section

    session = never_opened()
    held = ClassSessionFactory(section=session.section, starts_at=START + datetime.timedelta(days=1))
    student = Student.objects.get(enrollments__section=session.section)
    AttendanceRecordFactory(session=held, student=student, status="present")
    with time_machine.travel(AFTER_SESSION):
        services.class_session_close(session=session, actor=None)
    [rate] = attendance_rates_for_section(session.section, as_of=START + datetime.timedelta(days=2))
    assert (rate.held, rate.attended, rate.planned, rate.rate) == (1, 1, 1, 1)


def test_taking_a_not_taken_session_closes_it_the_unmarked_absent(django_capture_on_commit_callbacks):
    session = never_opened()
    late_one = EnrollmentFactory(section=session.section, enrolled_on=START.date()).student
    first = Student.objects.filter(enrollments__section=session.section).exclude(pk=late_one.pk).get()
    with time_machine.travel(AFTER_SESSION):
        services.class_session_close(session=session, actor=None)
        saved = services.attendance_marks_save(session=session, marks={late_one.pk: "late"}, actor=None)
    session.refresh_from_db()
    assert (session.state, saved.marked_absent) == ("closed", 1)
    assert marks_of(session) == {late_one.pk: "late", first.pk: "absent"}
    entry = AuditLogEntry.objects.get(verb="attendance.marks_saved")
    assert entry.changes["state"] == ["not_taken", "closed"]


def test_a_not_taken_session_can_be_cancelled():
    session = never_opened()
    with time_machine.travel(AFTER_SESSION):
        services.class_session_close(session=session, actor=None)
    services.class_session_cancel(session=session, actor=None, reason="Lecturer ill")
    session.refresh_from_db()
    assert session.state == "cancelled"


def test_not_taken_sessions_of_a_lecturer_most_recent_first():
    from attendance.selectors import class_sessions_not_taken_for

    older = never_opened()
    lecturer = older.section.lecturers.get()
    newer = ClassSessionFactory(section=older.section, starts_at=START + datetime.timedelta(days=7))
    someone_elses = never_opened("max@campus.example")
    ClassSessionFactory(section=older.section, starts_at=START + datetime.timedelta(days=14))
    with time_machine.travel(START + datetime.timedelta(days=8)):
        for session in (older, newer, someone_elses):
            services.class_session_close(session=session, actor=None)
    assert list(class_sessions_not_taken_for(lecturer)) == [newer, older]
