"""A student's copy of their personal data ("Download my data" on the portal; docs/PRIVACY.md).

One read of everything CampusIQ holds about one student, as plain JSON-ready values: the account,
the student record, enrollments, grades, term outcomes, attendance (with their own check-in evidence
until it is purged, the anti-proxy flags on their check-ins, excuses, devices, cards, warnings), risk
scores with their factors, and the interventions and flag feedback advisors recorded about them.

Risk scores are included whatever PREDICTIONS_STUDENTS_SEE_OWN_RISK says: that setting decides what
the portal shows day to day, not what a person may obtain about themself (a right of access covers
profiling results and the factors behind them). A fixed number of queries, however long the history.
"""

import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from accounts.models import ApiToken
from accounts.services import user_roles
from attendance.models import AttendanceRecord, AttendanceWarningState, DeviceSighting, StudentCard
from predictions.models import FlagFeedback, Intervention, RiskScore
from students.models import Enrollment, Grade, Section, Student, TermOutcome

EXPORT_FORMAT = "campusiq-personal-data"
EXPORT_VERSION = 1


def _when(value: datetime.datetime | datetime.date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return timezone.localtime(value).isoformat()
    return value.isoformat()


def _number(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _person(user) -> str | None:
    return None if user is None else (user.get_full_name() or user.email)


def _section(section: Section) -> dict[str, Any]:
    return {
        "course_code": section.course.code,
        "course_title": section.course.title,
        "section": section.code,
        "term": section.term.name,
    }


def student_personal_data(*, student: Student) -> dict[str, Any]:
    """Everything stored about `student`, for them. Pass a student loaded with user, program, department
    and advisor (students_visible_to does): then 13 queries, whatever the number of rows."""
    user = student.user
    tokens = ApiToken.objects.filter(user=user).order_by("created_at", "pk")
    enrollments = Enrollment.objects.filter(student=student).select_related("section__course", "section__term")
    grades = Grade.objects.filter(student=student).select_related(
        "assessment__section__course", "assessment__section__term"
    )
    outcomes = TermOutcome.objects.filter(student=student).select_related("term")
    records = (
        AttendanceRecord.objects.filter(student=student)
        .select_related("session__section__course", "session__section__term", "excuse__decided_by")
        .prefetch_related("flags")
        .order_by("session__starts_at", "pk")
    )
    devices = DeviceSighting.objects.filter(student=student).order_by("first_seen", "pk")
    cards = StudentCard.objects.filter(student=student).order_by("pk")
    warnings = AttendanceWarningState.objects.filter(student=student).select_related("section__course", "section__term")
    scores = RiskScore.objects.filter(student=student).select_related("term", "model_version").order_by("scored_at")
    interventions = Intervention.objects.filter(student=student).select_related("term", "advisor")
    feedback = FlagFeedback.objects.filter(student=student).select_related("term", "advisor", "risk_score")
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "generated_at": _when(timezone.now()),
        "retention": {
            "check_in_evidence_days": settings.ATTENDANCE_EVIDENCE_RETENTION_DAYS,
            "note": "Check-in evidence (IP address, browser, device id) is erased after this many days.",
        },
        "account": {
            "email": user.email,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "date_joined": _when(user.date_joined),
            "last_login": _when(user.last_login),
            "roles": sorted(str(role) for role in user_roles(user)),
            "api_tokens": [
                {
                    "name": token.name,
                    "kind": token.kind,
                    "scope": token.scope,
                    "prefix": token.prefix,
                    "created_at": _when(token.created_at),
                    "expires_at": _when(token.expires_at),
                    "revoked_at": _when(token.revoked_at),
                    "last_used_at": _when(token.last_used_at),
                }
                for token in tokens
            ],
        },
        "profile": {
            "student_number": student.student_number,
            "program": {"code": student.program.code, "name": student.program.name},
            "department": {"code": student.program.department.code, "name": student.program.department.name},
            "semester": student.semester,
            "status": student.status,
            "advisor": None
            if student.advisor is None
            else {"name": _person(student.advisor), "email": student.advisor.email},
            "created_at": _when(student.created_at),
            "updated_at": _when(student.updated_at),
        },
        "enrollments": [
            {
                **_section(enrollment.section),
                "status": enrollment.status,
                "enrolled_on": _when(enrollment.enrolled_on),
                "ended_on": _when(enrollment.ended_on),
                "final_grade": _number(enrollment.final_grade),
            }
            for enrollment in enrollments.order_by("section__term__start_date", "section__course__code", "pk")
        ],
        "grades": [
            {
                **_section(grade.assessment.section),
                "assessment": grade.assessment.name,
                "weight_percent": _number(grade.assessment.weight),
                "max_score": _number(grade.assessment.max_score),
                "score": _number(grade.score),
                "recorded_at": _when(grade.updated_at),
            }
            for grade in grades.order_by(
                "assessment__section__term__start_date", "assessment__section__course__code", "pk"
            )
        ],
        "term_outcomes": [
            {"term": outcome.term.name, "outcome": outcome.outcome, "source": outcome.source, "note": outcome.note}
            for outcome in outcomes.order_by("term__start_date", "pk")
        ],
        "attendance": {
            "records": [_record(record) for record in records],
            "devices": [
                {
                    "device_id": device.device_id,
                    "first_seen": _when(device.first_seen),
                    "last_seen": _when(device.last_seen),
                    "check_ins": device.check_ins,
                }
                for device in devices
            ],
            "cards": [{"uid": card.uid, "active": card.active} for card in cards],
            "warnings": [
                {
                    **_section(state.section),
                    "below_warning_level": state.below,
                    "last_warned_at": _when(state.last_warned_at),
                }
                for state in warnings.order_by("section__term__start_date", "section__course__code", "pk")
            ],
        },
        "risk_scores": [
            {
                "term": score.term.name,
                "scored_at": _when(score.scored_at),
                "probability": score.probability,
                "band": score.band,
                "factors": score.factors,
                "model_version": score.model_version.name,
            }
            for score in scores
        ],
        "interventions": [
            {
                "term": intervention.term.name,
                "kind": intervention.kind,
                "note": intervention.note,
                "advisor": _person(intervention.advisor),
                "recorded_at": _when(intervention.created_at),
            }
            for intervention in interventions.order_by("created_at", "pk")
        ],
        "flag_feedback": [
            {
                "term": item.term.name,
                "verdict": item.verdict,
                "note": item.note,
                "advisor": _person(item.advisor),
                "recorded_at": _when(item.created_at),
                "on_score_of": _when(item.risk_score.scored_at) if item.risk_score is not None else None,
            }
            for item in feedback.order_by("created_at", "pk")
        ],
    }


def _record(record: AttendanceRecord) -> dict[str, Any]:
    session = record.session
    excuse = getattr(record, "excuse", None)  # the reverse one-to-one raises when there is none
    return {
        **_section(session.section),
        "session_starts_at": _when(session.starts_at),
        "room": session.room,
        "status": record.status,
        "method": record.method,
        "recorded_at": _when(record.recorded_at),
        "voided": record.voided,
        "note": record.note,
        "evidence": {"ip": record.ip, "user_agent": record.user_agent, "device_id": record.device_id},
        "proxy_flags": [
            {"kind": flag.kind, "detail": flag.detail, "created_at": _when(flag.created_at)}
            for flag in record.flags.all()
        ],
        "excuse": None
        if excuse is None
        else {
            "reason": excuse.reason,
            "state": excuse.state,
            "submitted_at": _when(excuse.created_at),
            "decided_at": _when(excuse.decided_at),
            "decided_by": _person(excuse.decided_by),
            "decision_note": excuse.decision_note,
        },
    }
