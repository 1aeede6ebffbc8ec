import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditLogQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditLogImmutable("The audit log is append-only: entries cannot be updated.")

    def delete(self):
        raise AuditLogImmutable("The audit log is append-only: entries cannot be deleted.")


class AuditLogImmutable(Exception):
    pass


class AuditLogEntry(models.Model):
    """One recorded change: who did what to which object, before -> after, in which request.

    Append-only. The ORM refuses updates and deletes; a database trigger (migration 0002) refuses
    UPDATE too, so not even raw SQL rewrites history.
    """

    class Action(models.TextChoices):
        CREATE = "create", "Create"
        UPDATE = "update", "Update"
        DELETE = "delete", "Delete"
        ACTION = "action", "Action"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # No database foreign key: deleting a user must neither fail nor rewrite the history that names them.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_label = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=16, choices=Action.choices)
    verb = models.CharField(max_length=64, help_text="What happened, e.g. grade.changed, token.revoked.")
    object_type = models.CharField(max_length=100, db_index=True)
    object_id = models.CharField(max_length=64, db_index=True)
    object_label = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True, help_text="{field: [before, after]}")
    reason = models.TextField(blank=True)
    request_id = models.CharField(max_length=128, blank=True, db_index=True)

    objects = AuditLogQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log"
        constraints = [
            models.CheckConstraint(condition=~models.Q(verb=""), name="audit_verb_not_empty"),
        ]

    def __str__(self) -> str:
        who = self.actor_label or "system"
        return f"{self.created_at:%Y-%m-%d %H:%M} {who} {self.verb} {self.object_type}#{self.object_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditLogImmutable("The audit log is append-only: entries cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditLogImmutable("The audit log is append-only: entries cannot be deleted.")


class TimeStampedModel(models.Model):
    """created_at / updated_at on every domain row; updated_at drives the API's incremental sync."""

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        abstract = True


class IdempotencyKey(models.Model):
    """The first response to a POST sent with an Idempotency-Key header, replayed to retries of the same
    request for IDEMPOTENCY_KEY_TTL (campusiq/core/idempotency.py). Written in the same transaction as
    the action it answers: the response and the action's writes commit together, or neither does."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    status_code = models.PositiveSmallIntegerField()
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user")]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.key} -> {self.status_code}"


class OutboxMessage(models.Model):
    """A Celery task that could not be published when it was enqueued (the broker was unreachable).
    campusiq.core.outbox writes it; the periodic task core.outbox_flush publishes it later and marks it
    sent. Every task sent this way is idempotent, so a message published twice does no harm."""

    task = models.CharField(max_length=200, help_text="The Celery task's name, e.g. attendance.warnings_send.")
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=128, blank=True, help_text="The request that enqueued it.")
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0, help_text="Publications tried so far.")
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["created_at"], condition=models.Q(sent_at__isnull=True), name="outbox_unsent_idx"),
        ]

    def __str__(self) -> str:
        state = f"sent {self.sent_at:%Y-%m-%d %H:%M}" if self.sent_at else f"unsent, {self.attempts} attempt(s)"
        return f"{self.task} ({state})"


class RateCounter(models.Model):
    """A rate-limit counter where there is no Redis (development, the embedded setup) or while Redis is
    down: every process and replica counts in one row per key, incremented in one atomic statement
    (campusiq/core/counters.py). A row past `expires_at` counts from zero again."""

    key = models.CharField(max_length=250, primary_key=True)
    value = models.BigIntegerField()
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key} = {self.value}"


def _private_storage():
    from django.core.files.storage import storages

    return storages["private"]


def _import_file_path(instance: "ImportJob", filename: str) -> str:
    # The uploader's file name is kept in `file_name`, never in the path: it may hold anything.
    extension = ".xlsx" if filename.lower().endswith(".xlsx") else ".csv"
    return f"imports/{secrets.token_hex(16)}{extension}"


class ImportJob(models.Model):
    """A big file imported in the background (campusiq/core/imports.py): the whole file in one
    transaction, so it is written entirely or not at all. While it runs its progress lives in the cache
    (the row is only written before and after the transaction); this row keeps the final state."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    kind = models.CharField(max_length=64, help_text="A kind registered in campusiq.core.imports.")
    file = models.FileField(upload_to=_import_file_path, storage=_private_storage, max_length=200)
    file_name = models.CharField(max_length=200, help_text="The uploaded file's own name.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    rows_written = models.PositiveIntegerField(default=0, help_text="Rows created or changed.")
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="The first row errors: [{line, message}].")
    message = models.TextField(blank=True, help_text="Why the job failed, when no single row explains it.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["queued", "running", "succeeded", "failed", "cancelled"]),
                name="import_job_status_valid",
                violation_error_message="Unknown import job status.",
            ),
            models.CheckConstraint(
                condition=models.Q(rows_done__lte=models.F("rows_total")),
                name="import_job_done_within_total",
                violation_error_message="An import job cannot have done more rows than its file holds.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} import #{self.pk} ({self.status})"
