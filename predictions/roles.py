"""What each role's group may do with the predictions models (accounts.roles collects it at start-up)."""

from accounts.roles import Role, role_permissions_grant

# Registrars promote and roll back model versions and start scoring runs; the rest they read.
REGISTRAR_MANAGED_MODELS = ["modelversion", "scoringrun"]
REGISTRAR_READ_MODELS = ["riskscore", "intervention", "flagfeedback"]


def role_permissions_declare() -> None:
    role_permissions_grant(
        Role.REGISTRAR, app_label="predictions", model_names=REGISTRAR_MANAGED_MODELS, actions=("change", "view")
    )
    role_permissions_grant(
        Role.REGISTRAR, app_label="predictions", model_names=REGISTRAR_READ_MODELS, actions=("view",)
    )
