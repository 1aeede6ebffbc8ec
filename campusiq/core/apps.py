from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "campusiq.core"
    label = "core"
    verbose_name = "CampusIQ core"

    def ready(self) -> None:
        from campusiq.core import checks, schema, signals  # noqa: F401  (registers checks, schema extensions, signals)
