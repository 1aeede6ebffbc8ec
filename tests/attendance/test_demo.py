"""The demo campus's attendance history (attendance/demo.py, docs/DEMO_DATA.md "Attendance").

Seeded as of a fixed day, and rates taken as of that moment, so the results do not depend on the clock."""

import datetime
import hashlib
import re
import statistics
from collections import Counter, defaultdict

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from scipy.stats import spearmanr

from attendance import demo as attendance_demo
from attendance.models import AbsenceExcuse, AttendanceRecord, ClassSession, TermHoliday
from attendance.selectors import attendance_rates, enrolled_at_session
from portal.demo import demo_data_seed
from students import demo
from students.models import Enrollment, Term, TermOutcome
from tests.support.seeding import checksum_of_fresh_seed

pytestmark = pytest.mark.django_db

TODAY = datetime.date(2026, 11, 25)  # week 11 of Autumn 2026's teaching
EARLY = datetime.date(2026, 10, 1)
Status, State = AttendanceRecord.Status, ClassSession.State


def as_of(day: datetime.date) -> datetime.datetime:
    """The moment a seed 'as of' a day works to: the start of that day."""
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min), timezone.get_default_timezone())


@pytest.fixture(scope="class")
def campus(django_db_setup, django_db_blocker):
    """The small campus as of TODAY, seeded once for the class and rolled back after it."""
    with django_db_blocker.unblock(), transaction.atomic():
        demo_data_seed(size="small", seed=2026, today=TODAY)
        yield
        transaction.set_rollback(True)


def attendance_checksum() -> str:
    """The attendance rows by natural key (no ids, no created/updated times)."""
    section = ("section__term__name", "section__course__code", "section__code")
    rows = sorted(
        ClassSession.objects.values_list(
            *section, "starts_at", "ends_at", "room", "late_after_minutes", "series", "state", "opened_at", "closed_at"
        ).order_by()
    )
    rows += sorted(
        AttendanceRecord.objects.values_list(
            "student__student_number",
            *(f"session__{field}" for field in section),
            "session__starts_at",
            "status",
            "recorded_at",
            "method",
            "recorded_by__email",
            "note",
        ).order_by()
    )
    rows += sorted(
        AbsenceExcuse.objects.values_list(
            "record__student__student_number", "record__session__starts_at", "reason", "state", "decided_at"
        ).order_by()
    )
    rows += sorted(TermHoliday.objects.values_list("term__name", "date", "name").order_by())
    return hashlib.sha256(repr(rows).encode()).hexdigest()


@pytest.fixture(scope="class")
def rates(campus) -> dict[tuple[str, str], float]:
    """Each student's attendance in each term, pooled over their courses: attended / counted."""
    pooled = defaultdict(lambda: [0, 0])
    for row in attendance_rates(Enrollment.objects.exclude(status="dropped"), as_of=as_of(TODAY)):
        key = (row.enrollment.student.student_number, row.enrollment.section.term.name)
        pooled[key][0] += row.attended
        pooled[key][1] += row.counted
    return {key: attended / counted for key, (attended, counted) in pooled.items() if counted > 0}


@pytest.mark.usefixtures("campus")
class TestDemoAttendance:
    def test_every_ended_session_is_closed_with_one_record_per_student_enrolled_that_day(self):
        now = as_of(TODAY)
        current = Term.objects.get(start_date__lte=TODAY, end_date__gte=TODAY)
        enrolled = defaultdict(list)
        for section_id, student_id, enrolled_on, ended_on in Enrollment.objects.values_list(
            "section_id", "student_id", "enrolled_on", "ended_on"
        ):
            enrolled[section_id].append((student_id, enrolled_on, ended_on))
        recorded = defaultdict(set)
        for session_id, student_id in AttendanceRecord.objects.values_list("session_id", "student_id"):
            recorded[session_id].add(student_id)
        states = Counter()
        sessions = ClassSession.objects.values_list("id", "section_id", "section__term", "starts_at", "state")
        for pk, section_id, term_id, starts_at, state in sessions:
            states[state] += 1
            day = timezone.localdate(starts_at)
            if state == State.CLOSED:
                expected = {
                    student
                    for student, enrolled_on, ended_on in enrolled[section_id]
                    if enrolled_on <= day and (ended_on is None or day < ended_on)
                }
                assert recorded[pk] == expected, pk
                assert starts_at < now
            else:
                assert not recorded[pk], pk  # nothing in a cancelled or future session
            if starts_at > now:
                assert state == State.SCHEDULED
            if term_id != current.pk:
                assert state in (State.CLOSED, State.CANCELLED)
        assert states[State.CLOSED] > 10 * states[State.CANCELLED] > 0
        assert states[State.SCHEDULED] > 0  # the rest of the running term
        # The service that closes sessions agrees on who was enrolled on the day.
        for session in ClassSession.objects.filter(state=State.CLOSED).order_by("pk")[::50]:
            assert set(enrolled_at_session(session).values_list("pk", flat=True)) == recorded[session.pk]

    def test_no_record_outside_the_enrolment(self):
        enrollments = {
            (section_id, student_id): (enrolled_on, ended_on, status)
            for section_id, student_id, enrolled_on, ended_on, status in Enrollment.objects.values_list(
                "section_id", "student_id", "enrolled_on", "ended_on", "status"
            )
        }
        left_early = 0
        for section_id, student_id, starts_at in AttendanceRecord.objects.values_list(
            "session__section_id", "student_id", "session__starts_at"
        ):
            enrolled_on, ended_on, status = enrollments[(section_id, student_id)]
            day = timezone.localdate(starts_at)
            assert enrolled_on <= day
            assert ended_on is None or day < ended_on
            left_early += status == Enrollment.Status.DROPPED
        assert left_early > 0  # those who dropped after teaching began attended until they left

    def test_the_timetable_is_plausible(self):
        zone = timezone.get_default_timezone()
        holidays = set(TermHoliday.objects.values_list("term", "date"))
        assert holidays
        starts = {datetime.time(h, m) for h, m in attendance_demo.START_TIMES}
        per_section = Counter()
        for session in ClassSession.objects.select_related("section__term"):
            local = session.starts_at.astimezone(zone)
            assert local.time() in starts and local.weekday() < 5
            assert (session.section.term_id, local.date()) not in holidays
            term = session.section.term
            assert (
                term.start_date + datetime.timedelta(days=14)
                <= local.date()
                < term.start_date + datetime.timedelta(days=14 + 7 * attendance_demo.TEACHING_WEEKS)
            )
            assert re.fullmatch(r"[A-F][0-3]\.\d\d", session.room)
            assert session.ends_at - session.starts_at in (datetime.timedelta(minutes=90), datetime.timedelta(hours=2))
            per_section[session.section_id] += 1
        assert min(per_section.values()) >= 10 and max(per_section.values()) <= 2 * attendance_demo.TEACHING_WEEKS

    def test_records_follow_the_check_in_rules(self):
        methods = Counter()
        records = AttendanceRecord.objects.values_list(
            "status",
            "method",
            "recorded_at",
            "session__starts_at",
            "session__late_after_minutes",
            "session__opened_at",
            "session__ends_at",
            "session__closed_at",
        )
        for status, method, recorded_at, starts_at, late_after_minutes, opened_at, ends_at, closed_at in records:
            late_after = starts_at + datetime.timedelta(minutes=late_after_minutes)
            methods[method] += 1
            if status == Status.PRESENT:
                assert opened_at <= recorded_at <= late_after
            elif status == Status.LATE:
                assert late_after < recorded_at <= ends_at
            else:
                assert recorded_at == closed_at
        assert {"qr", "code", "card", "closing", "manual"} <= set(methods)
        assert methods["qr"] > methods["code"] > methods["card"]

    def test_excused_absences_are_approved_by_the_lecturer(self):
        current = Term.objects.get(start_date__lte=TODAY, end_date__gte=TODAY)
        excused = AttendanceRecord.objects.filter(status=Status.EXCUSED).select_related("session__section")
        assert 0.01 < excused.count() / AttendanceRecord.objects.count() < 0.05
        for record in excused:
            lecturers = set(record.session.section.lecturers.values_list("pk", flat=True))
            if record.session.section.term_id == current.pk:  # decided at closing: nothing waits on a date
                assert record.method == "manual" and record.recorded_by_id in lecturers and record.note
                assert not AbsenceExcuse.objects.filter(record=record).exists()
            else:
                excuse = record.excuse
                assert excuse.state == AbsenceExcuse.State.APPROVED and excuse.decided_by_id in lecturers
                assert (
                    record.session.closed_at < excuse.decided_at < record.session.closed_at + datetime.timedelta(days=3)
                )

    def test_engagement_drives_attendance(self, rates):
        numbers = [number for number, _ in rates]
        engagement = [demo.student_engagement(number, 2026) for number in numbers]
        correlation = spearmanr(engagement, list(rates.values())).statistic
        assert correlation > 0.3, correlation
        assert 0.8 < statistics.mean(rates.values()) < 0.92

    def test_students_at_risk_attended_less_than_those_who_passed(self, rates):
        by_outcome = defaultdict(list)
        for number, term, outcome in TermOutcome.objects.values_list(
            "student__student_number", "term__name", "outcome"
        ):
            if (number, term) in rates:
                by_outcome[outcome == TermOutcome.Outcome.PASSED].append(rates[(number, term)])
        passed, at_risk = statistics.mean(by_outcome[True]), statistics.mean(by_outcome[False])
        assert at_risk < passed - 0.08, (at_risk, passed)

    def test_the_demo_students_attend_as_their_traits_say(self, rates):
        strong, struggling = list(demo.DEMO_STUDENTS)
        current = Term.objects.get(start_date__lte=TODAY, end_date__gte=TODAY).name
        terms = {term for number, term in rates if number == strong}
        assert current in terms and len(terms) == demo.PAST_TERMS + 1
        for term in terms:
            assert rates[(strong, term)] > 0.85
        assert statistics.mean(rates[(struggling, t)] for t in terms) < statistics.mean(
            rates[(strong, t)] for t in terms
        )
        # The struggler is below the warning level this term, and falling: what the advisor should catch.
        assert rates[(struggling, current)] < settings.ATTENDANCE_WARNING_RATE
        attended = defaultdict(list)
        records = AttendanceRecord.objects.filter(
            student__student_number=struggling, session__section__term__name=current
        ).values_list("session__starts_at", "status")
        for starts_at, status in records:
            recent = timezone.localdate(starts_at) >= TODAY - datetime.timedelta(weeks=3)
            attended[recent].append(status in (Status.PRESENT, Status.LATE))
        assert statistics.mean(attended[True]) < statistics.mean(attended[False]) - 0.2

    def test_running_again_adds_nothing(self):
        before = (ClassSession.objects.count(), AttendanceRecord.objects.count(), AbsenceExcuse.objects.count())
        digest = attendance_checksum()
        report = demo_data_seed(size="small", seed=2026, today=TODAY)
        assert (report.counts["class sessions"], report.counts["attendance records"]) == before[:2]
        assert before[1] > 20_000
        assert AbsenceExcuse.objects.count() == before[2]
        assert attendance_checksum() == digest


def test_the_same_seed_gives_the_same_attendance():
    digest = checksum_of_fresh_seed(attendance_checksum, size="small", seed=2026, today=TODAY)
    assert checksum_of_fresh_seed(attendance_checksum, size="small", seed=2026, today=TODAY) == digest
    assert checksum_of_fresh_seed(attendance_checksum, size="small", seed=7, today=TODAY) != digest


def test_a_rerun_later_in_the_term_closes_what_has_ended_as_a_fresh_seed_would():
    expected = checksum_of_fresh_seed(attendance_checksum, size="small", seed=2026, today=TODAY)
    demo_data_seed(size="small", seed=2026, today=EARLY)
    scheduled = ClassSession.objects.filter(state=State.SCHEDULED).count()
    records = AttendanceRecord.objects.count()
    demo_data_seed(size="small", seed=2026, today=TODAY)
    assert ClassSession.objects.filter(state=State.SCHEDULED).count() < scheduled
    assert AttendanceRecord.objects.count() > records
    assert attendance_checksum() == expected
