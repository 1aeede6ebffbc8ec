"""The Django admin of the campus domain, for registry staff.

Every write a service owns goes through that service (students, enrollments, assessments, grades,
term outcomes), so the admin cannot skip a rule or the audit log. Forms ask the service's validators
(or run the service in a savepoint that is rolled back) so a refusal shows on the form; should a rule
still refuse at save time (another registrar took the last seat meanwhile), the admin's transaction
rolls back and the refusal is shown as a message.
"""

from functools import partial

from django import forms
from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery, Sum

from campusiq.core.admin import (
    AddOnlyInline,
    CampusImportMixin,
    CampusModelAdmin,
    ReadOnlyInline,
    form_add_service_error,
    form_value,
    related_count,
    service_dry_run,
)
from campusiq.core.errors import ServiceError
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
from students.resources import (
    AssessmentResource,
    CourseResource,
    DepartmentResource,
    EnrollmentResource,
    GradeResource,
    ProgramResource,
    SectionResource,
    StudentResource,
    TermOutcomeResource,
    TermResource,
    instance_adopt,
)
from students.services import (
    STUDENT_PRIOR_ACHIEVEMENT,
    advisor_validate,
    assessment_save,
    assessment_weights_validate,
    enrollment_create,
    enrollment_end,
    grade_record,
    grade_validate,
    prior_grade_validate,
    semester_validate,
    student_create,
    student_update,
    term_close,
    term_outcome_set,
)

# --- Forms ----------------------------------------------------------------------------------


class EnrollmentForm(forms.ModelForm):
    def clean(self):
        cleaned = super().clean()
        student, section = form_value(self, "student"), form_value(self, "section")
        if self.instance.pk is None and student and section and not self.errors:
            try:
                service_dry_run(
                    enrollment_create, student=student, section=section, enrolled_on=form_value(self, "enrolled_on")
                )
            except ServiceError as error:
                form_add_service_error(self, error)
        return cleaned


class AssessmentForm(forms.ModelForm):
    def clean(self):
        cleaned = super().clean()
        section, weight = form_value(self, "section"), form_value(self, "weight")
        if section is not None and weight is not None:
            try:
                assessment_weights_validate(section=section, weight=weight, exclude_pk=self.instance.pk)
            except ServiceError as error:
                form_add_service_error(self, error)
        return cleaned


class GradeForm(forms.ModelForm):
    def clean(self):
        cleaned = super().clean()
        student, assessment, score = (form_value(self, name) for name in ("student", "assessment", "score"))
        if student is not None and assessment is not None and score is not None:
            try:
                grade_validate(student=student, assessment=assessment, score=score)
            except ServiceError as error:
                form_add_service_error(self, error)
        return cleaned


class GradeAdminForm(GradeForm):
    reason = forms.CharField(
        required=False, max_length=500, help_text="Why the score is entered or changed; kept in the audit log."
    )


class StudentCreationForm(forms.ModelForm):
    """A new student and their account, made by student_create."""

    email = forms.EmailField()
    first_name = forms.CharField(max_length=150)
    last_name = forms.CharField(max_length=150)

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            try:
                service_dry_run(student_create, **self.service_arguments())
            except ServiceError as error:
                form_add_service_error(self, error)
        return cleaned

    def service_arguments(self) -> dict:
        names = ["email", "first_name", "last_name", "student_number", "program", "semester", "advisor", "status"]
        names += STUDENT_PRIOR_ACHIEVEMENT
        return {name: self.cleaned_data[name] for name in names}


STUDENT_UPDATABLE = ("program", "semester", "status", "advisor", *STUDENT_PRIOR_ACHIEVEMENT)


class StudentChangeForm(forms.ModelForm):
    def clean(self):
        cleaned = super().clean()
        validators = [("semester", semester_validate), ("advisor", advisor_validate)]
        validators += [(name, partial(prior_grade_validate, name)) for name in STUDENT_PRIOR_ACHIEVEMENT]
        for name, validate in validators:
            if name in self.changed_data and name in cleaned:
                try:
                    validate(cleaned[name])
                except ServiceError as error:
                    form_add_service_error(self, error)
        return cleaned


# --- Catalogue ------------------------------------------------------------------------------


@admin.register(Department)
class DepartmentAdmin(CampusImportMixin, CampusModelAdmin):
    resource_classes = [DepartmentResource]
    list_display = ["code", "name", "program_count", "course_count"]
    search_fields = ["code", "name"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                program_count=related_count(Program.objects, "department"),
                course_count=related_count(Course.objects, "department"),
            )
        )

    @admin.display(description="programs", ordering="program_count")
    def program_count(self, department: Department) -> int:
        return department.program_count

    @admin.display(description="courses", ordering="course_count")
    def course_count(self, department: Department) -> int:
        return department.course_count


@admin.register(Program)
class ProgramAdmin(CampusImportMixin, CampusModelAdmin):
    resource_classes = [ProgramResource]
    list_display = ["code", "name", "department", "student_count"]
    list_filter = ["department"]
    search_fields = ["code", "name", "department__code", "department__name"]
    autocomplete_fields = ["department"]
    list_select_related = ("department",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(student_count=related_count(Student.objects, "program"))

    @admin.display(description="students", ordering="student_count")
    def student_count(self, program: Program) -> int:
        return program.student_count


@admin.register(Course)
class CourseAdmin(CampusImportMixin, CampusModelAdmin):
    resource_classes = [CourseResource]
    list_display = ["code", "title", "department", "credits", "section_count"]
    list_filter = ["department", "credits"]
    search_fields = ["code", "title"]
    autocomplete_fields = ["department"]
    list_select_related = ("department",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(section_count=related_count(Section.objects, "course"))

    @admin.display(description="sections", ordering="section_count")
    def section_count(self, course: Course) -> int:
        return course.section_count


# --- Terms and sections ---------------------------------------------------------------------


@admin.register(Term)
class TermAdmin(CampusImportMixin, CampusModelAdmin):
    resource_classes = [TermResource]
    list_display = ["name", "start_date", "end_date", "add_drop_deadline", "section_count"]
    search_fields = ["name"]
    date_hierarchy = "start_date"
    actions = ["close_term"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(section_count=related_count(Section.objects, "term"))

    @admin.display(description="sections", ordering="section_count")
    def section_count(self, term: Term) -> int:
        return term.section_count

    @admin.action(description="Close term (compute final grades and derive outcomes)", permissions=["change"])
    def close_term(self, request, queryset):
        for term in queryset:
            try:
                counts = term_close(term=term, actor=request.user)
            except ServiceError as error:
                self.message_user(request, f"{term} was not closed: {error.detail}", messages.ERROR)
                continue
            self.message_user(
                request,
                f"{term} closed: final grades of {counts['sections']} sections computed, "
                f"{counts['outcomes']} outcomes derived, {counts['kept']} entered by staff or imported kept.",
                messages.SUCCESS,
            )


class SectionEnrollmentInline(ReadOnlyInline):
    model = Enrollment
    fields = readonly_fields = ["student", "status", "enrolled_on", "ended_on", "final_grade"]
    verbose_name_plural = "enrollments"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("student__user")


class SectionEnrollmentAddInline(AddOnlyInline):
    model = Enrollment
    form = EnrollmentForm
    fields = ["student", "enrolled_on"]
    autocomplete_fields = ["student"]
    verbose_name = "new enrollment"
    verbose_name_plural = "enrol students"


class SectionAssessmentInline(admin.TabularInline):
    model = Assessment
    form = AssessmentForm
    fields = ["name", "weight", "max_score", "due_date"]
    extra = 0
    can_delete = False
    show_change_link = True


class ServiceFormsetsMixin:
    """Inline rows are written by the services, like the rows of the admins of their own models."""

    def save_formset(self, request, form, formset, change):
        rows = formset.save(commit=False)
        for row in rows:
            if isinstance(row, Enrollment):
                saved = enrollment_create(
                    student=row.student, section=row.section, enrolled_on=row.enrolled_on, actor=request.user
                )
            elif isinstance(row, Grade):
                saved = grade_record(
                    student=row.student, assessment=row.assessment, score=row.score, actor=request.user
                )
            elif isinstance(row, Assessment):
                saved = assessment_save(assessment=row, actor=request.user)
            else:
                raise TypeError(f"No service saves {type(row).__name__} rows.")
            instance_adopt(row, saved)


@admin.register(Section)
class SectionAdmin(CampusImportMixin, ServiceFormsetsMixin, CampusModelAdmin):
    resource_classes = [SectionResource]
    list_display = ["course", "code", "term", "capacity", "enrolled_count", "weight_total", "lecturer_names"]
    list_filter = ["term", "course__department"]
    search_fields = ["course__code", "course__title", "term__name", "code"]
    autocomplete_fields = ["course", "term", "lecturers"]
    list_select_related = ("course", "term")
    inlines = [SectionEnrollmentInline, SectionEnrollmentAddInline, SectionAssessmentInline]

    def get_inlines(self, request, obj):
        # Enrolments and assessments are added to a section that exists.
        return self.inlines if obj is not None else []

    def get_queryset(self, request):
        weights = (
            Assessment.objects.filter(section=OuterRef("pk"))
            .order_by()
            .values("section")
            .annotate(total=Sum("weight"))
            .values("total")
        )
        return (
            super()
            .get_queryset(request)
            .prefetch_related("lecturers")
            .annotate(
                enrolled_count=related_count(Enrollment.objects, "section", status=Enrollment.Status.ENROLLED),
                weight_total=Subquery(weights),
            )
        )

    @admin.display(description="enrolled", ordering="enrolled_count")
    def enrolled_count(self, section: Section) -> str:
        return f"{section.enrolled_count} / {section.capacity}"

    @admin.display(description="weights (%)", ordering="weight_total")
    def weight_total(self, section: Section):
        return section.weight_total or 0

    @admin.display(description="lecturers")
    def lecturer_names(self, section: Section) -> str:
        return ", ".join(str(lecturer) for lecturer in section.lecturers.all())


# --- Students -------------------------------------------------------------------------------


class StudentEnrollmentInline(ReadOnlyInline):
    model = Enrollment
    fields = readonly_fields = ["section", "status", "enrolled_on", "ended_on", "final_grade"]
    verbose_name_plural = "enrollments"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("section__course", "section__term")


class StudentEnrollmentAddInline(AddOnlyInline):
    model = Enrollment
    form = EnrollmentForm
    fields = ["section", "enrolled_on"]
    autocomplete_fields = ["section"]
    verbose_name = "new enrollment"
    verbose_name_plural = "enrol in sections"


class StudentGradeInline(admin.TabularInline):
    """The student's grades; a changed score is recorded (and audited) by grade_record."""

    model = Grade
    form = GradeForm
    fields = ["assessment", "score", "graded_by", "updated_at"]
    readonly_fields = ["assessment", "graded_by", "updated_at"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("assessment__section__course", "assessment__section__term", "graded_by")
        )


class StudentGradeAddInline(AddOnlyInline):
    model = Grade
    form = GradeForm
    fields = ["assessment", "score"]
    autocomplete_fields = ["assessment"]
    verbose_name = "new grade"
    verbose_name_plural = "record grades"


@admin.register(Student)
class StudentAdmin(CampusImportMixin, ServiceFormsetsMixin, CampusModelAdmin):
    resource_classes = [StudentResource]
    list_display = ["student_number", "full_name", "email", "program", "semester", "status", "advisor"]
    list_filter = ["status", "program", "semester"]
    search_fields = ["student_number", "user__email", "user__first_name", "user__last_name"]
    autocomplete_fields = ["program", "advisor"]
    list_select_related = ("user", "program", "advisor")
    inlines = [StudentEnrollmentInline, StudentEnrollmentAddInline, StudentGradeInline, StudentGradeAddInline]
    add_fieldsets = [
        (None, {"fields": ["student_number", "email", "first_name", "last_name"]}),
        ("Studies", {"fields": ["program", "semester", "status", "advisor"]}),
        ("Prior achievement", {"fields": list(STUDENT_PRIOR_ACHIEVEMENT)}),
    ]
    fieldsets = [
        (None, {"fields": ["student_number", "user", "email"]}),
        ("Studies", {"fields": ["program", "semester", "status", "advisor"]}),
        ("Prior achievement", {"fields": list(STUDENT_PRIOR_ACHIEVEMENT)}),
        ("Record", {"fields": ["created_at", "updated_at"]}),
    ]

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return ["student_number", "user", "email", "created_at", "updated_at"] if obj is not None else []

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = StudentChangeForm if obj is not None else StudentCreationForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def save_model(self, request, obj, form, change):
        if not change:
            instance_adopt(obj, student_create(actor=request.user, **form.service_arguments()))
            return
        fields = {name: form.cleaned_data[name] for name in form.changed_data if name in STUDENT_UPDATABLE}
        if fields:
            current = Student.objects.select_related("user").get(pk=obj.pk)
            instance_adopt(obj, student_update(student=current, actor=request.user, **fields))

    @admin.display(description="name", ordering="user__last_name")
    def full_name(self, student: Student) -> str:
        return student.user.get_full_name()

    @admin.display(description="email", ordering="user__email")
    def email(self, student: Student) -> str:
        return student.user.email


@admin.register(Enrollment)
class EnrollmentAdmin(CampusImportMixin, CampusModelAdmin):
    resource_classes = [EnrollmentResource]
    import_job_kind = "enrollments"
    form = EnrollmentForm
    list_display = ["student", "section", "status", "enrolled_on", "ended_on", "final_grade"]
    list_filter = ["status", "section__term"]
    search_fields = [
        "student__student_number",
        "student__user__last_name",
        "section__course__code",
        "section__term__name",
    ]
    autocomplete_fields = ["student", "section"]
    list_select_related = ("student__user", "section__course", "section__term")
    fields = ["student", "section", "enrolled_on", "status", "ended_on", "final_grade"]
    actions = ["end_enrollments"]

    def get_readonly_fields(self, request, obj=None):
        # Status, end date and final grade change only through enrollment_end and term_close.
        if obj is not None:
            return self.fields
        return ["status", "ended_on", "final_grade"]

    def save_model(self, request, obj, form, change):
        if not change:
            instance_adopt(
                obj,
                enrollment_create(
                    student=obj.student, section=obj.section, enrolled_on=obj.enrolled_on, actor=request.user
                ),
            )

    @admin.action(
        description="End selected enrollments today (a drop up to the add/drop deadline, a withdrawal after)",
        permissions=["change"],
    )
    def end_enrollments(self, request, queryset):
        ended = 0
        for enrollment in queryset:
            try:
                enrollment_end(enrollment=enrollment, actor=request.user)
            except ServiceError as error:
                self.message_user(request, f"{enrollment}: {error.detail}", messages.ERROR)
            else:
                ended += 1
        if ended:
            self.message_user(request, f"{ended} enrollments ended.", messages.SUCCESS)


@admin.register(Assessment)
class AssessmentAdmin(CampusImportMixin, CampusModelAdmin):
    resource_classes = [AssessmentResource]
    form = AssessmentForm
    list_display = ["name", "section", "weight", "max_score", "due_date", "grade_count"]
    list_filter = ["section__term"]
    search_fields = ["name", "section__course__code", "section__course__title", "section__term__name"]
    autocomplete_fields = ["section"]
    list_select_related = ("section__course", "section__term")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(grade_count=related_count(Grade.objects, "assessment"))

    def get_readonly_fields(self, request, obj=None):
        # Moving an assessment to another section would carry its grades along.
        return ["section"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        assessment_save(assessment=obj, actor=request.user)

    @admin.display(description="grades", ordering="grade_count")
    def grade_count(self, assessment: Assessment) -> int:
        return assessment.grade_count


@admin.register(Grade)
class GradeAdmin(CampusImportMixin, CampusModelAdmin):
    """Grades are entered and changed by grade_record, so every change is audited with its actor."""

    resource_classes = [GradeResource]
    import_job_kind = "grades"
    form = GradeAdminForm
    list_display = ["student", "assessment", "score", "graded_by", "updated_at"]
    list_filter = ["assessment__section__term"]
    search_fields = [
        "student__student_number",
        "student__user__last_name",
        "assessment__name",
        "assessment__section__course__code",
    ]
    autocomplete_fields = ["student", "assessment"]
    list_select_related = ("student__user", "assessment__section__course", "assessment__section__term", "graded_by")
    fields = ["student", "assessment", "score", "reason", "graded_by", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return ["student", "assessment", "graded_by", "updated_at"]
        return ["graded_by", "updated_at"]

    def has_delete_permission(self, request, obj=None) -> bool:
        # No service deletes a grade with an audit entry; a wrong score is corrected instead.
        return False

    def save_model(self, request, obj, form, change):
        grade = grade_record(
            student=obj.student,
            assessment=obj.assessment,
            score=obj.score,
            actor=request.user,
            reason=form.cleaned_data.get("reason", ""),
        )
        instance_adopt(obj, grade)


@admin.register(TermOutcome)
class TermOutcomeAdmin(CampusImportMixin, CampusModelAdmin):
    """Outcomes entered here are the staff's (term_outcome_set), imported ones the campus's record of a
    past term (source "imported", see TermOutcomeResource): closing the term again keeps both."""

    resource_classes = [TermOutcomeResource]
    list_display = ["student", "term", "outcome", "source", "updated_at"]
    list_filter = ["term", "outcome", "source"]
    search_fields = ["student__student_number", "student__user__last_name", "term__name"]
    autocomplete_fields = ["student", "term"]
    list_select_related = ("student__user", "term")
    fields = ["student", "term", "outcome", "note", "source", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return ["student", "term", "source", "updated_at"]
        return ["source", "updated_at"]

    def save_model(self, request, obj, form, change):
        record = term_outcome_set(
            student=obj.student,
            term=obj.term,
            outcome=obj.outcome,
            note=obj.note,
            actor=request.user,
            source=TermOutcome.Source.STAFF,
        )
        instance_adopt(obj, record)
