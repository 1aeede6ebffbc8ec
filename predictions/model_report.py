"""A model version's stored metrics (predictions.training.risk_model_train) as the admin shows them:
figures rounded for reading, the model beside its baselines, the groups, and the hold-out calibration
as the geometry of a server-drawn chart. No HTML here; versions trained before a part was recorded get
None for it, which the page shows as "not recorded"."""

from dataclasses import dataclass

# (key in a classification_metrics() dict, label, how to show it)
METRIC_ROWS = [
    ("n", "Students", "count"),
    ("positives", "Failed or withdrew", "count"),
    ("threshold", "Threshold", "ratio"),
    ("roc_auc", "ROC-AUC", "ratio"),
    ("pr_auc", "PR-AUC", "ratio"),
    ("brier", "Brier score (lower is better)", "ratio"),
    ("accuracy", "Accuracy", "ratio"),
    ("precision", "Precision", "ratio"),
    ("recall", "Recall", "ratio"),
    ("f1", "F1", "ratio"),
]
# (path in ModelVersion.metrics, column heading)
COMPARED = [
    (("holdout",), "Model, hold-out term"),
    (("cross_validation",), "Model, cross-validation"),
    (("baselines", "attendance_only"), "Attendance-only rule"),
    (("baselines", "majority_class"), "Majority class"),
]
GROUP_METRICS = ("n", "positives", "roc_auc", "pr_auc", "precision", "recall")
NOT_RECORDED = "not recorded"

CHART_SIZE = 240  # the plot's side in SVG units; the margins hold the axis labels
CHART_MARGIN = 36


def figure(value, kind: str = "ratio") -> str:
    """A metric for reading: ratios to three decimals, counts whole, a missing one as a dash."""
    if value is None:
        return "—"
    if kind == "count":
        return str(int(value))
    return f"{float(value):.3f}"


def _at(metrics: dict, path: tuple[str, ...]):
    value = metrics
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[tuple[str, list[str]]]  # (row heading, cells)


def comparison_table(metrics: dict) -> Table | None:
    """The model's hold-out and cross-validation figures beside the baselines', one metric a row."""
    present = [(heading, _at(metrics, path)) for path, heading in COMPARED if isinstance(_at(metrics, path), dict)]
    if not present:
        return None
    return Table(
        columns=[heading for heading, _ in present],
        rows=[(label, [figure(values.get(key), kind) for _, values in present]) for key, label, kind in METRIC_ROWS],
    )


def group_tables(metrics: dict) -> list[tuple[str, Table]]:
    """The hold-out figures per department and per program, one group a row."""
    kinds = {key: kind for key, _, kind in METRIC_ROWS}
    labels = {key: label for key, label, _ in METRIC_ROWS}
    tables = []
    for kind_name, groups in (metrics.get("groups") or {}).items():
        if not isinstance(groups, dict) or not groups:
            continue
        tables.append(
            (
                kind_name,
                Table(
                    columns=[labels[key] for key in GROUP_METRICS],
                    rows=[
                        (group or "—", [figure(values.get(key), kinds[key]) for key in GROUP_METRICS])
                        for group, values in groups.items()
                    ],
                ),
            )
        )
    return tables


@dataclass(frozen=True)
class CalibrationPoint:
    bin_label: str
    n: int
    mean_predicted: str
    observed_rate: str
    x: float
    y: float
    radius: float


@dataclass(frozen=True)
class CalibrationChart:
    points: list[CalibrationPoint]
    size: int = CHART_SIZE
    margin: int = CHART_MARGIN

    @property
    def width(self) -> int:
        return self.size + 2 * self.margin

    @property
    def ticks(self) -> list[tuple[str, float]]:
        """(label, x) at 0, 0.25, ... 1 along the predicted axis."""
        return [(f"{step / 4:.2f}", self.size * step / 4) for step in range(5)]

    @property
    def y_ticks(self) -> list[tuple[str, float]]:
        """(label, y) along the observed axis, 0 at the bottom (SVG's y grows downwards)."""
        return [(label, self.size - offset) for label, offset in self.ticks]


def calibration_chart(metrics: dict) -> CalibrationChart | None:
    """The hold-out bins as points (mean predicted, observed rate), each sized by its students; None when
    the version recorded no bins."""
    bins = _at(metrics, ("holdout", "calibration"))
    if not isinstance(bins, list) or not bins:
        return None
    largest = max(int(b.get("n", 0)) for b in bins) or 1
    points = [
        CalibrationPoint(
            bin_label=f"{float(b['bin_lower']):.1f}\u2013{float(b['bin_upper']):.1f}",
            n=int(b["n"]),
            mean_predicted=figure(b["mean_predicted"]),
            observed_rate=figure(b["observed_rate"]),
            x=round(float(b["mean_predicted"]) * CHART_SIZE, 1),
            y=round((1 - float(b["observed_rate"])) * CHART_SIZE, 1),  # SVG's y grows downwards
            radius=round(3 + 5 * (int(b["n"]) / largest) ** 0.5, 1),
        )
        for b in bins
    ]
    return CalibrationChart(points=points)


def model_version_report(metrics: dict | None) -> dict:
    metrics = metrics if isinstance(metrics, dict) else {}
    rule = _at(metrics, ("baselines", "attendance_only", "rule"))
    examples = metrics.get("examples") or {}
    return {
        "comparison": comparison_table(metrics),
        "groups": group_tables(metrics),
        "calibration": calibration_chart(metrics),
        "rule": rule,
        "examples": examples if isinstance(examples, dict) else {},
        "folds": _at(metrics, ("cross_validation", "folds")),
        "not_recorded": NOT_RECORDED,
    }
