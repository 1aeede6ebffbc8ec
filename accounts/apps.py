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


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        # Permissions exist only after migrate, so the role groups are (re)built then.
        post_migrate.connect(_sync_role_groups, sender=self, dispatch_uid="accounts.sync_role_groups")
