"""Personal and service-account tokens: hashed at rest, expiring, revocable, scoped, audited."""

import datetime
import hashlib
import json

import pytest
import time_machine
from django.utils import timezone

from accounts.models import ApiToken
from accounts.roles import Role
from accounts.tokens import api_token_issue, api_token_revoke
from campusiq.core.models import AuditLogEntry
from tests.factories import DepartmentFactory, UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-staple"


def bearer(key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def post_json(client, path, body, **headers):
    return client.post(path, data=json.dumps(body), content_type="application/json", **headers)


def test_token_for_email_and_password(client):
    user = UserFactory(email="bi@campus.example")
    response = post_json(client, "/api/v1/auth/token/", {"email": "BI@campus.example", "password": PASSWORD})
    assert response.status_code == 201
    body = response.json()
    assert body["token"].startswith("ciq_") and body["scope"] == "read" and body["kind"] == "personal"
    token = ApiToken.objects.get(user=user)
    assert token.key_hash == hashlib.sha256(body["token"].encode()).hexdigest()
    assert body["token"] not in json.dumps(list(ApiToken.objects.values()), default=str)
    assert client.get("/api/v1/me/", **bearer(body["token"])).json()["email"] == "bi@campus.example"
    assert AuditLogEntry.objects.filter(verb="token.created", object_id=str(token.pk)).exists()


def test_wrong_password_is_401_and_issues_nothing(client):
    UserFactory(email="bi@campus.example")
    response = post_json(client, "/api/v1/auth/token/", {"email": "bi@campus.example", "password": "nope"})
    assert response.status_code == 401 and response.json()["code"] == "invalid_credentials"
    assert not ApiToken.objects.exists()


def test_token_request_validation(client):
    response = post_json(client, "/api/v1/auth/token/", {"email": "not-an-email", "scope": "root"})
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {"email", "password", "scope"}


def test_failed_token_requests_are_throttled_per_account_and_address(client, settings):
    settings.SIGN_IN_FAILURE_LIMITS = {**settings.SIGN_IN_FAILURE_LIMITS, "account_ip": "3/15m"}
    UserFactory(email="victim@campus.example")
    statuses = [
        post_json(client, "/api/v1/auth/token/", {"email": "victim@campus.example", "password": "guess"}).status_code
        for _ in range(5)
    ]
    assert statuses == [401, 401, 401, 429, 429]
    response = post_json(client, "/api/v1/auth/token/", {"email": "victim@campus.example", "password": PASSWORD})
    assert response.status_code == 429 and response.json()["code"] == "rate_limited"
    assert not ApiToken.objects.exists()


def test_successful_token_requests_do_not_lock_anyone_out(client):
    """Counting every request per account let anyone keep a person from getting a token."""
    UserFactory(email="busy@campus.example")
    for _ in range(12):
        response = post_json(client, "/api/v1/auth/token/", {"email": "busy@campus.example", "password": PASSWORD})
        assert response.status_code == 201


def test_token_requests_are_rate_limited_per_address(client, settings):
    settings.API_TOKEN_RATE_PER_IP = "3/m"
    UserFactory(email="busy@campus.example")
    statuses = [
        post_json(client, "/api/v1/auth/token/", {"email": "busy@campus.example", "password": PASSWORD}).status_code
        for _ in range(4)
    ]
    assert statuses == [201, 201, 201, 429]


def test_service_account_cannot_use_a_password(client):
    service = UserFactory(email="reader@svc.campus.example", is_service_account=True)
    response = post_json(client, "/api/v1/auth/token/", {"email": service.email, "password": PASSWORD})
    assert response.status_code == 401
    assert not client.login(email=service.email, password=PASSWORD)


def test_service_account_token_is_long_lived_and_works():
    service = UserFactory(is_service_account=True)
    token, _ = api_token_issue(user=service, name="card readers", scope=ApiToken.Scope.READ_WRITE)
    assert token.kind == ApiToken.Kind.SERVICE
    assert token.expires_at - timezone.now() > datetime.timedelta(days=300)


def test_lifetime_beyond_maximum_is_refused():
    from campusiq.core.errors import ServiceError

    with pytest.raises(ServiceError):
        api_token_issue(user=UserFactory(), name="x", lifetime=datetime.timedelta(days=31))


def test_expired_token_is_refused(client):
    _, key = api_token_issue(user=UserFactory(), name="x", lifetime=datetime.timedelta(days=1))
    assert client.get("/api/v1/me/", **bearer(key)).status_code == 200
    with time_machine.travel(timezone.now() + datetime.timedelta(days=1, seconds=1)):
        response = client.get("/api/v1/me/", **bearer(key))
    assert response.status_code == 401 and response.json()["code"] == "authentication_failed"


def test_revoked_token_is_refused_and_revocation_audited(client):
    user = UserFactory()
    token, key = api_token_issue(user=user, name="x")
    response = client.delete("/api/v1/auth/token/current/", **bearer(key))
    assert response.status_code == 204
    assert client.get("/api/v1/me/", **bearer(key)).status_code == 401
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditLogEntry.objects.filter(verb="token.revoked", object_id=str(token.pk), actor=user).exists()


def test_tampered_or_malformed_keys_are_refused(client):
    _, key = api_token_issue(user=UserFactory(), name="x")
    for bad in [key[:-1] + ("A" if key[-1] != "A" else "B"), "ciq_nothing", "not-a-token", key + " extra"]:
        assert client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {bad}").status_code == 401


def test_inactive_user_token_is_refused(client):
    user = UserFactory()
    _, key = api_token_issue(user=user, name="x")
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert client.get("/api/v1/me/", **bearer(key)).status_code == 401


def test_read_only_token_cannot_write(client):
    registrar = UserFactory(roles=[Role.REGISTRAR])
    _, read_key = api_token_issue(user=registrar, name="read", scope=ApiToken.Scope.READ)
    _, write_key = api_token_issue(user=registrar, name="write", scope=ApiToken.Scope.READ_WRITE)
    body = {"code": "BIO", "name": "Biology"}
    refused = post_json(client, "/api/v1/departments/", body, **bearer(read_key))
    assert refused.status_code == 403 and refused.json()["code"] == "token_read_only"
    assert client.get("/api/v1/departments/", **bearer(read_key)).status_code == 200
    assert post_json(client, "/api/v1/departments/", body, **bearer(write_key)).status_code == 201


def test_token_requests_need_no_csrf(client):
    registrar = UserFactory(roles=[Role.REGISTRAR])
    _, key = api_token_issue(user=registrar, name="w", scope=ApiToken.Scope.READ_WRITE)
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    department = DepartmentFactory()
    response = strict.patch(
        f"/api/v1/departments/{department.pk}/", data=json.dumps({"name": "Renamed"}), content_type="application/json",
        **bearer(key),
    )  # fmt: skip
    assert response.status_code == 200


def test_current_token_details(client):
    token, key = api_token_issue(user=UserFactory(), name="laptop")
    body = client.get("/api/v1/auth/token/current/", **bearer(key)).json()
    assert body["prefix"] == token.prefix and "token" not in body and "key_hash" not in body


def test_revoke_service_is_idempotent():
    token, _ = api_token_issue(user=UserFactory(), name="x")
    api_token_revoke(token=token, actor=None)
    first = token.revoked_at
    api_token_revoke(token=token, actor=None)
    assert token.revoked_at == first
    assert AuditLogEntry.objects.filter(verb="token.revoked").count() == 1


def test_cached_token_follows_suspension_and_deactivation(client):
    from tests.factories import StudentFactory

    student = StudentFactory()
    _, key = api_token_issue(user=student.user, name="phone")
    assert client.get("/api/v1/me/", **bearer(key)).status_code == 200  # now cached
    student.status = "suspended"
    student.save(update_fields=["status"])
    from accounts.tokens import api_token_authenticate

    assert api_token_authenticate(key).user.student.status == "suspended"
    student.user.is_active = False
    student.user.save(update_fields=["is_active"])
    assert client.get("/api/v1/me/", **bearer(key)).status_code == 401


def test_a_token_needs_a_name_and_its_lifetime_follows_its_kind(settings):
    from accounts.tokens import api_token_max_days
    from campusiq.core.errors import ServiceError

    person, service = UserFactory(), UserFactory(is_service_account=True)
    with pytest.raises(ServiceError) as refused:
        api_token_issue(user=person, name="  \t ")
    assert refused.value.code == "token_name_required" and refused.value.field == "name"
    assert not ApiToken.objects.exists() and not AuditLogEntry.objects.exists()
    assert api_token_issue(user=person, name=" laptop ")[0].name == "laptop"
    settings.API_TOKEN_MAX_DAYS = {"personal": 14, "service": 200}
    assert (api_token_max_days(user=person), api_token_max_days(user=service)) == (14, 200)
