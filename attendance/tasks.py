import structlog
from celery import shared_task

from attendance import services

log = structlog.get_logger(__name__)


@shared_task(name="attendance.close_finished_sessions", soft_time_limit=300, time_limit=360)
def close_finished_sessions() -> int:
    """Closes sessions that ended a while ago and are still open or scheduled. Idempotent."""
    closed = services.class_sessions_close_finished()
    log.info("attendance.sessions_closed", count=closed)
    return closed


@shared_task(name="attendance.warnings_send", soft_time_limit=300, time_limit=360)
def attendance_warnings_send(*, section_id: int) -> int:
    """Emails each student newly below the warning level in the section (and their lecturers and advisor)."""
    sent = services.attendance_warnings_send(section_id=section_id)
    log.info("attendance.warnings_sent", section_id=section_id, count=sent)
    return sent


@shared_task(name="attendance.evidence_purge", soft_time_limit=600, time_limit=660)
def attendance_evidence_purge() -> int:
    purged = services.attendance_evidence_purge()
    log.info("attendance.evidence_purged", count=purged)
    return purged


@shared_task(name="attendance.grades_compute", soft_time_limit=300, time_limit=360)
def attendance_grades_compute(*, section_id: int) -> int:
    """Recomputes the section's attendance grades from its closed sessions. Idempotent."""
    changed = services.section_attendance_grades_compute(section_id=section_id)
    log.info("attendance.grades_computed", section_id=section_id, count=changed)
    return changed


@shared_task(name="attendance.not_taken_remind", soft_time_limit=60, time_limit=90)
def class_session_not_taken_remind(*, session_id: int) -> bool:
    """Reminds the lecturers of a session that was never taken; sends once however often it runs."""
    sent = services.class_session_not_taken_remind(session_id=session_id)
    log.info("attendance.not_taken_reminded", session_id=session_id, sent=sent)
    return sent
