"""The predictions' sections of a student's data download (students/exports.py): their risk scores with
the factors behind them, and the interventions and flag feedback advisors recorded about them.

Risk scores are included whatever PREDICTIONS_STUDENTS_SEE_OWN_RISK says: that setting decides what
the portal shows day to day, not what a person may obtain about themself (a right of access covers
profiling results and the factors behind them). One query a section."""

from typing import Any

from predictions.models import FlagFeedback, Intervention, RiskScore
from students.exports import export_person, export_when, personal_data_section_register
from students.models import Student


def _risk_scores(student: Student) -> list[dict[str, Any]]:
    scores = RiskScore.objects.filter(student=student).select_related("term", "model_version").order_by("scored_at")
    return [
        {
            "term": score.term.name,
            "scored_at": export_when(score.scored_at),
            "probability": score.probability,
            "band": score.band,
            "factors": score.factors,
            "model_version": score.model_version.name,
        }
        for score in scores
    ]


def _interventions(student: Student) -> list[dict[str, Any]]:
    interventions = Intervention.objects.filter(student=student).select_related("term", "advisor")
    return [
        {
            "term": intervention.term.name,
            "kind": intervention.kind,
            "note": intervention.note,
            "advisor": export_person(intervention.advisor),
            "recorded_at": export_when(intervention.created_at),
            "closed_at": export_when(intervention.closed_at),
            "outcome": intervention.outcome,
        }
        for intervention in interventions.order_by("created_at", "pk")
    ]


def _flag_feedback(student: Student) -> list[dict[str, Any]]:
    feedback = FlagFeedback.objects.filter(student=student).select_related("term", "advisor", "risk_score")
    return [
        {
            "term": item.term.name,
            "verdict": item.verdict,
            "note": item.note,
            "advisor": export_person(item.advisor),
            "recorded_at": export_when(item.created_at),
            "on_score_of": export_when(item.risk_score.scored_at) if item.risk_score is not None else None,
        }
        for item in feedback.order_by("created_at", "pk")
    ]


def predictions_sections_register() -> None:
    personal_data_section_register("risk_scores", _risk_scores, models=(RiskScore,))
    personal_data_section_register("interventions", _interventions, models=(Intervention,))
    personal_data_section_register("flag_feedback", _flag_feedback, models=(FlagFeedback,))
