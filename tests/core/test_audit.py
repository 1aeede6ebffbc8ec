"""The audit log is written by one service and can be neither changed nor erased."""

import pytest
import structlog
from django.db import DatabaseError, connection, transaction

from campusiq.core.admin import AuditLogEntryAdmin
from campusiq.core.models import AuditLogEntry, AuditLogImmutable
from campusiq.core.services import audit_log_write, changes_between
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def entry(user):
    target = UserFactory(email="target@campus.example")
    return audit_log_write(actor=user, verb="user.email_changed", target=target, changes={"email": ["a@x", "b@x"]})


def test_write_records_who_what_and_request(user):
    target = UserFactory()
    structlog.contextvars.bind_contextvars(request_id="trace-audit-0001")
    try:
        entry = audit_log_write(
            actor=user, verb="grade.changed", target=target, changes={"score": [12, 15]}, reason="re-marked"
        )
    finally:
        structlog.contextvars.clear_contextvars()
    entry.refresh_from_db()
    assert entry.actor == user and entry.actor_label == user.email
    assert entry.object_type == "accounts.user" and entry.object_id == str(target.pk)
    assert entry.changes == {"score": [12, 15]} and entry.reason == "re-marked"
    assert entry.request_id == "trace-audit-0001"
    assert entry.created_at is not None


def test_system_actor_when_nobody_is_signed_in():
    target = UserFactory()
    entry = audit_log_write(actor=None, verb="session.closed", target=target)
    assert entry.actor is None and entry.actor_label == "system"


def test_changes_between_keeps_only_differences():
    assert changes_between({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == {"b": [2, 3], "c": [None, 4]}


def test_orm_refuses_update(entry):
    entry.reason = "rewritten"
    with pytest.raises(AuditLogImmutable):
        entry.save()
    with pytest.raises(AuditLogImmutable):
        AuditLogEntry.objects.filter(pk=entry.pk).update(reason="rewritten")


def test_orm_refuses_delete(entry):
    with pytest.raises(AuditLogImmutable):
        entry.delete()
    with pytest.raises(AuditLogImmutable):
        AuditLogEntry.objects.all().delete()
    assert AuditLogEntry.objects.filter(pk=entry.pk).exists()


def test_database_refuses_raw_update(entry):
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE core_auditlogentry SET reason = 'rewritten' WHERE id = %s", [entry.pk])
    entry.refresh_from_db()
    assert entry.reason == ""


@pytest.mark.postgres
def test_postgres_refuses_raw_delete(entry):
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM core_auditlogentry WHERE id = %s", [entry.pk])
    assert AuditLogEntry.objects.filter(pk=entry.pk).exists()


def test_deleting_a_user_keeps_their_history(entry, user):
    user_id = user.pk
    user.delete()
    entry = AuditLogEntry.objects.get(pk=entry.pk)
    assert entry.actor_id == user_id and entry.actor_label == user.email


def test_admin_is_read_only(rf, staff_user):
    from django.contrib.admin.sites import site

    request = rf.get("/admin/core/auditlogentry/")
    request.user = staff_user
    model_admin = AuditLogEntryAdmin(AuditLogEntry, site)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    assert model_admin.has_view_permission(request)


def test_admin_changelist_renders(client, staff_user, entry):
    client.force_login(staff_user)
    response = client.get("/admin/core/auditlogentry/")
    assert response.status_code == 200
    assert b"user.email_changed" in response.content
