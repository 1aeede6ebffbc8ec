"""Attendance warnings under their rules, on hand-built sections: thresholds crossed once each, runs
of absences, the maximum per term, who receives them, one email per recipient listing the sessions."""

import datetime
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from accounts.roles import Role
from attendance import services
from attendance.models import AttendanceWarningRule, AttendanceWarningState
from attendance.selectors import warning_rules_for_section
from tests.factories import (
    AttendanceRecordFactory,
    AttendanceWarningRuleFactory,
    ClassSessionFactory,
    EnrollmentFactory,
    SectionFactory,
    StudentFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
START = datetime.datetime(2026, 9, 14, 10, 0, tzinfo=datetime.UTC)
DAY, HOUR = datetime.timedelta(days=1), datetime.timedelta(hours=1)


@pytest.fixture(autouse=True)
def migrated_default_rule(db):
    """The campus-wide rule the migration made, made again where a transactional test emptied the tables."""
    from importlib import import_module

    from django.apps import apps

    if not AttendanceWarningRule.objects.exists():
        migration = import_module("attendance.migrations.0006_advance_absences_warning_rules")
        migration.default_rule_from_settings(apps, None)


@pytest.fixture
def lecturer():
    return UserFactory(roles=[Role.LECTURER], email="lecturer@campus.example")


@pytest.fixture
def section(lecturer):
    return SectionFactory(lecturers=[lecturer])


@pytest.fixture
def student(section):
    advisor = UserFactory(roles=[Role.ADVISOR], email="advisor@campus.example")
    return EnrollmentFactory(section=section, student=StudentFactory(advisor=advisor)).student


def held(section, student, marks: str, *, first: int = 0):
    """One closed session a day per letter: p present, l late, a absent, e excused, - no session
    (cancelled), n not taken."""
    sessions = []
    for i, mark in enumerate(marks, start=first):
        state = {"-": "cancelled", "n": "not_taken"}.get(mark, "closed")
        session = ClassSessionFactory(section=section, starts_at=START + i * DAY, ends_at=START + i * DAY + HOUR,
                                      state=state)  # fmt: skip
        status = {"p": "present", "l": "late", "a": "absent", "e": "excused"}.get(mark)
        if status:
            AttendanceRecordFactory(session=session, student=student, status=status)
        sessions.append(session)
    return sessions


def shown(session) -> str:
    """How an email shows the session's start (local time)."""
    return timezone.localtime(session.starts_at).strftime("%a %-d %b %Y, %H:%M")


def send(section, days: int = 30) -> int:
    with time_machine.travel(START + days * DAY):
        return services.attendance_warnings_send(section_id=section.pk)


def rules_only(*rules):
    """The migrated campus-wide default rule aside: only the rules of the test apply."""
    AttendanceWarningRule.objects.exclude(pk__in=[rule.pk for rule in rules]).delete()


def test_the_migrated_default_rule_keeps_todays_behaviour(section, student, mailoutbox):
    (rule,) = warning_rules_for_section(section)
    assert (rule.kind, rule.rate_below, rule.section, rule.department) == ("rate_below", Decimal("0.800"), None, None)
    held(section, student, "ppppa")  # 80%: at the level, not below
    assert send(section) == 0
    held(section, student, "a", first=5)  # 4 of 6
    assert send(section) == 1


def test_each_threshold_warns_once_as_it_is_crossed(section, student, mailoutbox):
    high = AttendanceWarningRuleFactory(section=section, rate_below=Decimal("0.9"), notify_lecturers=False,
                                        notify_advisor=False)  # fmt: skip
    low = AttendanceWarningRuleFactory(section=section, rate_below=Decimal("0.7"), notify_lecturers=False,
                                       notify_advisor=False)  # fmt: skip
    held(section, student, "pppppppppa")  # 90%: neither
    assert send(section) == 0
    held(section, student, "a", first=10)  # 9 of 11: below 90% only
    assert send(section) == 1 and send(section) == 0
    held(section, student, "aa", first=11)  # 9 of 13: below 70% too; 90% already sent
    assert send(section) == 1
    sent = AttendanceWarningState.objects.filter(student=student, section=section)
    assert sorted(sent.values_list("rule", flat=True)) == sorted([high.pk, low.pk])
    assert [m.subject for m in mailoutbox] == [f"Attendance in {section.course.code} below 90%",
                                              f"Attendance in {section.course.code} below 70%"]  # fmt: skip


def test_section_rules_override_department_rules_which_override_the_campus(section):
    campus = AttendanceWarningRule.objects.get()
    assert warning_rules_for_section(section) == [campus]
    department = AttendanceWarningRuleFactory(department=section.course.department, rate_below=Decimal("0.5"))
    AttendanceWarningRuleFactory(section=SectionFactory(), rate_below=Decimal("0.6"))  # another section's
    assert warning_rules_for_section(section) == [department]
    own = AttendanceWarningRuleFactory(section=section, kind="absences_in_row", rate_below=None, absences_in_row=3)
    assert warning_rules_for_section(section) == [own]


def test_a_run_of_absences_skips_excused_cancelled_and_not_taken_sessions(section, student, mailoutbox):
    rule = AttendanceWarningRuleFactory(section=section, kind="absences_in_row", rate_below=None, absences_in_row=3,
                                        notify_lecturers=False, notify_advisor=False)  # fmt: skip
    rules_only(rule)
    sessions = held(section, student, "aapaa")  # the present breaks the run: two, then two
    assert send(section) == 0
    more = held(section, student, "e-n", first=5)  # neither break nor count
    assert send(section) == 0
    last = held(section, student, "a", first=8)
    assert send(section) == 1
    assert send(section) == 0  # once per rule
    (email,) = mailoutbox
    assert email.subject == f"3 absences in a row in {section.course.code}"
    for session in [*sessions[3:], *last]:
        assert shown(session) in email.body
    for session in [*sessions[:3], *more]:
        assert shown(session) not in email.body


def test_a_late_arrival_breaks_a_run(section, student):
    rules_only(AttendanceWarningRuleFactory(section=section, kind="absences_in_row", rate_below=None,
                                            absences_in_row=2))  # fmt: skip
    held(section, student, "alala")
    assert send(section) == 0


def test_no_more_warnings_than_the_maximum_per_term(section, student):
    rules = [AttendanceWarningRuleFactory(section=section, rate_below=Decimal(level), max_per_term=2)
             for level in ("0.9", "0.8", "0.7")]  # fmt: skip
    rules_only(*rules)
    held(section, student, "paaaa")  # 20%: below all three
    assert send(section) == 2
    assert send(section) == 0
    assert AttendanceWarningState.objects.filter(student=student).count() == 2


def test_the_maximum_counts_warnings_of_every_section_in_the_term(section, student):
    other = EnrollmentFactory(student=student, section=SectionFactory(term=section.term)).section
    rules_only(
        AttendanceWarningRuleFactory(section=section, rate_below=Decimal("0.9"), max_per_term=1),
        AttendanceWarningRuleFactory(section=other, rate_below=Decimal("0.9"), max_per_term=1),
    )
    held(section, student, "pa")
    held(other, student, "pa", first=2)
    assert send(section) == 1
    assert send(other) == 0


def test_one_email_per_recipient_each_with_their_own_to_and_the_missed_sessions(section, student, lecturer, mailoutbox):
    second = UserFactory(roles=[Role.LECTURER], email="second@campus.example")
    section.lecturers.add(second)
    sessions = held(section, student, "papa")
    assert send(section) == 1
    recipients = [message.to for message in mailoutbox]
    assert sorted(recipients) == sorted(
        [[student.user.email], [lecturer.email], [second.email], [student.advisor.email]]
    )
    for message in mailoutbox:
        assert message.cc == [] and message.bcc == []
        html = message.alternatives[0][0]
        for session, mark in zip(sessions, "papa", strict=True):
            when = shown(session)
            assert (when in message.body) == (mark == "a") and (when in html) == (mark == "a")
        assert section.course.code in message.body


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"notify_student": True, "notify_lecturers": False, "notify_advisor": False}, {"student"}),
        ({"notify_student": False, "notify_lecturers": True, "notify_advisor": False}, {"lecturer"}),
        ({"notify_student": False, "notify_lecturers": False, "notify_advisor": True}, {"advisor"}),
    ],
)
def test_who_receives_a_warning_is_the_rules_choice(section, student, lecturer, mailoutbox, flags, expected):
    rules_only(AttendanceWarningRuleFactory(section=section, **flags))
    held(section, student, "pa")
    assert send(section) == 1
    emails = {"student": student.user.email, "lecturer": lecturer.email, "advisor": student.advisor.email}
    assert {to for message in mailoutbox for to in message.to} == {emails[who] for who in expected}


def test_rule_kinds_need_their_own_threshold():
    from django.db import IntegrityError, transaction

    for fields in ({"kind": "rate_below", "rate_below": None}, {"kind": "absences_in_row", "rate_below": None},
                   {"kind": "rate_below", "rate_below": Decimal("1.5")}):  # fmt: skip
        with pytest.raises(IntegrityError), transaction.atomic():
            AttendanceWarningRuleFactory(**fields)


def test_warnings_of_a_section_take_a_fixed_number_of_queries(section, student, django_assert_max_num_queries):
    held(section, student, "pa")
    for _ in range(10):
        extra = EnrollmentFactory(section=section, student=StudentFactory(advisor=UserFactory())).student
        held(section, extra, "aa", first=5 + _ * 2)
    with django_assert_max_num_queries(12):
        assert send(section) == 11
