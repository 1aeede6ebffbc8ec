"""Feature values on a hand-built term, exact numbers, and the "as of" cut-off.

Student s1 takes A (from the start) and B (from 1 October). A meets Mondays 10:00 UTC, B Tuesdays
14:00 UTC; the cut-off is Tuesday 27 October 12:00 UTC, so B's session that day is not held yet.
"""

import datetime
import math
from decimal import Decimal

import numpy as np
import pytest
from django.utils import timezone

from attendance.models import AttendanceRecord, ClassSession, StatusKind
from attendance.selectors import attendance_rates
from predictions.features import FEATURE_NAMES, term_features, term_labels, term_population, training_cutoff
from students.models import Enrollment, Grade, TermOutcome
from tests.factories import (
    AssessmentFactory,
    AttendanceRecordFactory,
    AttendanceStatusFactory,
    AttendanceStatusSetFactory,
    ClassSessionFactory,
    CourseFactory,
    EnrollmentFactory,
    GradeFactory,
    SectionFactory,
    SectionGroupFactory,
    SectionGroupMemberFactory,
    StudentFactory,
    TermFactory,
    TermOutcomeFactory,
)

UTC = datetime.UTC
Status = AttendanceRecord.Status
AS_OF = datetime.datetime(2026, 10, 27, 12, 0, tzinfo=UTC)


def at(month, day, hour):
    return datetime.datetime(2026, month, day, hour, 0, tzinfo=UTC)


@pytest.fixture
def world(db):
    older = TermFactory(name="Spring 2026", start_date=datetime.date(2026, 2, 9), end_date=datetime.date(2026, 6, 1))
    old = TermFactory(name="Summer 2026", start_date=datetime.date(2026, 6, 8), end_date=datetime.date(2026, 8, 28))
    term = TermFactory(name="Autumn 2026", start_date=datetime.date(2026, 9, 14))
    a = SectionFactory(term=term, course=CourseFactory(credits=6))
    b = SectionFactory(term=term, course=CourseFactory(credits=5))
    s1, s2, s4 = StudentFactory(), StudentFactory(), StudentFactory()
    e1a = EnrollmentFactory(student=s1, section=a)
    e1b = EnrollmentFactory(student=s1, section=b, enrolled_on=datetime.date(2026, 10, 1))
    EnrollmentFactory(student=s2, section=a)
    EnrollmentFactory(student=s4, section=a, status=Enrollment.Status.DROPPED, ended_on=datetime.date(2026, 9, 25))
    # A: Mondays, week 3 cancelled, week 7 after the cut-off.
    a_sessions = [
        ClassSessionFactory(
            section=a,
            starts_at=at(9, 14, 10) + datetime.timedelta(weeks=week),
            state=ClassSession.State.CANCELLED if week == 3 else ClassSession.State.CLOSED,
        )
        for week in range(8)
    ]
    for week, status in [(0, Status.PRESENT), (1, Status.LATE), (2, Status.ABSENT), (3, Status.PRESENT),
                         (4, Status.EXCUSED), (6, Status.PRESENT), (7, Status.PRESENT)]:  # fmt: skip
        AttendanceRecordFactory(session=a_sessions[week], student=s1, status=status)
    # B: Tuesdays from 15 September; s1 enrolled on 1 October.
    b_sessions = {
        day: ClassSessionFactory(section=b, starts_at=at(month, day, 14), state=ClassSession.State.CLOSED)
        for month, day in [(9, 15), (9, 22), (9, 29), (10, 6), (10, 13), (10, 20), (10, 27)]
    }
    AttendanceRecordFactory(session=b_sessions[22], student=s1, status=Status.PRESENT)  # before enrolling
    AttendanceRecordFactory(session=b_sessions[6], student=s1, status=Status.PRESENT)
    AttendanceRecordFactory(session=b_sessions[13], student=s1, status=Status.ABSENT, voided=True)
    AttendanceRecordFactory(session=b_sessions[20], student=s1, status=Status.LATE)
    # s4 dropped A on 25 September: a record after leaving does not count.
    AttendanceRecordFactory(session=a_sessions[0], student=s4, status=Status.PRESENT)
    AttendanceRecordFactory(session=a_sessions[2], student=s4, status=Status.PRESENT)
    # Grades: a3 is due after the cut-off, b2 before s1 enrolled in B, b1 is due and ungraded.
    a1 = AssessmentFactory(section=a, weight=Decimal(20), max_score=Decimal(20), due_date=datetime.date(2026, 9, 28))
    a2 = AssessmentFactory(section=a, weight=Decimal(30), max_score=Decimal(100), due_date=datetime.date(2026, 10, 12))
    a3 = AssessmentFactory(section=a, weight=Decimal(50), max_score=Decimal(20), due_date=datetime.date(2026, 11, 9))
    AssessmentFactory(section=b, weight=Decimal(40), max_score=Decimal(10), due_date=datetime.date(2026, 10, 20))
    b2 = AssessmentFactory(section=b, weight=Decimal(10), max_score=Decimal(10), due_date=datetime.date(2026, 9, 22))
    GradeFactory(student=s1, assessment=a1, score=Decimal(14))
    GradeFactory(student=s1, assessment=a2, score=Decimal(50))
    GradeFactory(student=s1, assessment=a3, score=Decimal(20))
    GradeFactory(student=s1, assessment=b2, score=Decimal(2))
    # History: s1 passed the older term and failed the last one; both were enrolled then.
    for past, outcome in ((older, TermOutcome.Outcome.PASSED), (old, TermOutcome.Outcome.FAILED)):
        EnrollmentFactory(student=s1, section=SectionFactory(term=past))
        TermOutcomeFactory(student=s1, term=past, outcome=outcome)
    TermOutcomeFactory(student=s2, term=term, outcome=TermOutcome.Outcome.WITHDREW)
    TermOutcomeFactory(student=s4, term=term, outcome=TermOutcome.Outcome.PASSED)
    return {"term": term, "s1": s1, "s2": s2, "s4": s4, "e1": [e1a, e1b]}


def features_of(matrix, student) -> dict:
    row = matrix.student_ids.tolist().index(student.pk)
    return dict(zip(matrix.names, matrix.values[row].tolist(), strict=True))


def assert_features(actual: dict, expected: dict) -> None:
    assert set(actual) == set(expected)
    for name, value in expected.items():
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(actual[name]), name
        else:
            assert actual[name] == pytest.approx(value), name


def test_features_of_a_student_with_every_kind_of_record(world):
    matrix = term_features(world["term"], AS_OF)
    assert matrix.names == FEATURE_NAMES
    assert_features(
        features_of(matrix, world["s1"]),
        {
            # held: A weeks 0,1,2,4,5,6 and B 6, 13, 20 October = 9; attended 5 (2 late); excused 1.
            "attendance_rate": 5 / 8,
            "late_rate": 2 / 8,
            # After 13 October 12:00: B 13 (voided) and 20, A 19 and 26 October; attended 2 of 4.
            "attendance_rate_2w": 2 / 4,
            # After 29 September 12:00: A 12 (excused), 19, 26 October; B 6, 13, 20 October: 3 of 5.
            "attendance_rate_4w": 3 / 5,
            "attendance_trend": 2 / 4 - 5 / 8,
            # In time order: A 28 Sep absent; B 13 Oct (voided) and A 19 Oct (no record) absent in a row.
            "longest_absence_run": 2,
            # (20 x 14/20 + 30 x 50/100) / (20 + 30); the latest (0.5) minus the earlier (0.7).
            "assessment_average": 0.58,
            "assessment_latest": 0.5,
            "grade_trend": -0.2,
            "assessments_missing": 1,
            "credit_load": 11,
            "semester": 3,
            "previous_term_at_risk": 1,
            "admission_grade": float("nan"),  # not imported (test_prior_achievement_... below)
            "prior_qualification_grade": float("nan"),
        },
    )


def test_features_of_a_student_with_nothing_recorded_and_of_one_who_left(world):
    matrix = term_features(world["term"], AS_OF)
    nan = float("nan")
    assert_features(
        features_of(matrix, world["s2"]),
        {
            "attendance_rate": 0.0, "late_rate": 0.0, "attendance_rate_2w": 0.0, "attendance_rate_4w": 0.0,
            "attendance_trend": 0.0, "longest_absence_run": 6, "assessment_average": nan, "assessment_latest": nan,
            "grade_trend": nan, "assessments_missing": 2, "credit_load": 6, "semester": 1, "previous_term_at_risk": nan,
            "admission_grade": nan, "prior_qualification_grade": nan,
        },
    )  # fmt: skip
    # s4 left A on 25 September: two sessions held for them, one attended; no credits any more.
    left = features_of(matrix, world["s4"])
    assert left["attendance_rate"] == 0.5
    assert math.isnan(left["attendance_rate_2w"])
    assert left["credit_load"] == 0
    assert left["longest_absence_run"] == 1


def test_attendance_features_agree_with_the_one_rate_definition(world):
    """The features' SQL and attendance.selectors.attendance_rates count the same sessions and records."""
    rates = attendance_rates(Enrollment.objects.filter(student=world["s1"], section__term=world["term"]), as_of=AS_OF)
    held = sum(r.held for r in rates)
    attended = sum(r.attended for r in rates)
    excused = sum(r.excused for r in rates)
    assert (held, attended, excused) == (9, 5, 1)
    s1 = features_of(term_features(world["term"], AS_OF), world["s1"])
    assert s1["attendance_rate"] == attended / (held - excused)


def test_custom_statuses_change_no_feature_where_their_kind_is_the_same(world):
    """Marks given with a section's own statuses (Remote for present, and so on) count as their kind."""
    before = features_of(term_features(world["term"], AS_OF), world["s1"])
    records = AttendanceRecord.objects.filter(student=world["s1"]).select_related("session")
    for section_id in {record.session.section_id for record in records}:
        status_set = AttendanceStatusSetFactory(department=None, section_id=section_id)
        custom = {
            kind: AttendanceStatusFactory(
                status_set=status_set, code=f"my-{kind}", acronym=kind[:2].upper(), kind=kind,
                points=None if kind == StatusKind.EXCUSED else Decimal(3),
            )
            for kind in StatusKind.values
        }  # fmt: skip
        for record in records.filter(session__section_id=section_id):
            record.status_choice = custom[record.status]
            record.save(update_fields=["status_choice"])
    assert records.exclude(status_choice=None).count() == records.count() > 0
    assert_features(features_of(term_features(world["term"], AS_OF), world["s1"]), before)


def test_a_group_session_counts_in_the_features_of_its_members_only(world):
    """A lab group's session is held for its members, in the features as in the one rate."""
    section = Enrollment.objects.get(student=world["s2"], section__term=world["term"]).section
    group = SectionGroupFactory(section=section)
    session = ClassSessionFactory(
        section=section, group=group, starts_at=at(10, 26, 16), state=ClassSession.State.CLOSED
    )
    AttendanceRecordFactory(session=session, student=world["s1"], status=Status.ABSENT)  # s1 not a member
    before = features_of(term_features(world["term"], AS_OF), world["s2"])["attendance_rate"]
    SectionGroupMemberFactory(group=group, student=world["s2"])
    AttendanceRecordFactory(session=session, student=world["s2"], status=Status.PRESENT)
    features = term_features(world["term"], AS_OF)
    rates = attendance_rates(Enrollment.objects.filter(student=world["s2"], section__term=world["term"]), as_of=AS_OF)
    assert features_of(features, world["s2"])["attendance_rate"] == rates[0].attended / rates[0].counted
    assert rates[0].held == 7 and features_of(features, world["s2"])["attendance_rate"] != before
    s1_rates = attendance_rates(
        Enrollment.objects.filter(student=world["s1"], section__term=world["term"]), as_of=AS_OF
    )
    assert sum(r.held for r in s1_rates) == 9  # the group's session is not held for s1
    assert features_of(features, world["s1"])["attendance_rate"] == 5 / 8


def test_features_as_of_an_earlier_moment_see_only_what_was_known_then(world):
    early = term_features(world["term"], datetime.datetime(2026, 9, 22, 12, 0, tzinfo=UTC))
    s1 = features_of(early, world["s1"])
    assert s1["attendance_rate"] == 1.0  # A 14 and 21 September, present and late; B not yet enrolled
    assert math.isnan(s1["assessment_average"])  # nothing due before 28 September
    assert s1["assessments_missing"] == 0
    assert s1["credit_load"] == 6  # B starts on 1 October


def test_features_for_chosen_students_keep_their_order_and_unknowns(world):
    matrix = term_features(world["term"], AS_OF, student_ids=[world["s2"].pk, world["s1"].pk])
    assert matrix.student_ids.tolist() == sorted([world["s1"].pk, world["s2"].pk])
    assert matrix.values.shape == (2, len(FEATURE_NAMES))
    empty = term_features(world["term"], AS_OF, student_ids=[])
    assert empty.values.shape == (0, len(FEATURE_NAMES))


def test_labels_mark_failed_and_withdrew_as_at_risk(world):
    assert term_labels(world["term"]) == {world["s2"].pk: 1, world["s4"].pk: 0}


def test_training_cut_off_is_the_end_of_the_day_n_weeks_in_and_never_after_the_term(world):
    term = world["term"]
    cutoff = training_cutoff(term, 6)
    assert timezone.localtime(cutoff).date() == datetime.date(2026, 10, 26)
    assert timezone.localtime(cutoff).time() == datetime.time.max
    assert timezone.localtime(training_cutoff(term, 99)).date() == term.end_date


def test_no_protected_or_personal_attribute_is_a_feature():
    personal = {"sex", "gender", "age", "birth", "nationality", "address", "family", "parent", "ethnicity", "religion"}
    assert not [name for name in FEATURE_NAMES if personal & set(name.split("_"))]
    assert len(FEATURE_NAMES) == 15


def test_prior_achievement_comes_from_the_student_record_and_is_unknown_when_not_imported(world):
    world["s1"].admission_grade, world["s1"].prior_qualification_grade = Decimal("152.5"), Decimal("141.0")
    world["s1"].save()
    world["s2"].admission_grade = Decimal("118.0")
    world["s2"].save()
    features = term_features(world["term"], AS_OF)
    s1, s2 = features_of(features, world["s1"]), features_of(features, world["s2"])
    assert (s1["admission_grade"], s1["prior_qualification_grade"]) == (152.5, 141.0)
    assert s2["admission_grade"] == 118.0 and math.isnan(s2["prior_qualification_grade"])


@pytest.mark.django_db
def test_feature_queries_do_not_grow_with_students(django_assert_max_num_queries):
    term = TermFactory()
    section = SectionFactory(term=term)
    sessions = [ClassSessionFactory(section=section, state=ClassSession.State.CLOSED) for _ in range(2)]
    for _ in range(30):
        student = EnrollmentFactory(section=section).student
        AttendanceRecordFactory(session=sessions[0], student=student)
    with django_assert_max_num_queries(8):
        matrix = term_features(term, timezone.now())
    assert len(matrix) == 30
    assert np.isfinite(matrix.column("attendance_rate")).all()


def test_the_latest_assessment_of_a_due_date_is_the_one_graded_last_not_the_highest_id(world):
    section = world["e1"][0].section
    day = datetime.date(2026, 10, 19)
    first = AssessmentFactory(section=section, weight=Decimal(10), max_score=Decimal(10), due_date=day)
    second = AssessmentFactory(section=section, weight=Decimal(10), max_score=Decimal(10), due_date=day)
    assert first.pk < second.pk
    graded_last = GradeFactory(student=world["s2"], assessment=first, score=Decimal(8))
    graded_first = GradeFactory(student=world["s2"], assessment=second, score=Decimal(3))
    Grade.objects.filter(pk=graded_first.pk).update(created_at=at(10, 20, 9))
    Grade.objects.filter(pk=graded_last.pk).update(created_at=at(10, 21, 9))
    assert features_of(term_features(world["term"], AS_OF), world["s2"])["assessment_latest"] == 0.8
    # Entered the other way round, the other one is the latest.
    Grade.objects.filter(pk=graded_first.pk).update(created_at=at(10, 22, 9))
    assert features_of(term_features(world["term"], AS_OF), world["s2"])["assessment_latest"] == 0.3


def test_the_population_at_a_moment_is_who_is_in_the_term_then(world):
    # s4 dropped on 25 September; s1 and s2 are enrolled; nobody had enrolled by 13 September.
    assert term_population(world["term"], AS_OF) == {world["s1"].pk, world["s2"].pk}
    assert world["s4"].pk in term_population(world["term"], at(9, 20, 12))
    assert term_population(world["term"], at(9, 13, 12)) == set()
