from django.apps import AppConfig


class PredictionsConfig(AppConfig):
    name = "predictions"

    def ready(self) -> None:
        from campusiq.core.backups import backup_contributor_register
        from campusiq.core.health import health_check_register
        from campusiq.core.metrics import metrics_collector_register
        from predictions import checks
        from predictions.exports import predictions_sections_register
        from predictions.metrics import active_model_metrics, scoring_metrics
        from predictions.roles import role_permissions_declare

        health_check_register("model", checks.active_model_loads, required=False)
        metrics_collector_register("predictions.scoring", scoring_metrics)
        metrics_collector_register("predictions.active_model", active_model_metrics)
        # The model artifacts: the registry's rows name them, so they are backed up with the database.
        backup_contributor_register(
            "artifacts",
            setting="MODEL_ARTIFACT_ROOT",
            label="model artifacts",
            app_label=self.label,
            verify=checks.restored_model_loads,
        )
        role_permissions_declare()
        predictions_sections_register()
