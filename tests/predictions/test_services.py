"""The advisors' follow-up services: closing an intervention is the student's advisor's or registry staff's,
audited, once; the database refuses an outcome on an open one."""

import pytest
from django.db import IntegrityError

from accounts.roles import Role
from campusiq.core.errors import ServiceError
from campusiq.core.models import AuditLogEntry
from predictions.services import intervention_close
from tests.factories import InterventionFactory, StudentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def advisor():
    return UserFactory(roles=[Role.ADVISOR])


@pytest.fixture
def intervention(advisor, term):
    return InterventionFactory(student=StudentFactory(advisor=advisor), term=term, advisor=advisor)


def test_the_advisor_closes_an_intervention_with_its_outcome_audited(advisor, intervention):
    closed = intervention_close(intervention=intervention, actor=advisor, outcome="  Back in class  ")
    intervention.refresh_from_db()
    assert intervention.closed_at is not None and not intervention.is_open
    assert intervention.outcome == "Back in class" == closed.outcome
    entry = AuditLogEntry.objects.get(verb="intervention.closed")
    assert (entry.actor_id, entry.object_id) == (advisor.pk, str(intervention.pk))
    assert entry.changes["outcome"] == ["", "Back in class"]


def test_registry_staff_may_close_any_intervention(intervention):
    registrar = UserFactory(roles=[Role.REGISTRAR])
    intervention_close(intervention=intervention, actor=registrar, outcome="")
    intervention.refresh_from_db()
    assert intervention.closed_at is not None


@pytest.mark.parametrize("who", ["other_advisor", "recorder_no_longer_advisor", "student"])
def test_only_the_students_advisor_may_close_it_and_a_refusal_writes_nothing(advisor, intervention, who):
    if who == "other_advisor":
        actor = UserFactory(roles=[Role.ADVISOR])
    elif who == "student":
        actor = intervention.student.user
    else:  # the student changed advisor since the intervention was recorded
        intervention.student.advisor = UserFactory(roles=[Role.ADVISOR])
        intervention.student.save(update_fields=["advisor"])
        actor = advisor
    with pytest.raises(ServiceError) as refused:
        intervention_close(intervention=intervention, actor=actor, outcome="done")
    assert (refused.value.code, refused.value.status) == ("not_advisor", 403)
    intervention.refresh_from_db()
    assert intervention.closed_at is None and intervention.outcome == ""
    assert not AuditLogEntry.objects.filter(verb="intervention.closed").exists()


def test_closing_twice_is_refused_and_keeps_the_first_outcome(advisor, intervention):
    intervention_close(intervention=intervention, actor=advisor, outcome="first")
    with pytest.raises(ServiceError) as refused:
        intervention_close(intervention=intervention, actor=advisor, outcome="second")
    assert (refused.value.code, refused.value.status) == ("already_closed", 409)
    assert "already closed" in refused.value.detail
    intervention.refresh_from_db()
    assert intervention.outcome == "first"
    assert AuditLogEntry.objects.filter(verb="intervention.closed").count() == 1


def test_the_database_refuses_an_outcome_on_an_open_intervention(intervention):
    intervention.outcome = "not closed"
    with pytest.raises(IntegrityError):
        intervention.save(update_fields=["outcome"])
