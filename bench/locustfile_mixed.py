"""The mixed workload of the reliability tests (tests/reliability/) and bench/reliability.py, at a
fixed rate: students browsing the portal (signed in), a check-in burst (distinct students, fresh QR
tokens) and integrators reading the API with tokens.

Environment (bench/reliability_data.py writes the data file):
    RELIABILITY_DATA          the JSON data file
    RELIABILITY_SESSION       the class session checked in to (one per run: each student checks in once)
    RELIABILITY_RESULTS       where the students answered 201 (and those refused) are written at the end
    RELIABILITY_PHASE_FILE    optional: a file holding the phase ("before", "outage", ...), added to
                              each request's name so that locust reports each phase apart
    RELIABILITY_{PORTAL,CHECK_IN,INTEGRATOR}_USERS and _RATE   users of each kind, requests/s each

Every client comes through the reverse proxy (X-Forwarded-Proto: https, its own X-Forwarded-For),
so the production settings' HTTPS redirect and per-address rate limits apply as they would.
"""

import collections
import itertools
import json
import os
import re

import django
import gevent
from locust import FastHttpUser, HttpUser, constant_throughput, events, task
from locust.exception import StopUser

django.setup()

from attendance.models import ClassSession  # noqa: E402
from attendance.qr import qr_token_make  # noqa: E402

DATA = json.loads(open(os.environ["RELIABILITY_DATA"]).read())  # noqa: SIM115
SESSION = DATA["sessions"][os.environ.get("RELIABILITY_SESSION", "mixed")]
PHASE_FILE = os.environ.get("RELIABILITY_PHASE_FILE")
HTTPS = {"X-Forwarded-Proto": "https"}
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
PROBLEM_CODE = re.compile(r'"code":\s*"([a-z_]+)"')

_portal_accounts = itertools.cycle(DATA["portal"])
_next_student = itertools.count()
_user_numbers = itertools.count(1)
_next_page = itertools.count()
_next_list = itertools.count()
checked_in: list[int] = []
refused: list[int] = []
statuses: collections.Counter = collections.Counter()


def _env(name: str, default: float) -> float:
    return float(os.environ.get(f"RELIABILITY_{name}", default))


def named(name: str) -> str:
    if not PHASE_FILE:
        return name
    try:
        with open(PHASE_FILE) as phase:
            return f"{name} [{phase.read().strip() or 'before'}]"
    except OSError:
        return f"{name} [before]"


def expect(response, *statuses_ok: int) -> bool:
    """Marks anything else a failure named by its status and problem code (or "page")."""
    status = response.status_code
    if status in statuses_ok:
        response.success()
        return True
    match = PROBLEM_CODE.search(response.text or "") if status else None
    response.failure(f"{status} {match.group(1) if match else 'page'}")
    return False


class PortalStudent(HttpUser):
    """Signs in once, then browses their dashboard, attendance and profile."""

    fixed_count = int(_env("PORTAL_USERS", 6))
    wait_time = constant_throughput(_env("PORTAL_RATE", 1))
    pages = ("/portal/student/", "/attendance/me/", "/portal/student/profile/", "/")

    def on_start(self):
        number = next(_user_numbers)
        # Spread the sign-ins (an Argon2 hash each): a class does not sign in within the same second.
        gevent.sleep((number - 1) * 0.4)
        self.headers = {**HTTPS, "X-Forwarded-For": f"10.1.{number // 250}.{number % 250 + 1}"}
        self.cookies = ""
        # The production cookies are Secure (__Host-); the client speaks HTTP to gunicorn behind the
        # "proxy", so it carries them itself.
        with self.client.get("/accounts/login/", headers=self.headers, name=named("sign-in page"),
                             catch_response=True) as page:  # fmt: skip
            if not expect(page, 200):
                raise StopUser
            csrf_cookie = page.cookies.get("__Host-csrftoken")
            csrf_input = CSRF_INPUT.search(page.text)
        origin = self.host.replace("http://", "https://")
        with self.client.post(
            "/accounts/login/",
            data={"username": next(_portal_accounts), "password": DATA["password"],
                  "csrfmiddlewaretoken": csrf_input.group(1) if csrf_input else ""},
            headers={**self.headers, "Cookie": f"__Host-csrftoken={csrf_cookie}", "Origin": origin,
                     "Referer": f"{origin}/accounts/login/"},
            allow_redirects=False, name=named("sign-in"), catch_response=True,
        ) as signed_in:  # fmt: skip
            if not expect(signed_in, 302):
                raise StopUser
            self.cookies = f"__Host-sessionid={signed_in.cookies.get('__Host-sessionid')}"

    @task
    def browse(self):
        path = self.pages[next(_next_page) % len(self.pages)]
        with self.client.get(path, headers={**self.headers, "Cookie": self.cookies}, allow_redirects=False,
                             name=named(f"portal {path}"), catch_response=True) as page:  # fmt: skip
            expect(page, 200)


class CheckInStudent(FastHttpUser):
    """Each check-in a different student with a fresh QR token, as phones scanning the screen."""

    fixed_count = int(_env("CHECK_IN_USERS", 6))
    wait_time = constant_throughput(_env("CHECK_IN_RATE", 1))

    @task
    def check_in(self):
        index = next(_next_student)
        if index >= len(DATA["check_in"]["keys"]):
            raise StopUser
        headers = {
            **HTTPS, "Authorization": f"Bearer {DATA['check_in']['keys'][index]}",
            "X-Forwarded-For": f"193.136.{index % 16}.1", "Content-Type": "application/json",
        }  # fmt: skip
        session = ClassSession(pk=SESSION["id"], token_salt=SESSION["salt"])
        body = json.dumps({"token": qr_token_make(session)})
        with self.client.post("/api/v1/check-ins/", data=body, headers=headers, name=named("check-in"),
                              catch_response=True) as response:  # fmt: skip
            statuses[response.status_code] += 1
            student = DATA["check_in"]["students"][index]
            (checked_in if expect(response, 201) else refused).append(student)


class Integrator(FastHttpUser):
    """A BI tool paging through lists with its read token."""

    fixed_count = int(_env("INTEGRATOR_USERS", 3))
    wait_time = constant_throughput(_env("INTEGRATOR_RATE", 1))
    lists = (
        "/api/v1/students/?page_size=50",
        "/api/v1/enrollments/?page_size=50",
        "/api/v1/sections/",
        f"/api/v1/attendance-records/?session={SESSION['id']}&page_size=50",
    )

    @task
    def read(self):
        path = self.lists[next(_next_list) % len(self.lists)]
        headers = {**HTTPS, "Authorization": f"Bearer {DATA['integrator_key']}", "X-Forwarded-For": "10.9.0.1"}
        with self.client.get(path, headers=headers, name=named(f"api {path.split('?')[0]}"),
                             catch_response=True) as response:  # fmt: skip
            expect(response, 200)


@events.quitting.add_listener
def _write_results(environment, **kwargs):
    path = os.environ.get("RELIABILITY_RESULTS")
    if path:
        with open(path, "w") as out:
            statuses_seen = {str(status): count for status, count in statuses.items()}
            json.dump({"checked_in": checked_in, "refused": refused, "statuses": statuses_seen}, out)
