"""CampusIQ's production WSGI app with three places made to raise, for the no-secret-in-any-output tests
(tests/core/test_telemetry_live.py; gunicorn loads it instead of campusiq.wsgi there, nowhere else):
checking a password, in the portal's sign-in form and in the token endpoint, raises for FAULT_PASSWORD
only, with the password and an API token in the frames' locals; reading one's current API token
raises with the caller's bearer key in a local."""

from campusiq.wsgi import application  # noqa: F401, I001  (first: it sets Django up; what gunicorn serves)

import django.contrib.auth.forms
from rest_framework.response import Response

import accounts.apis
from tests.support.faulty_tasks import FAULT_PASSWORD, FAULT_TOKEN


def failing_for_the_fault_password(authenticate):
    def checked(request=None, **credentials):
        if credentials.get("password") == FAULT_PASSWORD:
            held = {"email": credentials.get("username"), "password": credentials["password"]}
            login = (credentials.get("username"), credentials["password"])  # no name says "secret" here
            api_key = FAULT_TOKEN
            raise RuntimeError(f"fault injected while checking a password ({len(held)}, {len(login)}, {len(api_key)})")
        return authenticate(request, **credentials)

    return checked


def current_token_failing(self, request) -> Response:
    header = request.headers["Authorization"]
    raise RuntimeError(f"fault injected while reading the current token ({len(header)})")


django.contrib.auth.forms.authenticate = failing_for_the_fault_password(django.contrib.auth.forms.authenticate)
accounts.apis.authenticate = failing_for_the_fault_password(accounts.apis.authenticate)
accounts.apis.CurrentTokenApi.get = current_token_failing
