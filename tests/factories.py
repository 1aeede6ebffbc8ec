"""One factory per model."""

import datetime
import hashlib
from decimal import Decimal

import factory
from django.contrib.auth.models import Group

from accounts.models import LinkedIdentity, User
from accounts.roles import Role, group_name
from attendance import models as attendance
from campusiq.core.models import ImportJob
from predictions import models as predictions
from predictions.features import FEATURE_NAMES, FEATURE_SCHEMA_VERSION
from students import models as campus

TERM_START = datetime.date(2026, 9, 14)
# Sessions start at 10:00 UTC on the term's first day (a Monday) unless told otherwise.
SESSION_START = datetime.datetime(2026, 9, 14, 10, 0, tzinfo=datetime.UTC)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@campus.example")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.django.Password("correct-horse-battery-staple")

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        """UserFactory(roles=[Role.LECTURER, Role.ADVISOR])"""
        if create and extracted:
            self.groups.add(*Group.objects.filter(name__in=[group_name(role) for role in extracted]))
            self.__dict__.pop("_campusiq_roles", None)
            if Role.REGISTRAR in extracted or Role.ADMIN in extracted:
                self.is_staff = True
                self.is_superuser = Role.ADMIN in extracted
                self.save(update_fields=["is_staff", "is_superuser"])


class LinkedIdentityFactory(factory.django.DjangoModelFactory):
    """A person's account at a campus provider (docs/SSO.md); the provider's slug as in SSO_CONFIG_FILE."""

    class Meta:
        model = LinkedIdentity

    user = factory.SubFactory(UserFactory, password=None)
    provider = "campus"
    issuer = "https://login.uni.example"
    subject = factory.Sequence(lambda n: f"subject-{n}")


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = campus.Department
        django_get_or_create = ["code"]

    code = factory.Sequence(lambda n: f"D{n:02d}")
    name = factory.Sequence(lambda n: f"Department of Studies {n}")


class ProgramFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = campus.Program

    department = factory.SubFactory(DepartmentFactory)
    code = factory.Sequence(lambda n: f"P{n:03d}")
    name = factory.Sequence(lambda n: f"BSc Program {n}")


class CourseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = campus.Course

    department = factory.SubFactory(DepartmentFactory)
    code = factory.Sequence(lambda n: f"C{n:04d}")
    title = factory.Sequence(lambda n: f"Course {n}")
    credits = 6


class TermFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = campus.Term

    name = factory.Sequence(lambda n: f"Term {n}")
    start_date = TERM_START
    end_date = factory.LazyAttribute(lambda t: t.start_date + datetime.timedelta(weeks=16))
    add_drop_deadline = factory.LazyAttribute(lambda t: t.start_date + datetime.timedelta(weeks=2))


class SectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = campus.Section
        skip_postgeneration_save = True

    course = factory.SubFactory(CourseFactory)
    term = factory.SubFactory(TermFactory)
    code = "A"
    capacity = 60

    @factory.post_generation
    def lecturers(self, create, extracted, **kwargs):
        if create and extracted:
            self.lecturers.add(*extracted)


class StudentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = campus.Student

    user = factory.SubFactory(UserFactory, roles=[Role.STUDENT])
    student_number = factory.Sequence(lambda n: f"S{n:07d}")
    program = factory.SubFactory(ProgramFactory)
    semester = 1


class EnrollmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = campus.Enrollment

    student = factory.SubFactory(StudentFactory)
    section = factory.SubFactory(SectionFactory)
    enrolled_on = factory.LazyAttribute(lambda e: e.section.term.start_date)


class AssessmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = campus.Assessment

    section = factory.SubFactory(SectionFactory)
    name = factory.Sequence(lambda n: f"Assignment {n}")
    weight = Decimal("25")
    max_score = Decimal("20")
    due_date = factory.LazyAttribute(lambda a: a.section.term.start_date + datetime.timedelta(weeks=4))


class GradeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = campus.Grade

    assessment = factory.SubFactory(AssessmentFactory)
    student = factory.SubFactory(StudentFactory)
    score = Decimal("14")


class TermOutcomeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = campus.TermOutcome

    student = factory.SubFactory(StudentFactory)
    term = factory.SubFactory(TermFactory)
    outcome = campus.TermOutcome.Outcome.PASSED


class ClassSessionFactory(factory.django.DjangoModelFactory):
    """A scheduled 90-minute session at 10:00 UTC on the term's first day (give starts_at to move it)."""

    class Meta:
        model = attendance.ClassSession

    section = factory.SubFactory(SectionFactory)
    starts_at = factory.LazyAttribute(
        lambda s: datetime.datetime.combine(s.section.term.start_date, datetime.time(10, 0), tzinfo=datetime.UTC)
    )
    ends_at = factory.LazyAttribute(lambda s: s.starts_at + datetime.timedelta(minutes=90))
    room = "B-101"
    state = attendance.ClassSession.State.SCHEDULED


class SectionGroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = attendance.SectionGroup

    section = factory.SubFactory(SectionFactory)
    name = factory.Sequence(lambda n: f"Lab {n}")


class SectionGroupMemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = attendance.SectionGroupMember

    group = factory.SubFactory(SectionGroupFactory)
    student = factory.SubFactory(StudentFactory)


class SectionNetworkRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = attendance.SectionNetworkRule

    section = factory.SubFactory(SectionFactory)
    networks = factory.LazyFunction(lambda: ["10.20.0.0/16"])


class AttendanceRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = attendance.AttendanceRecord

    session = factory.SubFactory(ClassSessionFactory)
    student = factory.SubFactory(StudentFactory)
    status = attendance.AttendanceRecord.Status.PRESENT
    recorded_at = factory.LazyAttribute(lambda r: r.session.starts_at + datetime.timedelta(minutes=2))
    method = attendance.AttendanceRecord.Method.QR
    ip = "10.1.2.3"
    user_agent = "Mozilla/5.0 (Phone)"
    device_id = factory.Sequence(lambda n: f"device-{n}")


class AttendanceStatusSetFactory(factory.django.DjangoModelFactory):
    """A department's set (give section= and department=None for a section's own)."""

    class Meta:
        model = attendance.AttendanceStatusSet

    name = factory.Sequence(lambda n: f"Status set {n}")
    department = factory.SubFactory(DepartmentFactory)


class AttendanceStatusFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = attendance.AttendanceStatus

    status_set = factory.SubFactory(AttendanceStatusSetFactory)
    code = factory.Sequence(lambda n: f"status-{n}")
    label = factory.LazyAttribute(lambda s: s.code.title())
    acronym = factory.Sequence(lambda n: f"S{n % 100}")
    kind = attendance.StatusKind.PRESENT
    points = Decimal("2")
    order = factory.Sequence(int)


class SectionAttendanceGradeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = attendance.SectionAttendanceGrade

    section = factory.SubFactory(SectionFactory)
    assessment = factory.SubFactory(
        AssessmentFactory,
        section=factory.SelfAttribute("..section"),
        name="Attendance",
        weight=Decimal("10"),
        max_score=Decimal("100"),
        computed=True,
    )
    drop_lowest = 0


class ProxyFlagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = attendance.ProxyFlag

    record = factory.SubFactory(AttendanceRecordFactory)
    kind = attendance.ProxyFlag.Kind.SHARED_DEVICE
    detail = "This device already checked in another student here."


class AbsenceExcuseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = attendance.AbsenceExcuse

    record = factory.SubFactory(AttendanceRecordFactory, status=attendance.AttendanceRecord.Status.ABSENT)
    reason = "I had the flu."


class TermHolidayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = attendance.TermHoliday

    term = factory.SubFactory(TermFactory)
    date = factory.LazyAttribute(lambda h: h.term.start_date + datetime.timedelta(weeks=3))
    name = "Holiday"


class StudentCardFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = attendance.StudentCard

    student = factory.SubFactory(StudentFactory)
    uid = factory.Sequence(lambda n: f"04A2{n:010X}")
    active = True


class CardReaderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = attendance.CardReader

    reader_id = factory.Sequence(lambda n: f"reader-{n}")
    room = factory.Sequence(lambda n: f"R{n:03d}")
    name = factory.LazyAttribute(lambda r: f"Door of {r.room}")


class DeviceSightingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = attendance.DeviceSighting

    student = factory.SubFactory(StudentFactory)
    device_id = factory.Sequence(lambda n: f"device-{n}")
    first_seen = SESSION_START
    last_seen = SESSION_START
    check_ins = 1


class AttendanceWarningStateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = attendance.AttendanceWarningState

    student = factory.SubFactory(StudentFactory)
    section = factory.SubFactory(SectionFactory)
    below = True
    last_warned_at = SESSION_START


class CalendarFeedFactory(factory.django.DjangoModelFactory):
    """A feed whose secret is `feed-<n>` (tests that fetch it make one with calendar_feed_create)."""

    class Meta:
        model = attendance.CalendarFeed

    user = factory.SubFactory(UserFactory)
    token_hash = factory.Sequence(lambda n: hashlib.sha256(f"feed-{n}".encode()).hexdigest())


class AdvanceAbsenceFactory(factory.django.DjangoModelFactory):
    """A report, still to be decided, for the first week of the section's term."""

    class Meta:
        model = attendance.AdvanceAbsence

    student = factory.SubFactory(StudentFactory)
    section = factory.SubFactory(SectionFactory)
    term = factory.LazyAttribute(lambda a: a.section.term)
    first_day = factory.LazyAttribute(lambda a: a.term.start_date)
    last_day = factory.LazyAttribute(lambda a: a.first_day + datetime.timedelta(days=4))
    reason = "Representing the university at a competition."


class AttendanceWarningRuleFactory(factory.django.DjangoModelFactory):
    """Campus-wide "rate below 80%" unless given a scope, kind and threshold."""

    class Meta:
        model = attendance.AttendanceWarningRule

    kind = attendance.AttendanceWarningRule.Kind.RATE_BELOW
    rate_below = Decimal("0.800")
    max_per_term = 3


class ModelVersionFactory(factory.django.DjangoModelFactory):
    """A registry entry only (no artifact file): tests that load a model train one for real."""

    class Meta:
        model = predictions.ModelVersion

    name = factory.Sequence(lambda n: f"risk-test-{n}")
    status = predictions.ModelVersion.Status.CANDIDATE
    artifact = factory.LazyAttribute(lambda v: f"risk-models/{v.name}.joblib")
    artifact_sha256 = "0" * 64
    feature_names = factory.LazyFunction(lambda: list(FEATURE_NAMES))
    feature_schema_version = FEATURE_SCHEMA_VERSION
    training_data_sha256 = "1" * 64
    threshold = 0.35
    metrics = factory.LazyFunction(lambda: {"holdout": {"roc_auc": 0.8, "pr_auc": 0.6}})
    trained_at = SESSION_START


class ScoringRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = predictions.ScoringRun

    term = factory.SubFactory(TermFactory)
    model_version = factory.SubFactory(ModelVersionFactory)
    run_date = factory.LazyAttribute(lambda r: r.as_of.date())
    trigger = predictions.ScoringRun.Trigger.STAFF
    status = predictions.ScoringRun.Status.SUCCEEDED
    as_of = SESSION_START


class RiskScoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = predictions.RiskScore

    run = factory.SubFactory(ScoringRunFactory)
    student = factory.SubFactory(StudentFactory)
    term = factory.LazyAttribute(lambda s: s.run.term)
    model_version = factory.LazyAttribute(lambda s: s.run.model_version)
    probability = 0.72
    band = predictions.RiskScore.Band.HIGH
    factors = factory.LazyFunction(
        lambda: [
            {"feature": "attendance_rate_4w", "value": 0.54, "contribution": 0.9,
             "text": "attendance over the last 4 weeks: 54%; campus median 88%"},
        ]
    )  # fmt: skip
    scored_at = SESSION_START


class InterventionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = predictions.Intervention

    student = factory.SubFactory(StudentFactory)
    term = factory.SubFactory(TermFactory)
    advisor = factory.SubFactory(UserFactory, roles=[Role.ADVISOR])
    kind = predictions.Intervention.Kind.CONTACTED
    note = "Emailed to offer a meeting."


class FlagFeedbackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = predictions.FlagFeedback

    risk_score = factory.SubFactory(RiskScoreFactory)
    student = factory.LazyAttribute(lambda f: f.risk_score.student)
    term = factory.LazyAttribute(lambda f: f.risk_score.term)
    advisor = factory.SubFactory(UserFactory, roles=[Role.ADVISOR])
    verdict = predictions.FlagFeedback.Verdict.USEFUL


class ImportJobFactory(factory.django.DjangoModelFactory):
    """A queued job of past enrollments over a one-row file."""

    class Meta:
        model = ImportJob

    kind = "enrollments"
    file = factory.django.FileField(filename="history.csv", data=b"student_number,term,course,section,status\n")
    file_name = "history.csv"
    created_by = factory.SubFactory(UserFactory)
    rows_total = 0
