"""Rotating tokens: accepted in their own step and the one before, then dead; forged ones never."""

import datetime

import pytest
import time_machine

from attendance import qr
from attendance.errors import AttendanceErrorCode as Code
from campusiq.core.errors import ServiceError
from tests.factories import ClassSessionFactory

pytestmark = pytest.mark.django_db
T0 = datetime.datetime(2026, 9, 14, 10, 0, 3, tzinfo=datetime.UTC)


@pytest.fixture
def session():
    return ClassSessionFactory(state="open")


def refusal(token: str, at: datetime.datetime) -> str:
    with pytest.raises(ServiceError) as error:
        qr.qr_token_verify(token, at=at)
    return error.value.code


def test_token_names_its_session_and_step(session):
    step = qr.step_at(T0)
    assert qr.qr_token_verify(qr.qr_token_make(session, step), at=T0) == (session, step)


def test_accepted_in_its_step_and_the_next_then_dead(session, settings):
    settings.ATTENDANCE_QR_ROTATION_SECONDS = 15
    step = qr.step_at(T0)
    token = qr.qr_token_make(session, step)
    step_start = qr.step_starts_at(step)
    assert qr.qr_token_verify(token, at=step_start + datetime.timedelta(seconds=14.9))
    assert qr.qr_token_verify(token, at=step_start + datetime.timedelta(seconds=29.9))
    assert refusal(token, step_start + datetime.timedelta(seconds=30)) == Code.TOKEN_EXPIRED


def test_token_from_the_future_is_forged(session):
    step = qr.step_at(T0)
    assert refusal(qr.qr_token_make(session, step + 1), T0) == Code.TOKEN_INVALID


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # signature changed
        lambda t: "9999." + t.split(".", 1)[1],  # another session id
        lambda t: t.split(".")[0] + "." + str(int(t.split(".")[1]) - 1) + "." + t.split(".")[2],  # step moved
        lambda t: "",
        lambda t: "1.2",
        lambda t: "a.b.c",
        lambda t: t + ".extra",
        lambda t: "1." + "9" * 200 + ".x",
    ],
)
def test_forged_tokens_are_invalid(session, mangle):
    token = qr.qr_token_make(session, qr.step_at(T0))
    assert refusal(mangle(token), T0) == Code.TOKEN_INVALID


def test_token_of_one_session_is_not_valid_for_another():
    first, second = ClassSessionFactory(state="open"), ClassSessionFactory(state="open")
    step = qr.step_at(T0)
    token = qr.qr_token_make(first, step)
    forged = f"{second.pk}.{step}.{token.split('.')[2]}"
    assert refusal(forged, T0) == Code.TOKEN_INVALID


def test_rotating_the_salt_kills_issued_tokens(session):
    token = qr.qr_token_make(session, qr.step_at(T0))
    session.token_salt = "0" * 32
    session.save(update_fields=["token_salt"])
    assert refusal(token, T0) == Code.TOKEN_INVALID


def test_numeric_code_rotates_and_is_accepted_for_two_steps(session):
    step = qr.step_at(T0)
    code = qr.numeric_code(session, step)
    assert len(code) == 6 and code.isdigit()
    assert qr.numeric_code(session, step + 1) != code or qr.numeric_code(session, step + 2) != code
    assert qr.numeric_code_matches(session, code, at=T0)
    assert qr.numeric_code_matches(session, code, at=qr.step_starts_at(step + 1))
    assert not qr.numeric_code_matches(session, code, at=qr.step_starts_at(step + 2))
    assert not qr.numeric_code_matches(ClassSessionFactory(state="open"), code, at=T0)  # another salt: 1 in 500,000


def test_make_uses_the_current_step(session):
    with time_machine.travel(T0, tick=False):
        token = qr.qr_token_make(session)
    assert token.split(".")[1] == str(qr.step_at(T0))


def test_qr_svg_is_inline_svg():
    svg = qr.qr_svg("https://campus.example/c/1.2.abc/")
    assert svg.startswith("<svg") and "<script" not in svg


def test_a_closed_session_is_seen_at_once_despite_the_cache(session):
    step = qr.step_at(T0)
    token = qr.qr_token_make(session, step)
    assert qr.qr_token_verify(token, at=T0)[0].state == "open"  # now cached
    session.state = "closed"
    session.save(update_fields=["state"])
    assert qr.qr_token_verify(token, at=T0)[0].state == "closed"


def test_a_process_remembers_a_session_for_a_second_then_reads_it_again(session, settings, monkeypatch):
    """Another process's change (no signal here) is seen once this process's second is up."""
    settings.ATTENDANCE_SESSION_LOCAL_CACHE_SECONDS = 1.0
    clock = [1000.0]
    monkeypatch.setattr(qr.time, "monotonic", lambda: clock[0])
    assert qr.class_session_cached(session.pk).state == "open"
    # As another worker's close looks from here: the row and the shared cache change, this memory not.
    type(session).objects.filter(pk=session.pk).update(state="closed")
    qr.cache.delete(qr._session_cache_key(session.pk))
    clock[0] += 0.9
    assert qr.class_session_cached(session.pk).state == "open"
    clock[0] += 0.2
    assert qr.class_session_cached(session.pk).state == "closed"


def test_a_save_in_this_process_is_seen_at_once(session, settings):
    settings.ATTENDANCE_SESSION_LOCAL_CACHE_SECONDS = 60.0
    assert qr.class_session_cached(session.pk).state == "open"
    session.state = "cancelled"
    session.save(update_fields=["state"])
    assert qr.class_session_cached(session.pk).state == "cancelled"


def test_without_the_local_cache_every_read_goes_to_the_shared_cache(session, settings, django_assert_num_queries):
    settings.ATTENDANCE_SESSION_LOCAL_CACHE_SECONDS = 0
    qr.class_session_cached(session.pk)
    type(session).objects.filter(pk=session.pk).update(room="Z9")
    qr.cache.delete(qr._session_cache_key(session.pk))
    with django_assert_num_queries(1):
        assert qr.class_session_cached(session.pk).room == "Z9"


def test_the_local_cache_is_bounded(settings):
    settings.ATTENDANCE_SESSION_LOCAL_CACHE_SECONDS = 60.0
    sessions = ClassSessionFactory.create_batch(3)
    for s in sessions:
        qr.class_session_cached(s.pk)
    assert len(qr._recent_sessions) == 3
    original = qr.RECENT_SESSIONS_MAX
    try:
        qr.RECENT_SESSIONS_MAX = 3
        qr.class_session_cached(ClassSessionFactory().pk)
        assert len(qr._recent_sessions) == 1
    finally:
        qr.RECENT_SESSIONS_MAX = original
