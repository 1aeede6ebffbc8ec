"""What a restore must bring back for attendance: the documents students attached to the absences
they reported in advance (PRIVATE_FILE_ROOT), one file per record that names one."""

from django.core.files.storage import storages

from attendance.models import AdvanceAbsence
from campusiq.core.backups import BackupError, Verified


def restored_documents_present() -> Verified:
    """Every advance absence's document is in the restored folder (the rows name them)."""
    storage = storages["private"]
    named = list(AdvanceAbsence.objects.exclude(attachment="").values_list("attachment", flat=True))
    missing = [name for name in named if not storage.exists(name)]
    if missing:
        raise BackupError(
            f"restored, but {len(missing)} of {len(named)} absence documents are missing, e.g. {missing[0]}"
        )
    return Verified(f"{len(named)} absence documents present", {"absence_documents": len(named)})
