"""Schemathesis against /api/schema/, in process: the WSGI app, a small campus built with the
factories, and a bearer token per role. Shared by tests/security/test_api_fuzz.py (bounded, in CI)
and bench/api_fuzz.py (the longer run).

Two phases. Per operation: every operation is called with inputs schemathesis generates from the
schema, valid ones and invalid ones, with random ids and with the id of a row that exists. Stateful:
sequences of calls in which a later call takes its ids and values from an earlier answer, along the
links schemathesis infers between operations (create a term, then read, change and delete that term;
list enrollments, then end one). Every answer must be: not a 5xx, a documented status code with its
documented content type and headers, a body matching the schema. Generation is seeded per operation
and mode, and the stateful phase is derandomized, so a run is the same every time.
"""

import contextlib
import datetime
import json
import os
import time
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field

import hypothesis
import hypothesis.errors
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import DatabaseError, close_old_connections, transaction
from hypothesis import HealthCheck, Phase
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure as CheckFailure
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.generation.stateful.state_machine import StepOutput
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import ApiToken
from accounts.roles import Role
from accounts.tokens import api_token_issue
from tests import factories

ROLES = ("student", "lecturer", "registrar")
# Examples per operation, mode and id variant. CI: the default (three roles in about two minutes on a
# 2-core machine with PostgreSQL); `make bench` (bench/api_fuzz.py): many more.
EXAMPLES_ENV = "CAMPUSIQ_FUZZ_EXAMPLES"
DEFAULT_EXAMPLES = 5
# Where bench/api_fuzz.py wants the reports as JSON (one object per role), if anywhere.
REPORT_ENV = "CAMPUSIQ_FUZZ_REPORT"
SCHEMA_PATH = "/api/schema/"
# Invalid inputs (the negative cases) go through the same checks: never a 5xx, only documented statuses
# and bodies. Not schemathesis's negative_data_rejection ("every invalid input answers 4xx"): the API
# neutralises some by design, as issue 8 allows: a page_size that is not a number falls back to the
# default and one above the cap is capped; an empty filter (`?term=`) is no filter; a number sent for a
# text field is taken as its text (DRF). tests/security/test_bad_input.py pins each of those down.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
# Stateful phase: scenarios per role for each example of the per-operation phase, of at most this many
# calls (long scenarios follow more links: 50 calls followed ~15 % of them, 10 calls ~4 %).
SCENARIOS_PER_EXAMPLE = 2
SCENARIO_STEPS = 50
# Revoking the token in use would turn every later case into a 401: that operation gets a fresh token.
REVOKES_OWN_TOKEN = "DELETE /api/v1/auth/token/current/"
# Reports of this process's runs, for the summary at the end of the pytest run (tests/security/conftest.py).
REPORTS: list["FuzzReport"] = []


def max_examples() -> int:
    return int(os.environ.get(EXAMPLES_ENV, DEFAULT_EXAMPLES))


@dataclass
class Failure:
    operation: str
    check: str
    status: int
    message: str
    curl: str

    def __str__(self) -> str:
        return f"{self.operation}: {self.check} ({self.status})\n{self.message}\n  {self.curl}"


@dataclass
class FuzzReport:
    role: str
    examples: int
    phase: str = "per operation"
    only: str | None = None
    cases: int = 0
    # Stateful phase: calls whose ids or values came from an earlier answer, by the operation they called.
    linked_cases: int = 0
    links: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    statuses: Counter = field(default_factory=Counter)
    operations: Counter = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)

    def add(self, failure: Failure) -> None:
        """The first failure of each check on each operation (the rest repeat it)."""
        if not any((f.operation, f.check) == (failure.operation, failure.check) for f in self.failures):
            self.failures.append(failure)

    def summary(self) -> str:
        statuses = ", ".join(f"{status}: {count}" for status, count in sorted(self.statuses.items()))
        linked = f", {self.linked_cases} along {len(self.links)} links" if self.phase == "stateful" else ""
        return (
            f"{self.role} ({self.phase}): {self.cases} cases{linked} over {len(self.operations)} operations "
            f"in {self.seconds:.1f} s ({self.examples} examples; {statuses}); {len(self.failures)} failures"
        )

    def as_json(self) -> dict:
        counters = {name: dict(getattr(self, name)) for name in ("statuses", "operations", "links")}
        return {**asdict(self), **counters}


def campus_build() -> tuple[dict[str, object], dict[str, int]]:
    """A lecturer teaching a section of the current term with an enrolled, graded, checked-in student,
    a registrar, a scored risk model: enough that reads find rows and writes have ids to point at.
    Returns the users by role and, by collection, the id of a row in it."""
    term = factories.TermFactory(
        name="Autumn 2026",
        start_date=datetime.date(2026, 9, 14),
        end_date=datetime.date(2027, 1, 29),
        add_drop_deadline=datetime.date(2026, 9, 28),
    )
    lecturer = factories.UserFactory(roles=[Role.LECTURER], email="lecturer@fuzz.example")
    advisor = factories.UserFactory(roles=[Role.ADVISOR], email="advisor@fuzz.example")
    registrar = factories.UserFactory(roles=[Role.REGISTRAR], email="registrar@fuzz.example")
    student = factories.StudentFactory(user__email="student@fuzz.example", advisor=advisor)
    section = factories.SectionFactory(term=term, lecturers=[lecturer])
    enrollment = factories.EnrollmentFactory(student=student, section=section)
    factories.EnrollmentFactory(section=section)
    assessment = factories.AssessmentFactory(section=section)
    grade = factories.GradeFactory(student=student, assessment=assessment)
    outcome = factories.TermOutcomeFactory(student=student, term=factories.TermFactory(name="Spring 2026"))
    session = factories.ClassSessionFactory(section=section)
    record = factories.AttendanceRecordFactory(session=session, student=student)
    run = factories.ScoringRunFactory(term=term)
    score = factories.RiskScoreFactory(run=run, student=student)
    users = {"student": student.user, "lecturer": lecturer, "registrar": registrar}
    ids = {
        "departments": section.course.department_id,
        "programs": student.program_id,
        "courses": section.course_id,
        "terms": term.pk,
        "sections": section.pk,
        "assessments": assessment.pk,
        "students": student.pk,
        "enrollments": enrollment.pk,
        "grades": grade.pk,
        "term-outcomes": outcome.pk,
        "class-sessions": session.pk,
        "attendance-records": record.pk,
        "risk-scores": score.pk,
        "scoring-runs": run.pk,
        "model-versions": run.model_version_id,
    }
    return users, ids


def bearer(user) -> dict[str, str]:
    _, key = api_token_issue(user=user, name="fuzz", scope=ApiToken.Scope.READ_WRITE)
    return {"Authorization": f"Bearer {key}"}


@contextlib.contextmanager
def in_process_app():
    """The WSGI app, sharing the test's database connection. Like Django's test client, it leaves out
    the per-request connection clean-up, which would otherwise end the test's transaction."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def call_in_savepoint(case, headers: dict[str, str]):
    """One request in its own savepoint. In production each request runs in autocommit, so a database
    error ends with that request; inside the test's transaction it would abort every later one."""
    response = None
    try:
        with transaction.atomic():
            response = case.call(headers=headers)
    except DatabaseError:
        pass  # the request failed in the database and answered 500 (a failure); its savepoint is rolled back
    return response


def fuzz_role(*, role: str, user, ids: dict[str, int], examples: int, only: str | None = None) -> FuzzReport:
    """Every operation (or those whose label contains `only`), as `user`."""
    report = FuzzReport(role=role, examples=examples, only=only)
    started = time.perf_counter()
    headers = bearer(user)
    with in_process_app() as app:
        schema = schemathesis.openapi.from_wsgi(SCHEMA_PATH, app)
        for result in schema.get_all_operations():
            operation = result.ok()
            if only and only not in operation.label:
                continue
            variants = [None]
            if "{id}" in operation.path:
                variants.append({"id": ids[operation.path.removeprefix("/api/v1/").split("/")[0]]})
            for path_parameters in variants:
                for mode in MODES:
                    if path_parameters and mode is GenerationMode.NEGATIVE and _only_path_parameters(operation):
                        continue  # the id is fixed: nothing is left to make invalid
                    _fuzz_operation(operation, mode, path_parameters, user, headers, examples, report)
    return _report_keep(report, started)


def fuzz_role_stateful(*, role: str, user, examples: int, only: str | None = None) -> FuzzReport:
    """Sequences of calls along the links between operations (those whose path contains `only`), as `user`."""
    report = FuzzReport(role=role, examples=examples, phase="stateful", only=only)
    started = time.perf_counter()
    headers = bearer(user)
    with in_process_app() as app:
        schema = schemathesis.openapi.from_wsgi(SCHEMA_PATH, app)
        if only:
            schema = schema.include(path_regex=only)

        class Scenario(schema.as_state_machine()):
            # Each scenario starts from the same campus: what one wrote is rolled back before the next,
            # so the rules a scenario can take do not depend on the ones before it (Hypothesis replays
            # scenarios and refuses generation that depends on outside state).
            def setup(self):
                self.savepoint = transaction.savepoint()

            def teardown(self):
                transaction.savepoint_rollback(self.savepoint)

            def step(self, input):
                case = input.case
                link = input.transition.id if input.transition is not None and input.is_applied else None
                label = f"{case.operation.label} [stateful{', along a link' if link else ''}]"
                response = _call_and_check(case, label, user, headers, report)
                if link:
                    report.linked_cases += 1
                    report.links[link] += 1
                if response is None:
                    hypothesis.reject()  # nothing to take ids from; the failure is in the report
                return StepOutput(response, case)

        Scenario.run(
            settings=hypothesis.settings(
                max_examples=examples * SCENARIOS_PER_EXAMPLE,
                stateful_step_count=SCENARIO_STEPS,
                derandomize=True,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
                print_blob=False,
            )
        )
    return _report_keep(report, started)


def _report_keep(report: FuzzReport, started: float) -> FuzzReport:
    report.seconds = time.perf_counter() - started
    REPORTS.append(report)
    if path := os.environ.get(REPORT_ENV):
        with open(path, "a") as out:
            out.write(json.dumps(report.as_json()) + "\n")
    return report


def _call_and_check(case, label: str, user, headers: dict[str, str], report: FuzzReport):
    """One call, counted, its answer run through every check; failures go to the report, not raised, so
    one run reports every failing operation. Returns the response (None when the database failed)."""
    call_headers = bearer(user) if case.operation.label == REVOKES_OWN_TOKEN else headers
    response = call_in_savepoint(case, call_headers)
    report.cases += 1
    report.operations[case.operation.label] += 1
    if response is None:
        report.add(Failure(label, "DatabaseError", 500, "the request failed in the database", case.as_curl_command()))
        return None
    report.statuses[response.status_code] += 1
    try:
        case.validate_response(response, checks=CHECKS, headers=call_headers)
    except (FailureGroup, CheckFailure) as failure:
        for error in getattr(failure, "exceptions", [failure]):
            curl = case.as_curl_command(headers=call_headers)
            report.add(Failure(label, type(error).__name__, response.status_code, str(error)[:1500], curl[:1500]))
    return response


def _only_path_parameters(operation) -> bool:
    return not (operation.body or operation.headers or operation.cookies or operation.query)


def _fuzz_operation(operation, mode, path_parameters, user, headers, examples, report) -> None:
    label = f"{operation.label} [{mode.value}{', existing id' if path_parameters else ''}]"
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    # Seeded per operation and mode, no example database, no deadline: the same cases on every run.
    @hypothesis.seed(zlib.crc32(label.encode()))
    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @hypothesis.given(case=strategy)
    def run(case):
        _call_and_check(case, label, user, headers, report)

    # Unsatisfiable: nothing to make invalid (an operation without parameters or body).
    with contextlib.suppress(hypothesis.errors.Unsatisfiable):
        run()
