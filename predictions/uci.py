"""The at-risk pipeline on real data: UCI Student Performance (Cortez & Silva 2008), by the paper's protocol.

Features come from four columns only — G1, G2 (period grades: assessments), absences (attendance)
and failures (previous outcomes) — never from sex, age, address, family or any other personal column.
Label: at risk (1) iff the final grade G3 < 10, i.e. the paper's "fail". docs/PREDICTIONS.md.
"""

import csv
import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from predictions import pipeline as risk_pipeline

# The data ships with the project (CC BY 4.0; its README keeps the attribution and the citation).
SHIPPED_DATA_DIR = Path(__file__).resolve().parent / "data" / "uci_student_performance"
CHECKSUMS_FILE = "SHA256SUMS"
FEATURE_COLUMNS = ("G1", "G2", "absences", "failures")
LABEL_COLUMN = "G3"
PASS_MARK = 10  # of 20
MAX_GRADE = 20
SUBJECTS = {"mat": "Mathematics", "por": "Portuguese"}
SETUPS = ("A", "B", "C")
# A: both period grades; B: the first only (no trend yet); C: no grades at all.
SETUP_FEATURES = {
    "A": ("assessment_latest", "grade_trend", "absences", "previous_failures"),
    "B": ("assessment_average", "absences", "previous_failures"),
    "C": ("absences", "previous_failures"),
}
# Cortez & Silva (2008), table of PCC (20 runs of 10-fold CV), all attributes except G3 (and G2, G1).
PAPER_PCC = {
    ("mat", "A"): {"NV": 91.9, "NN": 88.3, "SVM": 86.3, "DT": 90.7, "RF": 91.2},
    ("mat", "B"): {"NV": 83.8, "NN": 81.3, "SVM": 80.5, "DT": 83.1, "RF": 83.0},
    ("mat", "C"): {"NV": 67.1, "NN": 66.3, "SVM": 70.6, "DT": 65.3, "RF": 70.5},
    ("por", "A"): {"NV": 89.7, "NN": 90.7, "SVM": 91.4, "DT": 93.0, "RF": 92.6},
    ("por", "B"): {"NV": 87.5, "NN": 87.6, "SVM": 88.0, "DT": 88.4, "RF": 90.1},
    ("por", "C"): {"NV": 84.6, "NN": 83.4, "SVM": 84.8, "DT": 84.4, "RF": 85.0},
}


# The configuration (pipeline.SPLINE_KNOTS, INVERSE_REGULARIZATION, THRESHOLD_TOLERANCE, SETUP_FEATURES) was
# chosen among 100+ variants on runs with these fold seeds, so figures on them are optimistic. It is frozen:
# CONFIRMATION_SEED's runs (seeds 20-39 for the paper's 20) were never used for choosing, and are the default.
SELECTION_SEEDS = frozenset([*range(0, 20), *range(100, 105), *range(200, 210)])
CONFIRMATION_SEED = 20


def uci_rows_load(path: Path) -> list[dict[str, str]]:
    """The rows of one of the `;`-separated UCI CSVs, as strings keyed by column name."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    missing = [column for column in (*FEATURE_COLUMNS, LABEL_COLUMN) if rows and column not in rows[0]]
    if not rows or missing:
        raise ValueError(f"{path}: no rows or missing columns {missing}")
    return rows


def uci_subject_path(data_dir: Path, subject: str) -> Path:
    return Path(data_dir) / f"student-{subject}.csv"


def uci_checksums_verify(data_dir: Path) -> None:
    """Where the folder carries a SHA256SUMS file (the shipped copy does), every file it lists must
    match: a result on an edited copy of the data would not be comparable with the paper's."""
    listing = Path(data_dir) / CHECKSUMS_FILE
    if not listing.is_file():
        return
    for line in listing.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        expected, name = line.split(maxsplit=1)
        path = Path(data_dir) / name.lstrip("*")
        actual = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
        if actual != expected:
            raise ValueError(f"{path}: sha256 {actual} does not match {expected} in {listing}")


def _grades(rows: Sequence[Mapping[str, str]], column: str) -> np.ndarray:
    return np.array([float(row[column]) for row in rows])


def uci_feature_matrix(rows: Sequence[Mapping[str, str]], setup: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Features of `setup`, read from FEATURE_COLUMNS only (the label and personal columns are never
    touched). Grades are normalised to 0-1 like the campus's assessment scores."""
    g1 = _grades(rows, "G1") / MAX_GRADE if setup in ("A", "B") else None
    g2 = _grades(rows, "G2") / MAX_GRADE if setup == "A" else None
    columns = {
        "assessment_latest": lambda: g2,  # the second period grade, the most recent assessment
        "grade_trend": lambda: g2 - g1,  # latest minus the earlier one, as the campus defines it
        "assessment_average": lambda: g1,  # with one period graded, the average of assessments so far
        "absences": lambda: _grades(rows, "absences"),  # a count, 0-93
        "previous_failures": lambda: _grades(rows, "failures"),  # past class failures, 0-3 (3 = 3 or more)
    }
    names = SETUP_FEATURES[setup]
    return np.column_stack([columns[name]() for name in names]), names


def uci_at_risk(rows: Sequence[Mapping[str, str]]) -> np.ndarray:
    """1 iff the student failed (G3 < 10)."""
    return (_grades(rows, LABEL_COLUMN) < PASS_MARK).astype(int)


def uci_naive_at_risk(rows: Sequence[Mapping[str, str]], setup: str, *, train_at_risk: np.ndarray) -> np.ndarray:
    """The paper's naive predictor NV: A fails iff G2 < 10, B iff G1 < 10, C predicts the training
    part's most common class for everyone."""
    if setup == "A":
        return _grades(rows, "G2") < PASS_MARK
    if setup == "B":
        return _grades(rows, "G1") < PASS_MARK
    return np.full(len(rows), train_at_risk.mean() > 0.5)


def paper_best_model(subject: str, setup: str) -> tuple[str, float]:
    """The paper's best trained model (NN, SVM, DT or RF) for a cell."""
    models = {name: value for name, value in PAPER_PCC[subject, setup].items() if name != "NV"}
    name = max(models, key=models.get)
    return name, models[name]


def target_pcc(subject: str, setup: str) -> float:
    """What CampusIQ aims for in every setup: the best of the paper (NV included), even in C, where the
    paper's models saw personal attributes that we leave out."""
    return max(PAPER_PCC[subject, setup].values())


def selection_seeds_in(seed: int, runs: int) -> list[int]:
    """The fold seeds of a run (seed .. seed + runs - 1) that helped choose the configuration."""
    return sorted(SELECTION_SEEDS.intersection(range(seed, seed + runs)))


@dataclass(frozen=True)
class UciCellResult:
    subject: str
    setup: str
    features: tuple[str, ...]
    n: int
    at_risk_rate: float
    runs: int
    folds: int
    objective: str  # what each fold's threshold maximised on its training part
    pcc: float  # mean over runs of the percent correctly classified
    pcc_sd: float
    naive_pcc: float  # NV by the same folds
    naive_recall: float  # of the failing students, by NV
    recall: float  # of the failing students, mean over runs
    roc_auc: float | None
    pr_auc: float | None
    brier: float
    mean_threshold: float
    seconds: float

    @property
    def paper_nv(self) -> float:
        return PAPER_PCC[self.subject, self.setup]["NV"]

    @property
    def target(self) -> float:
        return target_pcc(self.subject, self.setup)

    @property
    def meets_target(self) -> bool:
        # The paper reports one decimal; so do we.
        return round(self.pcc, 1) >= self.target


def uci_cell_evaluate(
    rows: Sequence[Mapping[str, str]],
    *,
    subject: str,
    setup: str,
    runs: int = 20,
    folds: int = 10,
    seed: int = 0,
    objective: str = "accuracy",
) -> UciCellResult:
    """`runs` x stratified `folds`-fold CV of risk_pipeline_build on one subject and setup. Each fold's
    threshold maximises `objective` on its training part (accuracy: the paper's metric); metrics are computed
    per run over all held-out students, then averaged over runs. NV runs on the same folds."""
    started = time.monotonic()
    X, names = uci_feature_matrix(rows, setup)
    y = uci_at_risk(rows)
    out_of_fold = risk_pipeline.out_of_fold_predictions(
        lambda: risk_pipeline.risk_pipeline_build(names, random_state=seed),
        X,
        y,
        folds=folds,
        repeats=runs,
        seed=seed,
        objective=objective,
    )
    naive = np.zeros((runs, y.size), dtype=bool)
    for repeat, train, test in risk_pipeline.fold_splits(y, folds=folds, repeats=runs, seed=seed):
        naive[repeat, test] = uci_naive_at_risk([rows[i] for i in test], setup, train_at_risk=y[train])
    # Ranking and calibration need no threshold; PCC and recall use each fold's own threshold.
    ranking = [risk_pipeline.classification_metrics(y, out_of_fold.probabilities[run], 0.5) for run in range(runs)]
    pcc_by_run = 100 * np.mean(out_of_fold.at_risk == (y == 1), axis=1)
    recall_by_run = np.mean(out_of_fold.at_risk[:, y == 1], axis=1)

    def mean_of(key: str) -> float | None:
        values = [metrics[key] for metrics in ranking]
        return None if None in values else float(np.mean(values))

    return UciCellResult(
        subject=subject,
        setup=setup,
        features=names,
        n=int(y.size),
        at_risk_rate=float(y.mean()),
        runs=runs,
        folds=folds,
        objective=objective,
        pcc=float(pcc_by_run.mean()),
        pcc_sd=float(pcc_by_run.std()),
        naive_pcc=float(100 * np.mean(naive == (y == 1))),
        naive_recall=float(np.mean(naive[:, y == 1])),
        recall=float(recall_by_run.mean()),
        roc_auc=mean_of("roc_auc"),
        pr_auc=mean_of("pr_auc"),
        brier=mean_of("brier"),
        mean_threshold=float(out_of_fold.thresholds.mean()),
        seconds=time.monotonic() - started,
    )


def uci_rows_sample(rows: list[dict[str, str]], size: int | None, *, seed: int = 0) -> list[dict[str, str]]:
    """A deterministic random subset of `size` rows (all rows when size is None or too large)."""
    if size is None or size >= len(rows):
        return rows
    chosen = np.sort(np.random.default_rng(seed).choice(len(rows), size=size, replace=False))
    return [rows[i] for i in chosen]
