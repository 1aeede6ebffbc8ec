import re

import tablib
from django.contrib import admin
from import_export import resources
from import_export.admin import ExportActionMixin
from import_export.fields import Field
from import_export.formats import base_formats

from campusiq.core.models import AuditLogEntry

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
class AuditLogEntryAdmin(CampusExportActionMixin, admin.ModelAdmin):
    """Read-only: staff may read the history, nobody may write or erase it here."""

    resource_classes = [AuditLogEntryResource]
    list_display = ["created_at", "actor_label", "verb", "object_type", "object_id", "object_label", "request_id"]
    list_filter = ["action", "verb", "object_type"]
    search_fields = ["actor_label", "object_id", "object_label", "request_id", "verb"]
    date_hierarchy = "created_at"
    list_select_related = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
