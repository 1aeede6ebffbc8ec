"""The UCI Student Performance evaluation: mostly on the 120-row samples in tests/predictions/data
(quick), and on the full copy shipped in predictions/data/uci_student_performance."""

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from predictions import pipeline as risk_pipeline
from predictions import uci

DATA = Path(__file__).parent / "data"
UCI_COLUMNS = [
    "school",
    "sex",
    "age",
    "address",
    "famsize",
    "Pstatus",
    "Medu",
    "Fedu",
    "Mjob",
    "Fjob",
    "reason",
    "guardian",
    "traveltime",
    "studytime",
    "failures",
    "schoolsup",
    "famsup",
    "paid",
    "activities",
    "nursery",
    "higher",
    "internet",
    "romantic",
    "famrel",
    "freetime",
    "goout",
    "Dalc",
    "Walc",
    "health",
    "absences",
    "G1",
    "G2",
    "G3",
]


def sample_rows(subject: str) -> list[dict[str, str]]:
    return uci.uci_rows_load(DATA / f"student-{subject}-sample.csv")


@pytest.fixture
def data_dir(tmp_path) -> Path:
    """The samples under the names the command expects."""
    for subject in uci.SUBJECTS:
        shutil.copy(DATA / f"student-{subject}-sample.csv", tmp_path / f"student-{subject}.csv")
    return tmp_path


class RecordingRow(dict):
    """A CSV row that remembers which columns were read."""

    def __init__(self, row, seen: set):
        super().__init__(row)
        self.seen = seen

    def __getitem__(self, key):
        self.seen.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.seen.add(key)
        return super().get(key, default)


@pytest.mark.parametrize(
    ("setup", "columns"),
    [
        ("A", {"G1", "G2", "absences", "failures"}),
        ("B", {"G1", "absences", "failures"}),
        ("C", {"absences", "failures"}),
    ],
)
def test_features_are_read_from_grades_absences_and_failures_only(setup, columns):
    seen = set()
    rows = [RecordingRow(row, seen) for row in sample_rows("mat")]

    uci.uci_feature_matrix(rows, setup)

    assert seen == columns
    assert seen <= set(uci.FEATURE_COLUMNS)


def test_personal_columns_and_the_final_grade_do_not_change_the_features():
    rows = sample_rows("por")
    rng = np.random.default_rng(0)
    scrambled = [
        {
            column: (value if column in uci.FEATURE_COLUMNS else str(rng.integers(0, 99)))
            for column, value in row.items()
        }
        for row in rows
    ]
    for setup in uci.SETUPS:
        original, names = uci.uci_feature_matrix(rows, setup)
        assert np.array_equal(uci.uci_feature_matrix(scrambled, setup)[0], original)
        assert names == uci.SETUP_FEATURES[setup] and original.shape == (120, len(names))


def test_feature_values_and_label_of_one_student():
    row = dict.fromkeys(UCI_COLUMNS, "x") | {"G1": "8", "G2": "11", "absences": "4", "failures": "1", "G3": "9"}

    assert uci.uci_feature_matrix([row], "A")[0].tolist() == [pytest.approx([0.55, 0.15, 4.0, 1.0])]
    assert uci.uci_feature_matrix([row], "B")[0].tolist() == [pytest.approx([0.4, 4.0, 1.0])]
    assert uci.uci_feature_matrix([row], "C")[0].tolist() == [[4.0, 1.0]]
    assert uci.uci_at_risk([row, row | {"G3": "10"}]).tolist() == [1, 0]


def test_the_samples_are_the_real_files_columns_and_120_rows():
    for subject in uci.SUBJECTS:
        rows = sample_rows(subject)
        assert len(rows) == 120
        assert list(rows[0]) == UCI_COLUMNS
        assert 15 <= uci.uci_at_risk(rows).sum() <= 60


def test_naive_predictor_follows_the_paper():
    rows = sample_rows("mat")
    y = uci.uci_at_risk(rows)
    g2_rule = np.mean((np.array([int(row["G2"]) for row in rows]) < 10) == (y == 1))

    cell_a = uci.uci_cell_evaluate(rows, subject="mat", setup="A", runs=1, folds=3)
    cell_c = uci.uci_cell_evaluate(rows, subject="mat", setup="C", runs=1, folds=3)

    assert cell_a.naive_pcc == pytest.approx(100 * g2_rule)
    assert cell_c.naive_pcc == pytest.approx(100 * (1 - y.mean()))  # everyone passes: the common class


def test_thresholds_come_from_training_folds_only(monkeypatch):
    rows = sample_rows("por")
    sizes = []
    real = risk_pipeline.threshold_choose

    def spy(y_true, probabilities, **kwargs):
        sizes.append((len(y_true), kwargs["objective"]))
        return real(y_true, probabilities, **kwargs)

    monkeypatch.setattr(risk_pipeline, "threshold_choose", spy)
    uci.uci_cell_evaluate(rows, subject="por", setup="B", runs=2, folds=3)

    assert sizes == [(80, "accuracy")] * 6


def test_paper_targets():
    assert uci.paper_best_model("mat", "C") == ("SVM", 70.6)
    assert [uci.target_pcc(s, setup) for setup in uci.SETUPS for s in uci.SUBJECTS] == [
        91.9,
        93.0,
        83.8,
        90.1,
        70.6,
        85.0,
    ]


def test_the_default_runs_use_fold_seeds_that_never_chose_the_configuration(data_dir, tmp_path):
    assert uci.selection_seeds_in(uci.CONFIRMATION_SEED, 20) == []
    assert uci.selection_seeds_in(0, 20) == list(range(20))
    out = tmp_path / "uci.json"
    fresh, reused = _Output(), _Output()
    common = ["--runs", "1", "--folds", "3", "--setups", "C", "--subjects", "por", "--data-dir", str(data_dir)]

    call_command("evaluate_uci", *common, "--json", str(out), stdout=fresh)
    call_command("evaluate_uci", *common, "--seed", "3", stdout=reused)

    assert json.loads(out.read_text())["seed"] == uci.CONFIRMATION_SEED
    assert json.loads(out.read_text())["selection_seeds_used"] == []
    assert "Warning" not in fresh.text
    assert "fold seeds that chose the configuration (3..3)" in reused.text


def test_command_on_the_samples(data_dir, tmp_path):
    out = tmp_path / "uci.json"
    stdout = _Output()
    started = time.monotonic()

    call_command(
        "evaluate_uci", "--runs", "1", "--folds", "3", "--data-dir", str(data_dir), "--json", str(out), stdout=stdout
    )

    assert time.monotonic() - started < 10
    lines = stdout.text.splitlines()
    for setup in uci.SETUPS:
        for subject in uci.SUBJECTS:
            assert sum(line.startswith(f"{setup:<5} {subject:<7}  120") for line in lines) == 1
    assert "6 cells meet their target" in stdout.text or "of 6 cells meet their target" in stdout.text
    payload = json.loads(out.read_text())
    cells = {(cell["setup"], cell["subject"]): cell for cell in payload["cells"]}
    assert len(cells) == 6 and payload["runs"] == 1 and payload["folds"] == 3
    for (setup, _), cell in cells.items():
        assert cell["n"] == 120 and cell["objective"] == "accuracy"
        assert 60 <= cell["pcc"] <= 100 and 60 <= cell["naive_pcc"] <= 100
        assert 0 <= cell["recall"] <= 1 and 0 <= cell["brier"] <= 0.25
        assert cell["roc_auc"] > (0.85 if setup in ("A", "B") else 0.5)
        assert cell["target"] == uci.target_pcc(cell["subject"], setup)
    assert cells["A", "mat"]["features"] == ["assessment_latest", "grade_trend", "absences", "previous_failures"]
    assert cells["A", "mat"]["paper_best"] == {"model": "RF", "pcc": 91.2}


def test_command_sample_option_and_one_subject(data_dir):
    stdout = _Output()
    call_command(
        "evaluate_uci",
        "--runs",
        "1",
        "--folds",
        "3",
        "--sample",
        "60",
        "--subjects",
        "por",
        "--setups",
        "C",
        "--data-dir",
        str(data_dir),
        stdout=stdout,
    )

    assert "Sample of 60 rows per subject" in stdout.text
    assert [line[:18] for line in stdout.text.splitlines() if line.startswith("C ")] == ["C     por       60"]


def test_the_shipped_copy_is_the_published_data():
    uci.uci_checksums_verify(uci.SHIPPED_DATA_DIR)
    sizes = {
        subject: len(uci.uci_rows_load(uci.uci_subject_path(uci.SHIPPED_DATA_DIR, subject))) for subject in uci.SUBJECTS
    }
    assert sizes == {"mat": 395, "por": 649}


@pytest.mark.parametrize("subject", sorted(uci.SUBJECTS))
def test_the_samples_are_rows_of_the_shipped_copy(subject):
    full = uci.uci_rows_load(uci.uci_subject_path(uci.SHIPPED_DATA_DIR, subject))
    positions = np.round(np.linspace(0, len(full) - 1, 120)).astype(int)

    assert sample_rows(subject) == [full[position] for position in positions]


def test_command_reads_the_shipped_copy_by_default(settings):
    settings.UCI_DATASET_DIR = None
    stdout = _Output()

    call_command("evaluate_uci", "--runs", "1", "--folds", "3", "--subjects", "mat", "--setups", "C", stdout=stdout)

    assert str(uci.SHIPPED_DATA_DIR) in stdout.text
    assert [line[:18] for line in stdout.text.splitlines() if line.startswith("C ")] == ["C     mat      395"]


def test_command_refuses_a_copy_that_does_not_match_its_checksums(tmp_path):
    copy = tmp_path / "uci"
    shutil.copytree(uci.SHIPPED_DATA_DIR, copy)
    edited = copy / "student-por.csv"
    edited.write_text(edited.read_text(encoding="utf-8").replace(";", ",", 1), encoding="utf-8")

    with pytest.raises(CommandError, match=r"student-por\.csv: sha256 \w+ does not match"):
        call_command("evaluate_uci", "--runs", "1", "--data-dir", str(copy))


def test_command_refuses_a_missing_data_dir(tmp_path):
    with pytest.raises(CommandError, match=r"UCI data directory not found: .*nowhere"):
        call_command("evaluate_uci", "--data-dir", str(tmp_path / "nowhere"))


def test_command_defaults_to_the_setting(settings, tmp_path):
    settings.UCI_DATASET_DIR = tmp_path / "not-here"

    with pytest.raises(CommandError, match="not-here"):
        call_command("evaluate_uci", "--runs", "1")


def test_command_names_a_missing_subject_file(tmp_path):
    with pytest.raises(CommandError, match=r"student-mat\.csv not found"):
        call_command("evaluate_uci", "--data-dir", str(tmp_path))


class _Output:
    def __init__(self):
        self.text = ""

    def write(self, text):
        self.text += text

    def flush(self):
        pass
