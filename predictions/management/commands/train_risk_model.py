from django.core.management.base import BaseCommand, CommandError

from predictions.models import ModelVersion
from predictions.training import TrainingRefused, risk_model_train


class Command(BaseCommand):
    help = (
        "Trains the at-risk model on past terms (time hold-out, cross-validation, baselines), registers it, "
        "and activates it if it beats every rule baseline its data supports beyond noise (docs/PREDICTIONS.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--unless-active", action="store_true", help="Do nothing if a model is already active (make run)."
        )

    def handle(self, *args, unless_active: bool = False, **options):
        if unless_active and ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).exists():
            self.stdout.write("A model is already active: not training (drop --unless-active to train anyway).")
            return
        try:
            version = risk_model_train()
        except TrainingRefused as refusal:
            raise CommandError(refusal.detail) from refusal
        metrics = version.metrics
        holdout, baselines, cv = metrics["holdout"], metrics["baselines"], metrics["cross_validation"]
        self.stdout.write(f"Model {version.name}: {version.status}. {version.status_reason}")
        self.stdout.write(
            f"  trained on {', '.join(version.training_terms)} ({metrics['examples']['train']} students), "
            f"tested on {version.holdout_term} ({metrics['examples']['holdout']}); threshold {version.threshold:.3f}"
        )
        self.stdout.write(f"  {'':<30} {'ROC-AUC':>8} {'PR-AUC':>8} {'Brier':>7} {'prec':>6} {'recall':>6} {'F1':>6}")
        rows = [("model, hold-out", holdout), (f"model, {cv['folds']}-fold CV", cv)]
        rows += [(key.replace("_", " ") + _unused(row), row) for key, row in baselines.items()]
        for label, row in rows:
            self.stdout.write(
                f"  {label:<30} {_f(row['roc_auc']):>8} {_f(row['pr_auc']):>8} {_f(row['brier']):>7} "
                f"{_f(row['precision']):>6} {_f(row['recall']):>6} {_f(row['f1']):>6}"
            )


def _unused(row: dict) -> str:
    return " (not gated)" if row.get("available") is False else ""


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
