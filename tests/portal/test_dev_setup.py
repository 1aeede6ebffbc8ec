"""`make run`'s set-up in one process (portal/management/commands/dev_setup.py)."""

import io

import pytest
from django.core.management import call_command

from predictions.models import ModelVersion, RiskScore
from students.models import Student


@pytest.mark.django_db
def test_the_setup_seeds_trains_and_scores_in_one_go_and_times_each_step():
    output = io.StringIO()
    call_command("dev_setup", stdout=output)
    printed = output.getvalue()
    for step in ("migrate", "cache table", "demo campus", "train model", "score students", "total"):
        assert f"[setup] {step}" in printed
    assert "demo-student1-pass-2026" in printed  # seed_demo's account list still shows
    assert ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).count() == 1
    assert RiskScore.objects.exists()

    students = Student.objects.count()
    again = io.StringIO()
    call_command("dev_setup", stdout=again)
    assert "A model is already active: not training" in again.getvalue()
    assert ModelVersion.objects.count() == 1 and Student.objects.count() == students


@pytest.mark.django_db
def test_schema_only_migrates_and_creates_the_cache_table_and_nothing_else():
    output = io.StringIO()
    call_command("dev_setup", "--schema-only", stdout=output)
    steps = [line.split()[1] for line in output.getvalue().splitlines() if line.startswith("[setup]")]
    assert steps == ["migrate", "cache", "total"]
    assert not Student.objects.exists()
