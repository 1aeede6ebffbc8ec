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
