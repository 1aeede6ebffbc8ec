"""A model version's stored metrics (predictions.training.risk_model_train) as the admin shows them:
figures rounded for reading, the model beside its baselines, the groups, and the hold-out calibration
as the geometry of a server-drawn chart. No HTML here; versions trained before a part was recorded get
None for it, which the page shows as "not recorded"."""

from dataclasses import dataclass

from predictions.training import EXCLUSIONS

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
    (("baselines", "grades_only"), "Grades-only rule"),
    (("baselines", "previous_outcome"), "Previous-term-outcome rule"),
    (("baselines", "majority_class"), "Majority class"),
]
GROUP_METRICS = ("n", "positives", "roc_auc", "pr_auc", "precision", "recall")
GROUP_INTERVALS = (("pr_auc", "PR-AUC interval"), ("recall", "Recall interval"))
NOT_RECORDED = "not recorded"
TOO_FEW = "too few"
NOT_GATED = " (not gated)"
FAMILY_STATUS = {"varies": "present", "missing": "missing", "constant": "constant"}

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
        columns=[heading + (NOT_GATED if values.get("available") is False else "") for heading, values in present],
        rows=[(label, [figure(values.get(key), kind) for _, values in present]) for key, label, kind in METRIC_ROWS],
    )


def interval_text(bounds) -> str:
    """An interval for reading, e.g. "[+0.012, +0.118]"; a dash when it was not recorded."""
    if not isinstance(bounds, list | tuple) or len(bounds) != 2 or None in bounds:
        return "—"
    return f"[{float(bounds[0]):+.3f}, {float(bounds[1]):+.3f}]"


def _group_cells(values: dict, kinds: dict) -> list[str]:
    if values.get("too_few"):
        return [figure(values.get("n"), "count")] + [TOO_FEW] * (len(GROUP_METRICS) + len(GROUP_INTERVALS) - 1)
    intervals = values.get("intervals") or {}
    return [figure(values.get(key), kinds[key]) for key in GROUP_METRICS] + [
        interval_text(intervals.get(key)) for key, _ in GROUP_INTERVALS
    ]


def group_tables(metrics: dict) -> list[tuple[str, Table]]:
    """The hold-out figures per department and per program, one group a row, with their intervals;
    a group under the minimum size says "too few" instead of figures."""
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
                    columns=[labels[key] for key in GROUP_METRICS] + [label for _, label in GROUP_INTERVALS],
                    rows=[(group or "—", _group_cells(values, kinds)) for group, values in groups.items()],
                ),
            )
        )
    return tables


def excluded_rows(metrics: dict) -> list[tuple[str, str, int]] | None:
    """(part, why, how many) of the students with an outcome left out of training and hold-out."""
    excluded = metrics.get("excluded")
    if not isinstance(excluded, dict):
        return None
    return [
        (part, EXCLUSIONS.get(reason, reason), int(count))
        for part in ("train", "holdout")
        for reason, count in (excluded.get(part) or {}).items()
    ]


def family_table(metrics: dict) -> Table | None:
    """Each feature family's status in the training data and the features that do not vary."""
    families = metrics.get("features")
    if not isinstance(families, dict) or not families:
        return None
    rows = []
    for family, about in families.items():
        quiet = [f"{name} ({status})" for name, status in (about.get("features") or {}).items() if status != "varies"]
        rows.append((family, [FAMILY_STATUS.get(about.get("status"), "—"), ", ".join(quiet) or "—"]))
    return Table(columns=["In the training data", "Features missing or constant"], rows=rows)


def gate_table(metrics: dict) -> Table | None:
    """The activation gate: candidate minus each baseline it was gated on (and the active model), the
    paired bootstrap interval of that PR-AUC difference, and whether it passed."""
    gate = metrics.get("gate")
    if not isinstance(gate, dict):
        return None
    names = {path[-1]: heading for path, heading in COMPARED}
    compared = [(names.get(key, key), result) for key, result in (gate.get("baselines") or {}).items()]
    active = gate.get("active")
    if isinstance(active, dict):
        compared.append((f"Active model {active.get('version', '')}", active))
    rows = []
    for heading, result in compared:
        if "not_compared" in result:
            rows.append((heading, ["—", "—", f"not compared: {result['not_compared']}"]))
            continue
        verdict = "passes" if result.get("passes") else "fails"
        rows.append(
            (
                heading,
                [
                    f"{float(result['difference']):+.3f}",
                    interval_text([result.get("lower"), result.get("upper")]),
                    verdict,
                ],
            )
        )
    return Table(columns=["PR-AUC difference", "Interval", "Gate"], rows=rows)


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
    rules = [
        (heading, values["rule"])
        for path, heading in COMPARED
        if isinstance(values := _at(metrics, path), dict) and values.get("rule")
    ]
    examples = metrics.get("examples") or {}
    return {
        "comparison": comparison_table(metrics),
        "groups": group_tables(metrics),
        "families": family_table(metrics),
        "gate": gate_table(metrics),
        "gate_settings": metrics.get("gate") if isinstance(metrics.get("gate"), dict) else None,
        "unavailable": [
            (heading, values["unavailable_reason"])
            for path, heading in COMPARED
            if isinstance(values := _at(metrics, path), dict) and values.get("unavailable_reason")
        ],
        "excluded": excluded_rows(metrics),
        "group_min_size": metrics.get("group_min_size"),
        "confidence": f"{gate['confidence']:.0%}" if isinstance(gate := metrics.get("gate"), dict) else None,
        "calibration": calibration_chart(metrics),
        "rules": rules,
        "examples": examples if isinstance(examples, dict) else {},
        "folds": _at(metrics, ("cross_validation", "folds")),
        "not_recorded": NOT_RECORDED,
    }
