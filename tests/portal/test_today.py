"""The signed-in home, "Today" (portal/today.py): each role's part, who sees what, the lecturer's one-click
open, and the queries each part costs for few rows and for many."""

import datetime
import html
import re
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.roles import Role
from attendance.models import AbsenceExcuse, AttendanceRecord, ClassSession
from campusiq.core.models import AuditLogEntry, ImportJob
from portal.today import IMPORT_JOBS_SHOWN, INTERVENTIONS_SHOWN
from predictions.models import Intervention, RiskScore, ScoringRun
from tests.factories import (
    AbsenceExcuseFactory,
    AssessmentFactory,
    AttendanceRecordFactory,
    ClassSessionFactory,
    CourseFactory,
    EnrollmentFactory,
    GradeFactory,
    ImportJobFactory,
    InterventionFactory,
    RiskScoreFactory,
    ScoringRunFactory,
    SectionFactory,
    StudentFactory,
    TermFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

# A Wednesday in the term (Lisbon is on UTC in November).
NOW = datetime.datetime(2026, 11, 25, 10, 5, tzinfo=datetime.UTC)
State = ClassSession.State
High, Low = RiskScore.Band.HIGH, RiskScore.Band.LOW


@pytest.fixture(autouse=True)
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
def other_section(term):
    other = UserFactory(roles=[Role.LECTURER])
    return SectionFactory(term=term, lecturers=[other], course=CourseFactory(code="MA201", title="Algebra"))


def session_at(section, hours_from_now: float, *, state=State.SCHEDULED, minutes=90, room="B-101"):
    starts = NOW + datetime.timedelta(hours=hours_from_now)
    return ClassSessionFactory(
        section=section, starts_at=starts, ends_at=starts + datetime.timedelta(minutes=minutes), state=state, room=room
    )


def signed_in(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def page_of(user) -> str:
    response = signed_in(user).get("/")
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def part(page: str, heading_id: str) -> str:
    """The <section> of the page whose heading has that id."""
    match = re.search(rf'<section aria-labelledby="{heading_id}">(.*?)</section>', page, re.S)
    assert match, heading_id
    return match.group(1)


def open_url(session) -> str:
    return reverse("portal:today-session-open", kwargs={"session_id": session.pk})


def count_queries(user) -> int:
    client = signed_in(user)
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/").status_code == 200
    return len(queries)


# --- Lecturer -------------------------------------------------------------------------------------


def test_lecturer_sees_todays_sessions_each_with_its_one_action(section, other_section):
    starting = session_at(section, -0.05, room="B-2")  # started 3 minutes ago, still scheduled
    running = session_at(section, -1, state=State.OPEN, minutes=120)
    earlier = session_at(section, -3, state=State.CLOSED)
    later = session_at(section, 4)  # this afternoon: too early to open
    cancelled = session_at(section, 2, state=State.CANCELLED)
    missed = session_at(section, -6, minutes=60)  # over this morning, never opened
    AttendanceRecordFactory(session=running, status=AttendanceRecord.Status.PRESENT)
    AttendanceRecordFactory(session=running, status=AttendanceRecord.Status.LATE)
    session_at(other_section, 0)  # someone else's class this morning
    page = part(page_of(section.lecturers.get()), "today-teaching")
    today = page.split('id="today-next"')[0]

    # One form per session that may open now, posting to the one-click open; the rest link elsewhere.
    assert re.findall(r'action="([^"]+)"', today) == [open_url(starting)]
    assert "Open and show code" in today
    assert f'href="{reverse("attendance:session-display", kwargs={"session_id": running.pk})}"' in today
    assert "Show code" in today and "2 checked in" in today
    for record_only in (earlier, later, cancelled, missed):
        assert f'href="{reverse("attendance:session-detail", kwargs={"session_id": record_only.pk})}"' in today
    assert today.count("check-in opens shortly before it starts") == 1  # the afternoon's only
    assert today.count("Session record") == 3
    assert "csrfmiddlewaretoken" in today
    assert "MA201" not in page  # another lecturer's session
    # In the order they start, with their room.
    order = [today.index(f"today-session-{s.pk}") for s in (missed, earlier, running, starting, cancelled, later)]
    assert order == sorted(order)
    assert "B-2" in today


def test_lecturer_sees_the_next_sessions_after_today_not_cancelled_and_only_their_own(section, other_section):
    yesterday = session_at(section, -24, state=State.CLOSED)
    tomorrow = session_at(section, 24)
    next_week = [session_at(section, 24 * 7 + day * 24) for day in range(6)]
    dropped = session_at(section, 48, state=State.CANCELLED)
    theirs = session_at(other_section, 24)
    upcoming = part(page_of(section.lecturers.get()), "today-teaching").split('id="today-next"')[1]
    shown = [int(n) for n in re.findall(r"/attendance/sessions/(\d+)/", upcoming)]
    assert shown == [tomorrow.pk, *[s.pk for s in next_week[:4]]]  # the next five, in order
    for hidden in (yesterday, dropped, theirs):
        assert hidden.pk not in shown


def test_lecturer_is_told_how_many_excuses_wait_in_their_sections(section, other_section):
    for _ in range(2):
        AbsenceExcuseFactory(record__session=session_at(section, -48))
    AbsenceExcuseFactory(record__session=session_at(section, -72), state=AbsenceExcuse.State.APPROVED)
    AbsenceExcuseFactory(record__session=session_at(other_section, -48))
    page = part(page_of(section.lecturers.get()), "today-teaching")
    assert "2 absence excuses to decide" in page


def test_one_click_opens_the_session_and_shows_its_code(section, lecturer):
    session = session_at(section, -0.05)
    client = signed_in(lecturer)
    response = client.post(open_url(session))
    display = reverse("attendance:session-display", kwargs={"session_id": session.pk})
    assert response.status_code == 302 and response["Location"] == display
    session.refresh_from_db()
    assert session.state == State.OPEN and session.opened_at == NOW
    assert AuditLogEntry.objects.filter(verb="class_session.opened", actor=lecturer, object_id=str(session.pk)).exists()
    shown = client.get(display).content.decode()
    assert re.search(r"data-code[^>]*>\s*\d{6}\s*<", shown)


def test_one_click_on_an_open_session_just_shows_the_code_again(section, lecturer):
    session = session_at(section, -1, state=State.OPEN)
    response = signed_in(lecturer).post(open_url(session))
    assert response["Location"] == reverse("attendance:session-display", kwargs={"session_id": session.pk})
    assert not AuditLogEntry.objects.filter(verb="class_session.opened").exists()


def test_one_click_on_another_lecturers_session_is_not_found_and_changes_nothing(lecturer, other_section):
    session = session_at(other_section, -0.05)
    response = signed_in(lecturer).post(open_url(session))
    assert response.status_code == 404
    session.refresh_from_db()
    assert session.state == State.SCHEDULED and not AuditLogEntry.objects.exists()


def test_an_advisor_of_a_student_in_the_section_cannot_open_it(section):
    both = UserFactory(roles=[Role.LECTURER, Role.ADVISOR])
    EnrollmentFactory(student=StudentFactory(advisor=both), section=section)  # sees the section's sessions
    session = session_at(section, -0.05)
    assert signed_in(both).post(open_url(session)).status_code == 404
    session.refresh_from_db()
    assert session.state == State.SCHEDULED


def test_a_session_the_service_refuses_to_open_says_why_and_changes_nothing(section, lecturer):
    later = session_at(section, 4)
    response = signed_in(lecturer).post(open_url(later), follow=True)
    assert response.redirect_chain == [(reverse("home"), 302)]
    assert "Check-in cannot open yet: it opens 15 minutes before the session starts." in html.unescape(
        response.content.decode()
    )
    later.refresh_from_db()
    assert later.state == State.SCHEDULED and not AuditLogEntry.objects.exists()


def test_one_click_needs_the_csrf_token(section, lecturer):
    session = session_at(section, -0.05)
    client = signed_in(lecturer, enforce_csrf_checks=True)
    assert client.post(open_url(session)).status_code == 403
    session.refresh_from_db()
    assert session.state == State.SCHEDULED


def test_sessions_never_taken_wait_on_the_lecturers_today_page(section, lecturer):
    from attendance.services import class_session_close

    forgotten = session_at(section, -24 * 7)  # last week's, never opened
    class_session_close(session=forgotten, actor=None)
    forgotten.refresh_from_db()
    assert forgotten.state == State.NOT_TAKEN
    page = part(page_of(lecturer), "today-teaching")
    assert "Sessions needing attention" in page
    assert reverse("attendance:session-detail", kwargs={"session_id": forgotten.pk}) in page.split("today-not-taken")[1]


# --- Student --------------------------------------------------------------------------------------


@pytest.fixture
def ana(section):
    student = StudentFactory(user__first_name="Ana", user__last_name="Almeida", student_number="S1000001")
    EnrollmentFactory(student=student, section=section)
    return student


def test_student_sees_todays_classes_and_where_to_check_in(ana, section, other_section):
    now_open = session_at(section, -0.05, state=State.OPEN, room="Aula Magna")
    session_at(section, 5)
    session_at(section, 24, room="Tomorrow room")
    session_at(section, 2, state=State.CANCELLED, room="Cancelled room")
    session_at(other_section, 1, room="Not her class")
    page = part(page_of(ana.user), "today-classes")
    assert page.count('class="card"') == 2
    assert "Aula Magna" in page and "Check-in open" in page and "Check-in not open yet" in page
    assert f'href="{reverse("attendance:check-in-code")}"' in page
    for absent in ("Tomorrow room", "Cancelled room", "Not her class"):
        assert absent not in page
    now_open.state = State.CLOSED
    now_open.save(update_fields=["state"])
    assert reverse("attendance:check-in-code") not in part(page_of(ana.user), "today-classes")


def test_student_sees_attendance_rate_what_they_may_miss_and_running_average(ana, section, term):
    # Four held (three attended), four to come: 3/4 = 75 %; the 75 % minimum of 8 needs 6, so one more may go.
    for days_ago in (21, 14, 7):
        AttendanceRecordFactory(session=session_at(section, -24 * days_ago), student=ana)
    AttendanceRecordFactory(session=session_at(section, -24 * 3), student=ana, status=AttendanceRecord.Status.ABSENT)
    for weeks in (1, 2, 3, 4):
        session_at(section, 24 * 7 * weeks)
    quiz = AssessmentFactory(section=section, weight=Decimal("20"), max_score=Decimal("20"))
    AssessmentFactory(section=section, weight=Decimal("30"))
    GradeFactory(student=ana, assessment=quiz, score=Decimal("16"))
    EnrollmentFactory(
        student=ana,
        section=SectionFactory(term=term, course=CourseFactory(code="XX999")),
        status="dropped",
        ended_on=datetime.date(2026, 9, 20),
    )
    standing = part(page_of(ana.user), "today-standing")
    row = re.search(r"<tr>\s*<th scope=\"row\">CS101.*?</tr>", standing, re.S).group(0)
    assert "75\xa0%" in row
    assert "You may miss 1 more session." in row
    assert "80.0\xa0%" in row  # 16/20 on the only graded 20 %
    assert "XX999" not in standing
    assert f'href="{reverse("attendance:my-attendance")}"' in standing
    assert f'href="{reverse("attendance:advance-absences")}"' in standing  # where to say they will be away


def test_a_student_who_can_no_longer_reach_the_minimum_is_told_so(ana, section):
    for days_ago in (21, 14, 7):
        AttendanceRecordFactory(session=session_at(section, -24 * days_ago), student=ana, status="absent")
    session_at(section, 24 * 7)
    standing = part(page_of(ana.user), "today-standing")
    assert "cannot reach the minimum" in standing and "You may miss" not in standing


def test_a_student_role_without_a_student_record_is_told_whom_to_ask():
    page = page_of(UserFactory(roles=[Role.STUDENT]))
    assert "Your student record is not set up yet." in page and 'aria-labelledby="today-classes"' not in page


# --- Advisor --------------------------------------------------------------------------------------


@pytest.fixture
def advisor():
    return UserFactory(roles=[Role.ADVISOR], first_name="Ada", last_name="Advisor")


def scored(run, bands: dict) -> None:
    for student, band in bands.items():
        RiskScoreFactory(run=run, student=student, band=band, probability=0.8 if band == High else 0.1)


def test_advisor_sees_advisees_who_newly_entered_the_high_band(advisor, term):
    stays, rises, first_scored, low = (StudentFactory(advisor=advisor) for _ in range(4))
    not_mine = StudentFactory(advisor=UserFactory(roles=[Role.ADVISOR]))
    before = ScoringRunFactory(term=term, as_of=NOW - datetime.timedelta(days=2))
    latest = ScoringRunFactory(term=term, as_of=NOW - datetime.timedelta(days=1), model_version=before.model_version)
    ScoringRunFactory(term=term, as_of=NOW, status=ScoringRun.Status.FAILED, model_version=before.model_version)
    scored(before, {stays: High, rises: Low, low: Low, not_mine: Low})
    scored(latest, {stays: High, rises: High, first_scored: High, low: Low, not_mine: High})
    InterventionFactory(student=rises, term=term, advisor=advisor)
    page = part(page_of(advisor), "today-advisees")
    newly = page.split('id="today-newly-high"')[1].split('id="today-interventions"')[0]
    shown = [int(n) for n in re.findall(r"/portal/advisor/advisees/(\d+)/", newly)]
    assert sorted(shown) == sorted([rises.pk, first_scored.pk])
    assert newly.count("no intervention yet") == 1  # first_scored's; rises has one
    interventions = page.split('id="today-interventions"')[1]
    assert re.findall(r"/portal/at-risk/students/(\d+)/", interventions) == [str(rises.pk)]


def test_advisor_before_any_scoring_run_is_told_so(advisor, term):
    StudentFactory(advisor=advisor)
    page = part(page_of(advisor), "today-advisees")
    assert "No scoring run this term yet." in page and "None of your advisees has an open intervention." in page


def open_interventions_shown(advisor) -> list[int]:
    listed = part(page_of(advisor), "today-advisees").split('id="today-interventions"')[1]
    return [int(n) for n in re.findall(r"/portal/at-risk/students/(\d+)/", listed)]


def test_advisor_sees_open_interventions_of_their_advisees_oldest_first(advisor, term):
    earlier_term = TermFactory(
        name="Spring 2026", start_date=datetime.date(2026, 2, 2), end_date=datetime.date(2026, 6, 30),
        add_drop_deadline=datetime.date(2026, 2, 16),
    )  # fmt: skip
    newest, oldest, middle, closed = (StudentFactory(advisor=advisor) for _ in range(4))
    not_mine = StudentFactory(advisor=UserFactory(roles=[Role.ADVISOR]))
    for student, days_ago, when in ((newest, 1, term), (oldest, 200, earlier_term), (middle, 10, term)):
        intervention = InterventionFactory(student=student, term=when, advisor=advisor)
        Intervention.objects.filter(pk=intervention.pk).update(created_at=NOW - datetime.timedelta(days=days_ago))
    InterventionFactory(student=closed, term=term, advisor=advisor, closed_at=NOW, outcome="resolved")
    InterventionFactory(student=not_mine, term=term)
    # Open ones from an earlier term still wait, and come first; closed ones and others' advisees do not show.
    assert open_interventions_shown(advisor) == [oldest.pk, middle.pk, newest.pk]
    page = part(page_of(advisor), "today-advisees")
    assert f"?term={earlier_term.pk}#interventions" in page  # the link opens the term it belongs to
    assert "more open intervention" not in page


def test_advisor_is_told_how_many_open_interventions_are_not_listed(advisor, term):
    for _ in range(INTERVENTIONS_SHOWN + 2):
        InterventionFactory(student=StudentFactory(advisor=advisor), term=term, advisor=advisor)
    assert len(open_interventions_shown(advisor)) == INTERVENTIONS_SHOWN
    assert "And 2 more open interventions." in part(page_of(advisor), "today-advisees")


def test_a_lecturer_who_advises_gets_both_parts_and_nothing_of_a_student_or_registrar(term):
    both = UserFactory(roles=[Role.LECTURER, Role.ADVISOR])
    page = page_of(both)
    assert 'aria-labelledby="today-teaching"' in page and 'aria-labelledby="today-advisees"' in page
    assert 'aria-labelledby="today-classes"' not in page and 'aria-labelledby="today-queues"' not in page


# --- Registrar ------------------------------------------------------------------------------------


def test_registrar_sees_pending_excuses_imports_and_the_latest_scoring_runs(section, other_section, term):
    registrar = UserFactory(roles=[Role.REGISTRAR])
    AbsenceExcuseFactory(record__session=session_at(section, -48))
    AbsenceExcuseFactory(record__session=session_at(other_section, -48))
    AbsenceExcuseFactory(record__session=session_at(other_section, -72), state=AbsenceExcuse.State.REJECTED)
    ok = ScoringRunFactory(term=term, as_of=NOW - datetime.timedelta(days=1), students_scored=412)
    failed = ScoringRunFactory(term=term, as_of=NOW, status=ScoringRun.Status.FAILED, model_version=ok.model_version)
    page = part(page_of(registrar), "today-queues")
    assert "2 absence excuses awaiting a decision" in page
    assert f'href="{reverse("attendance:excuses")}"' in page
    assert reverse("admin:students_student_import") in page and reverse("admin:students_grade_import") in page
    runs = page.split('id="today-runs"')[1]
    assert runs.index(f"/scoringrun/{failed.pk}/") < runs.index(f"/scoringrun/{ok.pk}/")  # newest first
    assert "Failed" in runs and "412 students scored" in runs
    assert 'aria-labelledby="today-teaching"' not in page_of(registrar)


def test_registrar_sees_the_latest_import_jobs_with_their_outcome(term):
    registrar = UserFactory(roles=[Role.REGISTRAR])
    Status = ImportJob.Status
    old = ImportJobFactory(created_at=NOW - datetime.timedelta(days=9), file_name="oldest.csv")
    for days in range(IMPORT_JOBS_SHOWN - 2, 0, -1):
        ImportJobFactory(created_at=NOW - datetime.timedelta(days=days), status=Status.SUCCEEDED)
    done = ImportJobFactory(
        kind="grades", file_name="grades-2024.csv", status=Status.SUCCEEDED, rows_total=900, rows_done=900,
        rows_written=870, created_at=NOW - datetime.timedelta(hours=2),
    )  # fmt: skip
    failed = ImportJobFactory(
        kind="attendance_marks", file_name="marks.xlsx", status=Status.FAILED, rows_total=50_000, rows_done=50_000,
        error_count=3, created_at=NOW - datetime.timedelta(hours=1),
    )  # fmt: skip
    imports = part(page_of(registrar), "today-queues").split('id="today-imports"')[1].split('id="today-runs"')[0]
    assert imports.index(f"/importjob/{failed.pk}/") < imports.index(f"/importjob/{done.pk}/")  # newest first
    assert "Past attendance marks: marks.xlsx" in imports and "Grade history: grades-2024.csv" in imports
    assert "50000 of 50000 rows, 3 errors" in imports and "Failed" in imports
    assert "870 rows written" in imports and "Succeeded" in imports
    assert imports.count("/change/") == IMPORT_JOBS_SHOWN
    assert f"/importjob/{old.pk}/" not in imports  # only the latest
    assert reverse("admin:core_importjob_add") in imports


def test_registrar_before_any_import_job_is_told_so(term):
    imports = part(page_of(UserFactory(roles=[Role.REGISTRAR])), "today-queues")
    assert "No import job yet." in imports


def test_people_without_registry_roles_see_no_queues(section, ana, advisor):
    for user in (section.lecturers.get(), ana.user, advisor):
        assert 'aria-labelledby="today-queues"' not in page_of(user)


# --- Everyone -------------------------------------------------------------------------------------


def test_visitors_keep_the_public_home(client):
    page = client.get("/").content.decode()
    assert "Welcome to CampusIQ" in page and reverse("login") in page and "<h1>Today</h1>" not in page


def test_every_part_has_one_h1_and_nothing_inline_the_csp_would_block(section, ana, advisor, term):
    session_at(section, -0.05)
    run = ScoringRunFactory(term=term)
    RiskScoreFactory(run=run, student=StudentFactory(advisor=advisor))
    everyone = UserFactory(roles=[Role.LECTURER, Role.ADVISOR, Role.REGISTRAR])
    for user in (section.lecturers.get(), ana.user, advisor, everyone):
        page = page_of(user)
        assert page.count("<h1") == 1
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=", page)
        assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", page))


# --- Query counts: the same for few rows as for many -------------------------------------------------


def test_lecturer_part_queries_do_not_grow_with_sessions(term):
    counts = []
    for size in (2, 30):
        lecturer = UserFactory(roles=[Role.LECTURER])
        sections = [SectionFactory(term=term, lecturers=[lecturer]) for _ in range(2)]
        for n in range(size):
            session = session_at(sections[n % 2], -2 + n * 0.1, state=(State.OPEN, State.CLOSED)[n % 2], minutes=30)
            AttendanceRecordFactory(session=session)
            session_at(sections[n % 2], 24 + n)
            AbsenceExcuseFactory(record__session=session_at(sections[n % 2], -48 - n))
        assert len(re.findall(r'id="today-session-', page_of(lecturer))) == size
        counts.append(count_queries(lecturer))
    assert counts[0] == counts[1], counts


def test_student_part_queries_do_not_grow_with_courses_and_classes(term):
    counts = []
    for size in (1, 12):
        student = StudentFactory()
        for _ in range(size):
            section = SectionFactory(term=term)
            EnrollmentFactory(student=student, section=section)
            session_at(section, 1, state=State.OPEN)
            AttendanceRecordFactory(session=session_at(section, -48), student=student)
            GradeFactory(student=student, assessment=AssessmentFactory(section=section))
        assert page_of(student.user).count("You may miss") == size
        counts.append(count_queries(student.user))
    assert counts[0] == counts[1], counts


def test_advisor_part_queries_do_not_grow_with_advisees(term):
    counts = []
    for size in (2, 40):
        advisor = UserFactory(roles=[Role.ADVISOR])
        before = ScoringRunFactory(term=term, as_of=NOW - datetime.timedelta(days=2))
        latest = ScoringRunFactory(
            term=term, as_of=NOW - datetime.timedelta(hours=1), model_version=before.model_version
        )
        for _ in range(size):
            student = StudentFactory(advisor=advisor)
            scored(before, {student: Low})
            scored(latest, {student: High})
            InterventionFactory(student=student, term=term, advisor=advisor)
        page = part(page_of(advisor), "today-advisees").split('id="today-interventions"')[0]
        assert page.count("/portal/advisor/advisees/") == size
        counts.append(count_queries(advisor))
        ScoringRun.objects.update(status=ScoringRun.Status.FAILED)  # the next advisor's runs stand alone
    assert counts[0] == counts[1], counts


def test_registrar_part_queries_do_not_grow_with_runs_and_excuses(term, section):
    registrar = UserFactory(roles=[Role.REGISTRAR])
    counts = []
    for size in (1, 10):
        for n in range(size):
            ScoringRunFactory(term=term, as_of=NOW - datetime.timedelta(hours=n + 1))
            AbsenceExcuseFactory(record__session=session_at(section, -48 - n))
            ImportJobFactory(status=ImportJob.Status.RUNNING)
        counts.append(count_queries(registrar))
    assert counts[0] == counts[1], counts
