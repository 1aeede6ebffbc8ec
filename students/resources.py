"""django-import-export resources: exports of every campus list, and the registrars' imports of
students, enrollments and grades.

An import row is parsed here and written by the service the admin and the API use (student_create,
enrollment_create, grade_record), with the importing user as the actor, so an import obeys every
rule and is audited. A service's refusal becomes that row's error. The whole file is one transaction:
one bad row and nothing is written (see ServiceImportResource.import_data).
"""

import datetime
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import tablib
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import validate_email
from django.db import models
from import_export import resources
from import_export.fields import Field
from import_export.widgets import CharWidget, DateWidget, DecimalWidget, IntegerWidget

from accounts.models import User
from accounts.roles import Role, group_name
from campusiq.core.errors import ServiceError
from students.history import history_assessment_save, history_term_outcome_save
from students.models import (
    Assessment,
    Course,
    Department,
    Enrollment,
    Grade,
    Program,
    Section,
    Student,
    Term,
    TermOutcome,
)
from students.services import (
    STUDENT_PRIOR_ACHIEVEMENT,
    TWO_PLACES,
    catalogue_record_save,
    enrollment_create,
    grade_record,
    student_create,
    student_update,
)


def instance_adopt(target: models.Model, source: models.Model) -> models.Model:
    """Makes `target` the row a service saved as `source`. The admin and import-export hold on to the
    instance they built (for log entries, redirects, inline formsets); the service returns its own."""
    for field in source._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target._state.adding = False
    target._state.db = source._state.db
    target._state.fields_cache = dict(source._state.fields_cache)
    return target


def text(attribute: str, column: str | None = None, **kwargs) -> Field:
    return Field(attribute=attribute, column_name=column, widget=CharWidget(), **kwargs)


class CampusResource(resources.ModelResource):
    """Exports name related rows by their codes, not their ids."""

    export_select_related: tuple[str, ...] = ()

    def filter_export(self, queryset, **kwargs):
        return queryset.select_related(*self.export_select_related) if self.export_select_related else queryset


# --- Imports --------------------------------------------------------------------------------

# Digits before the point beyond which a cell is no score, count or semester (and Decimal's quantize fails).
NUMBER_DIGITS_MAX = 12


def number_read(raw: Any, *, whole: bool) -> Decimal | int:
    """A number cell, as typed in a CSV or stored in an XLSX. ValueError with what is wrong: a decimal
    comma, text, NaN or infinity, a fraction where a whole number belongs (never silently truncated)."""
    text = str(raw).strip()
    try:
        number = Decimal(text)
    except ArithmeticError:
        number = None
    if number is None or not number.is_finite():
        hint = ": write decimals with a point, as in 4.5." if "," in text else "."
        raise ValueError(f"{text!r} is not a number{hint}")
    if number.adjusted() >= NUMBER_DIGITS_MAX:
        raise ValueError(f"{text!r} is too large a number.")
    if whole:
        if number != number.to_integral_value():
            raise ValueError(f"{text!r} is not a whole number.")
        return int(number)
    return number


def cell_read(field: Field, row) -> Any:
    """The cell of `field` in `row` as a Python value, or ValueError with a message a registrar can act on
    (the widgets' own errors are Python's, e.g. "[<class 'decimal.ConversionSyntax'>]")."""
    raw = row[field.column_name]
    if isinstance(field.widget, (DecimalWidget, IntegerWidget)) and str(raw if raw is not None else "").strip():
        return number_read(raw, whole=isinstance(field.widget, IntegerWidget))
    try:
        return field.clean(row)
    except (ValueError, TypeError, ArithmeticError) as error:
        if isinstance(field.widget, DateWidget):
            raise ValueError(f"{raw!r} is not a date: write it as YYYY-MM-DD.") from error
        raise ValueError(f"{raw!r} could not be read.") from error


def choice_read(value: str, choices: type[models.TextChoices]) -> str:
    """A choice by its value or its label, in any case ("Active", "ACTIVE" -> "active")."""
    wanted = value.casefold()
    for choice in choices:
        if wanted in (choice.value.casefold(), str(choice.label).casefold()):
            return choice.value
    raise ValueError(f"{value!r} is not one of: {', '.join(choices.values)}.")


class ServiceImportResource(CampusResource):
    """Rows are parsed and looked up by `row_parse`, then written by `row_write`, which calls a service."""

    #: Columns read on import; the other fields are exported only.
    import_columns: tuple[str, ...] = ()
    #: A service names the model field it refused; the column holding it, where the names differ.
    error_columns: dict[str, str] = {}
    #: Columns that take one of a model's choices, by value or label, in any case.
    choice_columns: dict[str, type[models.TextChoices]] = {}

    class Meta:
        # The services validate; import-export must neither full_clean() nor save() on its own.
        clean_model_instances = False
        use_bulk = False
        skip_unchanged = False
        report_skipped = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._pending: tuple[models.Model | None, dict[str, Any]] | None = None
        #: Related rows read while importing one file (see student_lookup); emptied per file.
        self.lookups: dict[tuple, Any] = {}

    def import_data(
        self,
        dataset,
        dry_run=False,
        raise_errors=False,
        use_transactions=None,
        collect_failed_rows=False,
        rollback_on_validation_errors=False,
        **kwargs,
    ):
        # One transaction for the file, rolled back on any row's error, service refusals included
        # (they are ValidationErrors): a file with one bad row writes nothing, whoever calls this.
        self.lookups = {}
        return super().import_data(
            dataset,
            dry_run=dry_run,
            raise_errors=raise_errors,
            use_transactions=True,
            collect_failed_rows=collect_failed_rows,
            rollback_on_validation_errors=True,
            **kwargs,
        )

    def get_import_fields(self):
        return [self.fields[column] for column in self.import_columns]

    @classmethod
    def import_template(cls) -> tablib.Dataset:
        """An empty file to fill in: the header row of the columns an import reads."""
        return tablib.Dataset(headers=list(cls.import_columns), title=str(cls._meta.model._meta.verbose_name_plural))

    @classmethod
    def import_allowed_values(cls) -> dict[str, list[str]]:
        """What each choice column accepts, for the import form."""
        return {column: list(choices.values) for column, choices in cls.choice_columns.items()}

    def get_or_init_instance(self, instance_loader, row):
        existing, values = self.row_parse(self.cells(row))
        self._pending = (existing, values)
        if existing is not None:
            return existing, False
        return self.init_instance(row), True

    def import_instance(self, instance, row, **kwargs):
        """Nothing to copy onto the instance: the service builds the row from the parsed values."""

    def skip_row(self, instance, original, row, import_validation_errors=None):
        existing, values = self._pending
        return existing is not None and not self.row_changes(existing, values)

    def save_instance(self, instance, is_create, row, **kwargs):
        existing, values = self._pending
        try:
            saved = self.row_write(existing, values, actor=kwargs.get("user"), file_name=kwargs.get("file_name"))
        except ServiceError as error:
            raise ValidationError({self.error_column(error.field): [error.detail]}) from error
        except ValidationError as error:  # a model's own check (full_clean), named by its field
            if not hasattr(error, "error_dict"):
                raise
            columns: dict[str, list[str]] = {}
            for name, messages in error.message_dict.items():
                columns.setdefault(self.error_column(name), []).extend(messages)
            raise ValidationError(columns) from error
        instance_adopt(instance, saved)

    def error_column(self, field: str | None) -> str:
        column = self.error_columns.get(field, field)
        return column if column in self.fields else NON_FIELD_ERRORS

    def cells(self, row) -> dict[str, Any]:
        """The row's import columns as Python values: stripped text, None for an empty cell."""
        values, errors = {}, {}
        for column in self.import_columns:
            if column not in row:
                values[column] = None
                continue
            try:
                value = cell_read(self.fields[column], row)
                if isinstance(value, str):
                    value = value.strip() or None
                if value is not None and column in self.choice_columns:
                    value = choice_read(value, self.choice_columns[column])
            except ValueError as error:
                errors[column] = [str(error)]
                continue
            if isinstance(value, datetime.datetime):  # an XLSX date cell
                value = value.date()
            values[column] = value
        if errors:
            raise ValidationError(errors)
        return values

    def row_parse(self, cells: dict[str, Any]) -> tuple[models.Model | None, dict[str, Any]]:
        """The existing row this one updates (or None) and the values to write; ValidationError per column."""
        raise NotImplementedError

    def row_changes(self, existing: models.Model, values: dict[str, Any]) -> dict[str, Any]:
        return values

    def row_write(self, existing, values: dict[str, Any], *, actor: User | None, file_name: str | None):
        raise NotImplementedError


def cells_required(cells: dict[str, Any], errors: dict[str, list[str]], *columns: str) -> None:
    for column in columns:
        if cells.get(column) in (None, ""):
            errors.setdefault(column, []).append("A value is required.")


def _cached(cache: dict | None, key: tuple, load):
    """`load()`, once per key while `cache` lives (a resource's file), so rows naming the same related
    row do not read it again."""
    if cache is None:
        return load()
    if key not in cache:
        cache[key] = load()
    return cache[key]


def student_lookup(cells: dict[str, Any], errors: dict[str, list[str]], cache: dict | None = None) -> Student | None:
    number = cells.get("student_number")
    if not number:
        return None
    student = _cached(
        cache, ("student", number), lambda: Student.objects.select_related("user").filter(student_number=number).first()
    )
    if student is None:
        errors.setdefault("student_number", []).append(f"No student has the number {number}.")
    return student


def section_lookup(cells: dict[str, Any], errors: dict[str, list[str]], cache: dict | None = None) -> Section | None:
    course, term, code = cells.get("course"), cells.get("term"), cells.get("section") or "A"
    if not (course and term):
        return None
    section = _cached(
        cache,
        ("section", course, term, code),
        lambda: (
            Section.objects.select_related("course", "term")
            .filter(course__code=course, term__name=term, code=code)
            .first()
        ),
    )
    if section is None:
        errors.setdefault("section", []).append(f"No section {course}-{code} in term {term}.")
    return section


STUDENT_COLUMNS = (
    "student_number",
    "email",
    "first_name",
    "last_name",
    "program",
    "semester",
    "status",
    "advisor",
    *STUDENT_PRIOR_ACHIEVEMENT,
)


class StudentResource(ServiceImportResource):
    """One row per student. A new student number creates the student and their account
    (student_create); a known one updates program, semester, status, advisor and the prior-achievement
    grades where the file gives them (student_update), so a file of student numbers and grades alone
    adds the grades. The email must then be the student's own; names are not changed."""

    student_number = text("student_number")
    email = text("user__email", "email")
    first_name = text("user__first_name", "first_name")
    last_name = text("user__last_name", "last_name")
    program = text("program__code", "program")
    semester = Field(attribute="semester", column_name="semester", widget=IntegerWidget())
    status = text("status")
    advisor = text("advisor__email", "advisor")
    admission_grade = Field(attribute="admission_grade", column_name="admission_grade", widget=DecimalWidget())
    prior_qualification_grade = Field(
        attribute="prior_qualification_grade", column_name="prior_qualification_grade", widget=DecimalWidget()
    )

    import_columns = STUDENT_COLUMNS
    choice_columns = {"status": Student.Status}
    export_select_related = ("user", "program", "advisor")

    class Meta:
        model = Student
        fields = STUDENT_COLUMNS

    def row_parse(self, cells):
        errors: dict[str, list[str]] = {}
        cells_required(cells, errors, "student_number")
        number = cells["student_number"]
        existing = Student.objects.select_related("user").filter(student_number=number).first() if number else None
        if existing is None:
            cells_required(cells, errors, "email", "first_name", "last_name", "program")
        values = dict(cells)
        if cells["email"]:
            try:
                validate_email(cells["email"])
            except ValidationError:
                errors.setdefault("email", []).append(f"{cells['email']} is not an email address.")
            if existing is not None and cells["email"].lower() != existing.user.email.lower():
                errors.setdefault("email", []).append(f"Student {number} has another email address.")
        for name in STUDENT_PRIOR_ACHIEVEMENT:
            if values[name] is not None:
                values[name] = Decimal(values[name]).quantize(TWO_PLACES, rounding=ROUND_HALF_UP)
        if cells["program"]:
            values["program"] = Program.objects.filter(code=cells["program"]).first()
            if values["program"] is None:
                errors.setdefault("program", []).append(f"No program has the code {cells['program']}.")
        if cells["advisor"]:
            values["advisor"] = User.objects.filter(email__iexact=cells["advisor"]).first()
            if values["advisor"] is None:
                errors.setdefault("advisor", []).append(f"Nobody has the email address {cells['advisor']}.")
        if errors:
            raise ValidationError(errors)
        return existing, values

    def row_changes(self, existing, values):
        return {
            name: values[name]
            for name in ("program", "semester", "status", "advisor", *STUDENT_PRIOR_ACHIEVEMENT)
            if values[name] is not None and values[name] != getattr(existing, name)
        }

    def row_write(self, existing, values, *, actor, file_name):
        if existing is not None:
            return student_update(student=existing, actor=actor, **self.row_changes(existing, values))
        return student_create(
            email=values["email"],
            first_name=values["first_name"],
            last_name=values["last_name"],
            student_number=values["student_number"],
            program=values["program"],
            semester=1 if values["semester"] is None else values["semester"],
            advisor=values["advisor"],
            status=values["status"] or Student.Status.ACTIVE,
            admission_grade=values["admission_grade"],
            prior_qualification_grade=values["prior_qualification_grade"],
            actor=actor,
        )


class EnrollmentResource(ServiceImportResource):
    """One row per enrollment (enrollment_create): the student by number, the section by course code,
    term name and section code (A when left empty). A student already enrolled is an error."""

    student_number = text("student__student_number", "student_number")
    course = text("section__course__code", "course")
    term = text("section__term__name", "term")
    section = text("section__code", "section")
    enrolled_on = Field(attribute="enrolled_on", column_name="enrolled_on", widget=DateWidget())
    status = text("status", readonly=True)
    ended_on = Field(attribute="ended_on", column_name="ended_on", widget=DateWidget(), readonly=True)
    final_grade = Field(attribute="final_grade", column_name="final_grade", widget=DecimalWidget(), readonly=True)

    import_columns = ("student_number", "course", "term", "section", "enrolled_on")
    error_columns = {"student": "student_number"}
    export_select_related = ("student", "section__course", "section__term")

    class Meta:
        model = Enrollment
        fields = ("student_number", "course", "term", "section", "enrolled_on", "status", "ended_on", "final_grade")

    def row_parse(self, cells):
        errors: dict[str, list[str]] = {}
        cells_required(cells, errors, "student_number", "course", "term")
        values = {
            "student": student_lookup(cells, errors),
            "section": section_lookup(cells, errors),
            "enrolled_on": cells["enrolled_on"],
        }
        if errors:
            raise ValidationError(errors)
        return None, values

    def row_write(self, existing, values, *, actor, file_name):
        return enrollment_create(actor=actor, **values)


class GradeResource(ServiceImportResource):
    """One row per score (grade_record): the assessment by course code, term name, section code (A when
    left empty) and assessment name. A changed score is audited with the old and the new value."""

    student_number = text("student__student_number", "student_number")
    course = text("assessment__section__course__code", "course")
    term = text("assessment__section__term__name", "term")
    section = text("assessment__section__code", "section")
    assessment = text("assessment__name", "assessment")
    score = Field(attribute="score", column_name="score", widget=DecimalWidget())
    graded_by = text("graded_by__email", "graded_by", readonly=True)

    import_columns = ("student_number", "course", "term", "section", "assessment", "score")
    error_columns = {"student": "student_number"}
    export_select_related = ("student", "assessment__section__course", "assessment__section__term", "graded_by")

    class Meta:
        model = Grade
        fields = ("student_number", "course", "term", "section", "assessment", "score", "graded_by")

    def row_parse(self, cells):
        errors: dict[str, list[str]] = {}
        cells_required(cells, errors, "student_number", "course", "term", "assessment", "score")
        student = student_lookup(cells, errors)
        section = section_lookup(cells, errors)
        assessment = None
        if section is not None and cells["assessment"]:
            assessment = Assessment.objects.filter(section=section, name=cells["assessment"]).first()
            if assessment is None:
                errors.setdefault("assessment", []).append(f"{section} has no assessment {cells['assessment']}.")
            else:
                assessment.section = section
        if errors:
            raise ValidationError(errors)
        values = {"student": student, "assessment": assessment, "score": cells["score"]}
        return Grade.objects.filter(student=student, assessment=assessment).first(), values

    def row_changes(self, existing, values):
        score = Decimal(values["score"]).quantize(TWO_PLACES, rounding=ROUND_HALF_UP)
        return {"score": score} if score != existing.score else {}

    def row_write(self, existing, values, *, actor, file_name):
        reason = f"Imported from {file_name}" if file_name else "Imported"
        return grade_record(actor=actor, reason=reason, **values)


# --- Onboarding: the catalogue, terms, sections, assessments and past outcomes ----------------


class NaturalKeyImportResource(ServiceImportResource):
    """A row found by its natural key (`key_columns`): a new key creates it, a known one updates the
    columns the file fills (an empty cell leaves the value as it is), so the same file imported again
    changes nothing and writes no audit entry, and an updated file updates."""

    key_columns: tuple[str, ...] = ()
    #: The model fields of the natural key (the row's values, related rows looked up).
    key_fields: tuple[str, ...] = ()
    #: The columns a new row cannot do without.
    required_columns: tuple[str, ...] = ()

    def row_values(self, cells: dict[str, Any], errors: dict[str, list[str]]) -> dict[str, Any]:
        """The row as model field values, related rows looked up (None: the cell was empty)."""
        return dict(cells)

    def row_existing(self, values: dict[str, Any]) -> models.Model | None:
        return self._meta.model.objects.filter(**{name: values[name] for name in self.key_fields}).first()

    def record_build(self, existing, values: dict[str, Any]) -> models.Model:
        """A new row with the values the file gives, or the existing one with those that change it (a
        value equal in another spelling, 0.8 for 0.80, would be audited as a change)."""
        record = existing or self._meta.model()
        for name, value in (values if existing is None else self.row_changes(existing, values)).items():
            if value is not None:
                setattr(record, name, value)
        return record

    def row_parse(self, cells):
        errors: dict[str, list[str]] = {}
        cells_required(cells, errors, *self.key_columns)
        values = self.row_values(cells, errors)
        existing = None if errors else self.row_existing(values)
        if existing is None:
            cells_required(cells, errors, *self.required_columns)
        if errors:
            raise ValidationError(errors)
        return existing, values

    def row_changes(self, existing, values):
        return {name: value for name, value in values.items() if value is not None and value != getattr(existing, name)}

    def lookup(self, model: type[models.Model], errors: dict[str, list[str]], column: str, **key) -> Any:
        """The related row `key` names, read once per file; an error on `column` when there is none."""
        found = _cached(self.lookups, (model, *key.items()), lambda: model.objects.filter(**key).first())
        if found is None:
            (field, value), *_ = key.items()
            errors.setdefault(column, []).append(f"No {model._meta.verbose_name} has the {field} {value}.")
        return found


class CatalogueImportResource(NaturalKeyImportResource):
    """Written by catalogue_record_save, which checks every constraint (full_clean) and audits."""

    def row_write(self, existing, values, *, actor, file_name):
        return catalogue_record_save(record=self.record_build(existing, values), actor=actor)


def decimal_cell(attribute: str) -> Field:
    return Field(attribute=attribute, column_name=attribute, widget=DecimalWidget())


def date_cell(attribute: str) -> Field:
    return Field(attribute=attribute, column_name=attribute, widget=DateWidget())


class DepartmentResource(CatalogueImportResource):
    """One row per department, by its code."""

    import_columns = required_columns = ("code", "name")
    key_columns = key_fields = ("code",)

    class Meta:
        model = Department
        fields = ("code", "name")


class DepartmentalResource(CatalogueImportResource):
    """A row of a department (a program, a course), by its code; the department by its code."""

    department = text("department__code", "department")
    key_columns = key_fields = ("code",)
    export_select_related = ("department",)

    def row_values(self, cells, errors):
        values = dict(cells)
        if cells["department"]:
            values["department"] = self.lookup(Department, errors, "department", code=cells["department"])
        return values


class ProgramResource(DepartmentalResource):
    import_columns = required_columns = ("code", "name", "department")

    class Meta:
        model = Program
        fields = ("code", "name", "department")


class CourseResource(DepartmentalResource):
    credits = Field(attribute="credits", column_name="credits", widget=IntegerWidget())
    import_columns = required_columns = ("code", "title", "credits", "department")

    class Meta:
        model = Course
        fields = ("code", "title", "credits", "department")


class TermResource(CatalogueImportResource):
    """One row per term, by its name; dates as YYYY-MM-DD."""

    start_date = date_cell("start_date")
    end_date = date_cell("end_date")
    add_drop_deadline = date_cell("add_drop_deadline")
    import_columns = required_columns = ("name", "start_date", "end_date", "add_drop_deadline")
    key_columns = key_fields = ("name",)

    class Meta:
        model = Term
        fields = ("name", "start_date", "end_date", "add_drop_deadline")


# Lecturers in one cell: email addresses separated by spaces, commas or semicolons (as exported).
LECTURER_SEPARATORS = re.compile(r"[\s,;]+")


class SectionResource(CatalogueImportResource):
    """One row per section, by course code, term name and section code (A when left empty). Lecturers by
    their email addresses, separated by spaces, commas or semicolons; each must hold the lecturer role.
    A filled lecturers cell is the section's whole list; an empty one leaves the list as it is."""

    course = text("course__code", "course")
    term = text("term__name", "term")
    section = text("code", "section")
    capacity = Field(attribute="capacity", column_name="capacity", widget=IntegerWidget())
    min_attendance_rate = decimal_cell("min_attendance_rate")
    lecturers = Field(column_name="lecturers")

    import_columns = ("course", "term", "section", "capacity", "min_attendance_rate", "lecturers")
    key_columns = ("course", "term")
    key_fields = ("course", "term", "code")
    error_columns = {"code": "section"}
    export_select_related = ("course", "term")

    class Meta:
        model = Section
        fields = ("course", "term", "section", "capacity", "min_attendance_rate", "lecturers")

    def filter_export(self, queryset, **kwargs):
        return super().filter_export(queryset, **kwargs).prefetch_related("lecturers")

    def dehydrate_lecturers(self, section: Section) -> str:
        return " ".join(sorted(lecturer.email for lecturer in section.lecturers.all()))

    def before_import(self, dataset, **kwargs):
        # Every lecturer, by email in any case: one query per file, not one per row.
        lecturers = User.objects.filter(groups__name=group_name(Role.LECTURER))
        self._lecturers = {user.email.casefold(): user for user in lecturers}

    def row_values(self, cells, errors):
        values = {
            "code": cells["section"] or "A",
            "capacity": cells["capacity"],
            "min_attendance_rate": cells["min_attendance_rate"],
            "lecturers": None,
        }
        if cells["course"]:
            values["course"] = self.lookup(Course, errors, "course", code=cells["course"])
        if cells["term"]:
            values["term"] = self.lookup(Term, errors, "term", name=cells["term"])
        if cells["lecturers"]:
            values["lecturers"] = []
            for email in LECTURER_SEPARATORS.split(cells["lecturers"]):
                if not email:
                    continue
                lecturer = self._lecturers.get(email.casefold())
                if lecturer is None:
                    errors.setdefault("lecturers", []).append(f"No lecturer has the email address {email}.")
                values["lecturers"].append(lecturer)
        return values

    def row_changes(self, existing, values):
        changes = super().row_changes(existing, {k: v for k, v in values.items() if k != "lecturers"})
        lecturers = values.get("lecturers")
        if lecturers is not None and {u.pk for u in lecturers} != {u.pk for u in existing.lecturers.all()}:
            changes["lecturers"] = lecturers
        return changes

    def row_write(self, existing, values, *, actor, file_name):
        record = self.record_build(existing, {name: value for name, value in values.items() if name != "lecturers"})
        # None leaves the lecturers as they are; setting the same list again writes nothing.
        return catalogue_record_save(record=record, actor=actor, lecturers=values["lecturers"])


class AssessmentResource(NaturalKeyImportResource):
    """One row per assessment, by its section (course code, term name, section code, A when left empty)
    and its name. Written by history_assessment_save: the section's weights never exceed 100 and a due
    date falls inside the term."""

    course = text("section__course__code", "course")
    term = text("section__term__name", "term")
    section = text("section__code", "section")
    weight = decimal_cell("weight")
    max_score = decimal_cell("max_score")
    due_date = date_cell("due_date")

    import_columns = ("course", "term", "section", "name", "weight", "max_score", "due_date")
    key_columns = ("course", "term", "name")
    key_fields = ("section", "name")
    required_columns = ("weight",)
    export_select_related = ("section__course", "section__term")

    class Meta:
        model = Assessment
        fields = ("course", "term", "section", "name", "weight", "max_score", "due_date")

    def row_values(self, cells, errors):
        return {
            "section": section_lookup(cells, errors, self.lookups),
            "name": cells["name"],
            "weight": cells["weight"],
            "max_score": cells["max_score"],
            "due_date": cells["due_date"],
        }

    def row_write(self, existing, values, *, actor, file_name):
        return history_assessment_save(assessment=self.record_build(existing, values), actor=actor)


class TermOutcomeResource(NaturalKeyImportResource):
    """One row per student and term: a past term's outcome as the campus recorded it, saved with the
    source "imported" (history_term_outcome_save), so closing the term keeps it. The term must have
    ended."""

    student_number = text("student__student_number", "student_number")
    term = text("term__name", "term")

    import_columns = ("student_number", "term", "outcome", "note")
    key_columns = ("student_number", "term")
    key_fields = ("student", "term")
    required_columns = ("outcome",)
    choice_columns = {"outcome": TermOutcome.Outcome}
    error_columns = {"student": "student_number"}
    export_select_related = ("student", "term")

    class Meta:
        model = TermOutcome
        fields = ("student_number", "term", "outcome", "source", "note")

    def row_values(self, cells, errors):
        values = {
            "student": student_lookup(cells, errors, self.lookups),
            "term": self.lookup(Term, errors, "term", name=cells["term"]) if cells["term"] else None,
            "outcome": cells["outcome"],
            "note": cells["note"],
        }
        return values

    def row_changes(self, existing, values):
        changes = super().row_changes(existing, values)
        if existing.source != TermOutcome.Source.IMPORTED:
            changes["source"] = TermOutcome.Source.IMPORTED
        return changes

    def row_write(self, existing, values, *, actor, file_name):
        reason = f"Imported from {file_name}" if file_name else "Imported"
        note = values["note"] if values["note"] is not None else (existing.note if existing else "")
        return history_term_outcome_save(
            student=values["student"],
            term=values["term"],
            outcome=values["outcome"] or existing.outcome,
            note=note,
            actor=actor,
            reason=reason,
        )
