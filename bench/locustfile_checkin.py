"""Load of the check-in benchmark. bench/checkin.py runs it, naming the user class of each phase.

Each simulated student holds their personal API token and scans the screen at the moment of the
request: the QR token is made then, for that session, exactly as the lecturer's display makes it.
"""

import itertools
import json
import os
import time

import django
import gevent
from gevent.event import Event
from locust import FastHttpUser, constant, task
from locust.exception import StopUser

django.setup()

from django.utils import timezone  # noqa: E402

from attendance.models import ClassSession  # noqa: E402
from attendance.qr import qr_token_make, step_at  # noqa: E402

DATA = json.loads(open(os.environ["BENCH_DATA"]).read())  # noqa: SIM115
PHASE = os.environ["BENCH_PHASE"]
HTTPS = {"X-Forwarded-Proto": "https"}
# The lecture hall and the stampede come through one campus NAT address; the capacity run from
# sixteen (several buildings), so the per-address limit measures what it is meant to.
ONE_NAT = "193.136.10.1"
NATS = [f"193.136.{n}.1" for n in range(16)]

_students = itertools.count()
# Each capacity-like phase starts where the previous one stopped (BENCH_PAIR_OFFSET): fresh check-ins.
_pairs = itertools.islice(
    itertools.cycle([(s, i) for i in range(len(DATA["keys"])) for s in DATA["capacity"]]),
    int(os.environ.get("BENCH_PAIR_OFFSET", "0")),
    None,
)
_all_spawned = Event()
_hall_start: dict[str, float] = {}
HALL_RATE = 50  # check-ins per second in the lecture hall


_screens: dict[tuple[int, int], str] = {}


def _scan(entry: dict) -> str:
    """What a phone reads off the lecturer's screen: the token of the current step, made once per step
    and session, as the display makes it (a phone scans, it does not compute)."""
    step = step_at(timezone.now())
    if (entry["id"], step) not in _screens:
        _screens[entry["id"], step] = qr_token_make(ClassSession(pk=entry["id"], token_salt=entry["salt"]), step)
    return _screens[entry["id"], step]


def _check_in(
    client, key: str, session: dict, nat: str, expect: tuple[int, ...] = (201,), path: str = "/api/v1/check-ins/"
) -> bool:
    headers = {**HTTPS, "Authorization": f"Bearer {key}", "X-Forwarded-For": nat, "Content-Type": "application/json"}
    body = json.dumps({"token": _scan(session)})
    with client.post(path, data=body, headers=headers, name="check-in", catch_response=True) as response:
        if response.status_code not in expect:
            response.failure(f"{response.status_code}: {response.text[:200]}")
            return False
    return True


class LectureHallStudent(FastHttpUser):
    """One check-in per student, then done: scheduled 50 per second (hall) or all at once (stampede)."""

    wait_time = constant(0)

    @task
    def check_in(self):
        index = next(_students)
        if index >= DATA["lecture_hall"]:
            raise StopUser
        session = DATA["hall"] if PHASE == "hall" else DATA["stampede"]
        if PHASE == "hall":
            # Open loop: student i taps at start + i/50 s, whatever the server's pace so far.
            _hall_start.setdefault("at", time.monotonic())
            gevent.sleep(max(0.0, _hall_start["at"] + index / HALL_RATE - time.monotonic()))
        if PHASE == "stampede":
            # Wait until all 500 are connected, then everyone taps at the same instant.
            if index + 1 == DATA["lecture_hall"]:
                _all_spawned.set()
            _all_spawned.wait(timeout=30)
        _check_in(self.client, DATA["keys"][index], session, ONE_NAT)
        raise StopUser


class CapacityStudent(FastHttpUser):
    """Closed loop: fresh (session, student) check-ins back to back."""

    wait_time = constant(0)

    @task
    def check_in(self):
        session, index = next(_pairs)
        _check_in(self.client, DATA["keys"][index], session, NATS[index % len(NATS)])


class FloorStudent(FastHttpUser):
    """Closed loop on the hand-written floor check-in (bench/floor), for comparison only."""

    wait_time = constant(0)

    @task
    def check_in(self):
        session, index = next(_pairs)
        _check_in(self.client, DATA["keys"][index], session, NATS[index % len(NATS)], path="/bench/floor-check-in/")


class TrivialView(FastHttpUser):
    """Closed loop on the simplest Django view of the same server, for the ratio."""

    wait_time = constant(0)

    @task
    def live(self):
        self.client.get("/health/live", headers=HTTPS, name="health-live")
