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
    "sectiongroup",
    "sectiongroupmember",
]
REGISTRAR_READ_MODELS = ["proxyflag", "devicesighting", "attendancewarningstate", "sectionnetworkrule"]


def role_permissions_declare() -> None:
    role_permissions_grant(
        Role.REGISTRAR, app_label="attendance", model_names=REGISTRAR_MANAGED_MODELS, actions=("add", "change", "view")
    )
    role_permissions_grant(Role.REGISTRAR, app_label="attendance", model_names=REGISTRAR_READ_MODELS, actions=("view",))
