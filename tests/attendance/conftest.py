"""Fixtures of the attendance tests: each test starts with no check-in budget spent, and the API tests
share one world of two sections with an open session each (tests/attendance/world.py)."""

import pytest
import time_machine
from django.core.cache import caches

from tests.attendance.world import DURING, attendance_world


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
