"""The timed part of the scoring benchmark, in its own process so its peak RSS is its own:
score every active student of the current term end to end (features from the database, model,
explanations, bulk write), then time the bare predict_proba on the same matrix.

    python bench/scoring_run.py OUT.json   (with the production environment of bench/harness.py)
"""

import json
import resource
import sys
import time

import django

django.setup()

from predictions.features import term_features  # noqa: E402
from predictions.models import ScoringRun  # noqa: E402
from predictions.services import scoring_model_load, scoring_run_create, scoring_run_execute  # noqa: E402
from students.selectors import term_current  # noqa: E402


def main(path: str) -> None:
    term = term_current()
    started = time.perf_counter()
    run = scoring_run_execute(scoring_run_create(term=term, trigger=ScoringRun.Trigger.STAFF))
    total = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    matrix = term_features(term, run.as_of)
    pipeline = scoring_model_load().pipeline
    bare = time.perf_counter()
    pipeline.predict_proba(matrix.values)
    bare = time.perf_counter() - bare
    bands = {band: run.scores.filter(band=band).count() for band in ("low", "medium", "high")}
    result = {
        "students": run.students_scored,
        "seconds": total,
        "timings": run.timings,
        "peak_rss_mb": peak_mb,
        "bare_predict_proba": bare,
        "bands": bands,
    }
    with open(path, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main(sys.argv[1])
