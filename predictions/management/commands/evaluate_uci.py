import json
import time
from dataclasses import asdict
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from predictions.pipeline import THRESHOLD_OBJECTIVES
from predictions.uci import (
    CONFIRMATION_SEED,
    PAPER_PCC,
    SETUPS,
    SHIPPED_DATA_DIR,
    SUBJECTS,
    UciCellResult,
    paper_best_model,
    selection_seeds_in,
    uci_cell_evaluate,
    uci_checksums_verify,
    uci_rows_load,
    uci_rows_sample,
    uci_subject_path,
)

COLUMNS = (
    f"{'setup':<5} {'subject':<7} {'n':>4} {'fail':>5}  {'PCC (sd)':>10}  {'NV':>5} {'NV paper':>8}  "
    f"{'paper best':>10}  {'target':>6}  {'verdict':<14} "
    f"{'recall':>6} {'NV rec':>6} {'ROC-AUC':>7} {'PR-AUC':>6} {'Brier':>6}"
)


def default_data_dir() -> Path:
    return Path(getattr(settings, "UCI_DATASET_DIR", None) or SHIPPED_DATA_DIR)


def _optional(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def table_row(result: UciCellResult) -> str:
    best_name, best_pcc = paper_best_model(result.subject, result.setup)
    shortfall = result.target - round(result.pcc, 1)
    verdict = "meets target" if result.meets_target else f"below by {shortfall:.1f}"
    return (
        f"{result.setup:<5} {result.subject:<7} {result.n:>4} {result.at_risk_rate:>5.0%}  "
        f"{result.pcc:>4.1f} ({result.pcc_sd:.1f})  {result.naive_pcc:>5.1f} {result.paper_nv:>8.1f}  "
        f"{best_name:>5} {best_pcc:>4.1f}  {result.target:>6.1f}  {verdict:<14} "
        f"{result.recall:>6.3f} {result.naive_recall:>6.3f} "
        f"{_optional(result.roc_auc):>7} {_optional(result.pr_auc):>6} {result.brier:>6.3f}"
    )


def result_json(result: UciCellResult) -> dict:
    best_name, best_pcc = paper_best_model(result.subject, result.setup)
    return asdict(result) | {
        "paper": PAPER_PCC[result.subject, result.setup],
        "paper_best": {"model": best_name, "pcc": best_pcc},
        "target": result.target,
        "meets_target": result.meets_target,
    }


class Command(BaseCommand):
    help = (
        "Runs the at-risk pipeline on the UCI Student Performance data by the protocol of Cortez & Silva "
        "(2008): runs x stratified k-fold CV, percent correctly classified, setups A/B/C, against the paper's "
        "table (docs/PREDICTIONS.md). Reads G1, G2, absences and failures only."
    )

    def add_arguments(self, parser):
        parser.add_argument("--runs", type=int, default=20, help="Repetitions of the k-fold CV (paper: 20).")
        parser.add_argument("--folds", type=int, default=10, help="Folds per run (paper: 10).")
        parser.add_argument("--subjects", nargs="+", choices=sorted(SUBJECTS), default=list(SUBJECTS))
        parser.add_argument("--setups", nargs="+", choices=SETUPS, default=list(SETUPS))
        parser.add_argument("--data-dir", type=Path, default=None, help="Folder of student-mat.csv, student-por.csv.")
        parser.add_argument("--sample", type=int, default=None, help="Evaluate on N random rows per subject (quick).")
        parser.add_argument(
            "--threshold-objective",
            choices=THRESHOLD_OBJECTIVES,
            default="accuracy",
            help="What each fold's threshold maximises on its training part (paper: accuracy; campus: f1).",
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=CONFIRMATION_SEED,
            help=f"Run r uses folds of random_state seed + r (default {CONFIRMATION_SEED}: never used to choose).",
        )
        parser.add_argument(
            "--json", dest="json_out", type=Path, default=None, help="Also write the results as JSON to this file."
        )

    def handle(self, *args, **options):
        runs, folds, sample, seed = options["runs"], options["folds"], options["sample"], options["seed"]
        subjects, setups, threshold_objective = options["subjects"], options["setups"], options["threshold_objective"]
        data_dir, json_out = options["data_dir"], options["json_out"]
        if runs < 1 or folds < 2 or (sample is not None and sample < folds):
            raise CommandError("need --runs >= 1, --folds >= 2 and --sample >= --folds")
        data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        if not data_dir.is_dir():
            raise CommandError(
                f"UCI data directory not found: {data_dir}. Pass --data-dir or set UCI_DATASET_DIR to the folder "
                "holding student-mat.csv and student-por.csv (UCI Machine Learning Repository, dataset 320)."
            )
        try:
            uci_checksums_verify(data_dir)
        except ValueError as error:
            raise CommandError(str(error)) from error
        rows_by_subject = {}
        for subject in subjects:
            path = uci_subject_path(data_dir, subject)
            if not path.is_file():
                raise CommandError(f"{path} not found: the {SUBJECTS[subject]} CSV of UCI Student Performance.")
            try:
                rows_by_subject[subject] = uci_rows_sample(uci_rows_load(path), sample, seed=seed)
            except ValueError as error:
                raise CommandError(str(error)) from error

        started = time.monotonic()
        self.stdout.write(
            f"UCI Student Performance ({data_dir}): {runs} run(s) x {folds}-fold stratified CV; each fold's "
            f"threshold maximises {threshold_objective} on its training part. PCC in %, recall on failing students."
        )
        if sample is not None:
            self.stdout.write(f"Sample of {sample} rows per subject: not comparable with the paper's figures.")
        self.stdout.write(COLUMNS)
        results = []
        for setup in setups:
            for subject in subjects:
                try:
                    result = uci_cell_evaluate(
                        rows_by_subject[subject],
                        subject=subject,
                        setup=setup,
                        runs=runs,
                        folds=folds,
                        seed=seed,
                        objective=threshold_objective,
                    )
                except ValueError as error:
                    raise CommandError(f"{setup} {subject}: {error}") from error
                results.append(result)
                self.stdout.write(table_row(result))
        seconds = time.monotonic() - started
        met = sum(result.meets_target for result in results)
        self.stdout.write(f"{met} of {len(results)} cells meet their target. Done in {seconds:.1f}s.")
        chosen_on = selection_seeds_in(seed, runs)
        if chosen_on:
            self.stdout.write(
                f"Warning: {len(chosen_on)} of these {runs} runs use fold seeds that chose the configuration "
                f"({chosen_on[0]}..{chosen_on[-1]}): optimistic figures. --seed {CONFIRMATION_SEED} runs on fresh ones."
            )
        if json_out is not None:
            payload = {
                "runs": runs,
                "folds": folds,
                "seed": seed,
                "selection_seeds_used": chosen_on,
                "threshold_objective": threshold_objective,
                "sample": sample,
                "data_dir": str(data_dir),
                "seconds": seconds,
                "cells": [result_json(result) for result in results],
            }
            json_out.write_text(json.dumps(payload, indent=2) + "\n")
            self.stdout.write(f"Results written to {json_out}.")
