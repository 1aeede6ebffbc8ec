"""What each role's group may do with the attendance models (accounts.roles collects it at start-up)."""

from accounts.roles import Role, role_permissions_grant

# Models registrars manage in the admin (never delete: a record is voided, a session cancelled), and
# those the system writes, which they only read.
REGISTRAR_MANAGED_MODELS = [
    "classsession",
    "attendancerecord",
    "absenceexcuse",
    "termholiday",
    "studentcard",
    "cardreader",
    "attendancestatusset",
    "attendancestatus",
    "sectionattendancegrade",
    "sectiongroup",
    "sectiongroupmember",
]
# A status never given to anyone may be removed from its set (the admin refuses one in use).
REGISTRAR_REMOVABLE_MODELS = ["attendancestatus"]
REGISTRAR_READ_MODELS = [
    "proxyflag",
    "devicesighting",
    "attendancewarningstate",
    "advanceabsence",
    "sectionnetworkrule",
]
# Configuration, not records: registrars set the warning rules, removing one included.
REGISTRAR_CONFIGURED_MODELS = ["attendancewarningrule"]


def role_permissions_declare() -> None:
    role_permissions_grant(
        Role.REGISTRAR, app_label="attendance", model_names=REGISTRAR_MANAGED_MODELS, actions=("add", "change", "view")
    )
    role_permissions_grant(Role.REGISTRAR, app_label="attendance", model_names=REGISTRAR_READ_MODELS, actions=("view",))
    role_permissions_grant(
        Role.REGISTRAR, app_label="attendance", model_names=REGISTRAR_REMOVABLE_MODELS, actions=("delete",)
    )
    role_permissions_grant(
        Role.REGISTRAR,
        app_label="attendance",
        model_names=REGISTRAR_CONFIGURED_MODELS,
        actions=("add", "change", "delete", "view"),
    )
