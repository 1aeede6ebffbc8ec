"""Actions that write attendance. Every check-in path (QR page, numeric code, card reader, API, staff)
ends in attendance_check_in, so the rules hold the same everywhere."""

import datetime
import functools
import hashlib
import hmac
import ipaddress
import secrets
import uuid
import zoneinfo
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.access import is_registry_staff
from accounts.models import User
from attendance.errors import AttendanceErrorCode as Code
from attendance.metrics import check_ins_counted
from attendance.models import (
    ADVANCE_ABSENCE_MAX_DAYS,
    ATTACHMENT_MAX_BYTES,
    AbsenceExcuse,
    AdvanceAbsence,
    AttendanceRecord,
    AttendanceStatusSet,
    AttendanceWarningState,
    CalendarFeed,
    CardReader,
    ClassSession,
    DeviceSighting,
    ProxyFlag,
    SectionAttendanceGrade,
    SectionGroup,
    SectionGroupMember,
    SectionNetworkRule,
    StudentCard,
    TermHoliday,
)
from attendance.selectors import (
    advance_absences_excusing,
    class_session_never_taken,
    enrolled_at_session,
    record_code_reader,
    section_statuses,
    series_sessions_from,
    session_statuses,
    session_unmarked,
    status_defaults_by_kind,
    warning_rules_for_section,
    warning_standings,
)
from campusiq.core.errors import ServiceError
from campusiq.core.models import AuditLogEntry
from campusiq.core.outbox import enqueue
from campusiq.core.services import audit_log_write
from students.models import Assessment, Enrollment, Section, Student, Term
from students.services import assessment_save, grades_computed_set

Status = AttendanceRecord.Status
State = ClassSession.State
ATTENDED = (Status.PRESENT, Status.LATE)


# --- Creating, opening, cancelling sessions --------------------------------------------------


@transaction.atomic
def class_session_create(
    *,
    section: Section,
    starts_at: datetime.datetime,
    ends_at: datetime.datetime,
    room: str = "",
    late_after_minutes: int = 10,
    series: uuid.UUID | None = None,
    group: SectionGroup | None = None,
    actor: User | None = None,
) -> ClassSession:
    if timezone.is_naive(starts_at) or timezone.is_naive(ends_at) or ends_at <= starts_at:
        raise ServiceError(Code.SESSION_TIME_INVALID, "A session needs an aware start and an end after it.")
    term = section.term
    if not term.start_date <= timezone.localtime(starts_at).date() <= term.end_date:
        raise ServiceError(Code.SESSION_TIME_INVALID, f"The session must fall within term {term.name}.")
    if group is not None and group.section_id != section.pk:
        raise ServiceError(Code.GROUP_INVALID, "The group belongs to another section.", field="group")
    _refuse_duplicate_starts(section=section, group=group, starts=[starts_at])
    session = ClassSession(
        section=section,
        starts_at=starts_at,
        ends_at=ends_at,
        room=room,
        late_after_minutes=late_after_minutes,
        series=series,
        group=group,
    )
    session.full_clean()
    session.save()
    audit_log_write(actor=actor, verb="class_session.created", target=session, action=AuditLogEntry.Action.CREATE)
    return session


def _refuse_duplicate_starts(*, section: Section, group: SectionGroup | None, starts: list[datetime.datetime]) -> None:
    """No two sessions of a section (or of one group) start at once. Checked here, under a lock on the
    section, not by a constraint: sessions already stored may repeat a start, and stay valid."""
    Section.objects.select_for_update().filter(pk=section.pk).first()
    clash = (
        ClassSession.objects.filter(section=section, group=group, starts_at__in=starts).order_by("starts_at").first()
    )
    if clash is not None:
        when = timezone.localtime(clash.starts_at)
        raise ServiceError(
            Code.SESSION_DUPLICATE,
            f"{'The group' if group else 'The section'} already has a session on {when:%a %d %b %Y at %H:%M}.",
            status=409,
        )


SERIES_MAX_EVERY_WEEKS = 4


@transaction.atomic
def class_session_series_create(
    *,
    section: Section,
    first_date: datetime.date,
    start_time: datetime.time,
    duration: datetime.timedelta,
    until: datetime.date | None = None,
    weekdays: list[int] | None = None,
    every_weeks: int = 1,
    group: SectionGroup | None = None,
    room: str = "",
    late_after_minutes: int = 10,
    actor: User | None = None,
) -> list[ClassSession]:
    """Sessions on each of `weekdays` (0 = Monday; default: first_date's) of every `every_weeks`-th week
    counted from first_date's week, at the same wall-clock time (so it stays 10:00 across daylight-saving
    changes), from first_date until `until` or the end of the term, skipping the term's holidays. All
    or nothing: one clash with an existing session and none is created."""
    weekdays = sorted(set(weekdays if weekdays is not None else [first_date.weekday()]))
    if not weekdays or any(day not in range(7) for day in weekdays):
        raise ServiceError(Code.SERIES_INVALID, "Choose at least one weekday.", field="weekdays")
    if not 1 <= every_weeks <= SERIES_MAX_EVERY_WEEKS:
        raise ServiceError(
            Code.SERIES_INVALID,
            f"A series repeats every 1 to {SERIES_MAX_EVERY_WEEKS} weeks.",
            field="every_weeks",
        )
    term = section.term
    if not term.start_date <= first_date <= term.end_date:
        raise ServiceError(
            Code.SESSION_TIME_INVALID, f"The first date must fall within term {term.name}.", field="first_date"
        )
    until = min(until or term.end_date, term.end_date)
    zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    holidays = set(TermHoliday.objects.filter(term=term).values_list("date", flat=True))
    week_start = first_date - datetime.timedelta(days=first_date.weekday())
    days = []
    while week_start <= until:
        days += [week_start + datetime.timedelta(days=weekday) for weekday in weekdays]
        week_start += datetime.timedelta(weeks=every_weeks)
    starts = [
        datetime.datetime.combine(day, start_time, tzinfo=zone)
        for day in days
        if first_date <= day <= until and day not in holidays
    ]
    _refuse_duplicate_starts(section=section, group=group, starts=starts)
    series = uuid.uuid4()
    return [
        class_session_create(
            section=section,
            starts_at=starts_at,
            ends_at=starts_at + duration,
            room=room,
            late_after_minutes=late_after_minutes,
            series=series,
            group=group,
            actor=actor,
        )
        for starts_at in starts
    ]


@transaction.atomic
def class_session_open(*, session: ClassSession, actor: User | None) -> ClassSession:
    """Opens check-in, from ATTENDANCE_OPEN_EARLY_MINUTES before the start until the end."""
    session = ClassSession.objects.select_for_update().get(pk=session.pk)
    if session.state == State.OPEN:
        return session
    _refuse_finished(session)
    now = timezone.now()
    if now < session.starts_at - datetime.timedelta(minutes=settings.ATTENDANCE_OPEN_EARLY_MINUTES):
        raise ServiceError(Code.SESSION_NOT_STARTED, "This session cannot be opened yet.")
    if now > session.ends_at:
        raise ServiceError(Code.SESSION_ENDED, "This session has already ended.")
    session.state, session.opened_at = State.OPEN, now
    session.save(update_fields=["state", "opened_at", "updated_at"])
    audit_log_write(actor=actor, verb="class_session.opened", target=session, changes={"state": ["scheduled", "open"]})
    return session


@transaction.atomic
def class_session_cancel(*, session: ClassSession, actor: User | None, reason: str) -> ClassSession:
    """A cancelled session counts for nobody; its records stay, but no rate includes them."""
    if not reason.strip():
        raise ServiceError(Code.REASON_REQUIRED, "Say why the session is cancelled.", field="reason")
    session = ClassSession.objects.select_for_update().get(pk=session.pk)
    if session.state == State.CANCELLED:
        return session
    before = session.state
    session.state = State.CANCELLED
    session.save(update_fields=["state", "updated_at"])
    audit_log_write(
        actor=actor,
        verb="class_session.cancelled",
        target=session,
        changes={"state": [before, "cancelled"]},
        reason=reason,
    )
    return session


@dataclass
class SeriesCancellation:
    cancelled: list[ClassSession]
    # Open, closed or not-taken sessions of the series: they happened (or are happening), so they stay.
    kept: list[ClassSession]


@transaction.atomic
def class_session_series_cancel(
    *, series: uuid.UUID, section: Section, actor: User | None, reason: str, from_date: datetime.date | None = None
) -> SeriesCancellation:
    """Cancels every still-scheduled session of the section's series (those on or after `from_date`, if
    given) through class_session_cancel; the others are left as they are and reported. All or nothing."""
    if not reason.strip():
        raise ServiceError(Code.REASON_REQUIRED, "Say why the sessions are cancelled.", field="reason")
    sessions = list(series_sessions_from(section=section, series=series, from_date=from_date).select_for_update())
    if not sessions:
        raise ServiceError(Code.SERIES_INVALID, "The series has no sessions from that date on.", field="series")
    result = SeriesCancellation(cancelled=[], kept=[])
    for session in sessions:
        if session.state == State.SCHEDULED:
            result.cancelled.append(class_session_cancel(session=session, actor=actor, reason=reason))
        elif session.state != State.CANCELLED:
            result.kept.append(session)
    audit_log_write(
        actor=actor,
        verb="class_session_series.cancelled",
        target=section,
        changes={"series": [None, str(series)], "cancelled": [None, len(result.cancelled)]},
        reason=reason,
    )
    return result


@transaction.atomic
def class_session_close(*, session: ClassSession, actor: User | None) -> int:
    """Closes a session: every student enrolled at its start without a record is marked absent.
    A session never opened and with nothing recorded is not taken instead: nobody is marked, it counts
    for nobody, and its lecturers are reminded to take or cancel it. Safe to run again (by the
    lecturer, then by the periodic task): it only fills what is missing. Returns how many it marked."""
    # NO KEY UPDATE: check-ins inserting records meanwhile (a key share lock on the session) go on.
    session = ClassSession.objects.select_for_update(no_key=True).get(pk=session.pk)
    if session.state == State.CANCELLED:
        raise ServiceError(Code.SESSION_CANCELLED, "A cancelled session is not closed.")
    if session.state == State.NOT_TAKEN:
        return 0
    now = timezone.now()
    if now < session.starts_at:
        # Closing marks the missing absent: before the start nobody has had the chance to come.
        raise ServiceError(Code.SESSION_NOT_STARTED, "A session cannot be closed before it starts.")
    if class_session_never_taken(session):
        session.state = State.NOT_TAKEN
        session.save(update_fields=["state", "updated_at"])
        audit_log_write(
            actor=actor, verb="class_session.not_taken", target=session, changes={"state": ["scheduled", "not_taken"]}
        )
        session_id = session.pk
        transaction.on_commit(lambda: enqueue("attendance.not_taken_remind", session_id=session_id))
        return 0
    marked = _absent_fill(session, now)
    if session.state != State.CLOSED:
        before = session.state
        session.state, session.closed_at = State.CLOSED, now
        session.save(update_fields=["state", "closed_at", "updated_at"])
        audit_log_write(
            actor=actor,
            verb="class_session.closed",
            target=session,
            changes={"state": [before, "closed"], "marked_absent": [None, marked]},
        )
    section_id = session.section_id
    transaction.on_commit(lambda: enqueue("attendance.warnings_send", section_id=section_id))
    attendance_grades_refresh(section_id=section_id)
    return marked


def _absent_fill(session: ClassSession, now: datetime.datetime) -> int:
    """Marks absent every student enrolled at the session who has no record in it (excused: those reported
    away in advance and approved); returns how many."""
    missing = list(session_unmarked(session).values_list("pk", flat=True))
    excused = advance_absences_excusing(session)
    AttendanceRecord.objects.bulk_create(
        [
            AttendanceRecord(
                session=session,
                student_id=student_id,
                status=Status.EXCUSED if student_id in excused else Status.ABSENT,
                recorded_at=now,
                method="closing",
            )
            for student_id in missing
        ],
        ignore_conflicts=True,
    )
    return len(missing)


@transaction.atomic
def class_session_not_taken_remind(*, session_id: int) -> bool:
    """Emails the lecturers of a not-taken session, once: take attendance or cancel it. Returns
    whether it sent (a session since taken or cancelled, or one already reminded, gets nothing)."""
    from django.core.mail import send_mail

    session = ClassSession.objects.select_for_update().select_related("section__course").get(pk=session_id)
    reminded = AuditLogEntry.objects.filter(
        verb="class_session.not_taken_reminded", object_type=session._meta.label_lower, object_id=str(session.pk)
    )
    if session.state != State.NOT_TAKEN or reminded.exists():
        return False
    recipients = list(session.section.lecturers.values_list("email", flat=True))
    if recipients:
        when = timezone.localtime(session.starts_at)
        send_mail(
            subject=f"Attendance not taken: {session.section.course.code} on {when:%a %d %b %H:%M}",
            message=(
                f"Check-in for the session of {session.section} on {when:%A %d %B %Y at %H:%M} was never opened "
                f"and nothing was recorded, so it counts for no one's attendance. Take attendance or cancel it "
                f"at /attendance/sessions/{session.pk}/take/."
            ),
            from_email=None,
            recipient_list=recipients,
        )
    audit_log_write(actor=None, verb="class_session.not_taken_reminded", target=session)
    return True


def _refuse_finished(session: ClassSession) -> None:
    if session.state == State.CANCELLED:
        raise ServiceError(Code.SESSION_CANCELLED, "This session was cancelled.")
    if session.state == State.CLOSED:
        raise ServiceError(Code.SESSION_CLOSED, "This session is closed.")


# --- Groups of a section's students (lab groups) ----------------------------------------------


def _group_name_clean(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise ServiceError(Code.GROUP_INVALID, "Name the group.", field="name")
    if len(name) > SectionGroup._meta.get_field("name").max_length:
        raise ServiceError(Code.GROUP_INVALID, "A group name is at most 64 characters.", field="name")
    return name


def _refuse_group_name_taken(*, section: Section, name: str, group: SectionGroup | None = None) -> None:
    taken = SectionGroup.objects.filter(section=section, name__iexact=name)
    if group is not None:
        taken = taken.exclude(pk=group.pk)
    if taken.exists():
        raise ServiceError(
            Code.GROUP_INVALID, f"The section already has a group named {name}.", field="name", status=409
        )


@transaction.atomic
def section_group_create(*, section: Section, name: str, actor: User | None) -> SectionGroup:
    name = _group_name_clean(name)
    _refuse_group_name_taken(section=section, name=name)
    group = SectionGroup.objects.create(section=section, name=name)
    audit_log_write(actor=actor, verb="attendance.group_created", target=group, action=AuditLogEntry.Action.CREATE)
    return group


@transaction.atomic
def section_group_rename(*, group: SectionGroup, name: str, actor: User | None) -> SectionGroup:
    name = _group_name_clean(name)
    group = SectionGroup.objects.select_for_update().get(pk=group.pk)
    if name != group.name:
        _refuse_group_name_taken(section=group.section, name=name, group=group)
        before, group.name = group.name, name
        group.save(update_fields=["name"])
        audit_log_write(actor=actor, verb="attendance.group_renamed", target=group, changes={"name": [before, name]})
    return group


@transaction.atomic
def section_group_delete(*, group: SectionGroup, actor: User | None) -> None:
    """Only a group without sessions: its sessions' records would lose whom they were held for."""
    group = SectionGroup.objects.select_for_update().get(pk=group.pk)
    if ClassSession.objects.filter(group=group).exists():
        raise ServiceError(
            Code.GROUP_INVALID, "This group has sessions: cancel them instead of deleting the group.", status=409
        )
    audit_log_write(actor=actor, verb="attendance.group_deleted", target=group, action=AuditLogEntry.Action.DELETE)
    group.delete()


@transaction.atomic
def section_group_members_add(*, group: SectionGroup, student_ids: list[int], actor: User | None) -> list[int]:
    """Adds students enrolled in the group's section (all or none); returns the ids newly added."""
    wanted = set(student_ids)
    enrolled = set(
        Enrollment.objects.filter(
            section_id=group.section_id, student_id__in=wanted, status=Enrollment.Status.ENROLLED
        ).values_list("student_id", flat=True)
    )
    if strangers := wanted - enrolled:
        raise ServiceError(
            Code.NOT_ENROLLED,
            "Only students enrolled in the section join its groups"
            + (f" ({len(strangers)} are not)." if len(strangers) > 1 else " (one is not)."),
            field="students",
        )
    present = set(SectionGroupMember.objects.filter(group=group).values_list("student_id", flat=True))
    new = sorted(wanted - present)
    SectionGroupMember.objects.bulk_create(
        [SectionGroupMember(group=group, student_id=student_id) for student_id in new], ignore_conflicts=True
    )
    if new:
        audit_log_write(
            actor=actor, verb="attendance.group_members_added", target=group, changes={"students": [None, new]}
        )
    return new


@transaction.atomic
def section_group_members_remove(*, group: SectionGroup, student_ids: list[int], actor: User | None) -> int:
    removed = sorted(
        SectionGroupMember.objects.filter(group=group, student_id__in=student_ids).values_list("student_id", flat=True)
    )
    SectionGroupMember.objects.filter(group=group, student_id__in=removed).delete()
    if removed:
        audit_log_write(
            actor=actor, verb="attendance.group_members_removed", target=group, changes={"students": [removed, None]}
        )
    return len(removed)


@transaction.atomic
def section_group_member_import(
    *, section: Section, group_name: str, student: Student, actor: User | None
) -> SectionGroupMember:
    """One imported membership: the group is made if the section has none of that name."""
    name = _group_name_clean(group_name)
    group = SectionGroup.objects.filter(section=section, name__iexact=name).first()
    if group is None:
        group = section_group_create(section=section, name=name, actor=actor)
    section_group_members_add(group=group, student_ids=[student.pk], actor=actor)
    return SectionGroupMember.objects.get(group=group, student=student)


# --- Check-in --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckIn:
    record: AttendanceRecord
    created: bool
    flags: list[str] = field(default_factory=list)


def check_in_refusal(*, session: ClassSession, student: Student, at: datetime.datetime) -> None:
    """Raises the reason this student cannot check in to this session at this moment, if any."""
    _refuse_timing_and_status(session=session, student=student, at=at)
    _require_enrolled(session=session, student=student)


def _refuse_timing_and_status(*, session: ClassSession, student: Student, at: datetime.datetime) -> None:
    _refuse_finished(session)
    if at < session.starts_at - datetime.timedelta(minutes=settings.ATTENDANCE_OPEN_EARLY_MINUTES):
        raise ServiceError(Code.SESSION_NOT_STARTED, "This session has not started yet.")
    if at > session.ends_at:
        raise ServiceError(Code.SESSION_ENDED, "This session has ended.")
    if session.state != State.OPEN:
        raise ServiceError(Code.SESSION_NOT_OPEN, "Check-in for this session is not open.")
    if student.status == Student.Status.SUSPENDED:
        raise ServiceError(Code.STUDENT_SUSPENDED, "Your enrolment is suspended: see the registry office.")
    if student.status != Student.Status.ACTIVE:
        raise ServiceError(Code.STUDENT_NOT_ACTIVE, "Only active students check in.")


@check_ins_counted()
def attendance_check_in(
    *,
    student: Student,
    session: ClassSession,
    method: str,
    scanned_at: datetime.datetime | None = None,
    ip: str | None = None,
    user_agent: str = "",
    device_id: str = "",
    device_expected: bool = False,
    recorded_by: User | None = None,
) -> CheckIn:
    """Records the student present (or late) in the session. A second check-in returns the existing
    record. Proxy signs are flagged for the lecturer, or refused where the institution says so.
    `device_expected`: the student's own device checks in (portal or app), so a missing id is a sign."""
    scanned_at = scanned_at or timezone.now()
    _refuse_timing_and_status(session=session, student=student, at=scanned_at)
    flags = proxy_signs(session=session, student=student, ip=ip, device_id=device_id)
    if device_expected and not device_id:
        flags.append((ProxyFlag.Kind.NO_DEVICE_ID, "Checked in without a device identifier."))
    refused = [kind for kind, _ in flags if kind in settings.ATTENDANCE_REFUSE_FLAGS]
    if refused:
        existing = AttendanceRecord.objects.filter(session=session, student=student).first()
        if existing is not None:
            return CheckIn(record=existing, created=False)
        _require_enrolled(session=session, student=student)
        raise ServiceError(
            Code.PROXY_REFUSED,
            "This check-in was refused: " + "; ".join(ProxyFlag.Kind(kind).label.lower() for kind in refused) + ".",
        )
    late = scanned_at > session.starts_at + datetime.timedelta(minutes=session.late_after_minutes)
    record = AttendanceRecord(
        session=session,
        student=student,
        status=Status.LATE if late else Status.PRESENT,
        recorded_at=scanned_at,
        method=method,
        recorded_by=recorded_by,
        ip=ip or None,
        user_agent=user_agent[:300],
        device_id=device_id[:64],
    )
    if flags or device_id:
        with transaction.atomic():
            created = _record_insert_if_enrolled(record)
            if created:
                _flags_write(session=session, record=record, flags=flags, device_id=device_id)
                _device_seen(student=student, device_id=device_id, at=scanned_at)
    else:
        created = _record_insert_if_enrolled(record)  # one statement: the hot path of a lecture hall
    if not created:
        existing = AttendanceRecord.objects.filter(session=session, student=student).first()
        if existing is not None:  # already checked in (or two taps at the same instant): one record
            return CheckIn(record=existing, created=False)
        _require_enrolled(session=session, student=student)  # says which: the course or the group
        raise ServiceError(Code.NOT_ENROLLED, "You are not enrolled in this course.")
    return CheckIn(record=record, created=True, flags=[kind for kind, _ in flags])


def _require_enrolled(*, session: ClassSession, student: Student) -> None:
    if not Enrollment.objects.filter(
        student=student, section_id=session.section_id, status=Enrollment.Status.ENROLLED
    ).exists():
        raise ServiceError(Code.NOT_ENROLLED, "You are not enrolled in this course.")
    if session.group_id and not SectionGroupMember.objects.filter(group_id=session.group_id, student=student).exists():
        raise ServiceError(Code.NOT_IN_GROUP, f"This session is for group {session.group.name}, and you are not in it.")


def _record_fields() -> list:
    return [f for f in AttendanceRecord._meta.concrete_fields if not f.primary_key]


def _record_values(record: AttendanceRecord, fields: list) -> list:
    return [f.get_db_prep_save(f.pre_save(record, True), connection) for f in fields]


@functools.cache
def _record_insert_if_enrolled_sql(vendor: str, grouped: bool = False) -> tuple[list, str]:
    """(the fields inserted, the statement) of _record_insert_if_enrolled, built once per process;
    `grouped`: the session is for one group, so the student must be one of its members too."""
    meta, quote = AttendanceRecord._meta, connection.ops.quote_name
    fields = _record_fields()
    enrollment = Enrollment._meta
    member = (
        # Bandit B608: identifiers from model metadata; values are parameters.
        f"AND EXISTS (SELECT 1 FROM {quote(SectionGroupMember._meta.db_table)} WHERE {quote('group_id')} = %s "  # noqa: S608  # nosec B608
        f"AND {quote('student_id')} = %s) "
        if grouped
        else ""
    )
    # Identifiers come from the models' metadata, every value is a parameter.
    sql = (
        # Bandit B608: identifiers from model metadata; values are parameters.
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608  # nosec B608
        f"SELECT {', '.join(['%s'] * len(fields))} "
        f"WHERE EXISTS (SELECT 1 FROM {quote(enrollment.db_table)} WHERE {quote('student_id')} = %s "
        f"AND {quote('section_id')} = %s AND {quote('status')} = %s) "
        f"{member}"
        f"ON CONFLICT ({quote('session_id')}, {quote('student_id')}) DO NOTHING RETURNING {quote(meta.pk.column)}"
    )
    return fields, sql


def _record_insert_if_enrolled(record: AttendanceRecord) -> bool:
    """Inserts the record in one statement if the student is enrolled in the section and has no record
    in the session yet (the unique constraint decides races). Sets record.pk and returns True if it did."""
    group_id = record.session.group_id
    fields, sql = _record_insert_if_enrolled_sql(connection.vendor, grouped=group_id is not None)
    params = [*_record_values(record, fields), record.student_id, record.session.section_id, Enrollment.Status.ENROLLED]
    if group_id is not None:
        params += [group_id, record.student_id]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return False
    record.pk = row[0]
    record._state.adding = False
    record._state.db = connection.alias
    return True


INSERT_BATCH = 500


def _records_insert_missing(records: list[AttendanceRecord]) -> set[int]:
    """Inserts records of one session, a statement per INSERT_BATCH; a student who has a record by
    then (a check-in landing meanwhile) keeps it, as the unique constraint decides. Returns the
    student ids inserted."""
    meta, quote = AttendanceRecord._meta, connection.ops.quote_name
    fields = _record_fields()
    one_row = f"({', '.join(['%s'] * len(fields))})"
    inserted: set[int] = set()
    for start in range(0, len(records), INSERT_BATCH):
        batch = records[start : start + INSERT_BATCH]
        sql = (
            # Bandit B608: identifiers from model metadata; values are parameters.
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608  # nosec B608
            f"VALUES {', '.join([one_row] * len(batch))} "
            f"ON CONFLICT ({quote('session_id')}, {quote('student_id')}) DO NOTHING RETURNING {quote('student_id')}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [value for record in batch for value in _record_values(record, fields)])
            inserted.update(row[0] for row in cursor.fetchall())
    return inserted


def proxy_signs(*, session: ClassSession, student: Student, ip: str | None, device_id: str) -> list[tuple[str, str]]:
    """(kind, detail) for each sign that this check-in is made for someone else (docs/ATTENDANCE.md)."""
    signs = []
    if device_id:
        session_devices = AttendanceRecord.objects.filter(session=session).exclude(device_id="")
        if session_devices.filter(device_id=device_id).exclude(student=student).exists():
            signs.append((ProxyFlag.Kind.SHARED_DEVICE, "This device already checked in another student here."))
        sightings = {s.device_id: s.check_ins for s in DeviceSighting.objects.filter(student=student)}
        usual = {d for d, count in sightings.items() if count >= settings.ATTENDANCE_USUAL_DEVICE_CHECK_INS}
        if device_id not in sightings and usual and not session_devices.filter(device_id__in=usual).exists():
            signs.append((ProxyFlag.Kind.NEW_DEVICE, "First check-in from this device; the usual one is not here."))
    if ip:
        networks, own = section_networks(section_id=session.section_id)
        if networks and not any(_ip_in(ip, network) for network in networks):
            where = "the networks allowed for this section" if own else "the campus networks"
            signs.append((ProxyFlag.Kind.OFF_CAMPUS, f"Address {ip} is outside {where}."))
    return signs


def campus_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(cidr, strict=False) for cidr in settings.ATTENDANCE_CAMPUS_NETWORKS]


def section_networks(*, section_id: int) -> tuple[list[ipaddress.IPv4Network | ipaddress.IPv6Network], bool]:
    """The networks the section's check-ins are expected from, and whether they are its own: a
    section's non-empty list replaces the campus list."""
    own = SectionNetworkRule.objects.filter(section_id=section_id).values_list("networks", flat=True).first()
    if own:
        return [ipaddress.ip_network(cidr, strict=False) for cidr in own], True
    return campus_networks(), False


NETWORKS_MAX = 50


def networks_parse(text: str) -> list[str]:
    """CIDRs separated by commas, spaces or lines, normalised ("10.1.2.3/16" -> "10.1.0.0/16");
    a ServiceError naming every entry that is not one."""
    entries = [entry for entry in text.replace(",", " ").split() if entry]
    bad, networks = [], []
    for entry in entries:
        try:
            network = str(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            bad.append(entry)
            continue
        if network not in networks:
            networks.append(network)
    if bad:
        raise ServiceError(
            Code.NETWORKS_INVALID,
            f"Not a network address (like 10.20.0.0/16 or 2001:db8::/32): {', '.join(bad[:10])}.",
            field="networks",
        )
    if len(networks) > NETWORKS_MAX:
        raise ServiceError(Code.NETWORKS_INVALID, f"At most {NETWORKS_MAX} networks.", field="networks")
    return networks


@transaction.atomic
def section_network_rule_set(*, section: Section, networks: str, actor: User | None) -> SectionNetworkRule:
    """Sets the networks the section's check-ins are expected from; empty: the campus list again."""
    parsed = networks_parse(networks)
    rule = SectionNetworkRule.objects.select_for_update().filter(section=section).first()
    before = rule.networks if rule else []
    if rule is None:
        rule = SectionNetworkRule.objects.create(section=section, networks=parsed)
    elif parsed != before:
        rule.networks = parsed
        rule.save(update_fields=["networks", "updated_at"])
    if parsed != before:
        audit_log_write(
            actor=actor, verb="attendance.section_networks_set", target=section, changes={"networks": [before, parsed]}
        )
    return rule


def _ip_in(ip: str, network) -> bool:
    try:
        return ipaddress.ip_address(ip) in network
    except ValueError:
        return False


def _flags_write(*, session: ClassSession, record: AttendanceRecord, flags, device_id: str) -> None:
    new = [ProxyFlag(record=record, kind=kind, detail=detail) for kind, detail in flags]
    if any(kind == ProxyFlag.Kind.SHARED_DEVICE for kind, _ in flags):
        # The earlier check-ins from the same device are suspect too.
        for other in AttendanceRecord.objects.filter(session=session, device_id=device_id).exclude(pk=record.pk):
            new.append(
                ProxyFlag(record=other, kind=ProxyFlag.Kind.SHARED_DEVICE, detail="Device shared in this session.")
            )
    ProxyFlag.objects.bulk_create(new, ignore_conflicts=True)


def _device_seen(*, student: Student, device_id: str, at: datetime.datetime) -> None:
    updated = DeviceSighting.objects.filter(student=student, device_id=device_id).update(
        last_seen=at, check_ins=F("check_ins") + 1
    )
    if not updated:
        DeviceSighting.objects.bulk_create(
            [DeviceSighting(student=student, device_id=device_id, first_seen=at, last_seen=at)], ignore_conflicts=True
        )


def attendance_card_check_in(*, card_uid: str, reader_id: str, recorded_by: User | None) -> CheckIn:
    """A card reader's check-in: the card names the student, the reader its room, and the session is
    the one open in that room now (the student's own first, where two sections share a room)."""
    reader = CardReader.objects.filter(reader_id=reader_id).first()
    if reader is None:
        raise ServiceError(Code.READER_UNKNOWN, "This card reader is not registered.", field="reader_id")
    card = StudentCard.objects.select_related("student").filter(uid=card_uid, active=True).first()
    if card is None:
        raise ServiceError(Code.CARD_UNKNOWN, "This card is not registered or no longer active.", field="card_uid")
    now = timezone.now()
    early = datetime.timedelta(minutes=settings.ATTENDANCE_OPEN_EARLY_MINUTES)
    own = Enrollment.objects.filter(
        section=OuterRef("section"), student=card.student, status=Enrollment.Status.ENROLLED
    )
    # Two lab groups of one section can share a room: the student's own group's session comes first.
    own_group = SectionGroupMember.objects.filter(group=OuterRef("group"), student=card.student)
    session = (
        ClassSession.objects.select_related("section__course", "section__term")
        .filter(room=reader.room, state=State.OPEN, starts_at__lte=now + early, ends_at__gte=now)
        .exclude(room="")
        .annotate(own=Exists(own), own_group=Exists(own_group))
        .order_by("-own", "-own_group", "starts_at", "pk")
        .first()
    )
    if session is None:
        raise ServiceError(Code.NO_SESSION_IN_ROOM, f"No session is open in {reader.room} now.")
    return attendance_check_in(
        student=card.student,
        session=session,
        method=AttendanceRecord.Method.CARD,
        scanned_at=now,
        recorded_by=recorded_by,
    )


# --- Lecturers' corrections, excuses ----------------------------------------------------------


@dataclass(frozen=True)
class MarksSaved:
    session: ClassSession
    changed: dict[int, list[str | None]]  # student id -> [mark before (None: no record), mark after]
    # Students who checked in while the marks were being saved: their check-in stands.
    checked_in_meanwhile: list[int]
    marked_absent: int  # a not-taken session being taken: the students left without a mark


def marks_reason_may_be_needed(session: ClassSession, *, now: datetime.datetime | None = None) -> bool:
    """Whether saving marks in this session can need a reason (the page asks for one only then)."""
    return session.state == State.CLOSED or (now or timezone.now()) > session.ends_at


@transaction.atomic
def attendance_marks_save(
    *,
    session: ClassSession,
    marks: dict[int, str],
    actor: User | None,
    reason: str = "",
    unmarked_to: str = "",
    method: str = "manual",
) -> MarksSaved:
    """Saves many students' marks in a session at once, all or nothing, with one audit entry.
    Marking while the session is being taken needs no reason; changing a closed session's marks, or
    a recorded mark once the session has ended, does. A student whose check-in lands while this runs
    keeps it (never two records). `unmarked_to`: the mark of every student with no record and none
    given here. Taking a not-taken session closes it, the students still unmarked absent."""
    saved = _marks_apply(
        session=session, marks=marks, actor=actor, reason=reason, method=method, unmarked_to=unmarked_to
    )
    if saved.changed or saved.marked_absent:
        numbers = dict(Student.objects.filter(pk__in=saved.changed).values_list("pk", "student_number"))
        changes: dict[str, list] = {"marks_changed": [None, len(saved.changed)]}
        if saved.marked_absent:
            changes |= {"state": ["not_taken", "closed"], "marked_absent": [None, saved.marked_absent]}
        changes |= {numbers[student_id]: change for student_id, change in saved.changed.items()}
        audit_log_write(
            actor=actor, verb="attendance.marks_saved", target=saved.session, changes=changes, reason=reason
        )
    return saved


@transaction.atomic
def attendance_record_set(
    *, session: ClassSession, student: Student, status: str, actor: User | None, reason: str, method: str = "manual"
) -> AttendanceRecord:
    """Sets a student's record in a session by hand (creating it if needed), through the same path as
    attendance_marks_save; a single correction always says why. Audited: who, old -> new, why."""
    if not reason.strip():
        raise ServiceError(Code.REASON_REQUIRED, "Give a reason for the change.", field="reason")
    saved = _marks_apply(session=session, marks={student.pk: status}, actor=actor, reason=reason, method=method)
    record = AttendanceRecord.objects.get(session=session, student=student)
    if student.pk in saved.changed:
        audit_log_write(
            actor=actor, verb="attendance.changed", target=record, changes={"status": saved.changed[student.pk]},
            reason=reason,
        )  # fmt: skip
    return record


def _marks_apply(
    *, session: ClassSession, marks: dict[int, str], actor: User | None, reason: str, method: str, unmarked_to: str = ""
) -> MarksSaved:
    """The one write path of marks by hand: checks every mark before writing any, then a fixed number
    of statements for any number of students."""
    # NO KEY UPDATE: check-ins inserting records meanwhile (a key share lock on the session) go on.
    session = ClassSession.objects.select_for_update(no_key=True).get(pk=session.pk)
    if session.state == State.CANCELLED:
        raise ServiceError(Code.SESSION_CANCELLED, "This session was cancelled.")
    statuses = session_statuses(session)
    by_code, defaults = {status.code: status for status in statuses}, status_defaults_by_kind(statuses)
    code_of = record_code_reader(statuses)

    def status_of(mark: str):
        # A code of the section's set, or a kind: the set's first status of that kind.
        return by_code.get(mark) or defaults.get(mark)

    given = {*marks.values(), unmarked_to} - {""}
    if unknown := sorted(str(code) for code in given if status_of(code) is None):
        raise ServiceError(
            Code.STATUS_INVALID, f"Unknown mark {', '.join(unknown)}: use one of {', '.join(by_code)}.", field="status"
        )
    marks = {student_id: status_of(mark).code for student_id, mark in marks.items()}
    unmarked_to = status_of(unmarked_to).code if unmarked_to else ""
    roster = enrolled_at_session(session)
    enrolled = set((roster if unmarked_to else roster.filter(pk__in=list(marks))).values_list("pk", flat=True))
    if strangers := set(marks) - enrolled:
        detail = (
            "The student was not enrolled on the session's day."
            if len(strangers) == 1
            else f"{len(strangers)} of these students were not enrolled on the session's day."
        )
        raise ServiceError(Code.NOT_ENROLLED, detail, field="student")
    existing = {
        record.student_id: record
        # order_by(): the default ordering joins the session, which FOR UPDATE would then lock outright.
        for record in AttendanceRecord.objects.select_for_update(of=("self",))
        .filter(session=session, student_id__in=enrolled)
        .order_by()
    }
    if unmarked_to:
        excused = advance_absences_excusing(session)
        marks = {
            student_id: Status.EXCUSED if student_id in excused and unmarked_to == Status.ABSENT else unmarked_to
            for student_id in enrolled
            if student_id not in existing
        } | marks
    now = timezone.now()
    updated = [
        record for student_id, record in existing.items() if marks.get(student_id, code_of(record)) != code_of(record)
    ]
    new = [student_id for student_id in marks if student_id not in existing]
    recorded_changed = bool(updated) and now > session.ends_at
    if (updated or new) and (session.state == State.CLOSED or recorded_changed) and not reason.strip():
        raise ServiceError(Code.REASON_REQUIRED, "Say why these marks change.", field="reason")
    changed = {record.student_id: [code_of(record), marks[record.student_id]] for record in updated}
    by_mark: dict[str, list[int]] = {}
    for record in updated:
        by_mark.setdefault(marks[record.student_id], []).append(record.pk)
    # One UPDATE per mark given (a handful), not a CASE over every row as bulk_update writes.
    for mark, record_ids in by_mark.items():
        AttendanceRecord.objects.filter(pk__in=record_ids).update(
            status=by_code[mark].kind,
            status_choice_id=by_code[mark].pk,
            recorded_by=actor,
            voided=False,
            note=reason,
            updated_at=now,
        )
    inserted = _records_insert_missing(
        [
            AttendanceRecord(
                session=session,
                student_id=student_id,
                status=by_code[marks[student_id]].kind,
                status_choice_id=by_code[marks[student_id]].pk,
                recorded_at=now,
                method=method,
                recorded_by=actor,
                note=reason,
            )
            for student_id in new
        ]
    )
    changed |= {student_id: [None, marks[student_id]] for student_id in new if student_id in inserted}
    marked_absent = 0
    if session.state == State.NOT_TAKEN:
        marked_absent = _absent_fill(session, now)
        session.state, session.closed_at = State.CLOSED, now
        session.save(update_fields=["state", "closed_at", "updated_at"])
        section_id = session.section_id
        transaction.on_commit(lambda: enqueue("attendance.warnings_send", section_id=section_id))
    _attendance_grade_refresh_after_change(session)
    return MarksSaved(
        session=session,
        changed=changed,
        checked_in_meanwhile=[student_id for student_id in new if student_id not in inserted],
        marked_absent=marked_absent,
    )


@transaction.atomic
def attendance_record_void(*, record: AttendanceRecord, actor: User | None, reason: str) -> AttendanceRecord:
    """Voids a check-in the lecturer believes was made by proxy: it counts as absent. Audited."""
    if not reason.strip():
        raise ServiceError(Code.REASON_REQUIRED, "Say why the check-in is voided.", field="reason")
    record = AttendanceRecord.objects.select_for_update().select_related("session").get(pk=record.pk)
    if record.session.state == State.CANCELLED:
        raise ServiceError(Code.SESSION_CANCELLED, "This session was cancelled; its records count for nobody.")
    if record.voided:
        return record
    before = record.status
    record.status, record.status_choice, record.voided, record.note = Status.ABSENT, None, True, reason
    record.save(update_fields=["status", "status_choice", "voided", "note", "updated_at"])
    audit_log_write(
        actor=actor, verb="attendance.voided", target=record, changes={"status": [before, "absent"]}, reason=reason
    )
    _attendance_grade_refresh_after_change(record.session)
    return record


@transaction.atomic
def absence_excuse_submit(*, record: AttendanceRecord, student: Student, reason: str) -> AbsenceExcuse:
    if record.student_id != student.pk or record.status != Status.ABSENT or record.voided:
        raise ServiceError(Code.EXCUSE_NOT_ALLOWED, "Only your own absences can be excused.")
    if not reason.strip():
        raise ServiceError(Code.REASON_REQUIRED, "Say why you were absent.", field="reason")
    if AbsenceExcuse.objects.filter(record=record).exists():
        raise ServiceError(Code.EXCUSE_NOT_ALLOWED, "An excuse for this absence was already submitted.", status=409)
    return AbsenceExcuse.objects.create(record=record, reason=reason)


def _decision_save(request: AbsenceExcuse | AdvanceAbsence, *, approve: bool, actor: User | None, note: str) -> None:
    """Records who decided a student's request (an excuse, an absence reported in advance), when and how."""
    request.state = request.State.APPROVED if approve else request.State.REJECTED
    request.decided_by, request.decided_at, request.decision_note = actor, timezone.now(), note
    request.save(update_fields=["state", "decided_by", "decided_at", "decision_note", "updated_at"])


@transaction.atomic
def absence_excuse_decide(*, excuse: AbsenceExcuse, approve: bool, actor: User | None, note: str = "") -> AbsenceExcuse:
    excuse = AbsenceExcuse.objects.select_for_update().select_related("record").get(pk=excuse.pk)
    if excuse.state != AbsenceExcuse.State.SUBMITTED:
        raise ServiceError(Code.EXCUSE_ALREADY_DECIDED, "This excuse was already decided.", status=409)
    _decision_save(excuse, approve=approve, actor=actor, note=note)
    record = excuse.record
    # Only a record that is still an absence becomes excused (a voided check-in included: the
    # student was not there); one changed to present or late since the excuse stays as it is.
    if approve and record.status == Status.ABSENT:
        record.status, record.status_choice, record.voided = Status.EXCUSED, None, False
        record.save(update_fields=["status", "status_choice", "voided", "updated_at"])
        _attendance_grade_refresh_after_change(record.session)
    audit_log_write(
        actor=actor,
        verb="attendance.excuse_decided",
        target=excuse.record,
        changes={"excuse": ["submitted", excuse.state]},
        reason=note,
    )
    return excuse


# --- Absences reported in advance ---------------------------------------------------------------

# The first bytes of each accepted file type: what the file is, whatever its name or the browser say.
_ATTACHMENT_SIGNATURES = {b"%PDF-": "application/pdf", b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}


def _attachment_content_type(attachment: UploadedFile) -> str:
    if attachment.size > ATTACHMENT_MAX_BYTES:
        raise ServiceError(
            Code.ATTACHMENT_INVALID,
            f"The attachment is larger than {ATTACHMENT_MAX_BYTES // (1024 * 1024)} MB.",
            field="attachment",
        )
    attachment.seek(0)
    head = attachment.read(8)
    attachment.seek(0)
    for signature, content_type in _ATTACHMENT_SIGNATURES.items():
        if head.startswith(signature):
            return content_type
    raise ServiceError(Code.ATTACHMENT_INVALID, "Attach a PDF, JPEG or PNG file.", field="attachment")


@transaction.atomic
def advance_absence_submit(
    *,
    student: Student,
    term: Term,
    section: Section | None,
    first_day: datetime.date,
    last_day: datetime.date,
    reason: str,
    attachment: UploadedFile | None = None,
) -> AdvanceAbsence:
    """A student reports an absence to come (today included), for one of their sections in the term or
    all of them. A report overlapping another still waiting for a decision is refused."""
    if not reason.strip():
        raise ServiceError(Code.REASON_REQUIRED, "Say why you will be absent.", field="reason")
    today = timezone.localdate()
    if first_day < today:
        raise ServiceError(
            Code.ABSENCE_DATES_INVALID, "Report absences from today on; excuse past ones from your attendance page.",
            field="first_day",
        )  # fmt: skip
    if last_day < first_day:
        raise ServiceError(Code.ABSENCE_DATES_INVALID, "The last day cannot be before the first.", field="last_day")
    if (last_day - first_day).days >= ADVANCE_ABSENCE_MAX_DAYS:
        raise ServiceError(
            Code.ABSENCE_DATES_INVALID, f"Report at most {ADVANCE_ABSENCE_MAX_DAYS} days at once.", field="last_day"
        )
    if not (term.start_date <= first_day and last_day <= term.end_date):
        raise ServiceError(Code.ABSENCE_DATES_INVALID, f"The days must fall within term {term.name}.", field="last_day")
    enrolled = Enrollment.objects.filter(student=student, section__term=term, status=Enrollment.Status.ENROLLED)
    if section is not None:
        enrolled = enrolled.filter(section=section)
    if (section is not None and section.term_id != term.pk) or not enrolled.exists():
        raise ServiceError(Code.NOT_ENROLLED, "You are not enrolled in this course.", field="section")
    # Lock the student's reports: two submissions at once cannot both pass the overlap check.
    list(Student.objects.select_for_update().filter(pk=student.pk).values_list("pk"))
    overlapping = AdvanceAbsence.objects.filter(
        student=student, state=AdvanceAbsence.State.SUBMITTED, first_day__lte=last_day, last_day__gte=first_day
    )
    if section is not None:
        overlapping = overlapping.filter(Q(section=section) | Q(section=None))
    if overlapping.exists():
        raise ServiceError(
            Code.ABSENCE_OVERLAPS, "You already reported an absence on some of these days that awaits a decision.",
            status=409,
        )  # fmt: skip
    absence = AdvanceAbsence(
        student=student, term=term, section=section, first_day=first_day, last_day=last_day, reason=reason
    )
    if attachment is not None:
        absence.attachment_content_type = _attachment_content_type(attachment)
        absence.attachment = attachment
    absence.full_clean(exclude=["attachment"])
    absence.save()
    audit_log_write(
        actor=student.user, verb="advance_absence.submitted", target=absence, action=AuditLogEntry.Action.CREATE
    )
    return absence


def _may_decide(absence: AdvanceAbsence, actor: User) -> bool:
    if is_registry_staff(actor):
        return True
    sections = Section.objects.filter(lecturers=actor)
    if absence.section_id is not None:
        return sections.filter(pk=absence.section_id).exists()
    return sections.filter(term_id=absence.term_id, enrollments__student_id=absence.student_id).exists()


@transaction.atomic
def advance_absence_decide(*, absence: AdvanceAbsence, approve: bool, actor: User, note: str = "") -> AdvanceAbsence:
    """A lecturer of the section (any of the student's, for a report covering all) or a registrar
    approves or rejects a report; sessions it covers that close from then on mark the student excused."""
    absence = AdvanceAbsence.objects.select_for_update().get(pk=absence.pk)
    if not _may_decide(absence, actor):
        raise ServiceError(Code.NOT_ALLOWED, "Only the section's lecturers or a registrar decide this.", status=403)
    if absence.state != AdvanceAbsence.State.SUBMITTED:
        raise ServiceError(Code.ABSENCE_ALREADY_DECIDED, "This report was already decided or withdrawn.", status=409)
    _decision_save(absence, approve=approve, actor=actor, note=note)
    audit_log_write(
        actor=actor,
        verb="advance_absence.decided",
        target=absence,
        changes={"state": ["submitted", absence.state]},
        reason=note,
    )
    return absence


@transaction.atomic
def advance_absence_withdraw(*, absence: AdvanceAbsence, student: Student) -> AdvanceAbsence:
    absence = AdvanceAbsence.objects.select_for_update().get(pk=absence.pk)
    if absence.student_id != student.pk:
        raise ServiceError(Code.NOT_ALLOWED, "Only your own reports can be withdrawn.", status=403)
    if absence.state != AdvanceAbsence.State.SUBMITTED:
        raise ServiceError(Code.ABSENCE_ALREADY_DECIDED, "A decided report can no longer be withdrawn.", status=409)
    absence.state = AdvanceAbsence.State.WITHDRAWN
    absence.save(update_fields=["state", "updated_at"])
    changes = {"state": ["submitted", "withdrawn"]}
    audit_log_write(actor=student.user, verb="advance_absence.withdrawn", target=absence, changes=changes)
    return absence


# --- Periodic work ---------------------------------------------------------------------------


def class_sessions_close_finished() -> int:
    """Closes every open or scheduled session whose end lies ATTENDANCE_AUTO_CLOSE_AFTER_MINUTES back."""
    cutoff = timezone.now() - datetime.timedelta(minutes=settings.ATTENDANCE_AUTO_CLOSE_AFTER_MINUTES)
    finished = ClassSession.objects.filter(state__in=[State.OPEN, State.SCHEDULED], ends_at__lte=cutoff)
    count = 0
    for session in finished.iterator():
        class_session_close(session=session, actor=None)
        count += 1
    return count


OFF_CAMPUS_PURGED_DETAIL = "Checked in from outside the campus networks (address erased)."


@transaction.atomic
def attendance_evidence_purge() -> int:
    """Forgets IP, user agent and device id of check-ins older than the retention period, wherever they
    were copied: the record, the student's device sightings, an off-campus flag's detail (it quotes the
    address). Returns how many records it erased; running it again erases nothing more."""
    now = timezone.now()
    cutoff = now - datetime.timedelta(days=settings.ATTENDANCE_EVIDENCE_RETENTION_DAYS)
    DeviceSighting.objects.filter(last_seen__lt=cutoff).delete()
    ProxyFlag.objects.filter(kind=ProxyFlag.Kind.OFF_CAMPUS, record__recorded_at__lt=cutoff).exclude(
        detail=OFF_CAMPUS_PURGED_DETAIL
    ).update(detail=OFF_CAMPUS_PURGED_DETAIL)
    old = AttendanceRecord.objects.filter(recorded_at__lt=cutoff).exclude(ip=None, user_agent="", device_id="")
    # updated_at moves, so an API client's next incremental sync erases its copy too.
    return old.update(ip=None, user_agent="", device_id="", updated_at=now)


@transaction.atomic
def attendance_warnings_send(*, section_id: int) -> int:
    """Sends the warnings due in the section under its rules (docs/ATTENDANCE.md: warning rules): each
    rule warns a student once, a rule sends nothing to a student who already had its maximum of
    warnings in the term, and every recipient gets their own email. Returns how many warnings it sent."""
    section = Section.objects.select_related("course", "term").prefetch_related("lecturers").get(pk=section_id)
    rules = warning_rules_for_section(section)
    if not rules:
        return 0
    sent_before = AttendanceWarningState.objects.select_for_update().filter(section=section, rule__isnull=False)
    sent = {(state.student_id, state.rule_id) for state in sent_before}
    in_term = dict(
        AttendanceWarningState.objects.filter(section__term=section.term_id, last_warned_at__isnull=False)
        .values("student")
        .annotate(n=Count("pk"))
        .values_list("student", "n")
    )
    lecturers = [user.email for user in section.lecturers.all() if user.email]
    mail = get_connection()
    now = timezone.now()
    warnings = []
    for standing in warning_standings(section):
        student = standing.rate.enrollment.student
        for rule in rules:
            if (student.pk, rule.pk) in sent or in_term.get(student.pk, 0) >= rule.max_per_term:
                continue
            missed = standing.missed_for(rule)
            if missed is None:
                continue
            recipients = [student.user.email] if rule.notify_student else []
            recipients += lecturers if rule.notify_lecturers else []
            if rule.notify_advisor and student.advisor_id and student.advisor.email:
                recipients.append(student.advisor.email)
            context = {"student": student, "section": section, "rule": rule, "rate": standing.rate, "missed": missed}
            mail.send_messages([_warning_email(context, to) for to in dict.fromkeys(recipients) if to])
            warnings.append(AttendanceWarningState(student=student, section=section, rule=rule, below=True,
                                                   last_warned_at=now))  # fmt: skip
            in_term[student.pk] = in_term.get(student.pk, 0) + 1
    AttendanceWarningState.objects.bulk_create(warnings)
    return len(warnings)


def _warning_email(context: dict, to: str) -> EmailMultiAlternatives:
    subject = render_to_string("attendance/email/warning_subject.txt", context).strip()
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split()), body=render_to_string("attendance/email/warning.txt", context), to=[to]
    )
    message.attach_alternative(render_to_string("attendance/email/warning.html", context), "text/html")
    return message


# --- Status sets -----------------------------------------------------------------------------


def status_set_kinds_validate(kinds: list[str]) -> None:
    """Every kind needs a status: check-in gives present or late, closing absent, an excuse excused."""
    missing = [str(label) for value, label in Status.choices if value not in kinds]
    if missing:
        raise ServiceError(
            Code.STATUS_SET_INCOMPLETE,
            f"A status set needs at least one status of each kind; add one for: {', '.join(missing)}.",
        )


@transaction.atomic
def attendance_status_set_saved(*, status_set: AttendanceStatusSet, actor: User | None, adding: bool) -> None:
    """Checks a set as saved together with its statuses (the admin saves both in one transaction:
    a refusal rolls back both) and audits what it now holds."""
    statuses = list(status_set.statuses.all())
    status_set_kinds_validate([s.kind for s in statuses])
    audit_log_write(
        actor=actor,
        verb="attendance_status_set.created" if adding else "attendance_status_set.changed",
        target=status_set,
        action=AuditLogEntry.Action.CREATE if adding else AuditLogEntry.Action.UPDATE,
        changes={"statuses": [None, [f"{s.code} ({s.kind}, {s.points})" for s in statuses]]},
    )


# --- Attendance as a grade -------------------------------------------------------------------

HUNDRED = Decimal(100)


def attendance_grades_refresh(*, section_id: int) -> None:
    """Recomputes the section's attendance grades after this transaction commits, where it has them
    (most sections do not: their closes send no task)."""
    if SectionAttendanceGrade.objects.filter(section_id=section_id).exists():
        transaction.on_commit(lambda: enqueue("attendance.grades_compute", section_id=section_id))


def _attendance_grade_refresh_after_change(session: ClassSession) -> None:
    # Only closed sessions count towards the grade: a mark changed in an open one changes nothing yet.
    if session.state == State.CLOSED:
        attendance_grades_refresh(section_id=session.section_id)


def attendance_grade_score(points: list[Decimal], *, best: Decimal, drop_lowest: int) -> Decimal | None:
    """100 x the points kept (the lowest `drop_lowest` left out) / the most they could have been; None
    when nothing is left to count or no status earns points."""
    kept = sorted(points)[drop_lowest:]
    if not kept or best <= 0:
        return None
    # A mark given under a former set may earn more than today's best status: never above 100.
    return min(HUNDRED * sum(kept, Decimal(0)) / (best * len(kept)), HUNDRED)


@transaction.atomic
def section_attendance_grades_compute(*, section_id: int, actor: User | None = None) -> int:
    """Sets every enrolled student's score of the section's attendance assessment from the points of
    their marks in its closed sessions since they enrolled (docs/ATTENDANCE.md). Idempotent; returns how
    many grades changed (0 where the section has no attendance grade)."""
    # Locked: a close and a corrected mark may recompute the same section at once; one waits for the other.
    config = (
        SectionAttendanceGrade.objects.select_for_update(of=("self",))
        .select_related("assessment")
        .filter(section_id=section_id)
        .first()
    )
    if config is None:
        return 0
    statuses = section_statuses(section_id)
    defaults = status_defaults_by_kind(statuses)
    best = max((s.points for s in statuses if s.points is not None), default=Decimal(0))
    session_days = {
        pk: timezone.localtime(starts_at).date()
        for pk, starts_at in ClassSession.objects.filter(section_id=section_id, state=State.CLOSED).values_list(
            "pk", "starts_at"
        )
    }
    marks: dict[tuple[int, int], tuple[str, Decimal | None, bool]] = {
        (student_id, session_id): (kind, choice_points, choice_id is not None)
        for student_id, session_id, kind, choice_points, choice_id in AttendanceRecord.objects.filter(
            session_id__in=session_days
        ).values_list("student_id", "session_id", "status", "status_choice__points", "status_choice_id")
    }
    scores = {}
    enrolled = Enrollment.objects.filter(section_id=section_id, status=Enrollment.Status.ENROLLED)
    for student_id, enrolled_on in enrolled.values_list("student_id", "enrolled_on"):
        points = []
        for session_id, day in session_days.items():
            if day < enrolled_on:
                continue
            kind, choice_points, chosen = marks.get((student_id, session_id), (Status.ABSENT, None, False))
            if kind == Status.EXCUSED:
                continue
            default = defaults.get(kind)
            points.append(choice_points if chosen else (default.points if default else Decimal(0)))
        score = attendance_grade_score(points, best=best, drop_lowest=config.drop_lowest)
        # On the assessment's own scale: 100 unless a registrar changed its maximum since.
        scores[student_id] = None if score is None else score * config.assessment.max_score / HUNDRED
    return grades_computed_set(
        assessment=config.assessment, scores=scores, actor=actor, reason="Computed from attendance."
    )


def _drop_lowest_validate(drop_lowest: int) -> None:
    if not 0 <= drop_lowest <= 100:
        raise ServiceError(
            Code.DROP_LOWEST_INVALID, "Drop between 0 and 100 of the lowest sessions.", field="drop_lowest"
        )


@transaction.atomic
def section_attendance_grade_enable(
    *, section: Section, weight: Decimal, drop_lowest: int = 0, name: str = "Attendance", actor: User | None
) -> SectionAttendanceGrade:
    """Counts the section's attendance as an assessment of `weight` percent (max score 100), its scores
    computed at once and after every session closes."""
    _drop_lowest_validate(drop_lowest)
    if SectionAttendanceGrade.objects.filter(section=section).exists():
        raise ServiceError(Code.ATTENDANCE_GRADE_EXISTS, f"{section} already counts attendance as a grade.", status=409)
    if Assessment.objects.filter(section=section, name=name).exists():
        raise ServiceError(
            Code.ATTENDANCE_GRADE_EXISTS, f"{section} already has an assessment named {name}.", field="name"
        )
    assessment = assessment_save(
        assessment=Assessment(section=section, name=name, weight=weight, max_score=HUNDRED, computed=True), actor=actor
    )
    config = SectionAttendanceGrade.objects.create(section=section, assessment=assessment, drop_lowest=drop_lowest)
    audit_log_write(
        actor=actor,
        verb="attendance_grade.enabled",
        target=config,
        action=AuditLogEntry.Action.CREATE,
        changes={"weight": [None, str(weight)], "drop_lowest": [None, drop_lowest]},
    )
    section_attendance_grades_compute(section_id=section.pk, actor=actor)
    return config


@transaction.atomic
def section_attendance_grade_update(
    *, config: SectionAttendanceGrade, drop_lowest: int, actor: User | None, weight: Decimal | None = None
) -> SectionAttendanceGrade:
    """Changes how many of the lowest sessions are left out (and recomputes the scores), and the
    weight if given (the section's weights still at most 100)."""
    _drop_lowest_validate(drop_lowest)
    config = SectionAttendanceGrade.objects.select_for_update().select_related("assessment").get(pk=config.pk)
    if weight is not None and config.assessment.weight != weight:
        config.assessment.weight = weight
        assessment_save(assessment=config.assessment, actor=actor)
    if config.drop_lowest != drop_lowest:
        before, config.drop_lowest = config.drop_lowest, drop_lowest
        config.save(update_fields=["drop_lowest", "updated_at"])
        audit_log_write(
            actor=actor, verb="attendance_grade.changed", target=config, changes={"drop_lowest": [before, drop_lowest]}
        )
        section_attendance_grades_compute(section_id=config.section_id, actor=actor)
    return config


@transaction.atomic
def section_attendance_grade_disable(*, config: SectionAttendanceGrade, actor: User | None) -> Assessment:
    """Stops counting attendance as a grade. The assessment and its scores stay, as an ordinary assessment
    its lecturers may now grade by hand (docs/ATTENDANCE.md: grades already given are part of the record)."""
    config = SectionAttendanceGrade.objects.select_for_update().select_related("assessment").get(pk=config.pk)
    assessment = config.assessment
    audit_log_write(
        actor=actor,
        verb="attendance_grade.disabled",
        target=config,
        action=AuditLogEntry.Action.DELETE,
        changes={"assessment": [assessment.pk, None], "drop_lowest": [config.drop_lowest, None]},
    )
    config.delete()
    assessment.computed = False
    return assessment_save(assessment=assessment, actor=actor)


# --- Calendar feeds ------------------------------------------------------------------------------

# A feed's last use is written at most this often: calendar clients poll, reads must not become writes.
CALENDAR_FEED_LAST_USED_RESOLUTION = datetime.timedelta(minutes=15)


def calendar_feed_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def calendar_feed_create(*, user: User) -> tuple[CalendarFeed, str]:
    """A new private feed of the user's timetable and its secret (shown once, never stored); the
    user's previous feed is revoked, so a leaked URL is dead once they make a new one."""
    calendar_feed_revoke(user=user)
    token = secrets.token_urlsafe(32)
    feed = CalendarFeed.objects.create(user=user, token_hash=calendar_feed_token_hash(token))
    audit_log_write(actor=user, verb="calendar_feed.created", target=feed, action=AuditLogEntry.Action.CREATE)
    return feed, token


@transaction.atomic
def calendar_feed_revoke(*, user: User) -> int:
    """Revokes the user's active feed (if any); its URL answers 404 from now on. Returns how many."""
    now = timezone.now()
    revoked = 0
    for feed in CalendarFeed.objects.select_for_update().filter(user=user, revoked_at__isnull=True):
        feed.revoked_at = now
        feed.save(update_fields=["revoked_at"])
        audit_log_write(actor=user, verb="calendar_feed.revoked", target=feed, changes={"revoked_at": [None, str(now)]})
        revoked += 1
    return revoked


def calendar_feed_use(*, token: str) -> CalendarFeed | None:
    """The active feed of this secret, its owner active, or None. Found by the secret's hash (the
    database never compares the secret itself), then compared in constant time."""
    token_hash = calendar_feed_token_hash(token)
    feed = (
        CalendarFeed.objects.select_related("user")
        .filter(token_hash=token_hash, revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if feed is None or not hmac.compare_digest(feed.token_hash, token_hash):
        return None
    now = timezone.now()
    if feed.last_used_at is None or now - feed.last_used_at > CALENDAR_FEED_LAST_USED_RESOLUTION:
        CalendarFeed.objects.filter(pk=feed.pk).update(last_used_at=now)
        feed.last_used_at = now
    return feed
