import datetime
import hashlib
import io
import itertools
import statistics
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.management import CommandError, call_command
from django.db.models import Count, F, Sum
from django.utils import timezone

from accounts.models import User
from accounts.services import user_roles
from portal.demo import demo_data_seed
from students import demo
from students.models import Assessment, Enrollment, Grade, Section, Student, Term, TermOutcome
from students.services import section_final_grades_compute
from tests.support.seeding import checksum_of_fresh_seed

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded():
    output = io.StringIO()
    call_command("seed_demo", "--size", "small", stdout=output)
    return output.getvalue()


def current_term() -> Term:
    today = timezone.localdate()
    return Term.objects.get(start_date__lte=today, end_date__gte=today)


def counts() -> dict[str, int]:
    models = [Term, Section, Student, User, Enrollment, Assessment, Grade, TermOutcome]
    return {model.__name__: model.objects.count() for model in models}


def checksum() -> str:
    rows = sorted(
        Grade.objects.values_list(
            "student__student_number",
            "assessment__section__term__name",
            "assessment__section__course__code",
            "assessment__section__code",
            "assessment__name",
            "score",
        ).order_by()  # sorted here: the models' default ordering would only add joins
    )
    rows += sorted(TermOutcome.objects.values_list("student__student_number", "term__name", "outcome").order_by())
    rows += sorted(
        Enrollment.objects.values_list(
            "student__student_number", "section__term__name", "section__course__code", "section__code", "status"
        ).order_by()
    )
    rows += sorted(
        Enrollment.objects.exclude(ended_on=None).values_list("student__student_number", "ended_on").order_by()
    )
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def test_small_seed_builds_a_campus_with_history(seeded):
    current = current_term()
    past = list(Term.objects.filter(end_date__lt=current.start_date).order_by("start_date"))
    assert len(past) >= 3
    assert Term.objects.count() == len(past) + 1
    for earlier, later in itertools.pairwise([*past, current]):
        assert earlier.end_date < later.start_date
    assert 180 <= Student.objects.count() <= 220
    assert set(Section.objects.values_list("term", flat=True)) == {current.pk, *(t.pk for t in past)}
    assert all(section.lecturers.exists() for section in Section.objects.prefetch_related("lecturers"))
    assert not Student.objects.filter(status="active", advisor__isnull=True).exists()

    weights = Assessment.objects.values("section").annotate(total=Sum("weight")).values_list("total", flat=True)
    assert set(weights) == {Decimal(100)}
    assert Section.objects.annotate(n=Count("assessments")).filter(n=0).count() == 0
    assert not Grade.objects.filter(score__gt=F("assessment__max_score")).exists()
    assert not Grade.objects.filter(score__lt=0).exists()

    # Past terms: complete. Every enrolled student has every grade and a final grade.
    per_section = dict(Assessment.objects.values("section").annotate(n=Count("id")).values_list("section", "n"))
    graded = Counter(Grade.objects.values_list("student_id", "assessment__section_id"))
    finished = Enrollment.objects.filter(section__term__in=past, status="enrolled")
    assert finished.exists() and not finished.filter(final_grade__isnull=True).exists()
    for student_id, section_id in finished.values_list("student_id", "section_id"):
        assert graded[(student_id, section_id)] == per_section[section_id]
    # The current term: graded only where the due date has passed; not closed.
    today = timezone.localdate()
    assert not Grade.objects.filter(assessment__section__term=current, assessment__due_date__gte=today).exists()
    assert Grade.objects.filter(assessment__section__term=current).exists() == (
        Assessment.objects.filter(section__term=current, due_date__lt=today).exists()
    )
    assert not Enrollment.objects.filter(section__term=current, final_grade__isnull=False).exists()
    assert not Enrollment.objects.filter(section__term=current).exclude(student__status="active").exists()
    assert not Enrollment.objects.filter(section__term=current, ended_on__gt=today).exists()
    # Some students withdrew from courses after the deadline, and none dropped after it.
    assert Enrollment.objects.filter(status="withdrawn", ended_on__gt=F("section__term__add_drop_deadline")).exists()
    assert not Enrollment.objects.filter(status="dropped", ended_on__gt=F("section__term__add_drop_deadline")).exists()
    assert not Enrollment.objects.filter(
        status="withdrawn", ended_on__lte=F("section__term__add_drop_deadline")
    ).exists()
    full = Section.objects.annotate(n=Count("enrollments")).filter(n__gt=F("capacity"))
    assert not full.exists()

    # Outcomes: past terms only, imported with the demo note, a quarter to a third at risk.
    assert set(TermOutcome.objects.values_list("term", flat=True)) == {t.pk for t in past}
    assert set(TermOutcome.objects.values_list("source", flat=True)) == {TermOutcome.Source.IMPORTED}
    assert all(note.startswith("demo history") for note in TermOutcome.objects.values_list("note", flat=True))
    for term in past:
        outcomes = Counter(TermOutcome.objects.filter(term=term).values_list("outcome", flat=True))
        at_risk = (outcomes["failed"] + outcomes["withdrew"]) / sum(outcomes.values())
        assert 0.18 <= at_risk <= 0.40, (term, outcomes)
        assert outcomes["failed"] and outcomes["withdrew"]

    assert "current term" in seeded and "student1@campusiq.example" in seeded


def test_final_grades_are_what_closing_the_term_computes(seeded):
    past = Enrollment.objects.exclude(section__term=current_term())
    before = dict(past.values_list("pk", "final_grade"))
    for section in Section.objects.exclude(term=current_term()):
        section_final_grades_compute(section=section)
    assert dict(past.values_list("pk", "final_grade")) == before


def test_running_twice_changes_nothing(seeded):
    before, digest = counts(), checksum()
    call_command("seed_demo", "--size", "small", stdout=io.StringIO())
    assert counts() == before
    assert checksum() == digest


def test_same_seed_gives_the_same_data():
    fresh = checksum_of_fresh_seed(checksum, size="small", seed=2026)
    assert checksum_of_fresh_seed(checksum, size="small", seed=7) != fresh
    call_command("seed_demo", "--size", "small", "--seed", "2026", stdout=io.StringIO())
    assert checksum() == fresh


def test_another_seed_over_existing_demo_data_is_refused(seeded):
    with pytest.raises(CommandError, match="flush"):
        call_command("seed_demo", "--size", "small", "--seed", "7", stdout=io.StringIO())


def test_a_rerun_later_in_the_term_tops_up_what_has_fallen_due():
    early, later = datetime.date(2026, 10, 1), datetime.date(2026, 12, 10)
    expected = checksum_of_fresh_seed(checksum, size="small", seed=2026, today=later)
    demo_data_seed(size="small", seed=2026, today=early)
    graded_early = Grade.objects.count()
    demo_data_seed(size="small", seed=2026, today=later)
    assert Grade.objects.count() > graded_early
    assert checksum() == expected


def test_a_rerun_in_a_later_term_leaves_the_data_alone():
    demo_data_seed(size="small", seed=2026, today=datetime.date(2026, 10, 1))
    before = counts()
    report = demo_data_seed(size="small", seed=2026, today=datetime.date(2027, 3, 1))
    assert "earlier term" in report.skipped
    assert counts() == before


def test_demo_accounts_log_in_and_hold_their_roles(seeded, client):
    roles = {account.email: account.role for account in demo.DEMO_ACCOUNTS}
    assert len([a for a in demo.DEMO_ACCOUNTS if a.role == "student"]) >= 2
    assert {a.role for a in demo.DEMO_ACCOUNTS} == {"student", "lecturer", "advisor", "registrar", "admin"}
    assert len(roles) == len(demo.DEMO_ACCOUNTS)
    for account in demo.DEMO_ACCOUNTS:
        user = User.objects.get(email=account.email)
        validate_password(account.password, user)
        assert client.login(email=account.email, password=account.password), account.email
        client.logout()
        assert account.role in user_roles(user)
        assert user.is_staff == (account.role in {"registrar", "admin"})
        assert user.is_superuser == (account.role == "admin")
    assert User.objects.filter(email="admin@campusiq.example").count() == 1

    lecturer = User.objects.get(email=demo.DEMO_LECTURER_EMAIL)
    advisor = User.objects.get(email=demo.DEMO_ADVISOR_EMAIL)
    for account in demo.DEMO_ACCOUNTS:
        if account.role != "student":
            continue
        student = Student.objects.get(user__email=account.email)
        assert student.advisor == advisor
        assert student.status == "active"
        assert Enrollment.objects.filter(
            student=student, status="enrolled", section__term=current_term(), section__lecturers=lecturer
        ).exists()
    assert advisor.advisees.count() > len(demo.DEMO_STUDENTS)
    # Generated people cannot log in.
    assert not any(user.has_usable_password() for user in User.objects.filter(student__student_number__startswith="S2"))


def test_outcomes_are_noisy_not_a_rule_on_final_grades(seeded):
    means = defaultdict(lambda: [Decimal(0), 0])
    running = Enrollment.objects.filter(status="enrolled", final_grade__isnull=False).select_related("section__course")
    for e in running:
        key = (e.student_id, e.section.term_id)
        means[key][0] += e.final_grade * e.section.course.credits
        means[key][1] += e.section.course.credits
    by_outcome = defaultdict(list)
    for outcome in TermOutcome.objects.all():
        total, credits = means.get((outcome.student_id, outcome.term_id), (0, 0))
        if credits:
            by_outcome[outcome.outcome].append(total / credits)
    assert min(by_outcome["passed"]) < max(by_outcome["failed"])
    assert sum(m < 50 for m in by_outcome["passed"]) and sum(m >= 50 for m in by_outcome["failed"])
    # ...but linked to them: failing students' grades are lower on average.
    assert statistics.mean(by_outcome["failed"]) + 10 < statistics.mean(by_outcome["passed"])


def test_engagement_is_reproducible_and_drives_outcomes(seeded):
    assert demo.student_engagement("S2610001", 2026) == demo.student_engagement("S2610001", 2026)
    assert demo.student_engagement("S2610001", 2026) != demo.student_engagement("S2610001", 7)
    engagement = defaultdict(list)
    for number, outcome in TermOutcome.objects.values_list("student__student_number", "outcome"):
        engagement[outcome == "passed"].append(demo.student_engagement(number, 2026))
    assert statistics.mean(engagement[False]) < statistics.mean(engagement[True]) - 0.3


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (datetime.date(2026, 1, 31), "Autumn 2025"),
        (datetime.date(2026, 2, 1), "Spring 2026"),
        (datetime.date(2026, 8, 31), "Spring 2026"),
        (datetime.date(2026, 9, 1), "Autumn 2026"),
    ],
)
def test_the_current_term_always_contains_today(day, name):
    terms = demo.demo_terms(day)
    assert [t.name for t in terms][-1] == name
    assert terms[-1].start_date <= day <= terms[-1].end_date
    assert len(terms) == demo.PAST_TERMS + 1
    for earlier, later in itertools.pairwise(terms):
        assert earlier.end_date + datetime.timedelta(days=1) == later.start_date
