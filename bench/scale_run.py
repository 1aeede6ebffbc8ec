"""The timed part of the scale benchmark (bench/scale.py), with the production environment of bench/harness.py,
on the campus bench/scale_data.py built: every GET route of tests/permission_table.py, every admin changelist
(plain, searched, with each filter, sorted by each sortable column) and the API lists, timed in this process
through Django's whole stack and middleware (the test client, as the marking benchmark does).

    python bench/scale_run.py OUT.json [--runs N]

In-process, so each request's queries are counted exactly (CaptureQueriesContext on its first run) and the
slow query behind a slow page is named; gunicorn adds a constant few milliseconds (bench/checkin.py measures
it). A request over REQUEST_TIMEOUT is stopped (PostgreSQL's statement_timeout, set by bench/scale.py, and an
alarm for Python) and reported as TIMEOUT, as gunicorn's worker timeout would kill it.
"""

import argparse
import json
import math
import signal
import sys
import time
from pathlib import Path

import django

django.setup()

import redis  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib import admin  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client, RequestFactory  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402
from django_otp import DEVICE_ID_SESSION_KEY  # noqa: E402
from django_otp.plugins.otp_totp.models import TOTPDevice  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from accounts.models import User  # noqa: E402
from attendance.models import AttendanceRecord, ClassSession, SectionGroup  # noqa: E402
from attendance.services import calendar_feed_create, section_group_create, section_group_members_add  # noqa: E402
from predictions.models import ModelVersion, RiskScore, ScoringRun  # noqa: E402
from students.models import Assessment, Enrollment, Grade, Section, Student, TermOutcome  # noqa: E402
from tests.permission_table import ROLES, TABLE  # noqa: E402

REQUEST_TIMEOUT = 30
SLOW_FIRST_SECONDS = 2  # a request slower than this the first time is run SLOW_RUNS times, not N
SLOW_RUNS = 3


class Timeout(Exception):
    pass


def world() -> tuple[dict[str, int | str], dict[str, User]]:
    """The permission table's world on the big campus: the lecture hall's lecturer, its open session, a closed
    session of its with 300 records, a final-year student in it with three terms of history, their advisor."""
    open_session = ClassSession.objects.select_related("section").get(state="open")
    section = open_session.section
    lecturer = section.lecturers.get()
    student = (
        Student.objects.filter(enrollments__section=section, enrollments__status="enrolled", status="active")
        .order_by("-semester", "pk")
        .first()
    )
    other_section = Section.objects.filter(term=section.term).exclude(lecturers=lecturer).order_by("pk").first()
    other = (
        Student.objects.filter(enrollments__section=other_section)
        .exclude(advisor=student.advisor)
        .exclude(enrollments__section=section)
        .order_by("-semester", "pk")
        .first()
    )
    session = ClassSession.objects.filter(section=section, state="closed").order_by("-starts_at").first()
    record = AttendanceRecord.objects.filter(session=session, student=student).get()
    group = SectionGroup.objects.filter(section=section, name="Lab 1").first()  # made by an earlier run (--keep)
    if group is None:
        group = section_group_create(section=section, name="Lab 1", actor=lecturer)
        enrolled = section.enrollments.filter(status="enrolled").values_list("student_id", flat=True)
        section_group_members_add(group=group, student_ids=list(enrolled[:25]), actor=lecturer)
    _, calendar_token = calendar_feed_create(user=student.user)
    objects = {
        "section": section.pk,
        "section_y": other_section.pk,
        "open_session": open_session.pk,
        "session": session.pk,
        "session_y": ClassSession.objects.filter(section=other_section, state="closed").first().pk,
        "student": student.pk,
        "other": other.pk,
        "record": record.pk,
        "absence": AttendanceRecord.objects.filter(student=student, status="absent").first().pk,
        "group": group.pk,
        "calendar_token": calendar_token,
        "assessment": Assessment.objects.filter(section=section).order_by("pk").first().pk,
        "enrollment": Enrollment.objects.get(student=student, section=section).pk,
        "grade": Grade.objects.filter(student=student).first().pk,
        "outcome": TermOutcome.objects.filter(student=student).first().pk,
        "risk_score": RiskScore.objects.get(student=student).pk,
        "run": ScoringRun.objects.get().pk,
        "model_version": ModelVersion.objects.get(status="active").pk,
        "department": section.course.department_id,
        "program": student.program_id,
        "course": section.course_id,
        "term": section.term_id,
        "advisor_a": student.advisor_id,
        "advisor_a2": other.advisor_id,
    }
    users = {
        "student": student.user,
        "other_student": other.user,
        "lecturer": lecturer,
        "other_lecturer": other_section.lecturers.get(),
        "advisor": student.advisor,
        "other_advisor": other.advisor,
        "registrar": User.objects.get(email="registrar@scale.example"),
        "admin": User.objects.get(email="admin@scale.example"),
    }
    return objects, users


def table_targets(objects: dict, users: dict) -> tuple[list[dict], list[str]]:
    """Every GET row of the permission table someone may open (200), as the first role allowed in, and as the
    registrar too when allowed (registry staff see the whole campus: each page's biggest case)."""
    targets, skipped, seen = [], [], set()
    for method, name, args, _, *statuses in TABLE:
        if method != "GET":
            continue
        allowed = [role for role, status in zip(ROLES, statuses, strict=True) if status == 200 and role != "anon"]
        if not allowed:
            continue
        missing = [value for value in args.values() if not value.startswith("=") and value not in objects]
        if missing:
            skipped.append(f"{name} {args}: no {', '.join(missing)} on the scale campus")
            continue
        values = {key: value[1:] if value.startswith("=") else str(objects[value]) for key, value in args.items()}
        url = reverse(name, kwargs={k: v for k, v in values.items() if not k.startswith("?")})
        query = "&".join(f"{k[1:]}={v}" for k, v in values.items() if k.startswith("?"))
        url = f"{url}?{query}" if query else url
        for role in dict.fromkeys([allowed[0], *(["registrar"] if "registrar" in allowed else [])]):
            if (url, role) not in seen:
                seen.add((url, role))
                kind = "api" if url.startswith("/api/") else "portal"
                targets.append({"kind": kind, "url": url, "role": role, "user": users[role]})
    return targets, skipped


def admin_targets(admin_user: User, search: str) -> list[dict]:
    """Every changelist of the admin: plain, searched, each filter's first choice, sorted by each sortable column."""
    factory = RequestFactory()
    targets = []
    for model, model_admin in admin.site._registry.items():
        base = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        urls = [base]
        if model_admin.get_search_fields(None):
            urls.append(f"{base}?q={search}")
        request = factory.get(base)
        request.user = admin_user
        changelist = model_admin.get_changelist_instance(request)
        for spec in changelist.filter_specs:
            choices = [choice for choice in spec.choices(changelist) if not choice.get("selected")]
            if choices:
                urls.append(f"{base}{choices[0]['query_string']}")
        for index, field_name in enumerate(changelist.list_display):
            if field_name != "action_checkbox" and changelist.get_ordering_field(field_name):
                urls.append(f"{base}?o={index}")
        targets += [{"kind": "admin", "url": url, "role": "admin", "user": admin_user} for url in dict.fromkeys(urls)]
    return targets


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile: of 10 runs, p95 is the slowest; of 3, the slowest."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def on_alarm(signum, frame):
    raise Timeout


def sign_in(client: Client, user: User) -> None:
    """A session as after the sign-in form; staff's also verified by a two-factor code, as production requires."""
    client.force_login(user)
    if user.is_staff:
        device, _ = TOTPDevice.objects.get_or_create(user=user, name="scale bench", defaults={"confirmed": True})
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()


def measure(client: Client, target: dict, runs: int, flush) -> dict:
    """Times `runs` GETs of the target (fewer when slow); the first with its queries counted."""
    sign_in(client, target["user"])
    times, result = [], {"kind": target["kind"], "url": target["url"], "role": target["role"]}
    for run in range(runs):
        for attempt in range(2):
            started = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, REQUEST_TIMEOUT)
            try:
                with CaptureQueriesContext(connection) as queries:
                    response = client.get(target["url"], secure=True)
                    body = b"".join(response.streaming_content) if response.streaming else response.content
            except Timeout:
                response = None
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            elapsed = time.perf_counter() - started
            if response is not None and response.status_code == 429 and attempt == 0:
                flush()  # a rate limit met by the benchmark's own repetition, not by the page: again, untimed
                sign_in(client, target["user"])
                continue
            break
        if response is None or elapsed >= REQUEST_TIMEOUT:
            result.update(status="TIMEOUT", queries=len(queries), bytes=0)
            times.append(elapsed * 1000)
            break
        if run == 0:
            result.update(status=response.status_code, queries=len(queries), bytes=len(body))
        times.append(elapsed * 1000)
        if run == 0 and elapsed > SLOW_FIRST_SECONDS:
            runs = min(runs, SLOW_RUNS)
        if len(times) >= runs:
            break
    result.update(n=len(times), p50=percentile(times, 0.5), p95=percentile(times, 0.95), max=max(times))
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--runs", type=int, default=10)
    options = parser.parse_args()
    signal.signal(signal.SIGALRM, on_alarm)
    objects, users = world()
    student_number = Student.objects.get(pk=objects["student"]).student_number
    targets, skipped = table_targets(objects, users)
    targets += admin_targets(users["admin"], student_number)
    store = redis.Redis.from_url(settings.REDIS_URL)
    client = Client(HTTP_HOST="localhost", HTTP_X_FORWARDED_PROTO="https", raise_request_exception=False)
    results = []
    started = time.monotonic()
    for number, target in enumerate(targets, start=1):
        result = measure(client, target, options.runs, store.flushdb)
        results.append(result)
        print(f"[scale run {number}/{len(targets)}] {result['status']} p95 {result['p95']:8.1f} ms "
              f"{result['queries']:4d} q  {result['role']:<14} {result['url']}", flush=True)  # fmt: skip
    with open(options.out, "w") as out:
        json.dump({"results": results, "skipped": skipped, "seconds": time.monotonic() - started,
                   "runs": options.runs, "world": {k: str(v) for k, v in objects.items() if k != "calendar_token"}},
                  out, indent=1)  # fmt: skip


if __name__ == "__main__":
    main()
