import re
from dataclasses import dataclass

import tablib
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied
from django.db import transaction
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy
from import_export import resources
from import_export.admin import ExportActionMixin, ImportMixin
from import_export.fields import Field
from import_export.formats import base_formats

from campusiq.core.errors import ServiceError
from campusiq.core.imports import (
    ImportFileError,
    import_job_cancel,
    import_job_create,
    import_kind_get,
    import_kinds,
    import_rows_count,
)
from campusiq.core.models import AuditLogEntry, ImportJob
from campusiq.core.ratelimit import RateLimit, rate_limits_enforce

# The admin names the product, not the framework ("Django administration"), on every page and tab.
admin.site.site_header = admin.site.site_title = admin.site.index_title = gettext_lazy("CampusIQ administration")

# A spreadsheet evaluates a cell that starts with one of these (OWASP, "CSV injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")
PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def formula_neutralise(value):
    """A text cell a spreadsheet would run as a formula, prefixed with ' so it stays text. Numbers
    (a negative score, say) are left alone: "-5" is a number, not a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS) and not PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def dataset_formula_neutralise(dataset: tablib.Dataset) -> tablib.Dataset:
    neutralised = tablib.Dataset(headers=dataset.headers, title=dataset.title)
    for row in dataset:
        neutralised.append([formula_neutralise(cell) for cell in row])
    return neutralised


class FormulaSafeCSV(base_formats.CSV):
    # django-import-export's own escaping (IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT) strips one leading
    # "=" only, so "==cmd", "+cmd", "-cmd" and "@cmd" would still run.
    def export_data(self, dataset, **kwargs):
        return super().export_data(dataset_formula_neutralise(dataset), **kwargs)


class FormulaSafeXLSX(base_formats.XLSX):
    # openpyxl writes a string that starts with "=" as a formula.
    def export_data(self, dataset, **kwargs):
        return super().export_data(dataset_formula_neutralise(dataset), **kwargs)


class CampusExportActionMixin(ExportActionMixin):
    """The "Export selected" action on every list: a CSV of the chosen rows in one click; the Export
    button above the list offers CSV or XLSX with a choice of columns. Whoever may view the list may
    export it; every cell a spreadsheet would evaluate is neutralised."""

    export_formats = [FormulaSafeCSV, FormulaSafeXLSX]
    skip_export_form_from_action = True

    def has_export_permission(self, request) -> bool:
        return self.has_view_permission(request)


# --- The campus admins' building blocks -----------------------------------------------------


class _DryRunRollback(Exception):
    pass


def service_dry_run(service, /, **kwargs) -> None:
    """Runs a service in a savepoint that is always rolled back: a form shows the very error the service
    would raise, and nothing is written. For services that have no separate validator."""
    try:
        with transaction.atomic():
            service(**kwargs)
            raise _DryRunRollback
    except _DryRunRollback:
        pass


def form_add_service_error(form: forms.Form, error: ServiceError) -> None:
    form.add_error(error.field if error.field in form.fields else None, error)


def form_value(form: forms.ModelForm, name: str):
    """A value from the form, or from the instance when the field is read-only on this form."""
    if name in form.fields:
        return form.cleaned_data.get(name)
    return getattr(form.instance, name, None)


def related_count(queryset: QuerySet, fk: str, **filters) -> Coalesce:
    """Counts related rows in a subquery: no join, so several counts on one list do not multiply."""
    counted = (
        queryset.filter(**{fk: OuterRef("pk")}, **filters).order_by().values(fk).annotate(n=Count("pk")).values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


class CampusModelAdmin(CampusExportActionMixin, admin.ModelAdmin):
    """list_select_related applies to every queryset of the admin (autocomplete, export, delete
    confirmation), not only the list, since __str__ of most campus rows reads related rows."""

    list_select_related: tuple[str, ...] = ()

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset.select_related(*self.list_select_related) if self.list_select_related else queryset

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceError as error:
            # A rule refused at save time, after the form validated: the admin's transaction rolled back.
            self.message_user(request, f"Nothing was saved: {error.detail}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


IMPORT_TEMPLATE_FORMATS = {"csv": base_formats.CSV, "xlsx": base_formats.XLSX}


@dataclass(frozen=True)
class ImportRowError:
    row: int | None  # None: the file's, not a row's
    column: str  # "" when the error is the whole row's
    message: str

    def __str__(self) -> str:
        where = "" if self.row is None else f"row {self.row}, {self.column}" if self.column else f"row {self.row}"
        return f"{where}: {self.message}" if where else self.message


class ImportFileUnreadable(ValueError):
    """A file format's reader refusing a file, with a message for the person who uploaded it."""


# Excel on Windows saves "CSV" in the machine's code page, Windows-1252 across Western Europe and the
# Americas, unless the person picks "CSV UTF-8": both are read, UTF-8 (with or without a BOM) first.
CSV_ENCODINGS = ("utf-8-sig", "cp1252")


def csv_bytes_decode(data: bytes) -> str:
    for encoding in CSV_ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFileUnreadable(
        gettext_lazy('The file is neither UTF-8 nor Windows-1252 text. Save it as "CSV UTF-8" and try again.')
    )


class CampusCSV(base_formats.CSV):
    """CSV read from the uploaded bytes (not through import-export's UTF-8-only text temp file), so the
    encoding is found here: UTF-8, else Windows-1252."""

    def is_binary(self) -> bool:
        return True

    def get_read_mode(self) -> str:
        return "rb"

    def create_dataset(self, in_stream, **kwargs):
        if isinstance(in_stream, bytes):
            in_stream = csv_bytes_decode(in_stream)
        return super().create_dataset(in_stream, **kwargs)


class CampusImportMixin(ImportMixin):
    """CSV or XLSX import with a preview (a dry run) and per-row errors, listed by row and column above
    the preview. The form offers an empty template file per format and the values each choice column
    accepts, from the resource (its `import_template()` and `import_allowed_values()`, where it has
    them). Needs add and change permission."""

    import_formats = [CampusCSV, base_formats.XLSX]
    import_export_change_list_template = "admin/import_export/change_list_import_export.html"
    import_template_name = "admin/import_export/campus_import.html"
    # The kind of campusiq.core.imports a big file of this admin becomes a job of (None: always previewed).
    import_job_kind: str | None = None

    def has_import_permission(self, request) -> bool:
        return self.has_add_permission(request) and self.has_change_permission(request)

    def get_urls(self):
        template = self.admin_site.admin_view(self.import_template_view)
        name = f"{self.opts.app_label}_{self.opts.model_name}_import_template"
        return [path("import/template.<str:file_format>", template, name=name), *super().get_urls()]

    def _template_resource(self, request):
        resource = self.get_import_resource_classes(request)[0]
        return resource if hasattr(resource, "import_template") else None

    def import_template_view(self, request, file_format: str):
        if not self.has_import_permission(request):
            raise PermissionDenied
        resource = self._template_resource(request)
        if resource is None or file_format not in IMPORT_TEMPLATE_FORMATS:
            raise Http404
        spreadsheet = IMPORT_TEMPLATE_FORMATS[file_format]()
        response = HttpResponse(
            spreadsheet.export_data(resource.import_template()), content_type=spreadsheet.get_content_type()
        )
        response["Content-Disposition"] = f'attachment; filename="{self.opts.model_name}-import-template.{file_format}"'
        return response

    def _import_as_job(self, request) -> ImportJob | None:
        """A file of more than IMPORT_JOB_THRESHOLD_ROWS rows becomes a background job of
        `import_job_kind` (no preview: it would not fit a page); smaller files keep the preview."""
        upload = request.FILES.get("import_file") if request.method == "POST" else None
        if upload is None or not self.import_job_kind or not self.has_import_permission(request):
            return None
        try:
            rows = import_rows_count(upload, file_name=upload.name, kind=import_kind_get(self.import_job_kind))
        except ImportFileError:
            rows = 0  # the preview says what is wrong with it
        upload.seek(0)
        if rows <= settings.IMPORT_JOB_THRESHOLD_ROWS:
            return None
        try:
            return import_job_start(request, kind=self.import_job_kind, upload=upload)
        finally:
            upload.seek(0)

    def add_data_read_fail_error_to_form(self, form, e):
        if isinstance(e, ImportFileUnreadable):
            form.add_error("import_file", str(e))
        else:
            super().add_data_read_fail_error_to_form(form, e)

    def import_action(self, request, **kwargs):
        if job := self._import_as_job(request):
            self.message_user(
                request, gettext_lazy("A big file: it is imported in the background as history."), messages.INFO
            )
            return HttpResponseRedirect(reverse("admin:core_importjob_change", args=[job.pk]))
        response = super().import_action(request, **kwargs)
        context = getattr(response, "context_data", None)
        if context is None:
            return response
        resource = self._template_resource(request)
        if resource is not None:
            name = f"admin:{self.opts.app_label}_{self.opts.model_name}_import_template"
            context["import_templates"] = [
                (file_format.upper(), reverse(name, args=[file_format])) for file_format in IMPORT_TEMPLATE_FORMATS
            ]
            context["import_allowed_values"] = list(resource.import_allowed_values().items())
        result = context.get("result")
        if result is not None and (result.has_errors() or result.has_validation_errors()):
            context["import_row_errors"] = import_errors(result)
        return response

    def process_result(self, result, request):
        if result.has_errors() or result.has_validation_errors():
            # A row that passed the preview failed on confirmation (the data changed in between); the
            # file's transaction rolled back.
            errors = "; ".join(str(error) for error in import_errors(result))
            self.message_user(request, "Nothing was imported: " + errors, messages.ERROR)
            return HttpResponseRedirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_import"))
        return super().process_result(result, request)


def import_errors(result) -> list[ImportRowError]:
    errors = [ImportRowError(None, "", str(error.error)) for error in result.base_errors]
    for row in result.invalid_rows:
        for column, column_errors in row.error_dict.items():
            where = "" if column == NON_FIELD_ERRORS else column
            errors += [ImportRowError(row.number, where, str(message)) for message in column_errors]
    for row in result.error_rows:
        errors += [ImportRowError(row.number, "", str(error.error)) for error in row.errors]
    return errors


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class AddOnlyInline(admin.TabularInline):
    """Blank rows to add through the service; the existing rows are listed by a ReadOnlyInline."""

    extra = 1
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).none()


class ReasonActionForm(ActionForm):
    """The action bar with a reason beside the action, for the actions that need one."""

    reason = forms.CharField(required=False, max_length=1000, label="Reason / note", help_text="Kept in the audit log.")


class ReadOnlyAdmin(CampusModelAdmin):
    """Rows the system writes: listed, searched and exported, never edited here."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# --- The audit log -------------------------------------------------------------------------


class AuditLogEntryResource(resources.ModelResource):
    actor = Field(attribute="actor_label", column_name="actor")

    class Meta:
        model = AuditLogEntry
        fields = (
            "created_at",
            "actor",
            "action",
            "verb",
            "object_type",
            "object_id",
            "object_label",
            "changes",
            "reason",
            "request_id",
        )
        export_order = fields


@admin.register(AuditLogEntry)
class AuditLogEntryAdmin(ReadOnlyAdmin):
    """Read-only: staff may read the history, nobody may write or erase it here."""

    resource_classes = [AuditLogEntryResource]
    list_display = ["created_at", "actor_label", "verb", "object_type", "object_id", "object_label", "request_id"]
    list_filter = ["action", "verb", "object_type"]
    search_fields = ["actor_label", "object_id", "object_label", "request_id", "verb"]
    date_hierarchy = "created_at"
    list_select_related = False


# --- Big-file imports (campusiq/core/imports.py) ----------------------------------------------


class ImportJobUploadForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("What the file holds"))
    file = forms.FileField(label=gettext_lazy("File (CSV or XLSX)"))

    def __init__(self, *args, kinds: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [(name, kind.label) for name, kind in kinds.items()]

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if not upload.name.lower().endswith((".csv", ".xlsx")):
            raise forms.ValidationError(gettext_lazy("Upload a .csv or .xlsx file."))
        return upload


def import_job_kinds_for(user) -> dict:
    """The import kinds this person may run: each kind names the permission its rows need."""
    return {name: kind for name, kind in import_kinds().items() if user.has_perm(kind.permission)}


def import_job_start(request, *, kind: str, upload) -> ImportJob:
    """Queues a job for an upload, rate-limited per person; raises ImportFileError for an unreadable file."""
    rate_limits_enforce([RateLimit("import-job", str(request.user.pk), settings.IMPORT_JOB_RATE_PER_USER)])
    return import_job_create(kind=kind, upload=upload, actor=request.user)


@admin.register(ImportJob)
class ImportJobAdmin(CampusModelAdmin):
    """Big imports: upload a file (a job is queued), watch its progress bar, cancel it, read its result.
    Jobs are never edited or deleted by hand: the audit log names them."""

    list_display = (
        "__str__",
        "file_name",
        "status",
        "rows_done",
        "rows_total",
        "error_count",
        "created_by",
        "created_at",
    )
    list_filter = ("status", "kind")
    list_select_related = ("created_by",)
    readonly_fields = [f.name for f in ImportJob._meta.fields if f.name != "file"]
    exclude = ("file",)
    change_form_template = "admin/core/importjob/change_form.html"

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        cancel = self.admin_site.admin_view(self.cancel_view)
        return [path("<int:job_id>/cancel/", cancel, name="core_importjob_cancel"), *super().get_urls()]

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        kinds = import_job_kinds_for(request.user)
        form = ImportJobUploadForm(request.POST or None, request.FILES or None, kinds=kinds)
        if request.method == "POST" and form.is_valid():
            try:
                job = import_job_start(request, kind=form.cleaned_data["kind"], upload=form.cleaned_data["file"])
            except ImportFileError as error:
                form.add_error("file", str(error))
            else:
                self.message_user(request, gettext_lazy("The import is queued."), messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:core_importjob_change", args=[job.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext_lazy("Import a big file"),
            "form": form,
            "kinds": kinds.values(),
        }
        return TemplateResponse(request, "admin/core/importjob/upload.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_object(request, object_id)
        extra = {
            "progress_url": reverse("import-job-progress", args=[object_id]) if job else "",
            "can_cancel": job is not None
            and job.status in (ImportJob.Status.QUEUED, ImportJob.Status.RUNNING)
            and not job.cancel_requested
            and request.user.has_perm("core.change_importjob"),
        }
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def cancel_view(self, request, job_id: int):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("core.change_importjob"):
            raise PermissionDenied
        job = self.get_object(request, str(job_id))
        if job is None:
            raise Http404
        if import_job_cancel(job=job, actor=request.user):
            self.message_user(request, gettext_lazy("Cancelling: nothing of the file will be kept."), messages.WARNING)
        else:
            self.message_user(request, gettext_lazy("The import had already finished."), messages.INFO)
        return HttpResponseRedirect(reverse("admin:core_importjob_change", args=[job.pk]))
