"""Roles are Django groups. A person may hold several (a lecturer who also advises)."""

from django.db import models

# Models registrars manage in full in the admin.
CAMPUS_MODELS = [
    "department",
    "program",
    "course",
    "term",
    "section",
    "student",
    "enrollment",
    "assessment",
    "grade",
    "termoutcome",
]


class Role(models.TextChoices):
    STUDENT = "student", "Student"
    LECTURER = "lecturer", "Lecturer"
    ADVISOR = "advisor", "Advisor"
    REGISTRAR = "registrar", "Registrar"
    ADMIN = "admin", "Admin"


# Attendance models registrars manage in the admin, and those they may only read.
ATTENDANCE_MANAGED_MODELS = [
    "classsession",
    "attendancerecord",
    "absenceexcuse",
    "termholiday",
    "studentcard",
    "cardreader",
]
ATTENDANCE_READ_MODELS = ["proxyflag", "devicesighting", "attendancewarningstate"]
# Registrars promote and roll back model versions and start scoring runs; the rest they read.
PREDICTIONS_MANAGED_MODELS = ["modelversion", "scoringrun"]
PREDICTIONS_READ_MODELS = ["riskscore", "intervention", "flagfeedback"]

# Roles whose holders work in the Django admin.
STAFF_ROLES = {Role.REGISTRAR, Role.ADMIN}


def group_name(role: Role) -> str:
    return Role(role).label


def role_permissions(role: Role) -> list[str]:
    """Model permissions ('app_label.codename') each role's group holds. Object-level scoping
    (a lecturer's own sections, an advisor's own advisees) is done by the selectors, not here."""
    if role == Role.REGISTRAR:
        return [
            *(
                f"students.{action}_{model}"
                for model in CAMPUS_MODELS
                for action in ("add", "change", "delete", "view")
            ),
            *(
                f"attendance.{action}_{model}"
                for model in ATTENDANCE_MANAGED_MODELS
                for action in ("add", "change", "view")
            ),
            *(f"attendance.view_{model}" for model in ATTENDANCE_READ_MODELS),
            *(f"predictions.{action}_{model}" for model in PREDICTIONS_MANAGED_MODELS for action in ("change", "view")),
            *(f"predictions.view_{model}" for model in PREDICTIONS_READ_MODELS),
            "accounts.add_user",
            "accounts.change_user",
            "accounts.view_user",
            "core.view_auditlogentry",
        ]
    return []
