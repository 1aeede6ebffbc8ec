"""Attendance's sections of a student's data download (students/exports.py): their records with their
own check-in evidence until it is purged, the anti-proxy flags on their check-ins and their excuses;
the devices and cards they checked in with; their low-attendance warnings; the absences they reported
in advance (the documents' type, not their content); their lab groups. Seven queries."""

from typing import Any

from django.conf import settings

from attendance.models import (
    AbsenceExcuse,
    AdvanceAbsence,
    AttendanceRecord,
    AttendanceWarningState,
    DeviceSighting,
    ProxyFlag,
    SectionGroupMember,
    StudentCard,
)
from students.exports import export_person, export_section, export_when, personal_data_section_register
from students.models import Student


def _attendance(student: Student) -> dict[str, Any]:
    records = (
        AttendanceRecord.objects.filter(student=student)
        .select_related("session__section__course", "session__section__term", "excuse__decided_by")
        .prefetch_related("flags")
        .order_by("session__starts_at", "pk")
    )
    devices = DeviceSighting.objects.filter(student=student).order_by("first_seen", "pk")
    cards = StudentCard.objects.filter(student=student).order_by("pk")
    warnings = AttendanceWarningState.objects.filter(student=student).select_related("section__course", "section__term")
    advance = AdvanceAbsence.objects.filter(student=student).select_related("section__course", "section__term", "term")
    groups = SectionGroupMember.objects.filter(student=student).select_related("group__section__course",
                                                                                 "group__section__term")  # fmt: skip
    return {
        "records": [_record(record) for record in records],
        "advance_absences": [
            {
                "section": None if absence.section is None else export_section(absence.section),
                "term": absence.term.name,
                "first_day": absence.first_day.isoformat(),
                "last_day": absence.last_day.isoformat(),
                "reason": absence.reason,
                "document": absence.attachment_content_type or None,
                "state": absence.state,
                "decided_at": export_when(absence.decided_at),
                "decision_note": absence.decision_note,
            }
            for absence in advance.order_by("first_day", "pk")
        ],
        "devices": [
            {
                "device_id": device.device_id,
                "first_seen": export_when(device.first_seen),
                "last_seen": export_when(device.last_seen),
                "check_ins": device.check_ins,
            }
            for device in devices
        ],
        "cards": [{"uid": card.uid, "active": card.active} for card in cards],
        "groups": [
            {**export_section(membership.group.section), "group": membership.group.name}
            for membership in groups.order_by("group__section__term__start_date", "group__name", "pk")
        ],
        "warnings": [
            {
                **export_section(state.section),
                "below_warning_level": state.below,
                "last_warned_at": export_when(state.last_warned_at),
            }
            for state in warnings.order_by("section__term__start_date", "section__course__code", "pk")
        ],
    }


def _record(record: AttendanceRecord) -> dict[str, Any]:
    session = record.session
    excuse = getattr(record, "excuse", None)  # the reverse one-to-one raises when there is none
    return {
        **export_section(session.section),
        "session_starts_at": export_when(session.starts_at),
        "room": session.room,
        "status": record.status,
        "method": record.method,
        "recorded_at": export_when(record.recorded_at),
        "voided": record.voided,
        "note": record.note,
        "evidence": {"ip": record.ip, "user_agent": record.user_agent, "device_id": record.device_id},
        "proxy_flags": [
            {"kind": flag.kind, "detail": flag.detail, "created_at": export_when(flag.created_at)}
            for flag in record.flags.all()
        ],
        "excuse": None
        if excuse is None
        else {
            "reason": excuse.reason,
            "state": excuse.state,
            "submitted_at": export_when(excuse.created_at),
            "decided_at": export_when(excuse.decided_at),
            "decided_by": export_person(excuse.decided_by),
            "decision_note": excuse.decision_note,
        },
    }


def _retention() -> dict[str, Any]:
    return {
        "check_in_evidence_days": settings.ATTENDANCE_EVIDENCE_RETENTION_DAYS,
        "note": "Check-in evidence (IP address, browser, device id) is erased after this many days.",
    }


def attendance_sections_register() -> None:
    personal_data_section_register(
        "attendance",
        _attendance,
        models=(
            AttendanceRecord,
            ProxyFlag,
            AbsenceExcuse,
            AdvanceAbsence,
            DeviceSighting,
            StudentCard,
            AttendanceWarningState,
            SectionGroupMember,
        ),
        retention=_retention,
    )
