"""The demo campus's attendance history (docs/DEMO_DATA.md, "Attendance"): weekly class sessions for
every section, and a record for every student enrolled on the day of each session that has ended,
drawn from the same latent engagement (and term shock) behind the student's grades and outcomes, so
attendance carries signal about the outcome, with noise, and some students decline mid-term.

Called by students.demo for each term once its enrollments exist. Reproducible and idempotent like the
rest of the demo: every draw comes from a string-seeded random.Random, the date only decides what has
happened yet, rows are found by their natural key ((section, start) for a session, (session, student)
for a record) and only missing ones are written, so a rerun later in the term closes the sessions that
have ended since and adds their records: the same rows as a fresh seed on that day.
"""

import dataclasses
import datetime
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.utils import timezone

from attendance.models import AbsenceExcuse, AttendanceRecord, ClassSession, TermHoliday
from students.demo import TermPlan, demo_rng, sigmoid, student_engagement
from students.models import Enrollment, Section, Term

Status, Method, State = AttendanceRecord.Status, AttendanceRecord.Method, ClassSession.State

TEACHING_WEEKS = 14

# --- The timetable -----------------------------------------------------------------------------
TWICE_WEEKLY_RATE = 0.6  # of 6-credit courses; the others meet once a week (longer)
START_TIMES = ((8, 30), (10, 0), (11, 30), (14, 0), (15, 30), (17, 0))
CANCELLED_PER_SECTION = ((0, 1, 2, 3), (25, 40, 25, 10))  # how many sessions a term, with weights
LECTURER_CLOSES_RATE = 0.8  # the others are closed by the periodic task

# --- The noisy process (docs/DEMO_DATA.md explains each number) ---------------------------------
ATTEND_BASE, ATTEND_ENGAGEMENT, ATTEND_SHOCK = 2.3, 0.9, 0.4
ATTEND_STUDENT_TERM_SD, ATTEND_SESSION_SD, ATTEND_UNPOPULAR_SLOT = 0.5, 0.3, 0.4
DECLINE_BASE, DECLINE_ENGAGEMENT, DECLINE_SHOCK = -2.0, 0.8, 0.8
DECLINE_WEEKS, DECLINE_SLOPE = (3, 9), (0.1, 0.3)  # starts in that teaching week; logit lost per week
LATE_BASE, LATE_ENGAGEMENT, LATE_UNPOPULAR_SLOT = -2.2, 0.6, 0.6
EXCUSED_RATE = 0.12  # of absences
CHECK_IN_METHODS = ((Method.QR, Method.CODE, Method.CARD), (78, 14, 8))
EXCUSE_REASONS = (
    "Medical appointment.",
    "Ill; doctor's note attached.",
    "Family emergency.",
    "Representing the university at a sports competition.",
    "Public transport strike.",
    "Court summons.",
)


@dataclass(frozen=True)
class StudentTermAttendance:
    """A student's attendance behaviour in one term, on the logit scale."""

    level: float  # ATTEND_BASE + engagement, shock and the student's own term intercept
    decline_from: int | None  # the teaching week their attendance starts falling, if it does
    decline_slope: float

    def logit(self, week: int) -> float:
        if self.decline_from is None:
            return self.level
        return self.level - self.decline_slope * max(0, week - self.decline_from)


# The demo students in the running term, by number: (term intercept, decline week, slope); their past terms
# are drawn like everyone's. One steady; one struggling who starts the term trying and falls away from
# week 4: what the advisor should catch.
DEMO_STUDENT_ATTENDANCE = {
    "S0000001": (0.3, None, 0.0),
    "S0000002": (1.0, 4, 0.4),
}


@dataclass(frozen=True)
class PlannedSession:
    day: datetime.date  # local
    starts_at: datetime.datetime  # in UTC, so that adding minutes is absolute across daylight-saving changes
    ends_at: datetime.datetime
    room: str
    late_after_minutes: int
    series: uuid.UUID
    week: int  # of teaching, from 0
    unpopular: bool  # 08:30, or Friday afternoon
    class_effect: float  # shared by everyone in it: a deadline the day after, rain, a guest speaker
    opened_at: datetime.datetime
    closed_at: datetime.datetime
    cancelled: bool = False

    def state(self, now: datetime.datetime) -> str:
        """What has happened by `now`: a cancellation from the session's start, closing from its closing time."""
        if self.cancelled and self.starts_at <= now:
            return State.CANCELLED
        return State.CLOSED if self.closed_at <= now else State.SCHEDULED


def _minutes(value: float) -> datetime.timedelta:
    return datetime.timedelta(seconds=round(value * 60))


def _easter(year: int) -> datetime.date:
    """Western Easter Sunday (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    x = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * x) // 451
    month, day = divmod(h + x - 7 * m + 114, 31)
    return datetime.date(year, month, day + 1)


def teaching_days(plan: TermPlan) -> tuple[datetime.date, datetime.date]:
    """First and last day of teaching."""
    return plan.teaching_start, plan.teaching_start + datetime.timedelta(weeks=TEACHING_WEEKS, days=-1)


def term_holidays(plan: TermPlan) -> dict[datetime.date, str]:
    """Public holidays (Portugal's) that fall in the term's teaching weeks."""
    year, easter = plan.year, _easter(plan.year)
    if plan.season == "Autumn":
        days = {
            datetime.date(year, 10, 5): "Republic Day",
            datetime.date(year, 11, 1): "All Saints' Day",
            datetime.date(year, 12, 1): "Restoration of Independence",
            datetime.date(year, 12, 8): "Immaculate Conception",
        }
    else:
        days = {
            easter - datetime.timedelta(days=47): "Carnival",
            easter - datetime.timedelta(days=2): "Good Friday",
            datetime.date(year, 4, 25): "Freedom Day",
            datetime.date(year, 5, 1): "Labour Day",
            easter + datetime.timedelta(days=60): "Corpus Christi",
        }
    first, last = teaching_days(plan)
    return {day: name for day, name in sorted(days.items()) if first <= day <= last}


def section_sessions(
    *, plan: TermPlan, seed: int, course_code: str, section_code: str, credits: int
) -> list[PlannedSession]:
    """A section's timetable for the term, holidays skipped, in order of time."""
    rng = demo_rng(seed, plan.name, course_code, section_code, "sessions")
    zone = timezone.get_default_timezone()
    holidays = term_holidays(plan)
    weekly = 2 if credits == 6 and rng.random() < TWICE_WEEKLY_RATE else 1
    first_weekday = rng.randrange(5)
    weekdays = [first_weekday] if weekly == 1 else [first_weekday, (first_weekday + rng.choice((2, 3))) % 5]
    duration = datetime.timedelta(minutes=90 if weekly == 2 else 120)
    late_after = rng.choice((10, 10, 15))
    auto_close = settings.ATTENDANCE_AUTO_CLOSE_AFTER_MINUTES
    sessions = []
    for weekday in weekdays:
        hour, minute = rng.choice(START_TIMES)
        room = f"{rng.choice('ABCDEF')}{rng.randint(0, 3)}.{rng.randint(1, 24):02d}"
        series = uuid.UUID(int=rng.getrandbits(128), version=4)
        first_day = plan.teaching_start + datetime.timedelta(days=(weekday - plan.teaching_start.weekday()) % 7)
        for week in range(TEACHING_WEEKS):
            day = first_day + datetime.timedelta(weeks=week)
            class_effect, open_early, closes = rng.gauss(0, ATTEND_SESSION_SD), rng.uniform(1, 12), rng.random()
            close_after = rng.uniform(0, 10) if closes < LECTURER_CLOSES_RATE else auto_close + rng.uniform(0, 5)
            if day in holidays:
                continue
            starts_at = datetime.datetime.combine(day, datetime.time(hour, minute), tzinfo=zone).astimezone(
                datetime.UTC
            )
            ends_at = starts_at + duration
            sessions.append(
                PlannedSession(
                    day=day,
                    starts_at=starts_at,
                    ends_at=ends_at,
                    room=room,
                    late_after_minutes=late_after,
                    series=series,
                    week=week,
                    unpopular=(hour, minute) == (8, 30) or (weekday == 4 and hour >= 14),
                    class_effect=class_effect,
                    opened_at=starts_at - _minutes(open_early),
                    closed_at=ends_at + _minutes(close_after),
                )
            )
    sessions.sort(key=lambda s: s.starts_at)
    cancelled = set(rng.sample(range(len(sessions)), rng.choices(*CANCELLED_PER_SECTION)[0]))
    return [dataclasses.replace(s, cancelled=True) if i in cancelled else s for i, s in enumerate(sessions)]


def student_term_attendance(
    *, student_number: str, seed: int, term: str, shock: float, current: bool
) -> tuple[StudentTermAttendance, float]:
    """How a student attends in a term: engagement and the term's shock set the level, the student's own
    intercept adds noise, and with probability sigmoid(-2 - 0.8 e - 0.8 u) it falls week by week from some week.
    Returns the behaviour and the engagement."""
    rng = demo_rng(seed, student_number, term, "attendance")
    engagement = student_engagement(student_number, seed)
    intercept = rng.gauss(0, ATTEND_STUDENT_TERM_SD)
    declines = rng.random() < sigmoid(DECLINE_BASE - DECLINE_ENGAGEMENT * engagement - DECLINE_SHOCK * shock)
    decline_from, slope = rng.randint(*DECLINE_WEEKS), rng.uniform(*DECLINE_SLOPE)
    if current and student_number in DEMO_STUDENT_ATTENDANCE:
        intercept, decline_from, slope = DEMO_STUDENT_ATTENDANCE[student_number]
        declines = decline_from is not None
    return StudentTermAttendance(
        level=ATTEND_BASE + ATTEND_ENGAGEMENT * engagement + ATTEND_SHOCK * shock + intercept,
        decline_from=decline_from if declines else None,
        decline_slope=slope,
    ), engagement


@dataclass
class _Section:
    pk: int
    course_code: str
    code: str
    lecturer_id: int | None
    sessions: list[PlannedSession]

    def session_keys(self) -> list[tuple[int, datetime.datetime]]:
        """The sessions' natural keys, (section id, start in UTC), in the order of self.sessions."""
        return [_key(self.pk, s.starts_at) for s in self.sessions]


def _key(section_id: int, starts_at: datetime.datetime) -> tuple[int, datetime.datetime]:
    return section_id, starts_at.astimezone(datetime.UTC)


def demo_attendance_write(
    *, plan: TermPlan, term: Term, seed: int, now: datetime.datetime, shocks: Mapping[str, float], current: bool
) -> None:
    """Sessions and records for one term of the demo campus (idempotent; see the module's docstring)."""
    _save_holidays(plan, term)
    lecturers: dict[int, int] = {}
    through = Section.lecturers.through.objects.filter(section__term=term)
    for section_id, user_id in through.order_by("-user_id").values_list("section_id", "user_id"):
        lecturers[section_id] = user_id  # ends with the lowest id: the section's first lecturer
    rows = Section.objects.filter(term=term).order_by("pk").values_list("id", "code", "course__code", "course__credits")
    sections = [
        _Section(
            pk=pk,
            course_code=course_code,
            code=code,
            lecturer_id=lecturers.get(pk),
            sessions=section_sessions(
                plan=plan, seed=seed, course_code=course_code, section_code=code, credits=credits
            ),
        )
        for pk, code, course_code, credits in rows
    ]
    to_record = _save_sessions(term, sections, now)
    if to_record:
        _save_records(term, plan, sections, to_record, seed=seed, shocks=shocks, current=current)


def _save_holidays(plan: TermPlan, term: Term) -> None:
    existing = set(TermHoliday.objects.filter(term=term).values_list("date", flat=True))
    TermHoliday.objects.bulk_create(
        TermHoliday(term=term, date=day, name=name) for day, name in term_holidays(plan).items() if day not in existing
    )


def _save_sessions(term: Term, sections: list[_Section], now: datetime.datetime) -> dict[tuple, int]:
    """Writes the missing sessions and moves scheduled ones whose time has come to closed or cancelled.
    Returns {(section id, start): session id} of the sessions closed just now: those to record."""
    existing = {
        _key(section_id, starts_at): (pk, state)
        for pk, section_id, starts_at, state in ClassSession.objects.filter(section__term=term).values_list(
            "id", "section_id", "starts_at", "state"
        )
    }
    new, changed, closing = [], [], set()
    for section in sections:
        for key, planned in zip(section.session_keys(), section.sessions, strict=True):
            state = planned.state(now)
            closed = state == State.CLOSED
            row = ClassSession(
                section_id=section.pk,
                starts_at=planned.starts_at,
                ends_at=planned.ends_at,
                room=planned.room,
                late_after_minutes=planned.late_after_minutes,
                series=planned.series,
                state=state,
                opened_at=planned.opened_at if closed else None,
                closed_at=planned.closed_at if closed else None,
            )
            if key not in existing:
                new.append(row)
            elif existing[key][1] == State.SCHEDULED and state != State.SCHEDULED:  # its time has come since
                row.pk, row.updated_at = existing[key][0], timezone.now()
                changed.append(row)
            else:
                continue  # as planned, or changed in the portal since: left alone
            if closed:
                closing.add(key)
    ClassSession.objects.bulk_create(new, batch_size=2000)
    ClassSession.objects.bulk_update(changed, ["state", "opened_at", "closed_at", "updated_at"], batch_size=500)
    if not closing:
        return {}
    earliest = min(starts_at for _, starts_at in closing)
    ids = ClassSession.objects.filter(section__term=term, starts_at__gte=earliest).values_list(
        "id", "section_id", "starts_at"
    )
    return {key: pk for pk, section_id, starts_at in ids if (key := _key(section_id, starts_at)) in closing}


def _save_records(term, plan, sections, to_record, *, seed, shocks, current) -> None:
    """A record for each student enrolled on the session's day (enrolled on or before it, not left by
    then) in each session of to_record. In past terms an excused absence comes with the student's
    approved excuse; in the running term it is the lecturer's decision at closing (so that nothing
    waits for a date still to come)."""
    earliest = min(starts_at for _, starts_at in to_record)
    recorded = set(
        AttendanceRecord.objects.filter(session__section__term=term, session__starts_at__gte=earliest).values_list(
            "session_id", "student_id"
        )
    )
    sessions = {}
    for section in sections:
        ids = [to_record.get(key) for key in section.session_keys()]
        if any(ids):
            sessions[section.pk] = (section, ids)
    enrollments = (
        Enrollment.objects.filter(section__term=term)
        .order_by("section_id", "student__student_number")
        .values_list("section_id", "student_id", "student__student_number", "enrolled_on", "ended_on")
    )
    behaviours: dict[str, tuple[StudentTermAttendance, float]] = {}
    records = _RecordWriter()
    excuses: dict[tuple[int, int], tuple[str, datetime.datetime, int | None]] = {}
    for section_id, student_id, number, enrolled_on, ended_on in enrollments:
        if section_id not in sessions:
            continue
        section, ids = sessions[section_id]
        if number not in behaviours:
            behaviours[number] = student_term_attendance(
                student_number=number, seed=seed, term=plan.name, shock=shocks.get(number, 0.0), current=current
            )
        behaviour, engagement = behaviours[number]
        rng = demo_rng(seed, number, plan.name, section.course_code, section.code, "attendance")
        for planned, session_id in zip(section.sessions, ids, strict=True):
            attend, late, excused, when, how = rng.random(), rng.random(), rng.random(), rng.random(), rng.random()
            if session_id is None or (session_id, student_id) in recorded:
                continue
            if planned.day < enrolled_on or (ended_on is not None and planned.day >= ended_on):
                continue
            unpopular = planned.unpopular
            logit = behaviour.logit(planned.week) + planned.class_effect - ATTEND_UNPOPULAR_SLOT * unpopular
            if attend < sigmoid(logit):
                late_after = planned.starts_at + _minutes(planned.late_after_minutes)
                if late < sigmoid(LATE_BASE - LATE_ENGAGEMENT * engagement + LATE_UNPOPULAR_SLOT * unpopular):
                    # Most late arrivals come a few minutes after the cut-off, some much later.
                    spare = (planned.ends_at - late_after).total_seconds() / 60
                    status, recorded_at = Status.LATE, late_after + _minutes(1 + when**2 * spare / 2)
                else:
                    window = (late_after - planned.opened_at).total_seconds() / 60
                    status, recorded_at = Status.PRESENT, planned.opened_at + _minutes(when * window)
                records.add(session_id, student_id, status, recorded_at, _check_in_method(how))
            elif excused < EXCUSED_RATE:
                reason = EXCUSE_REASONS[int(when * len(EXCUSE_REASONS))]
                if current:
                    records.add(
                        session_id, student_id, Status.EXCUSED, planned.closed_at, Method.MANUAL,
                        recorded_by_id=section.lecturer_id, note=reason,
                    )  # fmt: skip
                else:  # submitted after closing, approved within three days
                    records.add(session_id, student_id, Status.EXCUSED, planned.closed_at, Method.CLOSING)
                    decided_at = planned.closed_at + _minutes(240 + how * 4080)
                    excuses[(session_id, student_id)] = (reason, decided_at, section.lecturer_id)
            else:
                records.add(session_id, student_id, Status.ABSENT, planned.closed_at, Method.CLOSING)
    records.flush()
    _save_excuses(term, excuses)


def _check_in_method(draw: float) -> str:
    methods, weights = CHECK_IN_METHODS
    threshold = draw * sum(weights)
    for method, weight in zip(methods, weights, strict=True):
        if threshold < weight:
            return method
        threshold -= weight
    return methods[-1]


class _RecordWriter:
    """Inserts attendance records in batches of plain rows with executemany: bulk_create prepares
    every value of every row through its field, which is most of the time on millions of records.
    Same columns, same adaptation of datetimes; every other value is a plain int, str or None."""

    BATCH = 20_000

    def __init__(self):
        meta = AttendanceRecord._meta
        self.fields = [f for f in meta.concrete_fields if not f.primary_key]
        quote = connection.ops.quote_name
        columns = ", ".join(quote(f.column) for f in self.fields)
        placeholders = ", ".join(["%s"] * len(self.fields))
        # Bandit B608: identifiers from model metadata; values are parameters.
        self.sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders})"  # noqa: S608  # nosec B608
        self.adapt = connection.ops.adapt_datetimefield_value
        now = self.adapt(timezone.now())
        self.defaults = {f.attname: f.get_default() for f in self.fields} | {"created_at": now, "updated_at": now}
        self.position = {f.attname: i for i, f in enumerate(self.fields)}
        self.template = [self.defaults[f.attname] for f in self.fields]
        self.rows: list[list] = []

    def add(self, session_id, student_id, status, recorded_at, method, *, recorded_by_id=None, note="") -> None:
        row = self.template.copy()
        p = self.position
        row[p["session_id"]], row[p["student_id"]], row[p["status"]] = session_id, student_id, str(status)
        row[p["recorded_at"]], row[p["method"]] = self.adapt(recorded_at), str(method)
        row[p["recorded_by_id"]], row[p["note"]] = recorded_by_id, note
        self.rows.append(row)
        if len(self.rows) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            with connection.cursor() as cursor:
                cursor.executemany(self.sql, self.rows)
            self.rows = []


def _save_excuses(term: Term, excuses: dict[tuple[int, int], tuple[str, datetime.datetime, int | None]]) -> None:
    if not excuses:
        return
    excused = AttendanceRecord.objects.filter(
        session__section__term=term, status=Status.EXCUSED, excuse__isnull=True
    ).values_list("id", "session_id", "student_id")
    rows = []
    for pk, session_id, student_id in excused:
        if (session_id, student_id) in excuses:
            reason, decided_at, lecturer_id = excuses[(session_id, student_id)]
            rows.append(
                AbsenceExcuse(
                    record_id=pk,
                    reason=reason,
                    state=AbsenceExcuse.State.APPROVED,
                    decided_at=decided_at,
                    decided_by_id=lecturer_id,
                )
            )
    AbsenceExcuse.objects.bulk_create(rows, batch_size=2000)


def demo_attendance_counts() -> dict[str, int]:
    """The demo report's attendance lines."""
    return {
        "class sessions": ClassSession.objects.count(),
        "attendance records": AttendanceRecord.objects.count(),
    }
