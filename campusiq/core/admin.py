from django.contrib import admin

from campusiq.core.models import AuditLogEntry


@admin.register(AuditLogEntry)
class AuditLogEntryAdmin(admin.ModelAdmin):
    """Read-only: staff may read the history, nobody may write or erase it here."""

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
