"""What each role's group may do with the campus models (accounts.roles collects it at start-up)."""

from accounts.roles import Role, role_permissions_grant

# Models registrars manage in full in the admin.
REGISTRAR_MANAGED_MODELS = [
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


def role_permissions_declare() -> None:
    role_permissions_grant(
        Role.REGISTRAR,
        app_label="students",
        model_names=REGISTRAR_MANAGED_MODELS,
        actions=("add", "change", "delete", "view"),
    )
    # Big-file imports (campusiq.core.imports): registrars start, watch and cancel them.
    role_permissions_grant(
        Role.REGISTRAR, app_label="core", model_names=["importjob"], actions=("add", "change", "view")
    )
