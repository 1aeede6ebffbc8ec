"""The Django admin of attendance, for registry staff.

Sessions are created, opened, closed and cancelled by the services; records are set and voided by
attendance_record_set / attendance_record_void with the admin user as the actor and a reason, so the
audit log holds every change. Nothing here hard-deletes a session or a record. What the anti-proxy
checks wrote (flags, device sightings) and the warning states are read-only; the warning rules are
registrars' to set; absences reported in advance are decided in the portal (read here). Status sets are
edited with their statuses inline; attendance grades are enabled and changed through their services.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from import_export.fields import Field
from import_export.formats import base_formats

from attendance.models import (
    AbsenceExcuse,
    AdvanceAbsence,
    AttendanceRecord,
    AttendanceStatus,
    AttendanceStatusSet,
    AttendanceWarningRule,
    AttendanceWarningState,
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
from attendance.resources import (
    AttendanceMarkImportResource,
    ClassSessionImportResource,
    ModAttendanceCSV,
    ModAttendanceImportResource,
)
from attendance.selectors import statuses_in_use
from attendance.services import (
    absence_excuse_decide,
    attendance_record_set,
    attendance_record_void,
    attendance_status_set_saved,
    class_session_cancel,
    class_session_close,
    class_session_create,
    class_session_open,
    section_attendance_grade_disable,
    section_attendance_grade_enable,
    section_attendance_grade_update,
    section_group_member_import,
    section_group_members_add,
    section_group_members_remove,
    status_set_kinds_validate,
)
from campusiq.core.admin import (
    CampusImportMixin,
    CampusModelAdmin,
    ReadOnlyAdmin,
    ReadOnlyInline,
    ReasonActionForm,
    form_add_service_error,
    form_value,
    related_count,
    service_dry_run,
)
from campusiq.core.errors import ServiceError
from students.resources import (
    CampusResource,
    ServiceImportResource,
    cells_required,
    instance_adopt,
    section_lookup,
    student_lookup,
    text,
)

Status = AttendanceRecord.Status
ATTENDED = (Status.PRESENT, Status.LATE)


def _action_reason(request) -> str:
    return request.POST.get("reason", "").strip()


def _run_action(model_admin, request, queryset, verb: str, call) -> None:
    """Calls the service for each selected row; refusals are reported per row, the rest is done."""
    done = 0
    for row in queryset:
        try:
            call(row)
        except ServiceError as error:
            model_admin.message_user(request, f"{row}: {error.detail}", messages.ERROR)
        else:
            done += 1
    if done:
        model_admin.message_user(request, f"{done} {verb}.", messages.SUCCESS)


# --- Exports ----------------------------------------------------------------------------------


class ClassSessionResource(CampusResource):
    course = text("section__course__code")
    term = text("section__term__name")
    section = text("section__code")
    export_select_related = ("section__course", "section__term")

    class Meta:
        model = ClassSession
        fields = ("id", "course", "term", "section", "starts_at", "ends_at", "room", "state", "series")


class AttendanceRecordResource(CampusResource):
    """Registry exports leave out the check-in evidence (IP, user agent, device): not needed there."""

    course = text("session__section__course__code")
    term = text("session__section__term__name")
    section = text("session__section__code")
    session_starts_at = Field(attribute="session__starts_at", column_name="session_starts_at")
    student_number = text("student__student_number")
    recorded_by = text("recorded_by__email")
    export_select_related = ("session__section__course", "session__section__term", "student", "recorded_by")

    class Meta:
        model = AttendanceRecord
        fields = (
            "course", "term", "section", "session_starts_at", "student_number", "status", "method", "recorded_at",
            "recorded_by", "voided", "note",
        )  # fmt: skip


# --- Sessions ---------------------------------------------------------------------------------


class ClassSessionForm(forms.ModelForm):
    class Meta:
        model = ClassSession
        fields = ["section", "starts_at", "ends_at", "room", "late_after_minutes"]

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is None and not self.errors:
            try:
                service_dry_run(class_session_create, **self.service_arguments())
            except ServiceError as error:
                form_add_service_error(self, error)
        return cleaned

    def service_arguments(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


class ClassSessionRecordInline(ReadOnlyInline):
    model = AttendanceRecord
    fields = readonly_fields = ["student", "status", "method", "recorded_at", "voided", "recorded_by"]
    verbose_name_plural = "records"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("student__user", "recorded_by")


SESSION_DETAIL = ["state", "series", "opened_at", "closed_at", "created_at", "updated_at"]


@admin.register(ClassSession)
class ClassSessionAdmin(CampusImportMixin, CampusModelAdmin):
    resource_classes = [ClassSessionResource]
    form = ClassSessionForm
    action_form = ReasonActionForm
    list_display = ["section", "starts_at", "room", "state", "attended_count", "absent_count", "excused_count"]
    list_filter = ["state", "section__term", "starts_at"]
    search_fields = ["section__course__code", "room"]
    date_hierarchy = "starts_at"
    autocomplete_fields = ["section"]
    list_select_related = ("section__course", "section__term")
    inlines = [ClassSessionRecordInline]
    actions = ["open_sessions", "close_sessions", "cancel_sessions"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                attended_count=related_count(AttendanceRecord.objects, "session", status__in=ATTENDED),
                absent_count=related_count(AttendanceRecord.objects, "session", status=Status.ABSENT),
                excused_count=related_count(AttendanceRecord.objects, "session", status=Status.EXCUSED),
            )
        )

    def get_import_resource_classes(self, request):
        return [ClassSessionImportResource]

    def get_fields(self, request, obj=None):
        return ClassSessionForm.Meta.fields + (SESSION_DETAIL if obj is not None else [])

    def get_readonly_fields(self, request, obj=None):
        # No service edits a session's times or section; its state changes through the actions.
        return ClassSessionForm.Meta.fields + SESSION_DETAIL if obj is not None else []

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def has_delete_permission(self, request, obj=None) -> bool:
        # Deleting would take the records along; a session that did not happen is cancelled.
        return False

    def save_model(self, request, obj, form, change):
        if not change:
            instance_adopt(obj, class_session_create(actor=request.user, **form.service_arguments()))

    @admin.display(description="present or late", ordering="attended_count")
    def attended_count(self, session: ClassSession) -> int:
        return session.attended_count

    @admin.display(description="absent", ordering="absent_count")
    def absent_count(self, session: ClassSession) -> int:
        return session.absent_count

    @admin.display(description="excused", ordering="excused_count")
    def excused_count(self, session: ClassSession) -> int:
        return session.excused_count

    @admin.action(description="Open check-in of the selected sessions", permissions=["change"])
    def open_sessions(self, request, queryset):
        _run_action(
            self,
            request,
            queryset,
            "sessions opened",
            lambda session: class_session_open(session=session, actor=request.user),
        )

    @admin.action(description="Close the selected sessions (mark missing students absent)", permissions=["change"])
    def close_sessions(self, request, queryset):
        _run_action(
            self,
            request,
            queryset,
            "sessions closed",
            lambda session: class_session_close(session=session, actor=request.user),
        )

    @admin.action(description="Cancel the selected sessions (give the reason)", permissions=["change"])
    def cancel_sessions(self, request, queryset):
        reason = _action_reason(request)
        _run_action(
            self,
            request,
            queryset,
            "sessions cancelled",
            lambda session: class_session_cancel(session=session, actor=request.user, reason=reason),
        )


# --- Records ----------------------------------------------------------------------------------


class AttendanceRecordForm(forms.ModelForm):
    reason = forms.CharField(
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why the status is set or changed; kept in the audit log.",
    )

    class Meta:
        model = AttendanceRecord
        fields = ["session", "student", "status"]

    def clean(self):
        cleaned = super().clean()
        if not self.errors and (self.instance.pk is None or self.has_changed()):
            try:
                service_dry_run(attendance_record_set, actor=None, **self.service_arguments())
            except ServiceError as error:
                form_add_service_error(self, error)
        return cleaned

    def service_arguments(self) -> dict:
        return {
            "session": form_value(self, "session"),
            "student": form_value(self, "student"),
            "status": self.cleaned_data.get("status"),
            "reason": self.cleaned_data.get("reason", ""),
        }


RECORD_DETAIL = [
    "method", "recorded_at", "recorded_by", "voided", "note", "ip", "user_agent", "device_id", "created_at",
    "updated_at",
]  # fmt: skip


@admin.register(AttendanceRecord)
class AttendanceRecordAdmin(CampusImportMixin, CampusModelAdmin):
    """Status changes go through attendance_record_set (audited, with the reason); voiding through
    attendance_record_void. The check-in evidence is shown to staff on the record's page only."""

    resource_classes = [AttendanceRecordResource]
    form = AttendanceRecordForm
    action_form = ReasonActionForm
    list_display = ["student", "session", "status", "method", "recorded_at", "voided"]
    list_filter = ["status", "method", "voided", "session__starts_at"]
    search_fields = ["student__student_number", "student__user__last_name"]
    autocomplete_fields = ["session", "student"]
    list_select_related = ("student__user", "session__section__course", "session__section__term")
    actions = ["void_records"]
    # Imported marks are written after the file's last row, by attendance_marks_save, which audits them.
    skip_admin_log = True

    import_formats = [ModAttendanceCSV, base_formats.XLSX]

    def get_import_resource_classes(self, request):
        return [AttendanceMarkImportResource, ModAttendanceImportResource]

    def get_fields(self, request, obj=None):
        return ["session", "student", "status", "reason"] + (RECORD_DETAIL if obj is not None else [])

    def get_readonly_fields(self, request, obj=None):
        return ["session", "student", *RECORD_DETAIL] if obj is not None else []

    def has_delete_permission(self, request, obj=None) -> bool:
        # A wrong record is corrected or voided, with a reason in the audit log; never erased.
        return False

    def save_model(self, request, obj, form, change):
        if change and not form.has_changed():
            return
        record = attendance_record_set(actor=request.user, **form.service_arguments())
        instance_adopt(obj, record)

    @admin.action(description="Void the selected check-ins (count as absent; give the reason)", permissions=["change"])
    def void_records(self, request, queryset):
        reason = _action_reason(request)
        _run_action(
            self,
            request,
            queryset,
            "records voided",
            lambda record: attendance_record_void(record=record, actor=request.user, reason=reason),
        )


@admin.register(ProxyFlag)
class ProxyFlagAdmin(ReadOnlyAdmin):
    list_display = ["record", "kind", "detail", "created_at"]
    list_filter = ["kind"]
    search_fields = ["record__student__student_number", "detail"]
    date_hierarchy = "created_at"
    list_select_related = ("record__student", "record__session__section__course", "record__session__section__term")


@admin.register(AbsenceExcuse)
class AbsenceExcuseAdmin(CampusModelAdmin):
    """Students submit excuses in the portal; staff approve (the absence becomes excused) or reject."""

    action_form = ReasonActionForm
    list_display = ["record", "state", "reason", "created_at", "decided_by", "decided_at"]
    list_filter = ["state"]
    search_fields = ["record__student__student_number", "reason"]
    list_select_related = (
        "record__student", "record__session__section__course", "record__session__section__term", "decided_by",
    )  # fmt: skip
    readonly_fields = ["record", "reason", "state", "decided_by", "decided_at", "decision_note", "created_at"]
    fields = readonly_fields
    actions = ["approve_excuses", "reject_excuses"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def _decide(self, request, queryset, approve: bool) -> None:
        note = _action_reason(request)
        _run_action(
            self,
            request,
            queryset,
            "excuses approved" if approve else "excuses rejected",
            lambda excuse: absence_excuse_decide(excuse=excuse, approve=approve, actor=request.user, note=note),
        )

    @admin.action(description="Approve the selected excuses (the absences become excused)", permissions=["change"])
    def approve_excuses(self, request, queryset):
        self._decide(request, queryset, approve=True)

    @admin.action(description="Reject the selected excuses", permissions=["change"])
    def reject_excuses(self, request, queryset):
        self._decide(request, queryset, approve=False)


# --- Calendar and hardware --------------------------------------------------------------------


@admin.register(TermHoliday)
class TermHolidayAdmin(CampusModelAdmin):
    list_display = ["date", "name", "term"]
    list_filter = ["term"]
    search_fields = ["name", "term__name"]
    autocomplete_fields = ["term"]
    list_select_related = ("term",)


@admin.register(StudentCard)
class StudentCardAdmin(CampusModelAdmin):
    list_display = ["uid", "student", "active"]
    list_filter = ["active"]
    search_fields = ["uid", "student__student_number", "student__user__last_name"]
    autocomplete_fields = ["student"]
    list_select_related = ("student__user",)


@admin.register(CardReader)
class CardReaderAdmin(CampusModelAdmin):
    list_display = ["reader_id", "room", "name"]
    search_fields = ["reader_id", "room", "name"]


@admin.register(DeviceSighting)
class DeviceSightingAdmin(ReadOnlyAdmin):
    list_display = ["student", "device_id", "first_seen", "last_seen", "check_ins"]
    search_fields = ["student__student_number", "device_id"]
    list_select_related = ("student__user",)


@admin.register(AttendanceWarningState)
class AttendanceWarningStateAdmin(ReadOnlyAdmin):
    list_display = ["student", "section", "below", "last_warned_at"]
    list_filter = ["below", "section__term"]
    search_fields = ["student__student_number", "section__course__code"]
    list_select_related = ("student__user", "section__course", "section__term")


# --- Status sets and attendance grades ----------------------------------------------------------


class AttendanceStatusFormSet(forms.BaseInlineFormSet):
    """A set keeps a status of every kind, and a status some record was given keeps its kind (the
    record's kind would no longer match it). Removing one in use the admin refuses by itself (PROTECT)."""

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        kept = [form for form in self.forms if form.cleaned_data and not form.cleaned_data.get("DELETE")]
        try:
            status_set_kinds_validate([form.cleaned_data["kind"] for form in kept])
        except ServiceError as error:
            raise ValidationError(error.detail, code=error.code) from error
        existing = [form for form in self.forms if form.instance.pk is not None and form.cleaned_data]
        used = statuses_in_use([form.instance.pk for form in existing])
        for form in existing:
            if form.instance.pk in used and "kind" in form.changed_data:
                raise ValidationError(f"{form.instance.label} was given to students: its kind cannot change.")


class AttendanceStatusInline(admin.TabularInline):
    model = AttendanceStatus
    formset = AttendanceStatusFormSet
    fields = ["order", "code", "label", "acronym", "kind", "points", "description"]
    extra = 1


@admin.register(AttendanceStatusSet)
class AttendanceStatusSetAdmin(CampusModelAdmin):
    """A set is the campus default, a department's or a section's (a section's own overrides its
    department's, which overrides the default)."""

    list_display = ["name", "scope", "department", "section", "status_count"]
    list_filter = ["is_campus_default", "department"]
    search_fields = ["name", "department__code", "section__course__code"]
    autocomplete_fields = ["department", "section"]
    list_select_related = ("department", "section__course", "section__term")
    fields = ["name", "is_campus_default", "department", "section"]
    inlines = [AttendanceStatusInline]

    def get_queryset(self, request):
        return (
            super().get_queryset(request).annotate(status_count=related_count(AttendanceStatus.objects, "status_set"))
        )

    @admin.display(description="applies to")
    def scope(self, status_set: AttendanceStatusSet) -> str:
        if status_set.section_id:
            return "section (overrides its department)"
        if status_set.department_id:
            return "department"
        return "campus default"

    @admin.display(description="statuses", ordering="status_count")
    def status_count(self, status_set: AttendanceStatusSet) -> int:
        return status_set.status_count

    def has_delete_permission(self, request, obj=None) -> bool:
        # Marks given under a set point at its statuses; a set is changed, not removed.
        return False

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        attendance_status_set_saved(status_set=form.instance, actor=request.user, adding=not change)


class SectionAttendanceGradeForm(forms.ModelForm):
    weight = forms.DecimalField(
        required=False, min_value=0, max_value=100, decimal_places=2, help_text="Percent of the final grade."
    )

    class Meta:
        model = SectionAttendanceGrade
        fields = ["section", "drop_lowest"]

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is None and not self.errors:
            if cleaned.get("weight") is None:
                self.add_error("weight", "Give the weight of the attendance grade.")
            else:
                try:
                    service_dry_run(section_attendance_grade_enable, actor=None, **self.service_arguments())
                except ServiceError as error:
                    form_add_service_error(self, error)
        return cleaned

    def service_arguments(self) -> dict:
        return {name: self.cleaned_data[name] for name in ("section", "weight", "drop_lowest")}


@admin.register(SectionAttendanceGrade)
class SectionAttendanceGradeAdmin(CampusModelAdmin):
    """Enabling creates the section's computed attendance assessment; its weight then changes with the
    assessment's, its drop-lowest here. Scores are recomputed after each change and each closed session."""

    form = SectionAttendanceGradeForm
    actions = ["disable_attendance_grades"]
    list_display = ["section", "assessment", "weight", "drop_lowest"]
    search_fields = ["section__course__code", "section__term__name"]
    autocomplete_fields = ["section"]
    list_select_related = (
        "section__course",
        "section__term",
        "assessment__section__course",
        "assessment__section__term",
    )

    def get_fields(self, request, obj=None):
        return ["section", "weight", "drop_lowest"] if obj is None else ["section", "assessment", "drop_lowest"]

    def get_readonly_fields(self, request, obj=None):
        return ["section", "assessment"] if obj is not None else []

    @admin.display(description="weight")
    def weight(self, config: SectionAttendanceGrade):
        return config.assessment.weight

    def has_delete_permission(self, request, obj=None) -> bool:
        # The assessment and its grades belong to the student record now.
        return False

    @admin.action(description="Stop counting attendance as a grade (scores stay, as an ordinary assessment)",
                  permissions=["change"])  # fmt: skip
    def disable_attendance_grades(self, request, queryset):
        _run_action(
            self,
            request,
            queryset,
            "attendance grades switched off",
            lambda config: section_attendance_grade_disable(config=config, actor=request.user),
        )

    def save_model(self, request, obj, form, change):
        if change:
            instance_adopt(
                obj,
                section_attendance_grade_update(
                    config=obj, drop_lowest=form.cleaned_data["drop_lowest"], actor=request.user
                ),
            )
        else:
            instance_adopt(obj, section_attendance_grade_enable(actor=request.user, **form.service_arguments()))


@admin.register(AttendanceWarningRule)
class AttendanceWarningRuleAdmin(CampusModelAdmin):
    list_display = ["__str__", "section", "department", "max_per_term", "notify_student", "notify_lecturers",
                    "notify_advisor"]  # fmt: skip
    list_filter = ["kind", "department"]
    search_fields = ["section__course__code", "department__code", "department__name"]
    autocomplete_fields = ["section", "department"]
    list_select_related = ("section__course", "section__term", "department")


@admin.register(AdvanceAbsence)
class AdvanceAbsenceAdmin(ReadOnlyAdmin):
    list_display = ["student", "section", "first_day", "last_day", "state", "decided_by"]
    list_filter = ["state", "term"]
    search_fields = ["student__student_number", "section__course__code"]
    list_select_related = ("student__user", "section__course", "section__term", "decided_by")
    exclude = ["attachment"]  # served only by the permission-checked portal view


# --- Groups of a section's students -------------------------------------------------------------


class SectionGroupMemberResource(ServiceImportResource):
    """One row per membership (section_group_member_import): the section by course code, term name and
    section code (A when left empty), the group by name (made if the section has none of that name),
    the student by number, who must be enrolled in the section. A membership already there is skipped,
    so importing the same file again changes nothing."""

    course = text("group__section__course__code", "course")
    term = text("group__section__term__name", "term")
    section = text("group__section__code", "section")
    group = text("group__name", "group")
    student_number = text("student__student_number", "student_number")

    import_columns = ("course", "term", "section", "group", "student_number")
    error_columns = {"students": "student_number", "name": "group"}
    export_select_related = ("group__section__course", "group__section__term", "student")

    class Meta:
        model = SectionGroupMember
        fields = ("course", "term", "section", "group", "student_number")

    def row_parse(self, cells):
        errors: dict[str, list[str]] = {}
        cells_required(cells, errors, "course", "term", "group", "student_number")
        student, section = student_lookup(cells, errors), section_lookup(cells, errors)
        if errors:
            raise ValidationError(errors)
        existing = SectionGroupMember.objects.filter(
            group__section=section, group__name__iexact=" ".join(cells["group"].split()), student=student
        ).first()
        return existing, {"section": section, "group_name": cells["group"], "student": student}

    def row_changes(self, existing, values):
        return {}

    def row_write(self, existing, values, *, actor, file_name):
        return section_group_member_import(actor=actor, **values)


@admin.register(SectionGroup)
class SectionGroupAdmin(CampusModelAdmin):
    list_display = ["name", "section"]
    list_filter = ["section__term"]
    search_fields = ["name", "section__course__code"]
    autocomplete_fields = ["section"]
    list_select_related = ("section__course", "section__term")


@admin.register(SectionGroupMember)
class SectionGroupMemberAdmin(CampusImportMixin, CampusModelAdmin):
    resource_classes = [SectionGroupMemberResource]
    list_display = ["student", "group"]
    list_filter = ["group__section__term"]
    search_fields = ["student__student_number", "group__name", "group__section__course__code"]
    autocomplete_fields = ["group", "student"]
    list_select_related = ("student__user", "group__section__course", "group__section__term")

    def get_readonly_fields(self, request, obj=None):
        return ["group", "student"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        if not change:  # through the service: only students enrolled in the section, audited
            section_group_members_add(group=obj.group, student_ids=[obj.student_id], actor=request.user)
            instance_adopt(obj, SectionGroupMember.objects.get(group=obj.group, student=obj.student))

    def delete_model(self, request, obj):
        section_group_members_remove(group=obj.group, student_ids=[obj.student_id], actor=request.user)

    def delete_queryset(self, request, queryset):
        for member in queryset.select_related("group"):
            self.delete_model(request, member)


@admin.register(SectionNetworkRule)
class SectionNetworkRuleAdmin(ReadOnlyAdmin):
    """Set by lecturers and registrars on the section's "Allowed networks" page (validated there)."""

    list_display = ["section", "networks", "updated_at"]
    search_fields = ["section__course__code"]
    list_select_related = ("section__course", "section__term")
