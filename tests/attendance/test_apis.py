# ruff: noqa: E501  (parametrised cases read best one per line)
"""The attendance API as its clients see it: check-in by QR token, card reader and staff, with every
refusal in the problem shape; sessions, records and rates scoped per role; evidence kept from
students; lists that cost the same at 5 rows as at 100."""

import datetime
import json

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import ApiToken
from accounts.roles import Role
from accounts.tokens import api_token_issue
from attendance.models import AttendanceRecord, ClassSession, ProxyFlag
from attendance.qr import qr_token_make, step_at
from campusiq.core.errors import PROBLEM_CONTENT_TYPE
from campusiq.core.models import AuditLogEntry
from students.models import Enrollment, Student
from tests.attendance.world import DURING
from tests.factories import (
    SESSION_START,
    AttendanceRecordFactory,
    CardReaderFactory,
    ClassSessionFactory,
    EnrollmentFactory,
    ProxyFlagFactory,
    SectionFactory,
    SectionGroupFactory,
    SectionGroupMemberFactory,
    StudentCardFactory,
    StudentFactory,
    TermFactory,
    TermHolidayFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
MINUTE = datetime.timedelta(minutes=1)


def send(client, path, body=None, method="post", **headers):
    return getattr(client, method)(path, data=json.dumps(body or {}), content_type="application/json", **headers)


def as_user(client, user):
    client.force_login(user)
    return client


def bearer(user, scope=ApiToken.Scope.READ_WRITE) -> dict:
    _, key = api_token_issue(user=user, name="test", scope=scope)
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def check_in(client, body, **headers):
    return send(client, "/api/v1/check-ins/", body, **headers)


def assert_problem(response, status: int, code: str):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert body["code"] == code and body["status"] == status and body["type"] == f"urn:campusiq:problem:{code}"
    assert body["detail"]
    return body


# --- Check-in by QR token ---------------------------------------------------------------------


def test_student_checks_in_with_a_token_then_gets_the_same_record(client, world, during):
    session, student = world["session_x"], world["student"]
    as_user(client, student.user)
    first = check_in(client, {"token": qr_token_make(session), "session": session.pk}, HTTP_USER_AGENT="Phone/1.0")
    assert first.status_code == 201
    body = first.json()
    assert body["already_checked_in"] is False
    assert (body["student"], body["session"], body["status"], body["method"]) == (
        student.pk,
        session.pk,
        "present",
        "qr",
    )
    assert body["evidence"] is None  # a student never sees IP, user agent or device
    assert "127.0.0.1" not in first.content.decode() and "Phone/1.0" not in first.content.decode()
    record = AttendanceRecord.objects.get()
    assert (record.ip, record.user_agent) == ("127.0.0.1", "Phone/1.0")

    again = check_in(client, {"token": qr_token_make(session)})
    assert again.status_code == 200
    assert again.json()["already_checked_in"] is True and again.json()["id"] == body["id"]
    assert AttendanceRecord.objects.count() == 1


@pytest.mark.parametrize("status", ["present", "late"])
def test_student_check_in_answer_is_exactly_what_the_record_serializer_says(client, world, status):
    """The QR answer is built by hand (the busiest response); it must not drift from the serializer
    that documents it, for a new record and for a repeated scan."""
    from attendance.serializers import CheckInResultSerializer

    moment = SESSION_START + (3 if status == "present" else 25) * MINUTE
    as_user(client, world["student"].user)
    with time_machine.travel(moment, tick=False):
        answers = [check_in(client, {"token": qr_token_make(world["session_x"])}) for _ in range(2)]
    record = AttendanceRecord.objects.select_related("session", "student").get()
    assert record.status == status
    for answer, already in zip(answers, (False, True), strict=True):
        expected = CheckInResultSerializer(record, context={"already_checked_in": already}).data
        assert answer.json() == json.loads(json.dumps(expected)), already


def test_check_ins_are_counted_by_result_and_timed(client, world, during):
    from prometheus_client import REGISTRY

    def sample(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = {
        result: sample("campusiq_checkins_total", result=result) for result in ("created", "already", "token_invalid")
    }
    timed = sample("campusiq_checkin_latency_seconds_count")
    as_user(client, world["student"].user)
    session = world["session_x"]
    check_in(client, {"token": qr_token_make(session)})
    check_in(client, {"token": qr_token_make(session)})
    check_in(client, {"token": "1.2.forged"})
    after = {result: sample("campusiq_checkins_total", result=result) for result in before}
    assert {result: after[result] - before[result] for result in before} == {
        "created": 1, "already": 1, "token_invalid": 1,
    }  # fmt: skip
    assert sample("campusiq_checkin_latency_seconds_count") == timed + 3


def test_late_check_in_is_recorded_late(client, world):
    with time_machine.travel(SESSION_START + 25 * MINUTE, tick=False):
        response = check_in(as_user(client, world["student"].user), {"token": qr_token_make(world["session_x"])})
    assert response.status_code == 201 and response.json()["status"] == "late"


def _token_of_two_steps_ago(session):
    return qr_token_make(session, step=step_at(DURING) - 2)


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        (lambda w: {"token": "not-a-token"}, "token_invalid"),
        (lambda w: {"token": f"{w['session_x'].pk}.{step_at(DURING)}.forgedmacforgedmac"}, "token_invalid"),
        (lambda w: {"token": _token_of_two_steps_ago(w["session_x"])}, "token_expired"),
        (lambda w: {"token": qr_token_make(w["session_x"]), "session": w["session_y"].pk}, "token_wrong_session"),
        (lambda w: {"token": qr_token_make(w["session_y"])}, "not_enrolled"),
        (lambda w: _set_session(w, state=ClassSession.State.SCHEDULED), "session_not_open"),
        (lambda w: _set_session(w, state=ClassSession.State.CLOSED), "session_closed"),
        (lambda w: _set_session(w, state=ClassSession.State.CANCELLED), "session_cancelled"),
        (
            lambda w: _set_session(w, starts_at=DURING + 60 * MINUTE, ends_at=DURING + 150 * MINUTE),
            "session_not_started",
        ),
        (lambda w: _set_session(w, starts_at=DURING - 120 * MINUTE, ends_at=DURING - 30 * MINUTE), "session_ended"),
        (lambda w: _set_student(w, Student.Status.SUSPENDED), "student_suspended"),
        (lambda w: _set_student(w, Student.Status.GRADUATED), "student_not_active"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_token_refusals_answer_their_code_and_write_nothing(client, world, during, setup, code):
    body = setup(world)
    response = check_in(as_user(client, world["student"].user), body)
    assert_problem(response, 400, code)
    assert not AttendanceRecord.objects.exists()


def _set_session(world, **fields) -> dict:
    ClassSession.objects.filter(pk=world["session_x"].pk).update(**fields)
    return {"token": qr_token_make(world["session_x"])}


def _set_student(world, status) -> dict:
    Student.objects.filter(pk=world["student"].pk).update(status=status)
    return {"token": qr_token_make(world["session_x"])}


def test_proxy_sign_refused_where_the_institution_says_so(client, world, during, settings):
    settings.ATTENDANCE_CAMPUS_NETWORKS = ["192.0.2.0/24"]
    settings.ATTENDANCE_REFUSE_FLAGS = ["off_campus"]
    response = check_in(as_user(client, world["student"].user), {"token": qr_token_make(world["session_x"])})
    assert_problem(response, 400, "proxy_refused")
    on_campus = check_in(client, {"token": qr_token_make(world["session_x"])}, REMOTE_ADDR="192.0.2.44")
    assert on_campus.status_code == 201


def test_flagged_check_in_shows_the_flag_to_the_lecturer_only(client, world, during, settings):
    settings.ATTENDANCE_CAMPUS_NETWORKS = ["192.0.2.0/24"]
    body = {"token": qr_token_make(world["session_x"]), "device_id": PHONE}
    response = check_in(as_user(client, world["student"].user), body)
    assert response.status_code == 201 and "off_campus" not in response.content.decode()
    record_url = f"/api/v1/attendance-records/{response.json()['id']}/"
    evidence = as_user(client, world["lecturer"]).get(record_url).json()["evidence"]
    assert evidence["flags"] == ["off_campus"] and evidence["ip"] == "127.0.0.1"


PHONE = "app-install-7Qm2Xv9LpR4t"  # what a phone app makes once and sends with every check-in


def test_one_phone_checking_in_two_students_through_the_api_is_flagged_as_in_the_portal(client, world, during):
    session = world["session_x"]
    classmate = StudentFactory()
    EnrollmentFactory(student=classmate, section=session.section)
    phone = {"HTTP_USER_AGENT": "CampusIQ/2.1 (Android 14)", "REMOTE_ADDR": "10.1.2.3"}
    for student in (world["student"], classmate):
        body = {"token": qr_token_make(session), "device_id": PHONE}
        assert check_in(client, body, **bearer(student.user), **phone).status_code == 201
    flags = sorted(ProxyFlag.objects.values_list("record__student_id", "kind"))
    assert flags == sorted([(world["student"].pk, "shared_device"), (classmate.pk, "shared_device")])
    assert set(AttendanceRecord.objects.values_list("device_id", flat=True)) == {f"app:{PHONE}"}


def test_an_api_check_in_without_a_device_id_is_flagged_for_the_lecturer(client, world, during):
    response = check_in(client, {"token": qr_token_make(world["session_x"])}, **bearer(world["student"].user))
    assert response.status_code == 201 and "no_device_id" not in response.content.decode()
    (flag,) = ProxyFlag.objects.all()
    assert flag.kind == "no_device_id" and flag.record.device_id == ""


@pytest.mark.parametrize(
    "body",
    [
        {"device_id": "short"},
        {"device_id": "has spaces in it, sixteen+"},
        {"device_id": "x" * 57},
        {"device_id": ""},
        {"device_id": None},
    ],
)
def test_a_malformed_device_id_is_refused_and_writes_nothing(client, world, during, body):
    response = check_in(client, {"token": qr_token_make(world["session_x"]), **body}, **bearer(world["student"].user))
    assert_problem(response, 400, "validation_error")
    assert not AttendanceRecord.objects.exists()


@pytest.mark.parametrize("role", ["lecturer", "advisor", "registrar"])
def test_only_students_check_in_with_a_token(client, world, during, role):
    response = check_in(as_user(client, world[role]), {"token": qr_token_make(world["session_x"])})
    assert_problem(response, 403, "permission_denied")
    assert not AttendanceRecord.objects.exists()


# --- Check-in by card reader ------------------------------------------------------------------


@pytest.fixture
def kiosk(world):
    account = UserFactory(is_service_account=True, email="kiosk-b214@campus.example")
    return {"account": account, "auth": bearer(account), "reader": CardReaderFactory(room="B2.14"),
            "card": StudentCardFactory(student=world["student"])}  # fmt: skip


def test_card_reader_checks_the_student_in_to_the_open_session_in_its_room(client, world, during, kiosk):
    body = {"card_uid": kiosk["card"].uid, "reader_id": kiosk["reader"].reader_id}
    first = check_in(client, body, **kiosk["auth"])
    assert first.status_code == 201, first.content
    data = first.json()
    assert (data["student"], data["session"], data["method"], data["recorded_by"]) == (
        world["student"].pk, world["session_x"].pk, "card", kiosk["account"].pk,
    )  # fmt: skip
    again = check_in(client, body, **kiosk["auth"])
    assert again.status_code == 200 and again.json()["already_checked_in"] is True
    assert AttendanceRecord.objects.count() == 1


def test_card_reader_prefers_the_students_own_session_when_a_room_is_shared(client, world, during, kiosk):
    joint = ClassSessionFactory(section=SectionFactory(term=world["term"]), room="B2.14", state="open",
                                starts_at=SESSION_START - 5 * MINUTE)  # fmt: skip
    EnrollmentFactory(student=world["other"], section=joint.section)
    other_card = StudentCardFactory(student=world["other"])
    response = check_in(client, {"card_uid": other_card.uid, "reader_id": kiosk["reader"].reader_id}, **kiosk["auth"])
    assert response.status_code == 201 and response.json()["session"] == joint.pk
    mine = check_in(client, {"card_uid": kiosk["card"].uid, "reader_id": kiosk["reader"].reader_id}, **kiosk["auth"])
    assert mine.status_code == 201 and mine.json()["session"] == world["session_x"].pk


def test_card_reader_picks_the_students_own_group_when_two_groups_share_a_room(client, world, during, kiosk):
    # session_x (room B2.14) is Lab A's; Lab B of the same section meets in the same room, started earlier.
    lab_a, lab_b = SectionGroupFactory(section=world["section_x"]), SectionGroupFactory(section=world["section_x"])
    ClassSession.objects.filter(pk=world["session_x"].pk).update(group=lab_a)
    ClassSessionFactory(section=world["section_x"], group=lab_b, room="B2.14", state="open",
                        starts_at=SESSION_START - 5 * MINUTE)  # fmt: skip
    SectionGroupMemberFactory(group=lab_a, student=world["student"])
    mine = check_in(client, {"card_uid": kiosk["card"].uid, "reader_id": kiosk["reader"].reader_id}, **kiosk["auth"])
    assert mine.status_code == 201 and mine.json()["session"] == world["session_x"].pk


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("unknown_card", "card_unknown"),
        ("inactive_card", "card_unknown"),
        ("unknown_reader", "reader_unknown"),
        ("session_scheduled", "no_session_in_room"),
        ("session_over", "no_session_in_room"),
        ("reader_elsewhere", "no_session_in_room"),
        ("not_enrolled", "not_enrolled"),
    ],
)
def test_card_refusals(client, world, during, kiosk, change, code):
    body = {"card_uid": kiosk["card"].uid, "reader_id": kiosk["reader"].reader_id}
    if change == "unknown_card":
        body["card_uid"] = "FFFFFFFF"
    elif change == "inactive_card":
        type(kiosk["card"]).objects.filter(pk=kiosk["card"].pk).update(active=False)
    elif change == "unknown_reader":
        body["reader_id"] = "nowhere"
    elif change == "session_scheduled":
        ClassSession.objects.filter(pk=world["session_x"].pk).update(state="scheduled")
    elif change == "session_over":
        ClassSession.objects.filter(pk=world["session_x"].pk).update(
            ends_at=DURING - MINUTE, starts_at=DURING - 90 * MINUTE
        )
    elif change == "reader_elsewhere":
        body["reader_id"] = CardReaderFactory(room="Z9.99").reader_id
    elif change == "not_enrolled":
        body["card_uid"] = StudentCardFactory(student=world["other"]).uid
    assert_problem(check_in(client, body, **kiosk["auth"]), 400, code)
    assert not AttendanceRecord.objects.exists()


@pytest.mark.parametrize("role", ["student", "lecturer", "advisor"])
def test_only_card_readers_and_registry_staff_check_in_by_card(client, world, during, kiosk, role):
    user = world["student"].user if role == "student" else world[role]
    body = {"card_uid": kiosk["card"].uid, "reader_id": kiosk["reader"].reader_id}
    assert_problem(check_in(client, body, **bearer(user)), 403, "permission_denied")
    assert check_in(client, body, **bearer(world["registrar"])).status_code == 201


# --- Check-in by staff ------------------------------------------------------------------------


def test_lecturer_checks_a_student_in_by_hand(client, world, during):
    lecturer = world["lecturer"]
    response = check_in(as_user(client, lecturer), {"student": world["student"].pk, "session": world["session_x"].pk})
    assert response.status_code == 201
    body = response.json()
    assert (body["method"], body["status"], body["recorded_by"]) == ("api", "present", lecturer.pk)
    assert body["evidence"] is not None  # the section's lecturer sees evidence


def test_staff_status_other_than_present_needs_a_reason_and_is_audited(client, world, during):
    as_user(client, world["lecturer"])
    body = {"student": world["student"].pk, "session": world["session_x"].pk, "status": "excused"}
    assert_problem(check_in(client, body), 400, "reason_required")
    response = check_in(client, {**body, "reason": "Sports event"})
    assert response.status_code == 201 and response.json()["status"] == "excused"
    again = check_in(client, {**body, "status": "absent", "reason": "Was not there after all"})
    assert again.status_code == 200 and again.json()["already_checked_in"] is True
    assert again.json()["status"] == "absent"
    entries = AuditLogEntry.objects.filter(verb="attendance.changed").order_by("id")
    assert [(e.changes["status"], e.reason, e.actor) for e in entries] == [
        ([None, "excused"], "Sports event", world["lecturer"]),
        (["excused", "absent"], "Was not there after all", world["lecturer"]),
    ]


def test_registrar_records_by_hand_even_after_closing(client, world, during):
    ClassSession.objects.filter(pk=world["session_x"].pk).update(state="closed")
    body = {"student": world["student"].pk, "session": world["session_x"].pk}
    assert_problem(check_in(as_user(client, world["registrar"]), body), 400, "session_closed")
    response = check_in(client, {**body, "status": "present", "reason": "Paper sign-in sheet"})
    assert response.status_code == 201 and response.json()["status"] == "present"


@pytest.mark.parametrize(
    ("role", "student", "session", "status", "field"),
    [
        ("other_lecturer", "student", "session_x", 400, "session"),  # a session they cannot see
        ("other_lecturer", "student", "session_y", 400, "student"),  # a student they cannot see
        ("lecturer", "other", "session_x", 400, "student"),
        ("advisor", "student", "session_x", 403, None),  # sees it, may not record
        ("student", "student", "session_x", 403, None),
    ],
)
def test_staff_check_in_outside_ones_sections(client, world, during, role, student, session, status, field):
    user = world["student"].user if role == "student" else world[role]
    response = check_in(as_user(client, user), {"student": world[student].pk, "session": world[session].pk})
    assert response.status_code == status
    if field:
        assert response.json()["errors"][0]["field"] == field
    assert not AttendanceRecord.objects.exists()


# --- Check-in: input, tokens, limits ----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, [None]),
        ({"session": 1}, [None]),
        ({"token": "x", "card_uid": "y", "reader_id": "z"}, [None]),
        ({"token": "x", "student": 1}, [None]),
        ({"card_uid": "y"}, ["reader_id"]),
        ({"student": 1}, ["session"]),
        ({"card_uid": "y", "reader_id": "z", "session": 1}, ["session"]),
        ({"token": "x", "status": "absent"}, [None]),
        ({"student": 1, "session": 1, "status": "asleep"}, ["status"]),
    ],
)
def test_exactly_one_way_to_check_in(client, world, body, fields):
    response = check_in(as_user(client, world["registrar"]), body)
    problem = assert_problem(response, 400, "validation_error")
    assert [error["field"] for error in problem["errors"]] == fields


def test_read_only_token_cannot_check_in(client, world, during):
    auth = bearer(world["student"].user, scope=ApiToken.Scope.READ)
    assert_problem(check_in(client, {"token": qr_token_make(world["session_x"])}, **auth), 403, "token_read_only")
    assert not AttendanceRecord.objects.exists()


def test_anonymous_cannot_check_in(client, world, during):
    assert_problem(check_in(client, {"token": qr_token_make(world["session_x"])}), 401, "not_authenticated")


def test_check_ins_are_rate_limited_per_person(client, world, during, settings):
    settings.ATTENDANCE_CHECK_IN_RATE_PER_USER = "3/m"
    as_user(client, world["student"].user)
    for _ in range(3):
        assert check_in(client, {"token": "guess"}).status_code == 400
    assert_problem(check_in(client, {"token": qr_token_make(world["session_x"])}), 429, "rate_limited")
    assert not AttendanceRecord.objects.exists()
    # Someone else is not slowed down by it.
    other = StudentFactory()
    EnrollmentFactory(student=other, section=world["section_x"])
    assert check_in(as_user(client, other.user), {"token": qr_token_make(world["session_x"])}).status_code == 201


def test_check_ins_are_rate_limited_per_address(client, world, during, settings):
    settings.ATTENDANCE_CHECK_IN_RATE_PER_IP = "2/m"
    for _ in range(2):
        assert check_in(as_user(client, StudentFactory().user), {"token": "guess"}).status_code == 400
    assert_problem(check_in(as_user(client, world["student"].user), {"token": "guess"}), 429, "rate_limited")
    elsewhere = check_in(client, {"token": qr_token_make(world["session_x"])}, REMOTE_ADDR="10.9.9.9")
    assert elsewhere.status_code == 201


def test_a_card_reader_is_limited_per_card_not_for_the_whole_hall(client, world, during, kiosk, settings):
    settings.ATTENDANCE_CHECK_IN_RATE_PER_USER = "2/m"
    reader = kiosk["reader"].reader_id
    for _ in range(3):
        student = StudentFactory()
        EnrollmentFactory(student=student, section=world["section_x"])
        card = StudentCardFactory(student=student)
        assert check_in(client, {"card_uid": card.uid, "reader_id": reader}, **kiosk["auth"]).status_code == 201
    assert check_in(client, {"card_uid": card.uid, "reader_id": reader}, **kiosk["auth"]).status_code == 200
    assert_problem(check_in(client, {"card_uid": card.uid, "reader_id": reader}, **kiosk["auth"]), 429, "rate_limited")


# --- Class sessions ---------------------------------------------------------------------------

SCOPE = [
    # role             sees session_x  sees session_y
    ("student", True, False),
    ("other_student", False, True),
    ("lecturer", True, False),
    ("other_lecturer", False, True),
    ("advisor", True, False),
    ("other_advisor", False, True),
    ("registrar", True, True),
]


def _user(world, role):
    return {"student": world["student"].user, "other_student": world["other"].user}.get(role) or world[role]


@pytest.mark.parametrize(("role", "sees_x", "sees_y"), SCOPE)
def test_sessions_are_scoped(client, world, role, sees_x, sees_y):
    as_user(client, _user(world, role))
    ids = {row["id"] for row in client.get("/api/v1/class-sessions/").json()["results"]}
    expected = {world["session_x"].pk} if sees_x else set()
    expected |= {world["session_y"].pk} if sees_y else set()
    assert ids == expected
    for name, sees in (("session_x", sees_x), ("session_y", sees_y)):
        response = client.get(f"/api/v1/class-sessions/{world[name].pk}/")
        assert response.status_code == (200 if sees else 404)
        assert "token_salt" not in response.content.decode()


def test_session_filters(client, world):
    as_user(client, world["registrar"])
    later = ClassSessionFactory(section=world["section_x"], starts_at=SESSION_START + datetime.timedelta(days=7))

    def ids(query):
        return {row["id"] for row in client.get(f"/api/v1/class-sessions/?{query}").json()["results"]}

    x, y = world["session_x"].pk, world["session_y"].pk
    assert ids(f"section={world['section_x'].pk}") == {x, later.pk}
    assert ids(f"term={world['term'].pk}&state=open") == {x, y}
    assert ids("starts_after=2026-09-15T00:00:00Z") == {later.pk}
    assert ids("starts_before=2026-09-15T00:00:00Z") == {x, y}
    assert ids("search=C1.01") == {y}
    assert ids(f"updated_since={(later.updated_at + MINUTE).isoformat().replace('+00:00', 'Z')}") == set()
    as_user(client, world["student"].user)
    assert ids(f"section={world['section_y'].pk}") == set()
    assert ids("section=987654321") == set()


def test_lecturer_schedules_a_session_of_their_section(client, world):
    as_user(client, world["lecturer"])
    body = {"section": world["section_x"].pk, "starts_at": "2026-09-21T09:00:00+01:00",
            "ends_at": "2026-09-21T10:30:00+01:00", "room": "B2.14"}  # fmt: skip
    response = send(client, "/api/v1/class-sessions/", body)
    assert response.status_code == 201
    assert response.json()["state"] == "scheduled" and response.json()["room"] == "B2.14"
    assert AuditLogEntry.objects.filter(verb="class_session.created", actor=world["lecturer"]).count() == 1
    outside = send(
        client,
        "/api/v1/class-sessions/",
        {**body, "starts_at": "2027-09-21T09:00:00Z", "ends_at": "2027-09-21T10:00:00Z"},
    )
    assert_problem(outside, 400, "session_time_invalid")
    backwards = send(client, "/api/v1/class-sessions/", {**body, "ends_at": "2026-09-21T08:00:00+01:00"})
    assert_problem(backwards, 400, "session_time_invalid")


@pytest.mark.parametrize(
    ("role", "status"), [("other_lecturer", 403), ("advisor", 403), ("student", 403), ("registrar", 201)]
)
def test_who_schedules_sessions(client, world, role, status):
    body = {"section": world["section_x"].pk, "starts_at": "2026-09-21T09:00:00Z", "ends_at": "2026-09-21T10:00:00Z"}
    response = send(as_user(client, _user(world, role)), "/api/v1/class-sessions/", body)
    assert response.status_code == status
    assert ClassSession.objects.count() == (3 if status == 201 else 2)


def test_scheduling_for_a_section_that_does_not_exist_is_a_field_error(client, world):
    body = {"section": 987654, "starts_at": "2026-09-21T09:00:00Z", "ends_at": "2026-09-21T10:00:00Z"}
    problem = assert_problem(
        send(as_user(client, world["lecturer"]), "/api/v1/class-sessions/", body), 400, "validation_error"
    )
    assert problem["errors"][0]["field"] == "section"


def test_weekly_series_skips_holidays(client, world):
    TermHolidayFactory(term=world["term"], date=datetime.date(2026, 9, 28))
    body = {"section": world["section_x"].pk, "first_date": "2026-09-21", "start_time": "09:00",
            "duration_minutes": 90, "until": "2026-10-12", "room": "B2.14"}  # fmt: skip
    response = send(as_user(client, world["lecturer"]), "/api/v1/class-sessions/series/", body)
    assert response.status_code == 201
    data = response.json()
    assert data["count"] == 3 and data["series"]
    assert [row["starts_at"][:10] for row in data["sessions"]] == ["2026-09-21", "2026-10-05", "2026-10-12"]
    assert {row["series"] for row in data["sessions"]} == {data["series"]}
    bad = send(client, "/api/v1/class-sessions/series/", {**body, "until": "2026-09-01"})
    assert_problem(bad, 400, "validation_error")
    assert_problem(
        send(as_user(client, world["other_lecturer"]), "/api/v1/class-sessions/series/", body), 403, "permission_denied"
    )


def test_a_series_on_two_weekdays_every_two_weeks_and_its_clash(client, world):
    body = {"section": world["section_x"].pk, "first_date": "2026-09-21", "start_time": "09:00",
            "duration_minutes": 90, "until": "2026-10-16", "weekdays": [0, 3], "every_weeks": 2}  # fmt: skip
    lecturer = as_user(client, world["lecturer"])
    data = send(lecturer, "/api/v1/class-sessions/series/", body).json()
    assert [row["starts_at"][:10] for row in data["sessions"]] == [
        "2026-09-21",
        "2026-09-24",
        "2026-10-05",
        "2026-10-08",
    ]
    assert {row["group"] for row in data["sessions"]} == {None}
    count = ClassSession.objects.count()
    assert_problem(send(lecturer, "/api/v1/class-sessions/series/", body), 409, "session_duplicate")
    assert_problem(
        send(lecturer, "/api/v1/class-sessions/series/", {**body, "every_weeks": 5}), 400, "validation_error"
    )
    assert ClassSession.objects.count() == count


def test_lecturer_opens_closes_and_cancels(client, world):
    session = ClassSessionFactory(section=world["section_x"], starts_at=SESSION_START + datetime.timedelta(days=7))
    EnrollmentFactory(section=world["section_x"])
    as_user(client, world["lecturer"])
    url = f"/api/v1/class-sessions/{session.pk}"
    with time_machine.travel(session.starts_at - 20 * MINUTE, tick=False):
        assert_problem(send(client, f"{url}/open/"), 400, "session_not_started")
    with time_machine.travel(session.starts_at - 5 * MINUTE, tick=False):
        opened = send(client, f"{url}/open/")
        assert opened.status_code == 200 and opened.json()["state"] == "open"
    with time_machine.travel(session.ends_at, tick=False):
        AttendanceRecordFactory(session=session, student=world["student"])
        closed = send(client, f"{url}/close/")
    assert closed.status_code == 200
    assert closed.json()["state"] == "closed" and closed.json()["marked_absent"] == 1
    assert_problem(send(client, f"{url}/cancel/", {"reason": "  "}), 400, "reason_required")
    assert_problem(send(client, f"{url}/cancel/"), 400, "validation_error")
    cancelled = send(client, f"{url}/cancel/", {"reason": "Fire drill"})
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert AuditLogEntry.objects.get(verb="class_session.cancelled").reason == "Fire drill"
    assert_problem(send(client, f"{url}/close/"), 400, "session_cancelled")


@pytest.mark.parametrize(
    ("role", "status"),
    [("student", 403), ("advisor", 403), ("other_lecturer", 404), ("other_student", 404), ("registrar", 200)],
)
def test_who_opens_closes_cancels(client, world, role, status):
    as_user(client, _user(world, role))
    url = f"/api/v1/class-sessions/{world['session_x'].pk}"
    with time_machine.travel(DURING, tick=False):
        assert send(client, f"{url}/open/").status_code == status
        assert send(client, f"{url}/cancel/", {"reason": "x"}).status_code == status
    state = ClassSession.objects.get(pk=world["session_x"].pk).state
    assert state == ("cancelled" if status == 200 else "open")


def test_sessions_cannot_be_deleted_or_edited(client, world):
    as_user(client, world["registrar"])
    url = f"/api/v1/class-sessions/{world['session_x'].pk}/"
    assert client.delete(url).status_code == 405
    assert send(client, url, {"room": "X"}, method="patch").status_code == 405


# --- Records ----------------------------------------------------------------------------------


@pytest.fixture
def records(world):
    mine = AttendanceRecordFactory(session=world["session_x"], student=world["student"], ip="10.1.1.1",
                                   user_agent="SubjectPhone", device_id="subject-device", note="seen")  # fmt: skip
    theirs = AttendanceRecordFactory(session=world["session_y"], student=world["other"], ip="10.2.2.2",
                                     user_agent="OtherPhone", device_id="other-device")  # fmt: skip
    ProxyFlagFactory(record=mine)
    return {"mine": mine, "theirs": theirs}


EVIDENCE_SCOPE = [
    # role             records seen           evidence
    ("student", {"mine"}, False),
    ("other_student", {"theirs"}, False),
    ("lecturer", {"mine"}, True),
    ("other_lecturer", {"theirs"}, True),
    ("advisor", {"mine"}, False),
    ("registrar", {"mine", "theirs"}, True),
]


@pytest.mark.parametrize(("role", "seen", "evidence"), EVIDENCE_SCOPE)
def test_records_are_scoped_and_evidence_is_for_staff(client, world, records, role, seen, evidence):
    as_user(client, _user(world, role))
    response = client.get("/api/v1/attendance-records/")
    rows = response.json()["results"]
    assert {row["id"] for row in rows} == {records[name].pk for name in seen}
    text = response.content.decode()
    for name in {"mine", "theirs"} - seen:
        assert records[name].student.student_number not in text
    for row in rows:
        assert (row["evidence"] is not None) == evidence
    if not evidence:
        for leak in ("10.1.1.1", "10.2.2.2", "SubjectPhone", "OtherPhone", "subject-device", "shared_device"):
            assert leak not in text
    else:
        row = next(row for row in rows if row["id"] in {records[name].pk for name in seen})
        assert set(row["evidence"]) == {"ip", "user_agent", "device_id", "note", "flags"}
    for name in ("mine", "theirs"):
        detail = client.get(f"/api/v1/attendance-records/{records[name].pk}/")
        assert detail.status_code == (200 if name in seen else 404)


def test_record_filters_never_widen_the_scope(client, world, records):
    as_user(client, world["student"].user)
    for query in (f"student={world['other'].pk}", f"session={world['session_y'].pk}", f"section={world['section_y'].pk}",
                  "student=987654321", "search=S-OTHER"):  # fmt: skip
        response = client.get(f"/api/v1/attendance-records/?{query}")
        assert response.status_code == 200 and response.json()["results"] == [], query
    as_user(client, world["registrar"])
    assert [
        r["id"] for r in client.get(f"/api/v1/attendance-records/?student={world['other'].pk}").json()["results"]
    ] == [records["theirs"].pk]
    assert [
        r["id"]
        for r in client.get(
            "/api/v1/attendance-records/?status=present&starts_before=2026-09-15T00:00:00Z&search=S-SUBJECT"
        ).json()["results"]
    ] == [records["mine"].pk]
    assert client.get("/api/v1/attendance-records/?status=late").json()["results"] == []


def test_lecturer_corrects_and_voids_a_record(client, world, records):
    as_user(client, world["lecturer"])
    url = f"/api/v1/attendance-records/{records['mine'].pk}/"
    assert_problem(send(client, url, {"status": "excused", "reason": ""}, method="patch"), 400, "reason_required")
    changed = send(client, url, {"status": "excused", "reason": "Medical certificate"}, method="patch")
    assert changed.status_code == 200 and changed.json()["status"] == "excused"
    assert changed.json()["evidence"]["note"] == "Medical certificate"
    assert_problem(send(client, f"{url}void/", {"reason": ""}), 400, "reason_required")
    voided = send(client, f"{url}void/", {"reason": "Checked in by a classmate"})
    assert voided.status_code == 200
    assert (voided.json()["status"], voided.json()["voided"]) == ("absent", True)
    verbs = list(AuditLogEntry.objects.filter(actor=world["lecturer"]).values_list("verb", flat=True).order_by("id"))
    assert verbs == ["attendance.changed", "attendance.voided"]


@pytest.mark.parametrize(
    ("role", "status"),
    [("student", 403), ("advisor", 403), ("other_lecturer", 404), ("other_student", 404), ("registrar", 200)],
)
def test_who_corrects_records(client, world, records, role, status):
    as_user(client, _user(world, role))
    url = f"/api/v1/attendance-records/{records['mine'].pk}/"
    assert send(client, url, {"status": "absent", "reason": "r"}, method="patch").status_code == status
    assert send(client, f"{url}void/", {"reason": "r"}).status_code == status
    records["mine"].refresh_from_db()
    assert records["mine"].voided == (status == 200)


def test_records_are_never_deleted_or_created_directly(client, world, records):
    as_user(client, world["registrar"])
    assert client.delete(f"/api/v1/attendance-records/{records['mine'].pk}/").status_code == 405
    assert send(client, "/api/v1/attendance-records/", {"session": 1}).status_code == 405


def test_records_sync_by_cursor(client, world, records):
    body = as_user(client, world["registrar"]).get("/api/v1/attendance-records/?page_size=1").json()
    seen = [row["id"] for row in body["results"]]
    seen += [row["id"] for row in client.get(body["next"]).json()["results"]]
    assert seen == sorted(
        [records["mine"].pk, records["theirs"].pk], key=lambda pk: (AttendanceRecord.objects.get(pk=pk).updated_at, pk)
    )


# --- Rates ------------------------------------------------------------------------------------


@pytest.fixture
def history(world):
    """Section X: three held sessions before DURING (present, late, absent for S; a second student
    present at all three) and one in the future."""
    section = world["section_x"]
    classmate = EnrollmentFactory(section=section, student=StudentFactory(student_number="S-CLASSMATE")).student
    days = [datetime.timedelta(days=d) for d in (7, 14, 21, 28)]
    sessions = [ClassSessionFactory(section=section, starts_at=SESSION_START + d, state="closed") for d in days[:3]]
    ClassSessionFactory(section=section, starts_at=SESSION_START + days[3])
    for session, status in zip(sessions, ["present", "late", "absent"], strict=True):
        AttendanceRecordFactory(session=session, student=world["student"], status=status)
        AttendanceRecordFactory(session=session, student=classmate, status="present")
    AttendanceRecordFactory(session=world["session_x"], student=world["student"])
    AttendanceRecordFactory(session=world["session_x"], student=classmate)
    return {"classmate": classmate}


AS_OF = SESSION_START + datetime.timedelta(days=22)


def test_student_reads_their_own_rates(client, world, history):
    with time_machine.travel(AS_OF, tick=False):
        body = as_user(client, world["student"].user).get("/api/v1/attendance-rates/").json()
    assert body["count"] == 1
    [row] = body["results"]
    assert row == {
        "enrollment": Enrollment.objects.get(student=world["student"]).pk, "student": world["student"].pk,
        "student_number": "S-SUBJECT-1", "section": world["section_x"].pk, "course_code": world["section_x"].course.code,
        "term": world["term"].pk, "held": 4, "attended": 3, "late": 1, "excused": 0, "absent": 1, "rate": "0.7500",
        "minimum": "0.75", "absences_left": 0, "cannot_reach_minimum": False,
    }  # fmt: skip
    assert "S-CLASSMATE" not in json.dumps(body)
    with time_machine.travel(AS_OF, tick=False):
        assert client.get(f"/api/v1/attendance-rates/?student={history['classmate'].pk}").json()["results"] == []


def test_lecturer_reads_section_rates_and_the_section_summary(client, world, history):
    as_user(client, world["lecturer"])
    with time_machine.travel(AS_OF, tick=False):
        rows = client.get(f"/api/v1/attendance-rates/?section={world['section_x'].pk}").json()["results"]
        summary = client.get("/api/v1/attendance-rates/sections/").json()
    assert {row["student_number"]: row["rate"] for row in rows} == {"S-CLASSMATE": "1.0000", "S-SUBJECT-1": "0.7500"}
    assert summary["results"] == [{
        "section": world["section_x"].pk, "course_code": world["section_x"].course.code, "term": world["term"].pk,
        "minimum": "0.75", "students": 2, "students_with_rate": 2, "average_rate": "0.8750", "below_minimum": 0,
        "cannot_reach_minimum": 0,
    }]  # fmt: skip
    as_user(client, world["other_lecturer"])
    with time_machine.travel(AS_OF, tick=False):
        assert client.get(f"/api/v1/attendance-rates/?section={world['section_x'].pk}").json()["results"] == []
        assert [r["section"] for r in client.get("/api/v1/attendance-rates/sections/").json()["results"]] == [
            world["section_y"].pk
        ]


def test_section_summary_counts_those_below_the_minimum(client, world, history):
    section = world["section_x"]
    section.min_attendance_rate = "0.80"
    section.save(update_fields=["min_attendance_rate"])
    with time_machine.travel(AS_OF, tick=False):
        [row] = (
            as_user(client, world["registrar"])
            .get(f"/api/v1/attendance-rates/sections/?section={section.pk}")
            .json()["results"]
        )
    assert (row["below_minimum"], row["minimum"]) == (1, "0.80")


def test_advisor_sees_only_their_advisees_in_the_summary(client, world, history):
    with time_machine.travel(AS_OF, tick=False):
        [row] = as_user(client, world["advisor"]).get("/api/v1/attendance-rates/sections/").json()["results"]
    assert (row["students"], row["average_rate"]) == (1, "0.7500")


# --- Query counts -----------------------------------------------------------------------------


def build_rows(n: int, term, lecturer, advisor, student) -> None:
    for _ in range(n):
        section = SectionFactory(term=term, lecturers=[lecturer])
        classmate = StudentFactory(advisor=advisor)
        EnrollmentFactory(student=classmate, section=section)
        EnrollmentFactory(student=student, section=section)
        session = ClassSessionFactory(section=section, state="closed")
        ProxyFlagFactory(record=AttendanceRecordFactory(session=session, student=classmate))
        AttendanceRecordFactory(session=session, student=student, status="late")


LIST_ENDPOINTS = [
    "/api/v1/class-sessions/?page_size=1000",
    "/api/v1/attendance-records/?page_size=1000",
    "/api/v1/attendance-rates/?page_size=200",
    "/api/v1/attendance-rates/sections/?page_size=200",
]


@pytest.mark.parametrize("role", [Role.REGISTRAR, Role.LECTURER, Role.ADVISOR, Role.STUDENT])
def test_list_endpoints_do_not_grow_queries_with_rows(client, role):
    viewer = UserFactory(roles=[role])
    lecturer = viewer if role == Role.LECTURER else UserFactory(roles=[Role.LECTURER])
    advisor = viewer if role == Role.ADVISOR else UserFactory(roles=[Role.ADVISOR])
    student = StudentFactory(user=viewer) if role == Role.STUDENT else StudentFactory()
    term = TermFactory()
    auth = bearer(viewer, scope=ApiToken.Scope.READ)

    def counts() -> dict[str, tuple[int, int]]:
        client.get("/api/v1/", **auth)  # the token's last use is recorded once, outside the counts
        result = {}
        for path in LIST_ENDPOINTS:
            with CaptureQueriesContext(connection) as queries:
                response = client.get(path, **auth)
            assert response.status_code == 200, path
            result[path] = len(queries)
        return result

    build_rows(5, term, lecturer, advisor, student)
    small = counts()
    build_rows(95, term, lecturer, advisor, student)
    large = counts()
    assert large == small


@pytest.mark.parametrize(
    "body",
    [
        {"token": "812.117741306.q3ZyV1c9aXbW0kT2"},
        {"token": "1.2.a"},
        {"token": " 812.117741306.q3ZyV1c9aXbW0kT2 "},  # trimmed by the serializer
        {"token": "812.117741306.q3ZyV1c9aXbW0kT2", "session": 812},
        {"token": "812.117741306.q3ZyV1c9aXbW0kT2", "session": "812"},
        {"token": "not a token"},
        {"token": "812.117741306." + "x" * 90},
        {"token": ""},
        {"token": 812},
        {"token": None},
        {"token": "1.2.a", "status": "excused"},
        {"card_uid": "04A2246A8F5C80", "reader_id": "B2.14-door"},
        {"student": 3307, "session": 812},
        {},
        [],
        "token",
    ],
)
def test_check_in_values_are_what_the_serializer_says(body):
    """A well-formed scan skips building the serializer (the hot path); the result, or the error,
    must be the serializer's for every body."""
    from rest_framework.exceptions import ValidationError

    from attendance.serializers import CheckInSerializer, check_in_values

    serializer = CheckInSerializer(data=body)
    if serializer.is_valid():
        assert check_in_values(body) == dict(serializer.validated_data)
    else:
        with pytest.raises(ValidationError) as error:
            check_in_values(body)
        assert error.value.detail == serializer.errors
