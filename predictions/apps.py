from django.apps import AppConfig


class PredictionsConfig(AppConfig):
    name = "predictions"

    def ready(self) -> None:
        from campusiq.core.metrics import metrics_collector_register
        from predictions.metrics import active_model_metrics

        metrics_collector_register("predictions.active_model", active_model_metrics)

        from predictions.exports import predictions_sections_register

        predictions_sections_register()
