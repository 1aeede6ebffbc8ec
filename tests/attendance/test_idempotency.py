# ruff: noqa: E501  (parametrised request bodies read best one per line)
"""Idempotency-Key on the API's POSTs (campusiq/core/idempotency.py), through the attendance endpoints:
a retry replays the first response without acting again, another request under the same key is a
409, keys expire after 24 hours, and answers that did not act (5xx, 429) are not kept."""

import datetime
import json

import pytest
import time_machine
from django.core.cache import caches
from django.test import Client

from accounts.models import ApiToken
from accounts.tokens import api_token_issue
from attendance import apis
from attendance.models import AttendanceRecord, ClassSession
from attendance.qr import qr_token_make
from campusiq.core import idempotency
from campusiq.core.errors import PROBLEM_CONTENT_TYPE
from campusiq.core.models import AuditLogEntry, IdempotencyKey, RateCounter
from tests.attendance.world import DURING
from tests.factories import EnrollmentFactory, StudentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def calls(monkeypatch):
    """Counts the check-in service's calls."""
    counted = []
    real = apis.attendance_check_in

    def counting(**kwargs):
        counted.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(apis, "attendance_check_in", counting)
    return counted


def post(client, path, body, key=None, **headers):
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(path, data=json.dumps(body), content_type="application/json", **headers)


def manual(world) -> dict:
    return {"student": world["student"].pk, "session": world["session_x"].pk}


def test_a_retry_replays_the_first_response_without_acting_again(client, world, during, calls):
    client.force_login(world["student"].user)
    body = {"token": qr_token_make(world["session_x"])}
    first = post(client, "/api/v1/check-ins/", body, key="scan-7f3a")
    assert first.status_code == 201 and "Idempotent-Replayed" not in first
    retry = post(client, "/api/v1/check-ins/", body, key="scan-7f3a")
    assert retry.status_code == 201  # not 200 "already checked in": the stored answer, replayed
    assert retry["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert len(calls) == 1 and AttendanceRecord.objects.count() == 1
    assert IdempotencyKey.objects.get().status_code == 201


def test_the_body_is_compared_as_json_not_as_bytes(client, world, during, calls):
    client.force_login(world["lecturer"])
    first = post(client, "/api/v1/check-ins/", manual(world), key="k1")
    reordered = json.dumps(dict(reversed(list(manual(world).items()))), indent=2)
    retry = client.post(
        "/api/v1/check-ins/", data=reordered, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert retry["Idempotent-Replayed"] == "true" and retry.json() == first.json()
    assert len(calls) == 1


def test_the_same_key_for_another_request_is_a_conflict(client, world, during, calls):
    client.force_login(world["lecturer"])
    assert post(client, "/api/v1/check-ins/", manual(world), key="k1").status_code == 201
    other = StudentFactory()
    EnrollmentFactory(student=other, section=world["section_x"])
    response = post(client, "/api/v1/check-ins/", {**manual(world), "student": other.pk}, key="k1")
    assert response.status_code == 409 and response["Content-Type"] == PROBLEM_CONTENT_TYPE
    assert response.json()["code"] == "idempotency_key_reused"
    elsewhere = post(client, f"/api/v1/class-sessions/{world['session_x'].pk}/cancel/", manual(world), key="k1")
    assert elsewhere.status_code == 409 and elsewhere.json()["code"] == "idempotency_key_reused"
    assert len(calls) == 1
    assert not AttendanceRecord.objects.filter(student=other).exists()
    assert ClassSession.objects.get(pk=world["session_x"].pk).state == "open"


def test_keys_belong_to_their_user(client, world, during, calls):
    for student in (world["student"], EnrollmentFactory(section=world["section_x"]).student):
        client.force_login(student.user)
        response = post(client, "/api/v1/check-ins/", {"token": qr_token_make(world["session_x"])}, key="same")
        assert response.status_code == 201 and "Idempotent-Replayed" not in response
    assert len(calls) == 2 and IdempotencyKey.objects.count() == 2


def test_keys_expire_after_a_day(client, world, calls):
    client.force_login(world["lecturer"])
    url = f"/api/v1/class-sessions/{world['session_x'].pk}/cancel/"
    with time_machine.travel(DURING, tick=False):
        assert post(client, url, {"reason": "Strike"}, key="cancel-1").status_code == 200
    with time_machine.travel(DURING + datetime.timedelta(hours=23, minutes=59), tick=False):
        assert post(client, url, {"reason": "Strike"}, key="cancel-1")["Idempotent-Replayed"] == "true"
        assert post(client, url, {"reason": "Other"}, key="cancel-1").status_code == 409
    with time_machine.travel(DURING + datetime.timedelta(hours=24, minutes=1), tick=False):
        again = post(client, url, {"reason": "Other"}, key="cancel-1")
        assert again.status_code == 200 and "Idempotent-Replayed" not in again
        assert IdempotencyKey.objects.get().request_hash != ""
    assert AuditLogEntry.objects.filter(verb="class_session.cancelled").count() == 1  # cancelling twice is a no-op
    assert IdempotencyKey.objects.count() == 1


def test_expired_keys_are_purged(world):
    user = world["lecturer"]
    with time_machine.travel(DURING, tick=False):
        IdempotencyKey.objects.create(user=user, key="old", request_hash="x", status_code=200)
    with time_machine.travel(DURING + datetime.timedelta(hours=20), tick=False):
        IdempotencyKey.objects.create(user=user, key="new", request_hash="x", status_code=200)
    with time_machine.travel(DURING + datetime.timedelta(hours=25), tick=False):
        assert idempotency.idempotency_keys_purge() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]


def test_a_refusal_is_stored_and_replayed_too(client, world, during, calls):
    client.force_login(world["student"].user)
    first = post(client, "/api/v1/check-ins/", {"token": "not-a-token"}, key="bad-scan")
    assert first.status_code == 400 and first.json()["code"] == "token_invalid"
    retry = post(client, "/api/v1/check-ins/", {"token": "not-a-token"}, key="bad-scan")
    assert retry.status_code == 400 and retry["Content-Type"] == PROBLEM_CONTENT_TYPE
    assert retry["Idempotent-Replayed"] == "true" and retry.json() == first.json()


def test_server_errors_are_not_stored_and_roll_the_action_back(world, during, monkeypatch):
    client = Client(raise_request_exception=False)
    client.force_login(world["lecturer"])
    real_serializer = apis.serializers.CheckInResultSerializer

    class Exploding(real_serializer):
        def to_representation(self, instance):
            raise RuntimeError("boom")

    monkeypatch.setattr(apis.serializers, "CheckInResultSerializer", Exploding)
    assert post(client, "/api/v1/check-ins/", manual(world), key="k500").status_code == 500
    assert not IdempotencyKey.objects.exists()
    assert not AttendanceRecord.objects.exists()  # the record and the key commit together, or neither
    monkeypatch.setattr(apis.serializers, "CheckInResultSerializer", real_serializer)
    retry = post(client, "/api/v1/check-ins/", manual(world), key="k500")
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry


def test_rate_limited_answers_are_not_stored(client, world, during, settings):
    settings.ATTENDANCE_CHECK_IN_RATE_PER_USER = "1/m"
    client.force_login(world["student"].user)
    body = {"token": qr_token_make(world["session_x"])}
    assert post(client, "/api/v1/check-ins/", {"token": "guess"}).status_code == 400
    assert post(client, "/api/v1/check-ins/", body, key="after-limit").status_code == 429
    assert not IdempotencyKey.objects.exists()
    caches["ratelimit"].clear()  # the counters: on Redis when the suite has it, else in their table
    RateCounter.objects.all().delete()
    assert post(client, "/api/v1/check-ins/", body, key="after-limit").status_code == 201


def test_a_concurrent_duplicate_replays_what_the_first_committed(client, world, during, calls, monkeypatch):
    """The second request found no key, then lost the race to insert it (IntegrityError on the unique
    index): it answers with the first one's stored response and does not act."""
    client.force_login(world["lecturer"])
    first = post(client, "/api/v1/check-ins/", manual(world), key="race")
    real_stored = idempotency._stored
    looked = []

    def not_yet_committed(**kwargs):
        looked.append(kwargs)
        return None if len(looked) == 1 else real_stored(**kwargs)

    monkeypatch.setattr(idempotency, "_stored", not_yet_committed)
    second = post(client, "/api/v1/check-ins/", manual(world), key="race")
    assert second.status_code == 201 and second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert len(calls) == 1 and AttendanceRecord.objects.count() == 1 and IdempotencyKey.objects.count() == 1


def test_a_lost_race_with_another_body_is_a_conflict(client, world, during, calls, monkeypatch):
    client.force_login(world["lecturer"])
    post(client, "/api/v1/check-ins/", manual(world), key="race")
    monkeypatch.setattr(idempotency, "_stored", lambda **kwargs: None)
    response = post(client, "/api/v1/check-ins/", {**manual(world), "status": "late", "reason": "r"}, key="race")
    assert response.status_code == 409 and response.json()["code"] == "idempotency_key_in_progress"
    assert len(calls) == 1 and AttendanceRecord.objects.get().status == "present"


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "clé"])
def test_malformed_keys_are_refused(client, world, during, calls, key):
    client.force_login(world["lecturer"])
    response = post(client, "/api/v1/check-ins/", manual(world), key=key)
    assert response.status_code == 400 and response.json()["code"] == "idempotency_key_invalid"
    assert not calls and not AttendanceRecord.objects.exists()


def test_longest_key_is_accepted(client, world, during):
    client.force_login(world["lecturer"])
    assert post(client, "/api/v1/check-ins/", manual(world), key="k" * 255).status_code == 201


def test_without_a_key_nothing_is_stored(client, world, during):
    client.force_login(world["lecturer"])
    assert post(client, "/api/v1/check-ins/", manual(world)).status_code == 201
    assert post(client, "/api/v1/check-ins/", manual(world)).json()["already_checked_in"] is True
    assert not IdempotencyKey.objects.exists()


def test_a_read_only_token_is_refused_before_the_key_is_looked_at(client, world, during, calls):
    _, key = api_token_issue(user=world["lecturer"], name="ro", scope=ApiToken.Scope.READ)
    response = post(client, "/api/v1/check-ins/", manual(world), key="ro-1", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 403 and response.json()["code"] == "token_read_only"
    assert not IdempotencyKey.objects.exists() and not calls


@pytest.mark.parametrize(
    ("path", "body", "verb"),
    [
        ("/api/v1/class-sessions/", {"section": "{section}", "starts_at": "2026-09-21T09:00:00Z", "ends_at": "2026-09-21T10:00:00Z"}, "class_session.created"),
        ("/api/v1/class-sessions/series/", {"section": "{section}", "first_date": "2026-09-21", "start_time": "09:00", "duration_minutes": 60, "until": "2026-10-05"}, "class_session.created"),
        ("/api/v1/class-sessions/{session}/close/", {}, "class_session.closed"),
        ("/api/v1/attendance-records/{record}/void/", {"reason": "proxy"}, "attendance.voided"),
    ],
)  # fmt: skip
def test_every_attendance_post_honours_the_key(client, world, during, path, body, verb):
    record = AttendanceRecord.objects.create(session=world["session_x"], student=world["student"], status="present",
                                             recorded_at=DURING, method="qr")  # fmt: skip
    ids = {"section": world["section_x"].pk, "session": world["session_x"].pk, "record": record.pk}
    path = path.format(**ids)
    body = {
        name: ids[value[1:-1]] if isinstance(value, str) and value[1:-1] in ids else value
        for name, value in body.items()
    }
    client.force_login(world["lecturer"])
    first = post(client, path, body, key="once")
    written = AuditLogEntry.objects.filter(verb=verb).count()
    assert first.status_code in (200, 201) and written
    retry = post(client, path, body, key="once")
    assert retry["Idempotent-Replayed"] == "true" and retry.json() == first.json()
    assert AuditLogEntry.objects.filter(verb=verb).count() == written
