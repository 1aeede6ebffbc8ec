"""Big-file import jobs run in the test's own process (the task's service, called directly)."""

from campusiq.core.imports import import_job_create, import_job_run
from campusiq.core.models import ImportJob
from tests.support.uploads import csv_upload


def job_run(kind: str, rows: list[dict], *, actor, **run_kwargs) -> ImportJob:
    job = import_job_create(kind=kind, upload=csv_upload(rows), actor=actor)
    return import_job_run(job_id=job.pk, **run_kwargs)
