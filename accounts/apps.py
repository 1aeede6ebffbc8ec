from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_role_groups(sender, using="default", **kwargs) -> None:
    from django.apps import apps
    from django.contrib.auth.management import create_permissions

    from accounts.services import roles_sync_groups

    # Other apps' permissions may not exist yet at this point of post_migrate: create them first.
    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=using)
    roles_sync_groups()


def _forget_cached_tokens(sender, instance, **kwargs) -> None:
    from accounts.tokens import token_cache_forget_user_changed

    token_cache_forget_user_changed(user_id=instance.pk)


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from accounts import schema  # noqa: F401  (registers the OpenAPI authentication schemes)
        from accounts.metrics import saml_metadata_metrics
        from accounts.roles import Role, role_permissions_grant
        from campusiq.core.metrics import metrics_collector_register

        # Registrars manage people (roles are granted by admins) and read the audit log.
        role_permissions_grant(
            Role.REGISTRAR, app_label="accounts", model_names=["user"], actions=("add", "change", "view")
        )
        role_permissions_grant(Role.REGISTRAR, app_label="core", model_names=["auditlogentry"], actions=("view",))

        # Permissions exist only after migrate, so the role groups are (re)built then.
        post_migrate.connect(_sync_role_groups, sender=self, dispatch_uid="accounts.sync_role_groups")
        # Cached API tokens carry their user (and student profile: students connects that change).
        post_save.connect(_forget_cached_tokens, sender="accounts.User", dispatch_uid="accounts.forget_tokens_user")
        _connect_sign_in_signals()
        metrics_collector_register("accounts.saml_metadata", saml_metadata_metrics)
        from accounts.sso.config import sso_providers

        sso_providers()  # a wrong SSO_CONFIG_FILE stops the start, not a sign-in


def _connect_sign_in_signals() -> None:
    from django.contrib.auth.signals import user_logged_in
    from django.db.models.signals import post_save, pre_save

    from accounts import signals

    # A password change or a deactivation ends the person's sessions and personal tokens, however made.
    pre_save.connect(signals.remember_credentials, sender="accounts.User", dispatch_uid="accounts.credentials_before")
    post_save.connect(
        signals.end_sessions_on_credential_change, sender="accounts.User", dispatch_uid="accounts.credentials_after"
    )
    # Each sign-in's session is indexed under its user, so those sessions can be ended server-side.
    user_logged_in.connect(signals.register_session, dispatch_uid="accounts.register_session")
    # ... and remembers when, for what needs a recent sign-in (an API token from the portal).
    user_logged_in.connect(signals.record_sign_in_time, dispatch_uid="accounts.record_sign_in_time")
