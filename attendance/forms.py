"""Portal forms for attendance. They parse what people type; the rules (when a session may open, who
may check in, what a reason must say) stay in attendance.services, whose errors the views attach to
the field they concern."""

import datetime
import uuid

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from attendance.models import AttendanceRecord, ClassSession, SectionGroup
from students.models import Section, Student

LATE_AFTER_MAX = 240
REASON_MAX = 500


def _late_after_field() -> forms.IntegerField:
    return forms.IntegerField(
        label=_("Late after (minutes)"),
        min_value=0,
        max_value=LATE_AFTER_MAX,
        initial=10,
        help_text=_("Students checking in later than this after the start are marked late."),
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )


def _room_field() -> forms.CharField:
    return forms.CharField(
        label=_("Room"),
        required=False,
        max_length=ClassSession._meta.get_field("room").max_length,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


def _reason_field(label, help_text="") -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=REASON_MAX,
        help_text=help_text,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


class _PortalForm(forms.Form):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class _GroupChoiceForm(_PortalForm):
    """A session for the whole section or one of its groups (the field is left out when it has none)."""

    group = forms.ModelChoiceField(
        label=_("For"),
        queryset=SectionGroup.objects.none(),
        required=False,
        empty_label=_("The whole section"),
        help_text=_("A group's sessions count only for its members."),
    )

    def __init__(self, *args, section: Section, **kwargs):
        super().__init__(*args, **kwargs)
        groups = SectionGroup.objects.filter(section=section).order_by("name")
        self.fields["group"].queryset = groups
        if not groups.exists():
            del self.fields["group"]

    def chosen_group(self) -> SectionGroup | None:
        return self.cleaned_data.get("group")


class ClassSessionForm(_GroupChoiceForm):
    """One session, on a day from a start time to an end time, in the campus's time zone."""

    date = forms.DateField(label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    start_time = forms.TimeField(label=_("Starts at"), widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    end_time = forms.TimeField(label=_("Ends at"), widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    room = _room_field()
    late_after_minutes = _late_after_field()

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start_time"), cleaned.get("end_time")
        if start and end and end <= start:
            self.add_error("end_time", _("The session must end after it starts."))
        return cleaned

    def starts_at(self) -> datetime.datetime:
        return _aware(self.cleaned_data["date"], self.cleaned_data["start_time"])

    def ends_at(self) -> datetime.datetime:
        return _aware(self.cleaned_data["date"], self.cleaned_data["end_time"])


WEEKDAYS = [
    (0, _("Monday")),
    (1, _("Tuesday")),
    (2, _("Wednesday")),
    (3, _("Thursday")),
    (4, _("Friday")),
    (5, _("Saturday")),
    (6, _("Sunday")),
]


class SessionSeriesForm(_GroupChoiceForm):
    """A series: on one or more weekdays every N weeks, the same wall-clock time, holidays skipped."""

    first_date = forms.DateField(
        label=_("First date"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    start_time = forms.TimeField(label=_("Starts at"), widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    duration_minutes = forms.IntegerField(
        label=_("Duration (minutes)"),
        min_value=5,
        max_value=12 * 60,
        initial=90,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    until = forms.DateField(
        label=_("Until (optional)"),
        required=False,
        help_text=_("Leave empty to repeat until the end of the term."),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    weekdays = forms.TypedMultipleChoiceField(
        label=_("On"),
        choices=WEEKDAYS,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Leave all unticked for the first date's weekday."),
    )
    every_weeks = forms.TypedChoiceField(
        label=_("Repeat"),
        coerce=int,
        initial=1,
        required=False,
        empty_value=1,
        choices=[
            (1, _("Every week")),
            (2, _("Every 2 weeks")),
            (3, _("Every 3 weeks")),
            (4, _("Every 4 weeks")),
        ],
    )
    room = _room_field()
    late_after_minutes = _late_after_field()

    def clean(self):
        cleaned = super().clean()
        first, until = cleaned.get("first_date"), cleaned.get("until")
        if first and until and until < first:
            self.add_error("until", _("The last date cannot be before the first."))
        return cleaned

    def duration(self) -> datetime.timedelta:
        return datetime.timedelta(minutes=self.cleaned_data["duration_minutes"])


class CancelSessionForm(_PortalForm):
    reason = _reason_field(_("Reason for cancelling"), _("Students see that the session was cancelled."))


class SeriesCancelForm(_PortalForm):
    """Cancels a series' sessions still to come; `confirmed` is set by the confirmation page."""

    series = forms.TypedChoiceField(label=_("Series"), coerce=uuid.UUID)
    from_date = forms.DateField(
        label=_("From"),
        required=False,
        help_text=_("Leave empty to cancel all of its scheduled sessions."),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    reason = _reason_field(_("Reason for cancelling"), _("Students see that the sessions were cancelled."))
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, series_choices: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["series"].choices = series_choices


class VoidRecordForm(_PortalForm):
    reason = _reason_field(_("Reason for voiding"))


class RecordSetForm(_PortalForm):
    """Sets one student's status in a session by hand; the reason goes to the audit log."""

    student = forms.TypedChoiceField(label=_("Student"), coerce=int)
    status = forms.ChoiceField(label=_("Status"), choices=AttendanceRecord.Status.choices)
    reason = _reason_field(_("Reason for the change"), _("Kept in the audit log."))

    def __init__(self, *args, roster: list[Student], **kwargs):
        super().__init__(*args, **kwargs)
        self.roster = {student.pk: student for student in roster}
        self.fields["student"].choices = [("", _("Choose a student"))] + [
            (student.pk, f"{student.user.get_full_name() or student.user.email} ({student.student_number})")
            for student in roster
        ]

    def chosen_student(self) -> Student:
        return self.roster[self.cleaned_data["student"]]


class ExcuseForm(_PortalForm):
    reason = forms.CharField(
        label=_("Why were you absent?"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class ExcuseDecisionForm(_PortalForm):
    decision = forms.ChoiceField(choices=[("approve", _("Approve")), ("reject", _("Reject"))])
    note = forms.CharField(label=_("Note (optional)"), required=False, max_length=REASON_MAX)

    @property
    def approve(self) -> bool:
        return self.cleaned_data["decision"] == "approve"


class CheckInCodeForm(_PortalForm):
    code = forms.CharField(
        label=_("Code on the screen"),
        help_text=_("The six digits shown beside the QR code."),
        max_length=12,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "pattern": r"[0-9 ]*", "size": 8}
        ),
    )

    def clean_code(self) -> str:
        code = "".join(self.cleaned_data["code"].split())
        if not (len(code) == 6 and code.isascii() and code.isdigit()):
            raise forms.ValidationError(_("Enter the six digits shown on the screen."), code="code_format")
        return code


def _aware(day: datetime.date, time: datetime.time) -> datetime.datetime:
    """A campus wall-clock time as an aware datetime (the first of two, on the night clocks go back)."""
    return timezone.make_aware(datetime.datetime.combine(day, time), timezone.get_current_timezone())


class AttendanceGradeForm(forms.Form):
    """Attendance counted as a grade: its weight and how many of the lowest sessions to leave out."""

    weight = forms.DecimalField(
        label=_("Weight (% of the final grade)"),
        min_value=0,
        max_value=100,
        decimal_places=2,
        widget=forms.NumberInput(attrs={"inputmode": "decimal", "step": "0.01"}),
    )
    drop_lowest = forms.IntegerField(
        label=_("Leave out the lowest sessions"),
        min_value=0,
        max_value=100,
        initial=0,
        help_text=_("How many of each student's lowest-scoring sessions do not count."),
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )


class RosterRangeForm(_PortalForm):
    """The sessions an export covers: from one day to another, both optional, in the campus's time zone."""

    date_from = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    date_to = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", _("The last day cannot be before the first."))
        return cleaned

    def filter_sessions(self, sessions):
        start, end = self.cleaned_data.get("date_from"), self.cleaned_data.get("date_to")
        if start:
            sessions = sessions.filter(starts_at__gte=_aware(start, datetime.time.min))
        if end:
            sessions = sessions.filter(starts_at__lt=_aware(end + datetime.timedelta(days=1), datetime.time.min))
        return sessions


class AdvanceAbsenceForm(_PortalForm):
    """An absence to come: the days, which of the student's sections (or all), why, and a document."""

    section = forms.ModelChoiceField(
        label=_("Course"),
        queryset=None,
        required=False,
        empty_label=_("All my courses this term"),
    )
    first_day = forms.DateField(label=_("First day"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    last_day = forms.DateField(
        label=_("Last day"),
        help_text=_("The same as the first day for a single day."),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    reason = forms.CharField(label=_("Reason"), max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))
    attachment = forms.FileField(
        label=_("Supporting document (optional)"),
        required=False,
        help_text=_("A PDF, JPEG or PNG file of at most 5 MB, such as a medical certificate."),
        widget=forms.ClearableFileInput(attrs={"accept": ".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png"}),
    )

    def __init__(self, *args, sections, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["section"].queryset = sections
        self.fields["section"].label_from_instance = lambda section: f"{section.course.code} {section.course.title}"


class SectionNetworksForm(_PortalForm):
    networks = forms.CharField(
        label=_("Allowed networks"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "autocomplete": "off"}),
        help_text=_(
            "One network per line, like 10.20.0.0/16. Check-ins from elsewhere are flagged as off campus. "
            "Leave empty to use the campus networks."
        ),
    )


class GroupNameForm(_PortalForm):
    name = forms.CharField(
        label=_("Group name"),
        max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


class GroupMembersForm(_PortalForm):
    """Students of the section's roster to add to, or remove from, a group."""

    students = forms.TypedMultipleChoiceField(label=_("Students"), coerce=int, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, students: list[Student], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["students"].choices = [
            (student.pk, f"{student.user.get_full_name() or student.user.email} ({student.student_number})")
            for student in students
        ]
