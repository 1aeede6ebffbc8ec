"""Issue 19's "done when": a registrar loads a generated campus's multi-year history from files alone,
through the admin (the preview imports for the small tables, import jobs for the big ones), and trains
the at-risk model from the model versions list. No service is called directly and no factory writes
campus rows: only the lecturer's account exists first, as docs/ONBOARDING.md's step 0 says."""

import datetime
import random

import pytest
from django.urls import reverse

from accounts.roles import Role
from attendance.models import AttendanceRecord, ClassSession
from campusiq.core.models import ImportJob
from predictions.models import ModelVersion
from students.models import Enrollment, Grade, Student, TermOutcome
from tests.factories import UserFactory
from tests.students.test_imports import confirm, messages_of, preview
from tests.support.uploads import csv_upload

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore::UserWarning")]

TERMS = [  # (name, first day, last day): three past years' worth of terms, all ended
    ("2024 Spring", datetime.date(2024, 2, 5), datetime.date(2024, 6, 14)),
    ("2024 Autumn", datetime.date(2024, 9, 9), datetime.date(2025, 1, 24)),
    ("2025 Spring", datetime.date(2025, 2, 3), datetime.date(2025, 6, 13)),
]
COURSES = ["SCI101", "SCI102"]
STUDENTS = 60
SESSIONS = 8


def generated_campus(seed: int = 19) -> dict[str, list[dict]]:
    """Every file of the campus, as an SIS and an LMS would export them. Weak students (low ability)
    score low, miss class and fail more often; their admission grade says so too, noisily."""
    rng = random.Random(seed)
    ability = {f"E{n:04d}": rng.gauss(0, 1) for n in range(STUDENTS)}
    files = {
        "department": [{"code": "SCI", "name": "Sciences"}],
        "program": [{"code": "BSCI", "name": "BSc Sciences", "department": "SCI"}],
        "course": [{"code": c, "title": f"Science {c[-1]}", "credits": "6", "department": "SCI"} for c in COURSES],
        "term": [
            {"name": name, "start_date": f"{start}", "end_date": f"{end}",
             "add_drop_deadline": f"{start + datetime.timedelta(days=14)}"}
            for name, start, end in TERMS
        ],
        "section": [
            {"course": c, "term": name, "section": "A", "capacity": "80", "min_attendance_rate": "0.75",
             "lecturers": "lecturer@campus.example"}
            for name, _, _ in TERMS for c in COURSES
        ],
        "student": [
            {"student_number": number, "email": f"{number.lower()}@campus.example", "first_name": "Student",
             "last_name": number, "program": "BSCI", "semester": "3", "status": "Active", "advisor": "",
             "admission_grade": f"{min(max(140 + 20 * (0.6 * a + 0.8 * rng.gauss(0, 1)), 95), 200):.1f}",
             "prior_qualification_grade": ""}
            for number, a in ability.items()
        ],
        "assessment": [
            {"course": c, "term": name, "section": "A", "name": f"Test {week}", "weight": "30", "max_score": "20",
             "due_date": f"{start + datetime.timedelta(weeks=week)}"}
            for name, start, _ in TERMS for c in COURSES for week in (2, 4)
        ],
        "enrollments": [], "grades": [], "attendance_marks": [], "termoutcome": [],
    }  # fmt: skip
    for name, start, _ in TERMS:
        for number, a in ability.items():
            struggling = a + rng.gauss(0, 0.7) < -0.5
            for course in COURSES:
                where = {"student_number": number, "term": name, "course": course, "section": "A"}
                files["enrollments"].append({**where, "status": "completed"})
                for week in (2, 4):
                    score = min(max(rng.gauss(8 if struggling else 14, 2.5), 0), 20)
                    files["grades"].append({**where, "assessment": f"Test {week}", "score": f"{score:.1f}"})
                for week in range(SESSIONS):
                    day = start + datetime.timedelta(weeks=week, days=COURSES.index(course))
                    present = rng.random() < (0.6 if struggling else 0.92)
                    files["attendance_marks"].append(
                        {**where, "session_start": f"{day} 10:00", "session_end": f"{day} 11:30",
                         "status": "present" if present else "absent"}
                    )  # fmt: skip
            failed = struggling and rng.random() < 0.8
            outcome = "Failed" if failed else "Passed"
            files["termoutcome"].append({"student_number": number, "term": name, "outcome": outcome})
    return files


def test_a_registrar_loads_a_multi_year_campus_from_files_through_the_admin_and_trains(
    client, django_capture_on_commit_callbacks
):
    UserFactory(email="lecturer@campus.example", roles=[Role.LECTURER])
    registrar = UserFactory(roles=[Role.REGISTRAR], is_staff=True)
    client.force_login(registrar)
    files = generated_campus()

    # The small tables, in docs/ONBOARDING.md's order, each through its preview page.
    for model_name in ("department", "program", "course", "term", "section", "student", "assessment"):
        rows = files[model_name]
        response = confirm(client, model_name, preview(client, model_name, csv_upload(rows)))
        assert messages_of(response)[0].startswith(f"Import finished: {len(rows)} new, 0 updated"), model_name
    # The big ones as import jobs, from the job page.
    for kind in ("enrollments", "grades", "attendance_marks"):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                reverse("admin:core_importjob_add"), {"kind": kind, "file": csv_upload(files[kind], f"{kind}.csv")}
            )
        job = ImportJob.objects.get(kind=kind)
        assert (job.status, job.error_count, job.rows_done) == ("succeeded", 0, len(files[kind])), job.errors
    outcomes = files["termoutcome"]
    response = confirm(client, "termoutcome", preview(client, "termoutcome", csv_upload(outcomes)))
    assert messages_of(response)[0].startswith(f"Import finished: {len(outcomes)} new"), messages_of(response)

    assert Student.objects.exclude(admission_grade=None).count() == STUDENTS
    assert Enrollment.objects.count() == len(files["enrollments"]) == len(TERMS) * len(COURSES) * STUDENTS
    assert Grade.objects.count() == len(files["grades"])
    assert ClassSession.objects.count() == len(TERMS) * len(COURSES) * SESSIONS
    assert AttendanceRecord.objects.count() == len(files["attendance_marks"])
    assert set(TermOutcome.objects.values_list("source", flat=True)) == {TermOutcome.Source.IMPORTED}

    # Trained from the admin's button, on this history alone.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:predictions_modelversion_train"), follow=True)
    version = ModelVersion.objects.get()
    assert f"The last training registered {version.name}" in response.content.decode()
    assert version.training_terms == ["2024 Spring", "2024 Autumn"] and version.holdout_term == "2025 Spring"
    families = {family: about["status"] for family, about in version.metrics["features"].items()}
    assert families["attendance"] == families["grades"] == families["prior achievement"] == "varies", families
    assert version.metrics["holdout"]["roc_auc"] > 0.75  # the generated signal is strong: a model that learnt
