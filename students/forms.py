"""Portal forms. They parse what people type; the rules (a score's range, who may be graded) stay in
students.services, whose errors the views attach to the field they concern."""

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from students.models import Grade, Student


class GradeEntryForm(forms.Form):
    """One score input per student on the roster, plus an optional reason kept in the audit log.

    Each input carries the score shown when the page was opened (a hidden initial value), so only
    the scores the lecturer changed are recorded, and a change made meanwhile by someone else is
    noticed rather than overwritten."""

    reason = forms.CharField(
        label=_("Reason for changes (optional)"),
        required=False,
        max_length=500,
        help_text=_("Kept in the audit log with every grade changed here."),
    )

    def __init__(self, *args, roster: list[Student], scores: dict[int, Decimal], **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.roster = roster
        score_field = Grade._meta.get_field("score")
        for student in roster:
            field = score_field.formfield(
                required=False,
                label=f"{student.user} ({student.student_number})",  # the full name, else the email
                initial=scores.get(student.pk),
                show_hidden_initial=True,
                localize=False,
                widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", "size": 6}),
            )
            self.fields[self.field_name(student)] = field

    def clean(self):
        cleaned = super().clean()
        # A score for someone not on the roster: the page is stale (a student dropped, or moved section).
        if {name for name in self.data if name.startswith("score-")} - set(self.fields):
            raise forms.ValidationError(
                _("The roster changed since you opened this page. Nothing was saved: reload the page and try again."),
                code="roster_changed",
            )
        return cleaned

    @staticmethod
    def field_name(student: Student) -> str:
        return f"score-{student.pk}"

    def score_fields(self):
        """(student, bound field) for each roster row, in roster order."""
        return [(student, self[self.field_name(student)]) for student in self.roster]

    def changed_scores(self) -> list[tuple[Student, Decimal | None, Decimal | None]]:
        """(student, score seen when the page was opened, new score) for each input the lecturer changed
        and that parsed as a number or was emptied."""
        changed = set(self.changed_data)
        result = []
        for student in self.roster:
            name = self.field_name(student)
            if name in changed and name in self.cleaned_data:
                result.append((student, self._seen(name), self.cleaned_data[name]))
        return result

    def seen_update(self, student: Student, score: Decimal | None) -> None:
        """Makes the re-rendered form carry `score` as the one seen, e.g. after someone else changed it."""
        self.data = self.data.copy()
        self.data[self.add_initial_prefix(self.field_name(student))] = "" if score is None else str(score)

    def _seen(self, name: str) -> Decimal | None:
        field = self.fields[name]
        raw = field.hidden_widget().value_from_datadict(self.data, self.files, self.add_initial_prefix(name))
        try:
            return field.to_python(raw)
        except forms.ValidationError:
            return None
