from django.apps import AppConfig

from campusiq.core import spreadsheets

# Here, not in ready(): the admin app's ready() (first in INSTALLED_APPS) imports import_export.admin,
# which loads every tablib format it can; XLSX must be the lazy one by then.
spreadsheets.xlsx_load_on_first_use()


class CoreConfig(AppConfig):
    name = "campusiq.core"
    label = "core"
    verbose_name = "CampusIQ core"

    def ready(self) -> None:
        from campusiq.core import checks, signals  # noqa: F401  (registers checks and signals)
        from campusiq.core.backups import backup_metrics
        from campusiq.core.metrics import metrics_collector_register
        from campusiq.core.telemetry import telemetry_start

        metrics_collector_register("core.backups", backup_metrics)
        telemetry_start()
