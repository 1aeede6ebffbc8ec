"""Big-file imports as background jobs: a registry of import kinds and the engine that runs one.

Core knows no app: each app registers its kinds in AppConfig.ready() with `import_kind_register`
(students: enrollments, grades; attendance: past marks). A kind's importer takes a chunk of parsed rows,
resolves them with a few set-wise queries and writes them in bulk; it reports bad rows with their line
numbers instead of raising.

`import_job_run` reads the file as a stream (csv over the file, openpyxl read_only for XLSX), so memory
stays flat in file size, and writes the whole file in ONE transaction: a bad row, a cancel or a crash
rolls everything back. Progress (rows done, errors, time left) goes to the cache after every chunk,
outside the transaction, so the admin's progress bar moves while the transaction is still open; the
final state is written to the ImportJob row after the transaction.
"""

import csv
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from django.conf import settings
from django.core.cache import cache
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from campusiq.core.models import AuditLogEntry, ImportJob
from campusiq.core.outbox import enqueue
from campusiq.core.services import audit_log_write

log = structlog.get_logger(__name__)

PROGRESS_TTL_SECONDS = 24 * 3600


@dataclass(frozen=True)
class ImportRow:
    line: int  # the line of the file, the header being line 1
    values: dict[str, str]


@dataclass(frozen=True)
class RowError:
    line: int
    message: str


@dataclass
class ChunkResult:
    written: int = 0
    errors: list[RowError] = field(default_factory=list)


class Importer(Protocol):
    def chunk_apply(self, rows: list[ImportRow], *, write: bool) -> ChunkResult:
        """Checks the rows and, when `write`, writes the good ones (inside the job's transaction)."""

    def finish(self) -> None:
        """Refreshes what the written rows derive (inside the transaction, set-wise)."""


@dataclass(frozen=True)
class ImportKind:
    name: str
    label: str
    columns: tuple[str, ...]
    required: tuple[str, ...]
    importer: Callable[[Any], Importer]  # called with the job's actor
    permission: str  # the permission a person needs to run this kind, e.g. "students.add_grade"


_kinds: dict[str, ImportKind] = {}


def import_kind_register(kind: ImportKind) -> None:
    _kinds[kind.name] = kind


def import_kinds() -> dict[str, ImportKind]:
    return dict(_kinds)


def import_kind_get(name: str) -> ImportKind:
    return _kinds[name]


class ImportFileError(ValueError):
    """The file as a whole cannot be read: wrong format, missing columns."""


# --- Reading ---------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value).strip()


def _table_rows(handle, file_name: str) -> Iterator[list[str]]:
    handle = getattr(handle, "file", handle)  # Django's File wrappers lack what TextIOWrapper needs
    if file_name.lower().endswith(".xlsx"):
        from openpyxl import load_workbook

        workbook = load_workbook(handle, read_only=True, data_only=True)
        try:
            for row in workbook.active.iter_rows(values_only=True):
                yield [_cell(value) for value in row]
        finally:
            workbook.close()
        return
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
    try:
        for row in csv.reader(text):
            yield [cell.strip() for cell in row]
    finally:
        text.detach()  # the caller owns the file: the wrapper must not close it


def import_rows_read(handle, *, file_name: str, kind: ImportKind) -> Iterator[ImportRow]:
    """The file's rows as dicts of the kind's columns, streamed. Blank rows are skipped."""
    rows = _table_rows(handle, file_name)
    try:
        header = [name.lower() for name in next(rows)]
    except StopIteration:
        raise ImportFileError("The file is empty.") from None
    except (UnicodeDecodeError, csv.Error, OSError, ValueError) as error:
        raise ImportFileError(f"The file cannot be read as CSV or XLSX: {error}") from None
    missing = [name for name in kind.required if name not in header]
    if missing:
        raise ImportFileError(f"Missing columns: {', '.join(missing)}.")
    positions = {name: header.index(name) for name in kind.columns if name in header}
    try:
        for line, row in enumerate(rows, start=2):
            if not any(row):
                continue
            yield ImportRow(line, {name: (row[i] if i < len(row) else "") for name, i in positions.items()})
    except (UnicodeDecodeError, csv.Error) as error:
        raise ImportFileError(f"The file cannot be read after line {line}: {error}") from None


def import_rows_count(handle, *, file_name: str, kind: ImportKind) -> int:
    return sum(1 for _ in import_rows_read(handle, file_name=file_name, kind=kind))


# --- Progress --------------------------------------------------------------------------------


def _progress_key(job_id: int) -> str:
    return f"core:import-job:{job_id}:progress"


def import_job_progress(job: ImportJob) -> dict[str, Any]:
    """What the progress bar shows: the cache while the job runs, the row once it has finished."""
    live = cache.get(_progress_key(job.pk)) if job.status == ImportJob.Status.RUNNING else None
    progress = live or {
        "rows_done": job.rows_done,
        "rows_total": job.rows_total,
        "errors": job.error_count,
        "seconds_left": None,
    }
    return {"id": job.pk, "kind": job.kind, "status": job.status, **progress, "rows_written": job.rows_written}


def import_jobs_recent(limit: int) -> list[dict[str, Any]]:
    """The latest jobs with their progress and their kind's label, newest first (one query)."""
    jobs = ImportJob.objects.order_by("-created_at", "-id")[:limit]
    return [
        {**import_job_progress(job), "label": _kinds[job.kind].label if job.kind in _kinds else job.kind, "job": job}
        for job in jobs
    ]


def _progress_write(job: ImportJob, *, rows_done: int, errors: int, started: float) -> None:
    elapsed = time.monotonic() - started
    left = (job.rows_total - rows_done) * elapsed / rows_done if rows_done else None
    cache.set(
        _progress_key(job.pk),
        {
            "rows_done": rows_done,
            "rows_total": job.rows_total,
            "errors": errors,
            "seconds_left": round(left) if left is not None else None,
            "written_at": time.time(),
        },
        PROGRESS_TTL_SECONDS,
    )


# --- The jobs --------------------------------------------------------------------------------


def import_job_create(*, kind: str, upload: UploadedFile, actor) -> ImportJob:
    """Stores the file privately and queues its job (the task is sent once the row is committed)."""
    import_kind = import_kind_get(kind)
    rows_total = import_rows_count(upload, file_name=upload.name, kind=import_kind)
    upload.seek(0)
    with transaction.atomic():
        job = ImportJob(kind=kind, file_name=upload.name[:200], created_by=actor, rows_total=rows_total)
        job.file.save(upload.name, upload, save=False)
        job.save()
        transaction.on_commit(lambda: enqueue("core.import_job_run", job_id=job.pk))
    return job


def import_job_cancel(*, job: ImportJob, actor) -> bool:
    """Asks a queued or running job to stop; it rolls back at its next chunk. False: already finished."""
    asked = ImportJob.objects.filter(
        pk=job.pk, status__in=[ImportJob.Status.QUEUED, ImportJob.Status.RUNNING], cancel_requested=False
    ).update(cancel_requested=True)
    if asked:
        audit_log_write(actor=actor, verb="import.cancel_requested", target=job, action=AuditLogEntry.Action.ACTION)
    return bool(asked)


class _RollBack(Exception):
    pass


def _chunks(rows: Iterator[ImportRow], size: int) -> Iterator[list[ImportRow]]:
    chunk: list[ImportRow] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _abandoned(job: ImportJob) -> bool:
    """A running job whose progress has not moved for IMPORT_JOB_ABANDONED_SECONDS: a live one writes it
    after every chunk."""
    if job.status != ImportJob.Status.RUNNING:
        return False
    progress = cache.get(_progress_key(job.pk))
    last = progress["written_at"] if progress else job.started_at.timestamp() if job.started_at else 0
    return time.time() - last > settings.IMPORT_JOB_ABANDONED_SECONDS


def _cancel_requested(job_id: int) -> bool:
    # Read inside the job's transaction: under READ COMMITTED it sees the cancel committed meanwhile.
    return ImportJob.objects.filter(pk=job_id, cancel_requested=True).exists()


def import_job_run(*, job_id: int, on_chunk: Callable[[ImportJob], None] | None = None) -> ImportJob:
    """Runs a queued job to its end. Safe to call twice: a job that is not queued is left alone.
    `on_chunk` is called after each chunk, with the transaction still open (tests watch progress)."""
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.RUNNING, started_at=timezone.now()
    )
    job = ImportJob.objects.select_related("created_by").get(pk=job_id)
    if not claimed and _abandoned(job):
        # Its worker died mid-way (the task is delivered again): its transaction rolled back, so it starts over.
        claimed = ImportJob.objects.filter(pk=job_id, status=job.status, started_at=job.started_at).update(
            started_at=timezone.now()
        )
    if not claimed:
        return job
    kind = import_kind_get(job.kind)
    chunk_rows, kept = settings.IMPORT_JOB_CHUNK_ROWS, settings.IMPORT_JOB_ERRORS_KEPT
    started = time.monotonic()
    rows_done = written = error_count = 0
    errors: list[dict] = []
    status, message = ImportJob.Status.SUCCEEDED, ""
    _progress_write(job, rows_done=0, errors=0, started=started)
    try:
        with job.file.open("rb") as handle, transaction.atomic():
            importer = kind.importer(job.created_by)
            for chunk in _chunks(import_rows_read(handle, file_name=job.file_name, kind=kind), chunk_rows):
                if _cancel_requested(job.pk):
                    status = ImportJob.Status.CANCELLED
                    raise _RollBack
                # After the first bad row the rest is only checked: the job will write nothing anyway.
                result = importer.chunk_apply(chunk, write=not error_count)
                rows_done, written = rows_done + len(chunk), written + result.written
                error_count += len(result.errors)
                errors.extend({"line": e.line, "message": e.message} for e in result.errors[: kept - len(errors)])
                _progress_write(job, rows_done=min(rows_done, job.rows_total), errors=error_count, started=started)
                if on_chunk is not None:
                    on_chunk(job)
            if error_count:
                status = ImportJob.Status.FAILED
                raise _RollBack
            importer.finish()
            audit_log_write(
                actor=job.created_by,
                verb=f"import.{job.kind}",
                target=job,
                action=AuditLogEntry.Action.ACTION,
                changes={"rows": [None, rows_done], "written": [None, written], "file": [None, job.file_name]},
            )
    except _RollBack:
        written = 0
    except ImportFileError as error:
        status, message, written = ImportJob.Status.FAILED, str(error), 0
    except Exception as error:
        log.exception("core.import_job_crashed", job_id=job.pk)
        status, message, written = ImportJob.Status.FAILED, f"The import stopped unexpectedly: {error}", 0
    job.status, job.message = status, message[:2000]
    job.rows_done, job.rows_written = min(rows_done, job.rows_total), written
    job.error_count, job.errors, job.finished_at = error_count, errors, timezone.now()
    job.save(update_fields=["status", "message", "rows_done", "rows_written", "error_count", "errors", "finished_at"])
    if status != ImportJob.Status.SUCCEEDED:
        audit_log_write(
            actor=job.created_by,
            verb=f"import.{status}",
            target=job,
            action=AuditLogEntry.Action.ACTION,
            changes={"rows": [None, job.rows_done], "errors": [None, error_count], "file": [None, job.file_name]},
        )
    cache.delete(_progress_key(job.pk))
    log.info("core.import_job_finished", job_id=job.pk, status=status, rows=rows_done, errors=error_count)
    return job
