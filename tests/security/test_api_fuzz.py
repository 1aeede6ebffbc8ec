"""Schemathesis against /api/schema/ as a student, a lecturer and a registrar (tests/security/fuzzing.py),
per operation and in linked sequences (the stateful phase): no 5xx, and every answer matches the schema.
CAMPUSIQ_FUZZ_EXAMPLES bounds the run (bench/api_fuzz.py runs a longer one); the counts and times are
printed at the end of the pytest run."""

import pytest

from accounts.models import User
from tests.security import fuzzing

pytestmark = pytest.mark.django_db


@pytest.fixture
def campus(db):
    return fuzzing.campus_build()


@pytest.mark.parametrize("role", fuzzing.ROLES)
def test_every_operation_answers_as_its_schema_says(campus, role):
    users, ids = campus
    report = fuzzing.fuzz_role(role=role, user=users[role], ids=ids, examples=fuzzing.max_examples())
    assert not report.failures, f"{report.summary()}\n\n" + "\n\n".join(map(str, report.failures))
    # Every operation of the schema was called, and the token was accepted: mostly not 401s.
    assert len(report.operations) >= 75
    assert report.statuses[401] < report.cases * 0.05
    assert sum(count for status, count in report.statuses.items() if status < 300) > report.cases * 0.1


def test_the_fuzzer_reports_a_server_error_and_an_answer_off_schema(campus, monkeypatch):
    """Not vacuous: GET /api/v1/me/ crashing, then answering a name that is not a string, is reported."""
    users, ids = campus

    def crash(user):
        raise RuntimeError("deliberate")

    monkeypatch.setattr(User, "get_full_name", crash)
    report = fuzzing.fuzz_role(role="student", user=users["student"], ids=ids, examples=2, only="GET /api/v1/me/")
    assert {f.check for f in report.failures} == {"ServerError"}  # 500 is documented (problem+json), never accepted

    monkeypatch.setattr(User, "get_full_name", lambda user: None)
    report = fuzzing.fuzz_role(role="student", user=users["student"], ids=ids, examples=2, only="GET /api/v1/me/")
    assert {f.check for f in report.failures} == {"JsonSchemaError"}


@pytest.mark.parametrize("role", fuzzing.ROLES)
def test_sequences_of_linked_operations_answer_as_the_schema_says(campus, role):
    """The stateful phase: later calls take their ids from earlier answers (create, then read, change,
    delete what was created), which reaches rows and states the per-operation phase does not."""
    users, _ = campus
    report = fuzzing.fuzz_role_stateful(role=role, user=users[role], examples=fuzzing.max_examples())
    assert not report.failures, f"{report.summary()}\n\n" + "\n\n".join(map(str, report.failures))
    assert report.statuses[401] < report.cases * 0.05
    # Links were followed, not only entry points called at random.
    assert report.linked_cases > report.cases * 0.05
    assert len(report.links) >= 15


def test_the_stateful_phase_reports_a_server_error_behind_a_link(campus, monkeypatch):
    """Not vacuous: reading one term by the id an earlier answer gave crashes, and that step, reached
    along a link, is reported."""
    from students import serializers

    users, _ = campus
    original = serializers.TermSerializer.to_representation

    def crash_on_detail(serializer, instance):
        if serializer.parent is None and serializer.context["view"].action == "retrieve":
            raise RuntimeError("deliberate")
        return original(serializer, instance)

    monkeypatch.setattr(serializers.TermSerializer, "to_representation", crash_on_detail)
    report = fuzzing.fuzz_role_stateful(role="registrar", user=users["registrar"], examples=2, only="^/api/v1/terms/")
    crashed = {f.operation for f in report.failures if f.check == "ServerError"}
    assert any(label == "GET /api/v1/terms/{id}/ [stateful, along a link]" for label in crashed), report.failures
