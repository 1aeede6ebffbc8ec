from django.apps import AppConfig
from django.db.models.signals import post_save


def _forget_cached_tokens(sender, instance, **kwargs) -> None:
    from accounts.tokens import token_cache_forget_user_changed

    token_cache_forget_user_changed(user_id=instance.user_id)


class StudentsConfig(AppConfig):
    name = "students"
    verbose_name = "Campus"

    def ready(self) -> None:
        from students.exports import campus_sections_register
        from students.roles import role_permissions_declare

        role_permissions_declare()
        campus_sections_register()
        # A student's API tokens are cached with their profile: a change to it drops them.
        post_save.connect(_forget_cached_tokens, sender="students.Student", dispatch_uid="students.forget_tokens")
