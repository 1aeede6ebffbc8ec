"""A small campus with history for training and scoring tests: the same students over several past
terms and a current one, where either their grades or their attendance tell who ends up at risk."""

import datetime
import random
from decimal import Decimal

from django.utils import timezone

from accounts.roles import Role
from attendance.models import AttendanceRecord, ClassSession
from students.models import Assessment, Enrollment, Grade, TermOutcome
from tests.factories import SectionFactory, StudentFactory, TermFactory, UserFactory

# The current term runs 14 Sep 2026 - 4 Jan 2027; "now" in these tests is 2 November 2026.
NOW = datetime.datetime(2026, 11, 2, 12, 0, tzinfo=datetime.UTC)
CURRENT_START = datetime.date(2026, 9, 14)
SESSIONS_PER_TERM = 8


def campus_history(*, past_terms: int = 3, students: int = 60, signal: str = "grades", seed: int = 7) -> dict:
    """Terms end before NOW except the last. `signal`: "grades" (at-risk students score low, attend like
    everyone), "attendance" (at-risk students miss class, score like everyone) or "both" (each a little:
    together they say more than either alone)."""
    rng = random.Random(seed)
    advisor = UserFactory(roles=[Role.ADVISOR])
    people = [StudentFactory(advisor=advisor) for _ in range(students)]
    terms = []
    for index in range(past_terms + 1):
        start = CURRENT_START - datetime.timedelta(weeks=18 * (past_terms - index))
        term = TermFactory(name=f"Term {index} ({start:%Y-%m})", start_date=start)
        terms.append(term)
        _term_write(term, people, rng, signal=signal, current=index == past_terms)
    return {"terms": terms, "current": terms[-1], "students": people, "advisor": advisor}


def _term_write(term, people, rng, *, signal: str, current: bool) -> None:
    section = SectionFactory(term=term)
    Enrollment.objects.bulk_create(
        [Enrollment(student=s, section=section, enrolled_on=term.start_date) for s in people]
    )
    starts = [
        timezone.make_aware(datetime.datetime.combine(term.start_date + datetime.timedelta(weeks=w), datetime.time(10)))
        for w in range(SESSIONS_PER_TERM)
    ]
    sessions = ClassSession.objects.bulk_create(
        [
            ClassSession(
                section=section,
                starts_at=at,
                ends_at=at + datetime.timedelta(minutes=90),
                room="B-101",
                state=ClassSession.State.CLOSED if at < NOW else ClassSession.State.SCHEDULED,
            )
            for at in starts
        ]
    )
    assessments = Assessment.objects.bulk_create(
        [
            Assessment(
                section=section,
                name=f"Test {week}",
                weight=Decimal(25),
                max_score=Decimal(20),
                due_date=term.start_date + datetime.timedelta(weeks=week),
            )
            for week in (2, 4)
        ]
    )
    records, grades, outcomes = [], [], []
    for student in people:
        at_risk = rng.random() < 0.3
        attend = {"attendance": 0.45, "both": 0.7}.get(signal, 0.9) if at_risk else 0.9
        mean = {"grades": 7.0, "both": 11.5}.get(signal, 14.0) if at_risk else 14.0
        for session in sessions:
            if session.starts_at >= NOW:
                continue
            status = AttendanceRecord.Status.PRESENT if rng.random() < attend else AttendanceRecord.Status.ABSENT
            records.append(
                AttendanceRecord(
                    session=session, student=student, status=status, recorded_at=session.starts_at, method="qr"
                )
            )
        for assessment in assessments:
            score = max(0.0, min(20.0, rng.gauss(mean, 2.5)))
            grades.append(Grade(student=student, assessment=assessment, score=Decimal(f"{score:.2f}")))
        if not current:
            outcome = TermOutcome.Outcome.FAILED if at_risk else TermOutcome.Outcome.PASSED
            outcomes.append(TermOutcome(student=student, term=term, outcome=outcome))
    AttendanceRecord.objects.bulk_create(records)
    Grade.objects.bulk_create(grades)
    TermOutcome.objects.bulk_create(outcomes)
