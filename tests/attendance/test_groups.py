"""Groups of a section's students (lab groups): a group's session is held for its members only, in the
roster, marking, closing, check-in and the rate; the lecturers' pages; the import of memberships."""

import datetime

import pytest
import tablib
import time_machine

from accounts.roles import Role
from attendance import selectors, services
from attendance.admin import SectionGroupMemberResource
from attendance.errors import AttendanceErrorCode as Code
from attendance.models import AttendanceRecord, ClassSession, SectionGroup, SectionGroupMember
from campusiq.core.errors import ServiceError
from campusiq.core.models import AuditLogEntry
from tests.factories import (
    ClassSessionFactory,
    EnrollmentFactory,
    SectionFactory,
    SectionGroupFactory,
    SectionGroupMemberFactory,
    StudentFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
START = datetime.datetime(2026, 9, 14, 10, 0, tzinfo=datetime.UTC)  # the factories' session start
DAY = datetime.timedelta(days=1)


@pytest.fixture
def lab():
    """Section with students a, b (in group Lab A) and c (not), a group session and a whole-section one."""
    section = SectionFactory()
    a, b, c = (EnrollmentFactory(section=section).student for _ in range(3))
    group = SectionGroupFactory(section=section, name="Lab A")
    for student in (a, b):
        SectionGroupMemberFactory(group=group, student=student)
    group_session = ClassSessionFactory(section=section, group=group, state="open")
    whole = ClassSessionFactory(
        section=section, starts_at=START + DAY, ends_at=START + DAY + datetime.timedelta(hours=1)
    )
    return {"section": section, "a": a, "b": b, "c": c, "group": group, "session": group_session, "whole": whole}


def test_the_roster_of_a_group_session_is_its_members(lab):
    assert {s.pk for s in selectors.session_roster(session=lab["session"])} == {lab["a"].pk, lab["b"].pk}
    assert {s.pk for s in selectors.session_marking_roster(lab["session"])} == {lab["a"].pk, lab["b"].pk}
    assert len(selectors.session_roster(session=lab["whole"])) == 3


def test_closing_marks_only_members_absent(lab):
    services.attendance_check_in(student=lab["a"], session=lab["session"], method="qr", scanned_at=START)
    with time_machine.travel(START + datetime.timedelta(hours=2), tick=False):
        assert services.class_session_close(session=lab["session"], actor=None) == 1
    marks = dict(AttendanceRecord.objects.filter(session=lab["session"]).values_list("student_id", "status"))
    assert marks == {lab["a"].pk: "present", lab["b"].pk: "absent"}


def test_a_student_outside_the_group_is_refused_at_check_in(lab):
    with pytest.raises(ServiceError) as error:
        services.attendance_check_in(student=lab["c"], session=lab["session"], method="qr", scanned_at=START)
    assert error.value.code == Code.NOT_IN_GROUP and "Lab A" in error.value.detail
    with pytest.raises(ServiceError) as early:
        services.check_in_refusal(session=lab["session"], student=lab["c"], at=START)
    assert early.value.code == Code.NOT_IN_GROUP
    assert not AttendanceRecord.objects.filter(student=lab["c"]).exists()
    # A member, with device evidence (the other insert path), is let in.
    check_in = services.attendance_check_in(
        student=lab["b"], session=lab["session"], method="qr", scanned_at=START, device_id="phone-b"
    )
    assert check_in.created


def test_marking_a_non_member_is_refused_and_writes_nothing(lab):
    with pytest.raises(ServiceError) as error:
        services.attendance_marks_save(
            session=lab["session"], marks={lab["a"].pk: "present", lab["c"].pk: "present"}, actor=None
        )
    assert error.value.code == Code.NOT_ENROLLED
    assert not AttendanceRecord.objects.exists()


def test_the_open_session_code_and_today_list_only_the_students_own_groups(lab):
    assert list(selectors.class_sessions_open_for(student=lab["a"])) == [lab["session"]]
    assert list(selectors.class_sessions_open_for(student=lab["c"])) == []
    day = START.date()
    assert list(selectors.class_sessions_today_of_student(student=lab["c"], day=day)) == []


def test_a_group_session_counts_in_the_rate_of_its_members_only(lab):
    ClassSession.objects.filter(pk=lab["session"].pk).update(state="closed")
    AttendanceRecord.objects.create(
        session=lab["session"], student=lab["a"], status="present", recorded_at=START, method="manual"
    )
    AttendanceRecord.objects.create(
        session=lab["whole"], student=lab["c"], status="present", recorded_at=START + DAY, method="manual"
    )
    rows = {
        r.enrollment.student_id: r
        for r in selectors.attendance_rates_for_section(lab["section"], as_of=START + 3 * DAY)
    }
    assert (rows[lab["a"].pk].held, rows[lab["a"].pk].attended, rows[lab["a"].pk].planned) == (2, 1, 2)
    assert (rows[lab["b"].pk].held, rows[lab["b"].pk].attended) == (2, 0)
    assert (rows[lab["c"].pk].held, rows[lab["c"].pk].attended, rows[lab["c"].pk].planned) == (1, 1, 1)
    assert rows[lab["c"].pk].rate == 1
    # A record left from before the student left the group counts no more than the session does.
    SectionGroupMember.objects.filter(student=lab["a"]).delete()
    row = next(r for r in selectors.attendance_rates_for_section(lab["section"], as_of=START + 3 * DAY)
               if r.enrollment.student_id == lab["a"].pk)  # fmt: skip
    assert (row.held, row.attended) == (1, 0)


def test_rates_take_the_same_queries_for_more_students_and_groups(lab, django_assert_max_num_queries):
    def queries() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            selectors.attendance_rates_for_section(lab["section"], as_of=START + 3 * DAY)
        return len(captured)

    before = queries()
    group = SectionGroupFactory(section=lab["section"])
    for _ in range(5):
        SectionGroupMemberFactory(group=group, student=EnrollmentFactory(section=lab["section"]).student)
    ClassSessionFactory(
        section=lab["section"], group=group, starts_at=START + 2 * DAY, ends_at=START + 2 * DAY + DAY / 24
    )
    with django_assert_max_num_queries(before):
        assert len(selectors.attendance_rates_for_section(lab["section"], as_of=START + 3 * DAY)) == 8


# --- services ------------------------------------------------------------------------------------


def test_group_names_are_unique_per_section_and_audited(lab):
    with pytest.raises(ServiceError) as error:
        services.section_group_create(section=lab["section"], name="  lab   a ", actor=None)
    assert error.value.code == Code.GROUP_INVALID
    other = services.section_group_create(section=lab["section"], name="Lab B", actor=None)
    assert SectionGroup.objects.filter(section=lab["section"]).count() == 2
    assert services.section_group_create(section=SectionFactory(), name="Lab A", actor=None).name == "Lab A"
    with pytest.raises(ServiceError):
        services.section_group_rename(group=other, name="LAB A", actor=None)
    assert services.section_group_rename(group=other, name="Lab C", actor=None).name == "Lab C"
    assert AuditLogEntry.objects.filter(verb__in=["attendance.group_created", "attendance.group_renamed"]).count() == 3


def test_a_group_with_sessions_is_not_deleted(lab):
    with pytest.raises(ServiceError):
        services.section_group_delete(group=lab["group"], actor=None)
    assert SectionGroup.objects.filter(pk=lab["group"].pk).exists()
    spare = SectionGroupFactory(section=lab["section"])
    services.section_group_delete(group=spare, actor=None)
    assert not SectionGroup.objects.filter(pk=spare.pk).exists()


def test_only_enrolled_students_join_all_or_none(lab):
    stranger = StudentFactory()
    with pytest.raises(ServiceError) as error:
        services.section_group_members_add(group=lab["group"], student_ids=[lab["c"].pk, stranger.pk], actor=None)
    assert error.value.code == Code.NOT_ENROLLED
    assert SectionGroupMember.objects.filter(group=lab["group"]).count() == 2
    assert services.section_group_members_add(
        group=lab["group"], student_ids=[lab["c"].pk, lab["a"].pk], actor=None
    ) == [lab["c"].pk]
    assert services.section_group_members_remove(group=lab["group"], student_ids=[lab["a"].pk], actor=None) == 1


# --- import of memberships -------------------------------------------------------------------------


def membership_rows(section, *rows):
    dataset = tablib.Dataset(headers=["course", "term", "section", "group", "student_number"])
    for group, number in rows:
        dataset.append([section.course.code, section.term.name, section.code, group, number])
    return dataset


def test_import_dry_run_writes_nothing_then_the_real_run_writes_and_again_skips(lab):
    registrar = UserFactory(roles=[Role.REGISTRAR])
    rows = membership_rows(lab["section"], ("Lab A", lab["c"].student_number), ("Lab B", lab["a"].student_number))
    result = SectionGroupMemberResource().import_data(rows, dry_run=True, user=registrar)
    assert not result.has_errors() and not result.has_validation_errors() and result.totals["new"] == 2
    assert SectionGroupMember.objects.count() == 2 and not SectionGroup.objects.filter(name="Lab B").exists()
    result = SectionGroupMemberResource().import_data(rows, dry_run=False, user=registrar)
    assert result.totals["new"] == 2
    assert set(SectionGroupMember.objects.values_list("group__name", "student_id")) == {
        ("Lab A", lab["a"].pk), ("Lab A", lab["b"].pk), ("Lab A", lab["c"].pk), ("Lab B", lab["a"].pk)
    }  # fmt: skip
    again = SectionGroupMemberResource().import_data(rows, dry_run=False, user=registrar)
    assert again.totals["skip"] == 2 and SectionGroupMember.objects.count() == 4


def test_import_with_one_bad_row_writes_nothing_and_names_the_rows(lab):
    stranger = StudentFactory()
    rows = membership_rows(
        lab["section"], ("Lab B", lab["a"].student_number), ("Lab B", stranger.student_number), ("Lab B", "S-NOPE")
    )
    result = SectionGroupMemberResource().import_data(rows, dry_run=False, user=UserFactory(roles=[Role.REGISTRAR]))
    assert result.has_validation_errors()
    errors = {row.number: row.error_dict for row in result.invalid_rows}
    assert "Only students enrolled" in str(errors[2]["student_number"])
    assert "No student has the number S-NOPE" in str(errors[3]["student_number"])
    assert not SectionGroup.objects.filter(name="Lab B").exists()
    assert SectionGroupMember.objects.count() == 2


# --- the lecturers' pages -------------------------------------------------------------------------


@pytest.fixture
def lecturer(lab, client):
    user = UserFactory(roles=[Role.LECTURER])
    lab["section"].lecturers.add(user)
    client.force_login(user)
    return user


def test_lecturer_creates_a_group_and_manages_its_members(lab, lecturer, client):
    response = client.post(f"/attendance/sections/{lab['section'].pk}/groups/", {"name": "Lab B"})
    group = SectionGroup.objects.get(name="Lab B")
    assert response.status_code == 302 and response["Location"] == f"/attendance/groups/{group.pk}/"
    page = client.get(f"/attendance/groups/{group.pk}/").content.decode()
    assert lab["c"].student_number in page
    members = f"/attendance/groups/{group.pk}/members/"
    assert client.post(members, {"action": "add", "add-students": [lab["a"].pk, lab["c"].pk]}).status_code == 302
    assert set(group.members.values_list("student_id", flat=True)) == {lab["a"].pk, lab["c"].pk}
    assert client.post(members, {"action": "remove", "remove-students": [lab["a"].pk]}).status_code == 302
    assert set(group.members.values_list("student_id", flat=True)) == {lab["c"].pk}
    # A student of another section is no choice: the form says so, nothing changes.
    refused = client.post(members, {"action": "add", "add-students": [StudentFactory().pk]})
    assert refused.status_code == 400 and group.members.count() == 1
    duplicate = client.post(f"/attendance/sections/{lab['section'].pk}/groups/", {"name": "lab b"})
    assert duplicate.status_code == 400 and "already has a group named" in duplicate.content.decode()


def test_deleting_a_group_with_sessions_says_why(lab, lecturer, client):
    response = client.post(f"/attendance/groups/{lab['group'].pk}/delete/", follow=True)
    assert "has sessions" in response.content.decode()
    assert SectionGroup.objects.filter(pk=lab["group"].pk).exists()


def test_another_lecturers_group_is_not_found(lab, client):
    client.force_login(UserFactory(roles=[Role.LECTURER]))
    assert client.get(f"/attendance/groups/{lab['group'].pk}/").status_code == 404
    assert client.post(f"/attendance/groups/{lab['group'].pk}/", {"name": "Mine"}).status_code == 404
    assert SectionGroup.objects.get(pk=lab["group"].pk).name == "Lab A"


def test_the_groups_page_takes_the_same_queries_for_more_groups(lab, lecturer, client, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    url = f"/attendance/sections/{lab['section'].pk}/groups/"
    with CaptureQueriesContext(connection) as first:
        client.get(url)
    for _ in range(6):
        group = SectionGroupFactory(section=lab["section"])
        SectionGroupMemberFactory(group=group, student=lab["c"])
    with django_assert_max_num_queries(len(first)):
        assert client.get(url).content.decode().count("/attendance/groups/") >= 7


def test_a_session_for_one_group_from_the_sessions_page(lab, lecturer, client):
    data = {"session-date": "2026-09-16", "session-start_time": "14:00", "session-end_time": "16:00",
            "session-late_after_minutes": "10", "session-group": lab["group"].pk}  # fmt: skip
    assert client.post(f"/attendance/sections/{lab['section'].pk}/sessions/new/", data).status_code == 302
    assert ClassSession.objects.filter(group=lab["group"]).count() == 2
    foreign = SectionGroupFactory()
    refused = client.post(
        f"/attendance/sections/{lab['section'].pk}/sessions/new/", data | {"session-group": foreign.pk}
    )
    assert refused.status_code == 200 and not ClassSession.objects.filter(group=foreign).exists()


def test_the_grid_shows_another_groups_session_as_not_theirs_and_offers_no_mark(lab, lecturer, client):
    url = f"/attendance/sections/{lab['section'].pk}/roster/"
    page = client.get(f"{url}?edit={lab['session'].pk}").content.decode()
    assert f'name="mark-{lab["a"].pk}"' in page and f'name="mark-{lab["c"].pk}"' not in page
    assert page.count("another group&#x27;s session") == 1
    saved = client.post(url, {"session": lab["session"].pk, f"mark-{lab['a'].pk}": "present"})
    assert saved.status_code == 302
    assert list(AttendanceRecord.objects.values_list("student_id", flat=True)) == [lab["a"].pk]
