"""Tokens in the admin, and who may change whose account."""

import re

import pytest

from accounts.models import ApiToken
from accounts.roles import Role
from accounts.tokens import api_token_issue
from campusiq.core.models import AuditLogEntry
from tests.factories import StudentFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_admin_issues_a_service_token_and_sees_the_key_once(client):
    admin = UserFactory(roles=[Role.ADMIN])
    service = UserFactory(email="sync@svc.campus.example", is_service_account=True)
    client.force_login(admin)
    response = client.post(
        "/admin/accounts/apitoken/add/", {"user": service.pk, "name": "BI sync", "scope": "read", "lifetime_days": 365}
    )
    assert response.status_code == 200
    key = re.search(r'value="(ciq_[^"]+)"', response.content.decode()).group(1)
    token = ApiToken.objects.get(user=service)
    assert token.kind == ApiToken.Kind.SERVICE and token.name == "BI sync"
    assert client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {key}").json()["email"] == service.email
    detail = client.get(f"/admin/accounts/apitoken/{token.pk}/change/").content.decode()
    assert key not in detail and token.key_hash not in detail
    assert AuditLogEntry.objects.filter(verb="token.created", actor=admin).exists()


def test_personal_token_lifetime_cap_holds_in_admin(client):
    admin = UserFactory(roles=[Role.ADMIN])
    client.force_login(admin)
    response = client.post(
        "/admin/accounts/apitoken/add/",
        {"user": UserFactory().pk, "name": "too long", "scope": "read", "lifetime_days": 90},
    )
    assert response.status_code == 200 and b"between a minute and 30 days" in response.content
    assert not ApiToken.objects.exists()


def test_admin_revokes_tokens(client):
    admin = UserFactory(roles=[Role.ADMIN])
    token, key = api_token_issue(user=UserFactory(), name="laptop")
    client.force_login(admin)
    client.post("/admin/accounts/apitoken/", {"action": "revoke_selected", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 401
    assert AuditLogEntry.objects.filter(verb="token.revoked", actor=admin).exists()


def test_registrar_changes_students_accounts_only(client):
    registrar = UserFactory(roles=[Role.REGISTRAR])
    student = StudentFactory()
    lecturer = UserFactory(roles=[Role.LECTURER])
    client.force_login(registrar)
    assert client.get(f"/admin/accounts/user/{student.user.pk}/change/").status_code == 200
    response = client.post(f"/admin/accounts/user/{lecturer.pk}/change/", {"email": "mine@evil.example"})
    assert response.status_code == 403
    lecturer.refresh_from_db()
    assert lecturer.email != "mine@evil.example"
    assert client.get("/admin/accounts/apitoken/").status_code == 403
