"""The demo campus that `manage.py seed_demo` loads: catalogue, people, three closed terms of history and
the running term, drawn from a documented noisy process (docs/DEMO_DATA.md) so the at-risk model has
something realistic to learn and the portal something realistic to show.

Reproducible: the same seed, size and current term give the same rows. Idempotent: every row is found
by its natural key and only missing rows are written, so a rerun changes nothing except what time has
made due (grades of assessments that have since fallen due, withdrawals that have since happened).
The bulk data is written with bulk_create, not through the per-row services, but under their rules.
"""

import datetime
import math
import random
import string
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.roles import Role, group_name
from accounts.services import roles_sync_groups, user_role_grant
from students.models import (
    Assessment,
    Course,
    Department,
    Enrollment,
    Grade,
    Program,
    Section,
    Student,
    Term,
    TermOutcome,
)
from students.services import PASS_MARK, TWO_PLACES

NOTE_PREFIX = "demo history"
PAST_TERMS = 3
SEMESTERS = 8  # a degree is eight terms; one cohort enters every term
SECTION_TARGET = 40  # students per section; a course with more demand opens parallel sections
SECTION_CAPACITY = 50
ADVISEES_PER_ADVISOR = 40

# --- The noisy process (docs/DEMO_DATA.md explains each number) ------------------------------
TRAIT_CORRELATION = 0.3  # ability = 0.3 * engagement + sqrt(1 - 0.09) * N(0, 1)
PRIOR_ACHIEVEMENT_CORRELATION = 0.5  # of a school grade with ability
SCORE_BASE, SCORE_ABILITY, SCORE_ENGAGEMENT, SCORE_SHOCK, SCORE_DIFFICULTY, SCORE_NOISE = 64, 11, 5, 4, 5, 9
MISSING_BASE, MISSING_ENGAGEMENT, MISSING_SHOCK = -3.2, 1.0, 0.5
DROP_RATE = 0.03
WITHDRAW_BASE, WITHDRAW_ENGAGEMENT, WITHDRAW_ABILITY, WITHDRAW_SHOCK = -3.4, 0.8, 0.4, 0.6
DROPOUT_BASE, DROPOUT_ENGAGEMENT, DROPOUT_ABILITY = -2.2, 0.9, 0.4
PART_TIME_RATE = 0.1
SUSPENDED_RATE = 0.01
RISK_GRADE, RISK_ENGAGEMENT, RISK_WITHDRAWN, RISK_BASE = 1.5, 0.6, 0.5, -0.7
WITHDREW_BASE, WITHDREW_ENGAGEMENT, WITHDREW_PER_COURSE = -1.2, 0.5, 0.8


@dataclass(frozen=True)
class DemoSize:
    students: int
    departments: int
    courses_per_slot: int  # per department and semester
    electives: int  # courses a student takes outside their department each term
    lecturers_per_department: int


SIZES = {
    "small": DemoSize(students=200, departments=4, courses_per_slot=1, electives=2, lecturers_per_department=3),
    "large": DemoSize(students=20_000, departments=8, courses_per_slot=2, electives=2, lecturers_per_department=64),
}


@dataclass(frozen=True)
class DemoAccount:
    role: Role
    email: str
    password: str
    first_name: str
    last_name: str


DEMO_ACCOUNTS = (
    DemoAccount(Role.ADMIN, "admin@campusiq.example", "demo-admin-pass-2026", "Ada", "Admin"),
    DemoAccount(Role.REGISTRAR, "registrar@campusiq.example", "demo-registrar-pass-2026", "Rui", "Costa"),
    DemoAccount(Role.ADVISOR, "advisor@campusiq.example", "demo-advisor-pass-2026", "Miguel", "Santos"),
    DemoAccount(Role.LECTURER, "lecturer@campusiq.example", "demo-lecturer-pass-2026", "Inês", "Carvalho"),
    DemoAccount(Role.STUDENT, "student1@campusiq.example", "demo-student1-pass-2026", "Sofia", "Almeida"),
    DemoAccount(Role.STUDENT, "student2@campusiq.example", "demo-student2-pass-2026", "Tomás", "Ferreira"),
)
DEMO_ADVISOR_EMAIL = "advisor@campusiq.example"
DEMO_LECTURER_EMAIL = "lecturer@campusiq.example"
# The demo students by number: email and fixed (ability, engagement), one strong and one struggling.
DEMO_STUDENTS = {
    "S0000001": ("student1@campusiq.example", 0.9, 0.8),
    "S0000002": ("student2@campusiq.example", -0.5, -1.3),
}
DEMO_STUDENT_SEMESTER = 4
DEMO_LECTURER_SLOTS = (3, 4)  # the demo lecturer teaches section A of the first department's courses of these

# Department code, name, two programs, and sixteen course titles: two per semester of the degree, in order
# (the small campus offers the first of each pair). Credits: 6, a few 3-credit courses, 12 for the last one.
DEPARTMENTS = (
    ("CS", "Computer Science", (("CS-BSC", "BSc Computer Science"), ("DS-BSC", "BSc Data Science")),
     ("Programming I", "Discrete Mathematics", "Programming II", "Computer Systems", "Data Structures",
      "Databases", "Algorithms", "Operating Systems", "Computer Networks", "Software Engineering",
      "Theory of Computation", "Human-Computer Interaction", "Machine Learning", "Distributed Systems",
      "Computer Security", "Capstone Project")),
    ("MATH", "Mathematics", (("MA-BSC", "BSc Mathematics"), ("ST-BSC", "BSc Statistics")),
     ("Calculus I", "Linear Algebra I", "Calculus II", "Linear Algebra II", "Real Analysis", "Probability",
      "Differential Equations", "Abstract Algebra", "Numerical Methods", "Statistical Inference",
      "Complex Analysis", "Topology", "Optimisation", "Stochastic Processes", "Functional Analysis",
      "Mathematics Dissertation")),
    ("ECON", "Economics", (("EC-BSC", "BSc Economics"), ("MG-BSC", "BSc Management")),
     ("Microeconomics I", "Macroeconomics I", "Quantitative Methods", "Financial Accounting", "Microeconomics II",
      "Macroeconomics II", "Econometrics I", "Public Economics", "Econometrics II", "International Trade",
      "Labour Economics", "Corporate Finance", "Development Economics", "Behavioural Economics",
      "Industrial Organisation", "Economics Dissertation")),
    ("BIO", "Biology", (("BI-BSC", "BSc Biology"), ("BC-BSC", "BSc Biochemistry")),
     ("Cell Biology", "Chemistry for Biologists", "Genetics", "Ecology", "Molecular Biology", "Biostatistics",
      "Microbiology", "Physiology", "Evolution", "Immunology", "Biochemistry", "Bioinformatics", "Neuroscience",
      "Developmental Biology", "Conservation Biology", "Biology Research Project")),
    ("PHYS", "Physics", (("PH-BSC", "BSc Physics"), ("AP-BSC", "BSc Astrophysics")),
     ("Mechanics", "Mathematical Methods I", "Electromagnetism", "Mathematical Methods II", "Waves and Optics",
      "Thermodynamics", "Quantum Mechanics I", "Classical Mechanics", "Quantum Mechanics II",
      "Statistical Physics", "Solid State Physics", "Nuclear and Particle Physics", "Astrophysics",
      "Computational Physics", "General Relativity", "Physics Project")),
    ("CHEM", "Chemistry", (("CH-BSC", "BSc Chemistry"), ("CE-BSC", "BSc Chemical Engineering")),
     ("General Chemistry", "Laboratory Skills", "Organic Chemistry I", "Inorganic Chemistry I",
      "Physical Chemistry I", "Analytical Chemistry", "Organic Chemistry II", "Inorganic Chemistry II",
      "Physical Chemistry II", "Spectroscopy", "Materials Chemistry", "Environmental Chemistry",
      "Medicinal Chemistry", "Catalysis", "Polymer Chemistry", "Chemistry Project")),
    ("PSY", "Psychology", (("PS-BSC", "BSc Psychology"), ("CG-BSC", "BSc Cognitive Science")),
     ("Introduction to Psychology", "Research Methods I", "Developmental Psychology", "Research Methods II",
      "Social Psychology", "Cognitive Psychology", "Biological Psychology", "Personality", "Clinical Psychology",
      "Psychometrics", "Health Psychology", "Perception", "Neuropsychology", "Organisational Psychology",
      "Psychology of Language", "Psychology Dissertation")),
    ("HIST", "History", (("HI-BA", "BA History"), ("AR-BA", "BA Archaeology")),
     ("Ancient Worlds", "Medieval Europe", "Early Modern Europe", "Historical Methods", "The Age of Revolutions",
      "Global History", "Empires and Colonialism", "Economic History", "The Twentieth Century", "Historiography",
      "History of Science", "Oral History", "Public History", "The Cold War", "Digital History",
      "History Dissertation")),
)  # fmt: skip

# Assessment plans: (name, weight, max score, week due after teaching starts; None = exam period).
ASSESSMENT_PLANS = (
    (("Assignment 1", "15", "20", 4), ("Assignment 2", "15", "20", 8), ("Project", "30", "50", 13),
     ("Final exam", "40", "100", None)),
    (("Quiz 1", "7.5", "10", 3), ("Quiz 2", "7.5", "10", 6), ("Midterm exam", "20", "60", 7),
     ("Quiz 3", "7.5", "10", 9), ("Quiz 4", "7.5", "10", 12), ("Final exam", "50", "100", None)),
    (("Lab report 1", "12.5", "25", 4), ("Midterm exam", "22.5", "50", 7), ("Lab report 2", "12.5", "25", 8),
     ("Lab report 3", "12.5", "25", 12), ("Final exam", "40", "120", None)),
    (("Essay 1", "20", "100", 5), ("Presentation", "15", "20", 9), ("Essay 2", "25", "100", 11),
     ("Final exam", "40", "100", None)),
)  # fmt: skip
DISSERTATION_PLAN = (
    ("Proposal", "10", "20", 4),
    ("Progress report", "20", "50", 9),
    ("Dissertation", "70", "100", None),
)

FIRST_NAMES = (
    "Ana", "Beatriz", "Carla", "Daniel", "Diogo", "Eva", "Filipe", "Gabriel", "Helena", "Hugo", "Isabel", "João",
    "Joana", "Lara", "Leonor", "Lucas", "Mariana", "Mateus", "Nuno", "Olivia", "Pedro", "Rafael", "Rita", "Rodrigo",
    "Sara", "Tiago", "Vasco", "Yara", "Amir", "Chen", "Elif", "Fatima", "Hannah", "Ibrahim", "Jonas", "Kwame",
    "Lena", "Marek", "Noor", "Priya", "Samuel", "Sofia", "Tomás", "Wei", "Zanele", "Emma", "Liam", "Noah",
)  # fmt: skip
LAST_NAMES = (
    "Almeida", "Barbosa", "Cardoso", "Costa", "Dias", "Esteves", "Fernandes", "Ferreira", "Gomes", "Lopes",
    "Machado", "Marques", "Martins", "Mendes", "Monteiro", "Moreira", "Nunes", "Oliveira", "Pereira", "Pinto",
    "Ribeiro", "Rocha", "Rodrigues", "Santos", "Silva", "Sousa", "Teixeira", "Vieira", "Becker", "Novak",
    "Okafor", "Kowalski", "Haddad", "Nguyen", "Tanaka", "Müller", "Rossi", "Garcia", "Kim", "Singh",
)  # fmt: skip


def demo_rng(*parts) -> random.Random:
    # Seeding with a string hashes it (SHA-512): the same parts give the same stream on every machine.
    # Bandit B311: demo data, not security.
    return random.Random(":".join(str(part) for part in parts))  # noqa: S311  (demo data, not secrets)  # nosec B311


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def student_traits(student_number: str, seed: int) -> tuple[float, float]:
    """A student's latent (ability, engagement), both standard normal, correlated 0.3."""
    if student_number in DEMO_STUDENTS:
        _, ability, engagement = DEMO_STUDENTS[student_number]
        return ability, engagement
    rng = demo_rng(seed, student_number, "traits")
    engagement = rng.gauss(0, 1)
    ability = TRAIT_CORRELATION * engagement + math.sqrt(1 - TRAIT_CORRELATION**2) * rng.gauss(0, 1)
    return ability, engagement


def prior_achievement(student_number: str, seed: int, ability: float) -> dict[str, Decimal]:
    """A student's admission grade and previous qualification's grade on the 0 to 200 scale: noisy readings
    of ability, as school grades are, from their own random stream (the rest of the campus is unchanged)."""
    rng = demo_rng(seed, student_number, "prior achievement")
    grades = {}
    for name in ("admission_grade", "prior_qualification_grade"):
        noise = math.sqrt(1 - PRIOR_ACHIEVEMENT_CORRELATION**2) * rng.gauss(0, 1)
        reading = PRIOR_ACHIEVEMENT_CORRELATION * ability + noise
        grades[name] = Decimal(f"{min(max(140 + 20 * reading, 95), 200):.1f}")
    return grades


def student_engagement(student_number: str, seed: int) -> float:
    """The latent engagement behind a demo student's grades and withdrawals, to drive their attendance too."""
    return student_traits(student_number, seed)[1]


def risk_probability(*, weighted_mean: float, engagement: float, withdrawn_courses: int) -> float:
    """P(a student who finished at least one course ends the term failed or withdrawn)."""
    return sigmoid(
        RISK_GRADE * (float(PASS_MARK) - weighted_mean) / 10
        - RISK_ENGAGEMENT * engagement
        + RISK_WITHDRAWN * withdrawn_courses
        + RISK_BASE
    )


def withdrew_probability(*, engagement: float, withdrawn_courses: int) -> float:
    """P(an at-risk student's outcome is 'withdrew' rather than 'failed')."""
    return sigmoid(WITHDREW_BASE - WITHDREW_ENGAGEMENT * engagement + WITHDREW_PER_COURSE * withdrawn_courses)


# --- Terms --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TermPlan:
    season: str
    year: int

    @property
    def name(self) -> str:
        return f"{self.season} {self.year}"

    @property
    def start_date(self) -> datetime.date:
        return datetime.date(self.year, 9, 1) if self.season == "Autumn" else datetime.date(self.year, 2, 1)

    @property
    def end_date(self) -> datetime.date:
        return datetime.date(self.year + 1, 1, 31) if self.season == "Autumn" else datetime.date(self.year, 8, 31)

    @property
    def add_drop_deadline(self) -> datetime.date:
        return self.start_date + datetime.timedelta(days=20)

    @property
    def teaching_start(self) -> datetime.date:
        return self.start_date + datetime.timedelta(days=14)

    @property
    def exam_date(self) -> datetime.date:
        return self.teaching_start + datetime.timedelta(weeks=16)

    @property
    def code(self) -> str:
        """Two digits of the year and the season, as in student numbers: 251 is Autumn 2025."""
        return f"{self.year % 100:02d}{1 if self.season == 'Autumn' else 2}"

    def previous(self) -> "TermPlan":
        return TermPlan("Spring", self.year) if self.season == "Autumn" else TermPlan("Autumn", self.year - 1)


def term_containing(day: datetime.date) -> TermPlan:
    """Autumn runs 1 September to 31 January, Spring 1 February to 31 August: every day is in a term."""
    if 2 <= day.month <= 8:
        return TermPlan("Spring", day.year)
    return TermPlan("Autumn", day.year if day.month >= 9 else day.year - 1)


def demo_terms(today: datetime.date, past: int = PAST_TERMS) -> list[TermPlan]:
    """The past terms, oldest first, then the term containing today."""
    terms = [term_containing(today)]
    for _ in range(past):
        terms.append(terms[-1].previous())
    return terms[::-1]


# --- The plan -----------------------------------------------------------------------------------


@dataclass
class CoursePlan:
    code: str
    title: str
    credits: int
    department: str
    slot: int  # the semester of the degree it belongs to
    assessments: tuple
    difficulty: float


@dataclass
class StudentPlan:
    number: str
    email: str
    first_name: str
    last_name: str
    department: str
    program: str
    semester: int  # in the current term
    advisor: str
    ability: float
    engagement: float
    dropout_semester: int | None
    suspended: bool

    @property
    def status(self) -> str:
        if self.dropout_semester is not None and self.dropout_semester < self.semester:
            return Student.Status.WITHDRAWN
        return Student.Status.SUSPENDED if self.suspended else Student.Status.ACTIVE


@dataclass
class DemoReport:
    size: str
    seed: int
    current_term: str
    marker: str
    skipped: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    accounts: tuple[DemoAccount, ...] = DEMO_ACCOUNTS

    def at_risk_rate(self, term: str) -> float:
        by_kind = self.outcomes.get(term, {})
        total = sum(by_kind.values())
        return (by_kind.get("failed", 0) + by_kind.get("withdrew", 0)) / total if total else 0.0


class DemoDataConflict(Exception):
    """The database holds demo data generated from another seed or size."""


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower().replace(" ", "")


def _section_code(index: int) -> str:
    letters = string.ascii_uppercase
    return letters[index] if index < 26 else letters[index // 26 - 1] + letters[index % 26]


def _score(percent: float, max_score: Decimal) -> Decimal:
    """Points out of max_score, in halves up to 20 points and in whole points above."""
    percent = min(100.0, max(0.0, percent))
    if max_score <= 20:
        return Decimal(round(percent / 100 * float(max_score) * 2)) / 2
    return Decimal(round(percent / 100 * float(max_score)))


def final_grade(scores: list[tuple[Assessment, Decimal]]) -> Decimal:
    """Same arithmetic as services.section_final_grades_compute, assessments in the same order."""
    total = sum((score / a.max_score * a.weight for a, score in scores), Decimal(0))
    return total.quantize(TWO_PLACES, rounding=ROUND_HALF_UP)


class DemoTermWriter(Protocol):
    """Writes one term's rows of an app above the campus (attendance's sessions and records), once the
    term's sections, enrollments and grades are written: `shocks` are each student's term shock by
    student number, `current` whether it is the term under way."""

    def __call__(
        self,
        *,
        plan: TermPlan,
        term: Term,
        seed: int,
        now: datetime.datetime,
        shocks: Mapping[str, float],
        current: bool,
    ) -> None: ...


class DemoCampus:
    def __init__(
        self,
        *,
        size: str,
        seed: int,
        today: datetime.date,
        now: datetime.datetime | None = None,
        term_writers: Sequence[DemoTermWriter] = (),
    ):
        self.size, self.seed, self.today = size, seed, today
        self.term_writers = term_writers
        # What has happened by: now, or the start of `today` when seeding as of another day.
        self.now = now or timezone.make_aware(
            datetime.datetime.combine(today, datetime.time.min), timezone.get_default_timezone()
        )
        self.config = SIZES[size]
        self.terms = demo_terms(today)
        self.current = self.terms[-1]
        self.marker = f"{NOTE_PREFIX} (seed {seed}, {size}, as of {self.current.name})"
        self.departments = DEPARTMENTS[: self.config.departments]
        self.courses = self._plan_courses()
        self.lecturers, self.advisors, self.staff_names = self._plan_staff()
        self.students = self._plan_students()
        self.user_ids: dict[str, int] = {}
        self.student_ids: dict[str, int] = {}
        self.course_ids: dict[str, int] = {}

    # Planning: pure, from the seed.

    def _plan_courses(self) -> list[CoursePlan]:
        courses = []
        for d_index, (dept, _, _, titles) in enumerate(self.departments):
            for slot in range(1, SEMESTERS + 1):
                for k in range(self.config.courses_per_slot):
                    title = titles[(slot - 1) * 2 + k]
                    capstone = title == titles[-1]
                    level = (slot + 1) // 2
                    code = f"{dept}{level}{(slot - 1) % 2}{k + 1}"
                    courses.append(
                        CoursePlan(
                            code=code,
                            title=title,
                            credits=12 if capstone else (3 if (d_index + slot + k) % 7 == 0 else 6),
                            department=dept,
                            slot=slot,
                            assessments=DISSERTATION_PLAN
                            if capstone
                            else ASSESSMENT_PLANS[(d_index + slot + k) % len(ASSESSMENT_PLANS)],
                            difficulty=demo_rng(self.seed, code, "difficulty").gauss(0, 1),
                        )
                    )
        return courses

    def _plan_staff(self):
        rng = demo_rng(self.seed, self.size, "staff")
        advisors_per_department = math.ceil(self.config.students / len(self.departments) / ADVISEES_PER_ADVISOR)
        lecturers: dict[str, list[str]] = {}
        advisors: dict[str, list[str]] = {}
        names: dict[str, tuple[str, str]] = {}
        number = 0

        def person() -> str:
            nonlocal number
            number += 1
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            email = f"{_ascii(first)}.{_ascii(last)}.{number}@campusiq.example"
            names[email] = (first, last)
            return email

        for d_index, (dept, *_) in enumerate(self.departments):
            lecturers[dept] = [person() for _ in range(self.config.lecturers_per_department)]
            advisors[dept] = lecturers[dept][:advisors_per_department]
            advisors[dept] += [person() for _ in range(advisors_per_department - len(advisors[dept]))]
            if d_index == 0:  # the demo advisor advises in the first department, alongside the others
                advisors[dept] = [DEMO_ADVISOR_EMAIL, *advisors[dept][1:]]
        return lecturers, advisors, names

    def _plan_students(self) -> list[StudentPlan]:
        rng = demo_rng(self.seed, self.size, self.current.name, "students")
        first_dept = self.departments[0]
        per_cohort, extra = divmod(self.config.students, SEMESTERS)
        entry = self.current
        students = []
        for semester in range(1, SEMESTERS + 1):
            size = per_cohort + (1 if semester <= extra else 0)
            for seq in range(1, size + 1):
                if semester == DEMO_STUDENT_SEMESTER and seq <= len(DEMO_STUDENTS):
                    number = list(DEMO_STUDENTS)[seq - 1]
                    email = DEMO_STUDENTS[number][0]
                    account = next(a for a in DEMO_ACCOUNTS if a.email == email)
                    first, last = account.first_name, account.last_name
                    dept, program = first_dept[0], first_dept[2][0][0]
                    advisor = DEMO_ADVISOR_EMAIL
                else:
                    number = f"S{entry.code}{seq:04d}"
                    email = f"{number.lower()}@students.campusiq.example"
                    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
                    dept_row = rng.choice(self.departments)
                    dept, program = dept_row[0], rng.choice(dept_row[2])[0]
                    advisor = rng.choice(self.advisors[dept])
                suspended = rng.random() < SUSPENDED_RATE and number not in DEMO_STUDENTS
                ability, engagement = student_traits(number, self.seed)
                dropout = None
                if number not in DEMO_STUDENTS:
                    drop_rng = demo_rng(self.seed, number, "dropout")
                    leaves = drop_rng.random() < sigmoid(
                        DROPOUT_BASE - DROPOUT_ENGAGEMENT * engagement - DROPOUT_ABILITY * ability
                    )
                    dropout = drop_rng.randint(1, SEMESTERS) if leaves else None
                students.append(
                    StudentPlan(
                        number=number,
                        email=email,
                        first_name=first,
                        last_name=last,
                        department=dept,
                        program=program,
                        semester=semester,
                        advisor=advisor,
                        ability=ability,
                        engagement=engagement,
                        dropout_semester=dropout,
                        suspended=suspended,
                    )
                )
            entry = entry.previous()
        return sorted(students, key=lambda s: s.number)

    # Writing: each step finds existing rows by natural key and creates only the missing ones.

    def write(self) -> None:
        self._write_catalogue()
        self._write_people()
        for index, term in enumerate(self.terms):
            self._write_term(term, terms_before_current=len(self.terms) - 1 - index)

    def _write_catalogue(self) -> None:
        departments = {}
        for dept, name, programs, _ in self.departments:
            departments[dept], _ = Department.objects.get_or_create(code=dept, defaults={"name": name})
            for code, program_name in programs:
                Program.objects.get_or_create(
                    code=code, defaults={"name": program_name, "department": departments[dept]}
                )
        existing = set(Course.objects.values_list("code", flat=True))
        Course.objects.bulk_create(
            Course(code=c.code, title=c.title, credits=c.credits, department=departments[c.department])
            for c in self.courses
            if c.code not in existing
        )
        self.course_ids = dict(Course.objects.filter(code__in=[c.code for c in self.courses]).values_list("code", "id"))

    def _write_people(self) -> None:
        demo_emails = {a.email for a in DEMO_ACCOUNTS}
        people = [(email, *self.staff_names[email]) for email in self.staff_names]
        people += [(s.email, s.first_name, s.last_name) for s in self.students if s.email not in demo_emails]
        existing = set(User.objects.filter(email__endswith="campusiq.example").values_list("email", flat=True))
        User.objects.bulk_create(
            User(email=email, first_name=first, last_name=last, password=make_password(None))
            for email, first, last in people
            if email not in existing
        )
        self.user_ids = dict(User.objects.filter(email__endswith="campusiq.example").values_list("email", "id"))

        groups = {role: Group.objects.get(name=group_name(role)).pk for role in Role}
        wanted = {(self.user_ids[s.email], groups[Role.STUDENT]) for s in self.students}
        for role, by_department in ((Role.LECTURER, self.lecturers), (Role.ADVISOR, self.advisors)):
            wanted |= {(self.user_ids[e], groups[role]) for emails in by_department.values() for e in emails}
        through = User.groups.through
        held = set(through.objects.filter(group_id__in=groups.values()).values_list("user_id", "group_id"))
        through.objects.bulk_create(through(user_id=u, group_id=g) for u, g in sorted(wanted - held))

        programs = dict(Program.objects.values_list("code", "id"))
        existing = set(Student.objects.values_list("student_number", flat=True))
        Student.objects.bulk_create(
            Student(
                user_id=self.user_ids[s.email],
                student_number=s.number,
                program_id=programs[s.program],
                semester=s.semester,
                status=s.status,
                advisor_id=self.user_ids[s.advisor],
                **prior_achievement(s.number, self.seed, s.ability),
            )
            for s in self.students
            if s.number not in existing
        )
        numbers = {s.number for s in self.students}
        self.student_ids = {
            number: pk for number, pk in Student.objects.values_list("student_number", "id") if number in numbers
        }

    def _semester_in(self, student: StudentPlan, terms_before_current: int) -> int:
        return student.semester - terms_before_current

    def _write_term(self, plan: TermPlan, *, terms_before_current: int) -> None:
        is_current = terms_before_current == 0
        rng = demo_rng(self.seed, self.size, self.current.name, plan.name)
        term, _ = Term.objects.get_or_create(
            name=plan.name,
            defaults={
                "start_date": plan.start_date,
                "end_date": plan.end_date,
                "add_drop_deadline": plan.add_drop_deadline,
            },
        )

        # Who studies what: their department's courses for their semester, and electives from other departments.
        by_slot: dict[int, list[CoursePlan]] = defaultdict(list)
        for course in self.courses:
            by_slot[course.slot].append(course)
        demand: dict[str, list[StudentPlan]] = defaultdict(list)
        for student in self.students:
            semester = self._semester_in(student, terms_before_current)
            if semester < 1 or (student.dropout_semester or SEMESTERS + 1) < semester:
                continue
            if is_current and student.suspended:
                continue
            own = [c for c in by_slot[semester] if c.department == student.department]
            others = [c for c in by_slot[semester] if c.department != student.department]
            electives = self.config.electives - (1 if rng.random() < PART_TIME_RATE else 0)
            for course in own + rng.sample(others, min(electives, len(others))):
                demand[course.code].append(student)

        # Sections: parallel sections of at most SECTION_TARGET students; lecturers in turn within a department.
        courses = {c.code: c for c in self.courses}
        members: dict[tuple[str, str], list[StudentPlan]] = {}
        lecturer_of: dict[tuple[str, str], str] = {}
        turn = {dept: rng.randrange(len(emails)) for dept, emails in self.lecturers.items()}
        first_department = self.departments[0][0]
        for code in sorted(demand):
            course = courses[code]
            students = sorted(demand[code], key=lambda s: s.number)
            rng.shuffle(students)
            demo = [s for s in students if s.number in DEMO_STUDENTS]
            students = [s for s in students if s.number not in DEMO_STUDENTS]
            count = max(1, math.ceil(len(students) / SECTION_TARGET))
            for index in range(count):
                key = (code, _section_code(index))
                members[key] = students[index::count] + (demo if index == 0 else [])
                if course.department == first_department and course.slot in DEMO_LECTURER_SLOTS and index == 0:
                    lecturer_of[key] = DEMO_LECTURER_EMAIL
                else:
                    staff = self.lecturers[course.department]
                    lecturer_of[key] = staff[turn[course.department] % len(staff)]
                    turn[course.department] += 1

        existing = set(Section.objects.filter(term=term).values_list("course_id", "code"))
        Section.objects.bulk_create(
            Section(course_id=self.course_ids[code], term=term, code=section, capacity=SECTION_CAPACITY)
            for code, section in members
            if (self.course_ids[code], section) not in existing
        )
        section_ids = {
            (c, s): pk for pk, c, s in Section.objects.filter(term=term).values_list("id", "course__code", "code")
        }
        through = Section.lecturers.through
        taught = set(through.objects.filter(section__term=term).values_list("section_id", "user_id"))
        through.objects.bulk_create(
            through(section_id=section_ids[key], user_id=self.user_ids[email])
            for key, email in sorted(lecturer_of.items())
            if (section_ids[key], self.user_ids[email]) not in taught
        )

        existing = set(Assessment.objects.filter(section__term=term).values_list("section_id", "name"))
        new = []
        for key in members:
            course = courses[key[0]]
            for name, weight, max_score, week in course.assessments:
                if (section_ids[key], name) not in existing:
                    new.append(
                        Assessment(
                            section_id=section_ids[key],
                            name=name,
                            weight=Decimal(weight),
                            max_score=Decimal(max_score),
                            due_date=self._due_date(plan, course, week),
                        )
                    )
        Assessment.objects.bulk_create(new)
        assessments: dict[int, list[Assessment]] = defaultdict(list)
        for assessment in Assessment.objects.filter(section__term=term).order_by("section_id", "due_date", "name"):
            assessments[assessment.section_id].append(assessment)

        shocks = self._write_enrollments_and_grades(
            plan, term, rng, members, section_ids, lecturer_of, assessments, courses, terms_before_current
        )
        for write in self.term_writers:
            write(plan=plan, term=term, seed=self.seed, now=self.now, shocks=shocks, current=is_current)

    def _due_date(self, plan: TermPlan, course: CoursePlan, week: int | None) -> datetime.date:
        if week is None:  # exams spread over two weeks
            return plan.exam_date + datetime.timedelta(days=(course.slot * 3 + len(course.code)) % 12)
        return plan.teaching_start + datetime.timedelta(weeks=week, days=4)

    def _write_enrollments_and_grades(
        self, plan, term, rng, members, section_ids, lecturer_of, assessments, courses, terms_before_current
    ) -> dict[str, float]:
        """Returns each student's term shock, which drives their attendance too."""
        is_current = terms_before_current == 0
        day_count = (plan.exam_date - plan.add_drop_deadline).days
        by_student: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for key, students in members.items():
            for student in students:
                by_student[student.number].append(key)

        enrollments, grades, outcomes, shocks = [], [], {}, {}
        for student in sorted(self.students, key=lambda s: s.number):
            keys = sorted(by_student.get(student.number, []))
            if not keys:
                continue
            shock = shocks[student.number] = rng.gauss(0, 1)
            leaving = student.dropout_semester == self._semester_in(student, terms_before_current)
            leaving_on = plan.add_drop_deadline + datetime.timedelta(days=rng.randint(1, day_count - 7))
            finished, withdrawn, took_term = [], 0, False
            for key in keys:
                course = courses[key[0]]
                drop, withdraw = rng.random(), rng.random()
                drop_on = plan.start_date + datetime.timedelta(days=rng.randint(0, 20))
                withdraw_on = plan.add_drop_deadline + datetime.timedelta(days=rng.randint(1, day_count - 1))
                status, ended_on = Enrollment.Status.ENROLLED, None
                protected = is_current and student.number in DEMO_STUDENTS
                if leaving:
                    status, ended_on = Enrollment.Status.WITHDRAWN, leaving_on
                elif drop < DROP_RATE and not protected:
                    status, ended_on = Enrollment.Status.DROPPED, drop_on
                elif not protected and withdraw < sigmoid(
                    WITHDRAW_BASE
                    - WITHDRAW_ENGAGEMENT * student.engagement
                    - WITHDRAW_ABILITY * student.ability
                    - WITHDRAW_SHOCK * shock
                ):
                    status, ended_on = Enrollment.Status.WITHDRAWN, withdraw_on
                mean = (
                    SCORE_BASE
                    + SCORE_ABILITY * student.ability
                    + SCORE_ENGAGEMENT * student.engagement
                    + SCORE_SHOCK * shock
                    - SCORE_DIFFICULTY * course.difficulty
                )
                missing = sigmoid(MISSING_BASE - MISSING_ENGAGEMENT * student.engagement - MISSING_SHOCK * shock)
                scores = []
                for assessment in assessments[section_ids[key]]:
                    skipped, noise = rng.random() < missing, rng.gauss(0, SCORE_NOISE)
                    if ended_on is not None and assessment.due_date >= ended_on:
                        continue  # gone before it was due
                    score = Decimal(0) if skipped else _score(mean + noise, assessment.max_score)
                    scores.append((assessment, score))
                    if not is_current or assessment.due_date < self.today:
                        grades.append((student.number, assessment.pk, score, lecturer_of[key]))
                if is_current and ended_on is not None and ended_on > self.today:
                    status, ended_on = Enrollment.Status.ENROLLED, None  # not happened yet
                grade = None
                if not is_current and status == Enrollment.Status.ENROLLED:
                    grade = final_grade(scores)
                    finished.append((grade, course.credits))
                withdrawn += status == Enrollment.Status.WITHDRAWN
                took_term |= status != Enrollment.Status.DROPPED
                enrollments.append(
                    (
                        student.number,
                        section_ids[key],
                        status,
                        plan.start_date - datetime.timedelta(days=rng.randint(7, 45)),
                        ended_on,
                        grade,
                    )
                )
            if not is_current and took_term:
                outcomes[student.number] = self._draw_outcome(rng, student, finished, withdrawn)

        self._save_enrollments(term, enrollments)
        self._save_grades(term, grades)
        self._save_outcomes(term, outcomes)
        return shocks

    def _draw_outcome(self, rng, student: StudentPlan, finished, withdrawn: int) -> str:
        at_risk, withdrew = rng.random(), rng.random()
        if not finished:
            return TermOutcome.Outcome.WITHDREW
        credits = sum(c for _, c in finished)
        weighted_mean = float(sum(g * c for g, c in finished) / credits)
        risk = risk_probability(weighted_mean=weighted_mean, engagement=student.engagement, withdrawn_courses=withdrawn)
        if at_risk >= risk:
            return TermOutcome.Outcome.PASSED
        if withdrew < withdrew_probability(engagement=student.engagement, withdrawn_courses=withdrawn):
            return TermOutcome.Outcome.WITHDREW
        return TermOutcome.Outcome.FAILED

    def _save_enrollments(self, term: Term, planned) -> None:
        existing = {
            (student_id, section_id): (pk, status)
            for pk, student_id, section_id, status in Enrollment.objects.filter(section__term=term).values_list(
                "id", "student_id", "section_id", "status"
            )
        }
        new, changed, now = [], [], timezone.now()
        for number, section_id, status, enrolled_on, ended_on, grade in planned:
            student_id = self.student_ids[number]
            row = Enrollment(
                student_id=student_id,
                section_id=section_id,
                status=status,
                enrolled_on=enrolled_on,
                ended_on=ended_on,
                final_grade=grade,
            )
            if (student_id, section_id) not in existing:
                new.append(row)
            elif existing[(student_id, section_id)][1] != status:  # a withdrawal that has happened since
                row.pk, row.updated_at = existing[(student_id, section_id)][0], now
                changed.append(row)
        Enrollment.objects.bulk_create(new, batch_size=2000)
        Enrollment.objects.bulk_update(changed, ["status", "ended_on", "updated_at"], batch_size=500)

    def _save_grades(self, term: Term, planned) -> None:
        existing = set(Grade.objects.filter(assessment__section__term=term).values_list("student_id", "assessment_id"))
        batch = []
        for number, assessment_id, score, lecturer in planned:
            student_id = self.student_ids[number]
            if (student_id, assessment_id) not in existing:
                batch.append(
                    Grade(
                        student_id=student_id,
                        assessment_id=assessment_id,
                        score=score,
                        graded_by_id=self.user_ids[lecturer],
                    )
                )
            if len(batch) >= 20_000:
                Grade.objects.bulk_create(batch, batch_size=2000)
                batch = []
        Grade.objects.bulk_create(batch, batch_size=2000)

    def _save_outcomes(self, term: Term, planned: dict[str, str]) -> None:
        existing = set(TermOutcome.objects.filter(term=term).values_list("student_id", flat=True))
        TermOutcome.objects.bulk_create(
            TermOutcome(
                student_id=self.student_ids[number],
                term=term,
                outcome=outcome,
                source=TermOutcome.Source.IMPORTED,
                note=self.marker,
            )
            for number, outcome in planned.items()
            if self.student_ids[number] not in existing
        )


# --- Entry point --------------------------------------------------------------------------------


def demo_accounts_ensure() -> None:
    """The demo accounts, each with its role. A password is set only when the account is created."""
    for account in DEMO_ACCOUNTS:
        user, created = User.objects.get_or_create(
            email=account.email, defaults={"first_name": account.first_name, "last_name": account.last_name}
        )
        if created:
            validate_password(account.password, user)
            user.set_password(account.password)
            user.save(update_fields=["password"])
        user_role_grant(user=user, role=account.role, actor=None)


def demo_data_summary(report: DemoReport, *, counters: Sequence[Callable[[], dict[str, int]]] = ()) -> DemoReport:
    report.counts = {
        "departments": Department.objects.count(),
        "programs": Program.objects.count(),
        "courses": Course.objects.count(),
        "terms": Term.objects.count(),
        "sections": Section.objects.count(),
        "students": Student.objects.count(),
        "enrollments": Enrollment.objects.count(),
        "assessments": Assessment.objects.count(),
        "grades": Grade.objects.count(),
        "term outcomes": TermOutcome.objects.count(),
    }
    for count in counters:
        report.counts.update(count())
    outcomes: dict[str, dict[str, int]] = defaultdict(dict)
    counted = Counter(TermOutcome.objects.values_list("term__start_date", "term__name", "outcome"))
    for (_, term, outcome), count in sorted(counted.items()):
        outcomes[term][outcome] = count
    report.outcomes = dict(outcomes)
    return report


def demo_data_seed(
    *,
    size: str = "small",
    seed: int = 2026,
    today: datetime.date | None = None,
    term_writers: Sequence[DemoTermWriter] = (),
    counters: Sequence[Callable[[], dict[str, int]]] = (),
) -> DemoReport:
    """Loads the demo campus (idempotent), in one transaction: the catalogue, people, enrollments and
    grades, and each term's rows of the apps above through `term_writers`; `counters` add their row
    counts to the report. portal.demo.demo_data_seed passes attendance's. Raises DemoDataConflict when the
    database holds demo data from another seed or size; leaves it alone (and says so) when it was
    seeded in an earlier term."""
    now = None if today else timezone.now()
    today = today or timezone.localdate(now)
    campus = DemoCampus(size=size, seed=seed, today=today, now=now, term_writers=term_writers)
    report = DemoReport(size=size, seed=seed, current_term=campus.current.name, marker=campus.marker)
    found = (
        TermOutcome.objects.filter(note__startswith=NOTE_PREFIX).order_by("pk").values_list("note", flat=True).first()
    )
    with transaction.atomic():
        roles_sync_groups()
        demo_accounts_ensure()
        if found and found != campus.marker:
            if not found.startswith(f"{NOTE_PREFIX} (seed {seed}, {size},"):
                raise DemoDataConflict(
                    f"The database holds {found!r}, not seed {seed}, {size}. "
                    "Run `manage.py flush` first, or seed with that seed and size."
                )
            report.skipped = (
                f"The demo data was generated in an earlier term ({found}); left as it is. "
                f"Run `manage.py flush` and seed again to move it to {campus.current.name}."
            )
        else:
            campus.write()
            _refresh_planner_statistics()
    return demo_data_summary(report, counters=counters)


def _refresh_planner_statistics() -> None:
    """After a bulk load PostgreSQL still believes the tables are empty and may pick nested loops that
    take minutes; ANALYZE gives the planner the real sizes (allowed inside a transaction)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
