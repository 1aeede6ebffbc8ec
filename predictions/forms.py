"""Portal forms of the at-risk pages. They parse what advisors type or pick; the rules of recording an
intervention or a verdict stay in predictions.services, whose refusals the views put on the field."""

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from predictions.models import FlagFeedback, Intervention, RiskScore
from students.models import Department, Program, Section, Term

NOTE_MAX = 2000
SORT_CHOICES = [
    ("probability", _("Probability (highest first)")),
    ("change", _("Change since the previous run (largest rise first)")),
    ("student_number", _("Student number")),
]


class _PortalForm(forms.Form):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class SectionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, section: Section) -> str:
        return f"{section.course.code} {section.code} · {section.course.title}"


SEARCH_MAX = 100


class AtRiskFilterForm(_PortalForm):
    """The dashboard's filters (GET). A value that names nothing is reported on its field and ignored."""

    q = forms.CharField(
        required=False,
        max_length=SEARCH_MAX,
        label=_("Name or student number"),
        # A hint, not the label: the start of a first or last name, or of a number, matches.
        widget=forms.TextInput(
            attrs={"type": "search", "autocomplete": "off", "placeholder": _("e.g. S1000001 or Ana Ex")}
        ),
    )
    term = forms.ModelChoiceField(queryset=Term.objects.none(), required=False, empty_label=None, label=_("Term"))
    department = forms.ModelChoiceField(
        queryset=Department.objects.order_by("code"),
        to_field_name="code",
        required=False,
        empty_label=_("All departments"),
        label=_("Department"),
    )
    program = forms.ModelChoiceField(
        queryset=Program.objects.order_by("code"),
        to_field_name="code",
        required=False,
        empty_label=_("All programs"),
        label=_("Program"),
    )
    section = SectionChoiceField(
        queryset=Section.objects.none(), required=False, empty_label=_("All sections"), label=_("Section")
    )
    band = forms.ChoiceField(choices=[("", _("All bands")), *RiskScore.Band.choices], required=False, label=_("Band"))
    sort = forms.ChoiceField(choices=SORT_CHOICES, required=False, label=_("Sort by"))

    def __init__(self, data, *, term: Term | None, terms: QuerySet[Term]):
        data = data.copy()
        if term is not None:
            data.setdefault("term", str(term.pk))
        super().__init__(data)
        self.term = term
        self.fields["term"].queryset = terms
        sections = Section.objects.select_related("course").order_by("course__code", "code")
        self.fields["section"].queryset = sections.filter(term=term) if term is not None else sections.none()
        self.is_valid()

    def value(self, name: str):
        """The cleaned value of a filter, or its empty value when it was not given or not valid."""
        return self.cleaned_data.get(name) or ("" if name in ("q", "band", "sort") else None)

    @property
    def filters_left_out(self) -> bool:
        return any(name != "q" for name in self.errors)

    def clean_q(self) -> str:
        # Control characters (a pasted tab or NUL) match no name or number: refused, not searched.
        query = self.cleaned_data["q"]
        if any(ord(character) < 32 or ord(character) == 127 for character in query):
            raise forms.ValidationError(_("Remove the tab or other control character from the search."))
        return query


class InterventionForm(_PortalForm):
    kind = forms.ChoiceField(choices=Intervention.Kind.choices, label=_("What did you do?"), widget=forms.RadioSelect)
    note = forms.CharField(
        label=_("Note"),
        required=False,
        max_length=NOTE_MAX,
        help_text=_(
            "What was agreed or where the student was referred. Seen by advisors and registry staff, "
            "and by the student in a download of their data."
        ),
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class InterventionCloseForm(_PortalForm):
    outcome = forms.CharField(
        label=_("Outcome"),
        required=False,
        max_length=NOTE_MAX,
        help_text=_("How it ended: what the student did, or why it stopped."),
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class FlagFeedbackForm(_PortalForm):
    risk_score = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    verdict = forms.ChoiceField(
        choices=FlagFeedback.Verdict.choices, label=_("Was this flag right?"), widget=forms.RadioSelect
    )
    note = forms.CharField(
        label=_("Note (optional)"),
        required=False,
        max_length=NOTE_MAX,
        help_text=_(
            "Why: it helps improve the model and its explanations. The student sees it in a download of their data."
        ),
        widget=forms.Textarea(attrs={"rows": 2}),
    )
