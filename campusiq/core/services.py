from typing import Any

from django.db import models

from campusiq.core.models import AuditLogEntry
from campusiq.core.request_id import current_request_id


def audit_log_write(
    *,
    actor: Any,
    verb: str,
    target: models.Model,
    action: str = AuditLogEntry.Action.UPDATE,
    changes: dict[str, list[Any]] | None = None,
    reason: str = "",
) -> AuditLogEntry:
    """Records one change. `changes` maps a field to [before, after]; values must be JSON-serialisable."""
    is_person = actor is not None and getattr(actor, "is_authenticated", False)
    return AuditLogEntry.objects.create(
        actor=actor if is_person else None,
        actor_label=(actor.get_username() if is_person else "system"),
        action=action,
        verb=verb,
        object_type=target._meta.label_lower,
        object_id=str(target.pk),
        object_label=str(target)[:200],
        changes=changes or {},
        reason=reason,
        request_id=current_request_id() or "",
    )


def changes_between(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """The fields whose value differs, as {field: [before, after]}."""
    return {field: [before.get(field), value] for field, value in after.items() if before.get(field) != value}
