"""The big-file import engine (campusiq/core/imports.py): one transaction, live progress, cancel, the
admin's job pages and the progress endpoint."""

import datetime
import io

import openpyxl
import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from campusiq.core import imports
from campusiq.core.imports import import_job_create, import_job_progress, import_job_run
from campusiq.core.models import AuditLogEntry, ImportJob
from students.models import Enrollment
from tests.factories import ImportJobFactory, SectionFactory, StudentFactory, UserFactory
from tests.support.admin import assert_changelist_queries_do_not_grow
from tests.support.imports import job_run
from tests.support.uploads import csv_upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def registrar():
    return UserFactory(roles=[Role.REGISTRAR])


@pytest.fixture
def section(past_term):
    return SectionFactory(term=past_term, course__code="CHE101")


def rows_of(section, count: int) -> list[dict]:
    return [
        {
            "student_number": student.student_number,
            "term": section.term.name,
            "course": section.course.code,
            "section": section.code,
            "status": "completed",
        }
        for student in StudentFactory.create_batch(count)
    ]


def test_progress_is_visible_in_the_cache_while_the_transaction_is_open(registrar, section, settings):
    settings.IMPORT_JOB_CHUNK_ROWS = 2
    seen = []

    def watch(job):
        # Inside the job's transaction: what the progress endpoint would answer now.
        running = ImportJob.objects.get(pk=job.pk)
        seen.append((running.status, import_job_progress(running)["rows_done"], Enrollment.objects.count()))

    job = job_run("enrollments", rows_of(section, 5), actor=registrar, on_chunk=watch)
    assert job.status == ImportJob.Status.SUCCEEDED
    assert seen == [("running", 2, 2), ("running", 4, 4), ("running", 5, 5)]
    assert import_job_progress(job) == {
        "id": job.pk, "kind": "enrollments", "status": "succeeded", "rows_done": 5, "rows_total": 5,
        "errors": 0, "seconds_left": None, "rows_written": 5,
    }  # fmt: skip


def test_a_cancel_between_chunks_rolls_everything_back(registrar, section, settings):
    settings.IMPORT_JOB_CHUNK_ROWS = 2
    job = job_run(
        "enrollments",
        rows_of(section, 6),
        actor=registrar,
        on_chunk=lambda job: imports.import_job_cancel(job=job, actor=registrar),
    )
    assert (job.status, job.rows_done, job.rows_written) == (ImportJob.Status.CANCELLED, 2, 0)
    assert not Enrollment.objects.exists()
    assert AuditLogEntry.objects.filter(verb="import.cancelled").count() == 1
    assert not imports.import_job_cancel(job=job, actor=registrar)  # finished: nothing to cancel


def test_running_a_job_again_leaves_it_alone(registrar, section):
    job = job_run("enrollments", rows_of(section, 3), actor=registrar)
    Enrollment.objects.all().delete()
    again = import_job_run(job_id=job.pk)
    assert again.status == ImportJob.Status.SUCCEEDED
    assert not Enrollment.objects.exists()


def test_a_crash_mid_way_fails_the_job_and_writes_nothing(registrar, section, settings, monkeypatch):
    settings.IMPORT_JOB_CHUNK_ROWS = 2
    calls = []

    def crash_second_time(job):
        calls.append(job.pk)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")

    job = job_run("enrollments", rows_of(section, 5), actor=registrar, on_chunk=crash_second_time)
    assert job.status == ImportJob.Status.FAILED
    assert "disk on fire" in job.message
    assert not Enrollment.objects.exists()


@pytest.mark.parametrize(
    "content, message",
    [(b"", "empty"), (b"student_number,term\nS1,T\n", "Missing columns: course, section, status")],
)
def test_an_unreadable_file_is_refused_with_a_message(registrar, content, message):
    with pytest.raises(imports.ImportFileError, match=message):
        import_job_create(kind="enrollments", upload=SimpleUploadedFile("x.csv", content), actor=registrar)
    assert not ImportJob.objects.exists()


def test_an_xlsx_file_is_read_as_a_stream(registrar, section):
    rows = rows_of(section, 3)
    workbook = openpyxl.Workbook()
    workbook.active.append(list(rows[0]))
    for row in rows:
        workbook.active.append(list(row.values()))
    buffer = io.BytesIO()
    workbook.save(buffer)
    job = import_job_create(kind="enrollments", upload=SimpleUploadedFile("h.xlsx", buffer.getvalue()), actor=registrar)
    assert import_job_run(job_id=job.pk).status == ImportJob.Status.SUCCEEDED
    assert Enrollment.objects.count() == 3


# --- The admin and the progress endpoint -------------------------------------------------------


def test_a_registrar_uploads_a_file_and_the_job_runs(client, registrar, section, django_capture_on_commit_callbacks):
    client.force_login(registrar)
    page = client.get(reverse("admin:core_importjob_add"))
    assert page.status_code == 200
    assert [choice[0] for choice in page.context["form"].fields["kind"].choices] == [
        "enrollments", "grades", "attendance_marks",
    ]  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:core_importjob_add"), {"kind": "enrollments", "file": csv_upload(rows_of(section, 3))}
        )
    job = ImportJob.objects.get()
    assert response.url == reverse("admin:core_importjob_change", args=[job.pk])
    assert job.status == ImportJob.Status.SUCCEEDED  # eager Celery ran it after commit
    assert Enrollment.objects.count() == 3
    detail = client.get(response.url)
    assert b"import-job-progress" in detail.content and b"js/admin-import-job.js" in detail.content
    progress = client.get(reverse("import-job-progress", args=[job.pk]))
    assert progress.json()["rows_done"] == 3


def test_a_bad_upload_gets_a_message_and_no_job(client, registrar):
    client.force_login(registrar)
    response = client.post(
        reverse("admin:core_importjob_add"), {"kind": "grades", "file": csv_upload([{"student_number": "S1"}])}
    )
    assert response.status_code == 200
    assert "Missing columns" in response.context["form"].errors["file"][0]
    assert not ImportJob.objects.exists()


def test_the_job_page_shows_refused_rows_and_a_cancel_button_while_queued(client, registrar):
    client.force_login(registrar)
    done = ImportJobFactory(status="failed", error_count=1, errors=[{"line": 7, "message": "No student numbered 'X'."}])
    page = client.get(reverse("admin:core_importjob_change", args=[done.pk])).content.decode()
    assert "No student numbered" in page and "Cancel the import" not in page
    queued = ImportJobFactory()
    assert "Cancel the import" in client.get(reverse("admin:core_importjob_change", args=[queued.pk])).content.decode()
    response = client.post(reverse("admin:core_importjob_cancel", args=[queued.pk]))
    assert response.status_code == 302
    queued.refresh_from_db()
    assert queued.cancel_requested


@pytest.mark.parametrize("roles, status", [([Role.LECTURER], 403), ([Role.ADVISOR], 403), ([Role.REGISTRAR], 200)])
def test_only_staff_with_the_import_permission_see_jobs(client, roles, status):
    job = ImportJobFactory()
    user = UserFactory(roles=roles, is_staff=True)
    client.force_login(user)
    assert client.get(reverse("admin:core_importjob_changelist")).status_code == status
    assert client.get(reverse("admin:core_importjob_add")).status_code == status
    assert client.get(reverse("import-job-progress", args=[job.pk])).status_code == status
    cancel = client.post(reverse("admin:core_importjob_cancel", args=[job.pk]))
    assert cancel.status_code == (302 if status == 200 else 403)


def test_a_lecturer_may_not_start_a_job(client, section):
    client.force_login(UserFactory(roles=[Role.LECTURER], is_staff=True))
    client.post(reverse("admin:core_importjob_add"), {"kind": "enrollments", "file": csv_upload(rows_of(section, 1))})
    assert not ImportJob.objects.exists()


def test_progress_of_an_unknown_job_is_a_problem_404(client, registrar):
    client.force_login(registrar)
    response = client.get(reverse("import-job-progress", args=[999]))
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/problem+json")


def test_a_big_file_in_the_enrollment_import_becomes_a_job(client, registrar, section, settings):
    settings.IMPORT_JOB_THRESHOLD_ROWS = 3
    client.force_login(registrar)
    url = reverse("admin:students_enrollment_import")
    small = client.post(url, {"resource": "0", "format": "0", "import_file": csv_upload(rows_of(section, 3))})
    assert small.status_code == 200 and not ImportJob.objects.exists()  # the preview, as before
    big = client.post(url, {"resource": "0", "format": "0", "import_file": csv_upload(rows_of(section, 4))})
    job = ImportJob.objects.get()
    assert big.url == reverse("admin:core_importjob_change", args=[job.pk])
    assert (job.kind, job.rows_total) == ("enrollments", 4)


def test_the_job_list_does_not_grow_queries_with_rows(client, registrar):
    client.force_login(registrar)
    assert_changelist_queries_do_not_grow(client, ImportJob, ImportJobFactory)


def test_progress_lives_in_the_cache_only_while_running(registrar):
    job = ImportJobFactory(status="running", rows_total=10)
    imports._progress_write(job, rows_done=4, errors=1, started=0)
    assert import_job_progress(job)["rows_done"] == 4
    job.status = "succeeded"
    assert import_job_progress(job)["rows_done"] == 0  # the row's, once finished
    cache.clear()


def test_starting_jobs_is_rate_limited_per_person(client, registrar, section, settings):
    settings.IMPORT_JOB_RATE_PER_USER = "2/h"
    client.force_login(registrar)
    url = reverse("admin:core_importjob_add")
    statuses = [
        client.post(url, {"kind": "enrollments", "file": csv_upload(rows_of(section, 1))}).status_code for _ in range(3)
    ]
    assert statuses == [302, 302, 429]
    assert ImportJob.objects.count() == 2


def test_a_job_whose_worker_died_starts_over_when_its_task_comes_again(registrar, section):
    job = import_job_create(kind="enrollments", upload=csv_upload(rows_of(section, 2)), actor=registrar)
    an_hour_ago = timezone.now() - datetime.timedelta(hours=1)
    ImportJob.objects.filter(pk=job.pk).update(status="running", started_at=an_hour_ago)
    assert import_job_run(job_id=job.pk).status == ImportJob.Status.SUCCEEDED
    assert Enrollment.objects.count() == 2


def test_a_job_still_making_progress_is_left_to_its_worker(registrar, section):
    job = import_job_create(kind="enrollments", upload=csv_upload(rows_of(section, 2)), actor=registrar)
    ImportJob.objects.filter(pk=job.pk).update(status="running")
    job.refresh_from_db()
    imports._progress_write(job, rows_done=0, errors=0, started=0)
    assert import_job_run(job_id=job.pk).status == ImportJob.Status.RUNNING
    assert not Enrollment.objects.exists()


def _in_another_connection(work):
    """Runs `work` in a thread, so on a database connection of its own (another request, the admin)."""
    import threading

    from django.db import connection

    results = []

    def run():
        try:
            results.append(work())
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    return results[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_others_see_progress_not_rows_and_their_cancel_reaches_the_job(
    registrar, section, settings, monkeypatch
):
    settings.IMPORT_JOB_CHUNK_ROWS = 2
    monkeypatch.setattr(imports, "enqueue", lambda *args, **kwargs: True)  # the test runs the job itself
    seen = []

    def from_outside(job):
        def look():
            outside = ImportJob.objects.get(pk=job.pk)
            return outside.status, import_job_progress(outside)["rows_done"], Enrollment.objects.count()

        seen.append(_in_another_connection(look))
        if len(seen) == 2:  # the admin's cancel button, committed in its own transaction
            _in_another_connection(lambda: imports.import_job_cancel(job=job, actor=None))

    job = job_run("enrollments", rows_of(section, 7), actor=registrar, on_chunk=from_outside)
    assert seen == [("running", 2, 0), ("running", 4, 0)]  # progress moves; the rows stay uncommitted
    assert (job.status, job.rows_done) == (ImportJob.Status.CANCELLED, 4)
    assert not Enrollment.objects.exists()
