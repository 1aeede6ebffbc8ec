"""One check-in budget per person across the portal and the API, and Retry-After on every 429."""

import pytest
from rest_framework.test import APIClient

from tests.factories import StudentFactory
from tests.security.fuzzing import bearer

pytestmark = pytest.mark.django_db


def test_the_portal_and_the_api_draw_on_one_budget_and_every_429_says_when(client, settings):
    settings.ATTENDANCE_CHECK_IN_RATE_PER_USER = "4/m"
    student = StudentFactory()
    client.force_login(student.user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=bearer(student.user)["Authorization"])
    statuses = []
    for attempt in range(6):  # alternating: the portal's code page, then the API
        if attempt % 2 == 0:
            response = client.post("/attendance/check-in/code/", {"code": "000000"})
        else:
            response = api.post("/api/v1/check-ins/", {"token": "forged"}, format="json")
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert 0 < int(response["Retry-After"]) <= 60
    assert statuses == [400, 400, 400, 400, 429, 429]  # four in all, not four on each path
    portal = client.post("/attendance/check-in/code/", {"code": "000000"})
    assert portal.status_code == 429 and portal["Content-Type"].startswith("text/html")
    assert f"wait {portal['Retry-After']} seconds" in portal.content.decode()
