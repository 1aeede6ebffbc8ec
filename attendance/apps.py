from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


def _forget_cached_session(sender, instance, **kwargs) -> None:
    from django.db import transaction

    from attendance.qr import class_session_cache_forget

    # Now, and again after commit: a scan between the two may have cached the old row.
    class_session_cache_forget(instance.pk)
    transaction.on_commit(lambda: class_session_cache_forget(instance.pk))


class AttendanceConfig(AppConfig):
    name = "attendance"

    def ready(self) -> None:
        from attendance import metrics  # noqa: F401  (the check-in metrics answer /metrics before any check-in)
        from attendance.roles import role_permissions_declare

        role_permissions_declare()
        # A session's state decides every check-in, and QR scans read it from the cache.
        for signal in (post_save, post_delete):
            signal.connect(
                _forget_cached_session, sender="attendance.ClassSession", dispatch_uid=f"attendance.{signal}"
            )
        from attendance.exports import attendance_sections_register

        attendance_sections_register()
        from attendance.history_bulk import MARKS
        from campusiq.core.imports import import_kind_register

        import_kind_register(MARKS)
        from attendance.checks import restored_documents_present
        from attendance.models import AttendanceStatus, AttendanceStatusSet, AttendanceWarningRule
        from campusiq.core.backups import backup_contributor_register, backup_seeded_tables_register

        # Students' documents (advance absences): their rows name them, so they go with the database.
        backup_contributor_register(
            "private-files",
            setting="PRIVATE_FILE_ROOT",
            label="students' documents",
            app_label=self.label,
            verify=restored_documents_present,
        )
        # The campus default status set and warning rule come with the migrations.
        backup_seeded_tables_register(
            *(model._meta.db_table for model in (AttendanceStatusSet, AttendanceStatus, AttendanceWarningRule))
        )
