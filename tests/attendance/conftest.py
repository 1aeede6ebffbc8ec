"""Fixtures of the attendance tests: each test starts with no check-in budget spent, and the API tests
share one world of two sections with an open session each (tests/attendance/world.py)."""

import pytest
import time_machine
from django.core.cache import caches

from accounts.roles import Role
from tests.attendance.world import DURING, attendance_world
from tests.factories import EnrollmentFactory, SectionFactory, StudentFactory, UserFactory


@pytest.fixture(autouse=True)
def fresh_rate_limits(db):
    """Check-ins count in the ratelimit cache: each test starts with none spent."""
    caches["ratelimit"].clear()


@pytest.fixture
def world():
    return attendance_world()


@pytest.fixture
def during():
    with time_machine.travel(DURING, tick=False) as traveller:
        yield traveller


# A section, its lecturer and a student in it: the hand-built fixture of most service and page tests
# (files that need more, an advisor or an open session, define their own).
@pytest.fixture
def lecturer():
    return UserFactory(roles=[Role.LECTURER])


@pytest.fixture
def section(lecturer):
    return SectionFactory(lecturers=[lecturer])


@pytest.fixture
def student(section):
    return EnrollmentFactory(section=section, student=StudentFactory(user__roles=[Role.STUDENT])).student
