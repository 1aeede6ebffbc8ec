import pytest
from django.contrib.auth.models import Group

from accounts.roles import Role, group_name
from accounts.services import roles_sync_groups, user_has_role, user_role_grant, user_role_revoke, user_roles
from campusiq.core.models import AuditLogEntry
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_every_role_has_a_group_after_migrate():
    assert set(Group.objects.values_list("name", flat=True)) >= {"Student", "Lecturer", "Advisor", "Registrar", "Admin"}


def test_registrar_group_manages_the_catalogue_but_not_roles():
    permissions = set(Group.objects.get(name="Registrar").permissions.values_list("codename", flat=True))
    assert {"add_course", "change_grade", "delete_enrollment", "view_termoutcome", "view_auditlogentry"} <= permissions
    assert "change_group" not in permissions and "delete_auditlogentry" not in permissions


# The registrar group, as it was when accounts still listed the other apps' models (issue 16): each app
# now grants its own, and the groups must come out the same.
REGISTRAR_PERMISSIONS = {
    *(
        f"students.{action}_{model}"
        for model in (
            *("department", "program", "course", "term", "section"),
            *("student", "enrollment", "assessment", "grade", "termoutcome"),
        )
        for action in ("add", "change", "delete", "view")
    ),
    *(
        f"attendance.{action}_{model}"
        for model in (
            *("classsession", "attendancerecord", "absenceexcuse", "termholiday", "studentcard", "cardreader"),
            *(
                "attendancestatusset",
                "attendancestatus",
                "sectionattendancegrade",
                "sectiongroup",
                "sectiongroupmember",
            ),
        )
        for action in ("add", "change", "view")
    ),
    "attendance.delete_attendancestatus",
    "attendance.view_proxyflag",
    "attendance.view_devicesighting",
    "attendance.view_attendancewarningstate",
    "attendance.view_advanceabsence",
    "attendance.view_sectionnetworkrule",
    *(f"attendance.{action}_attendancewarningrule" for action in ("add", "change", "delete", "view")),
    *(f"predictions.{action}_{model}" for model in ("modelversion", "scoringrun") for action in ("change", "view")),
    "predictions.view_riskscore",
    "predictions.view_intervention",
    "predictions.view_flagfeedback",
    "accounts.add_user",
    "accounts.change_user",
    "accounts.view_user",
    "core.view_auditlogentry",
    # Big-file imports: start, cancel and watch them.
    "core.add_importjob",
    "core.change_importjob",
    "core.view_importjob",
}


def test_synced_groups_hold_exactly_the_role_permissions():
    roles_sync_groups()
    held = {
        group.name: {
            f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")
        }
        for group in Group.objects.filter(name__in=[group_name(role) for role in Role])
    }
    assert held == {
        "Student": set(),
        "Lecturer": set(),
        "Advisor": set(),
        "Registrar": REGISTRAR_PERMISSIONS,
        "Admin": set(),
    }


def test_sync_is_idempotent():
    roles_sync_groups()
    roles_sync_groups()
    assert Group.objects.filter(name="Registrar").count() == 1


def test_a_person_may_hold_several_roles():
    admin = UserFactory(roles=[Role.ADMIN])
    person = UserFactory()
    user_role_grant(user=person, role=Role.LECTURER, actor=admin)
    user_role_grant(user=person, role=Role.ADVISOR, actor=admin)
    assert user_roles(person) == {Role.LECTURER, Role.ADVISOR}
    assert user_has_role(person, Role.ADVISOR) and not user_has_role(person, Role.REGISTRAR)
    assert not person.is_staff


def test_staff_flags_follow_roles_and_changes_are_audited():
    admin = UserFactory(roles=[Role.ADMIN])
    person = UserFactory()
    user_role_grant(user=person, role=Role.REGISTRAR, actor=admin)
    person.refresh_from_db()
    assert person.is_staff and not person.is_superuser
    user_role_grant(user=person, role=Role.REGISTRAR, actor=admin)  # already held: nothing happens
    user_role_revoke(user=person, role=Role.REGISTRAR, actor=admin)
    person.refresh_from_db()
    assert not person.is_staff
    entries = AuditLogEntry.objects.filter(object_id=str(person.pk)).order_by("id")
    assert [(e.verb, e.changes, e.actor_id) for e in entries] == [
        ("role.granted", {"role": [None, "registrar"]}, admin.pk),
        ("role.revoked", {"role": ["registrar", None]}, admin.pk),
    ]


def test_admin_role_makes_superuser():
    person = UserFactory()
    user_role_grant(user=person, role=Role.ADMIN, actor=None)
    person.refresh_from_db()
    assert person.is_staff and person.is_superuser


def test_registrar_works_attendance_in_the_admin(client):
    registrar = UserFactory(roles=[Role.REGISTRAR])
    client.force_login(registrar)
    for model in ("classsession", "attendancerecord", "absenceexcuse", "termholiday", "proxyflag"):
        assert client.get(f"/admin/attendance/{model}/").status_code == 200, model
    permissions = set(Group.objects.get(name="Registrar").permissions.values_list("codename", flat=True))
    assert "delete_attendancerecord" not in permissions and "change_proxyflag" not in permissions
