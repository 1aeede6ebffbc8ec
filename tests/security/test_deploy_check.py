"""`manage.py check --deploy` on the production settings reports nothing, and nothing is silenced
without a written reason in the settings. drf-spectacular's own deploy check builds the API schema
too, so a view the schema cannot describe fails here as well."""

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.core.test_settings import PROD_ENV, run_prod_settings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_DIR = ROOT / "campusiq" / "settings"


def production_environment() -> dict[str, str]:
    """The process environment without any DJANGO_/database/Redis variable of this shell, plus the safe
    production values tests/core/test_settings.py starts production with."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))}
    return {**keep, **PROD_ENV, "DJANGO_SETTINGS_MODULE": "campusiq.settings.prod"}


def test_check_deploy_on_production_settings_reports_nothing():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=production_environment(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues (0 silenced)." in output, output


def silenced_without_reason(silenced: list[str], sources: list[str]) -> list[str]:
    """Each silenced check id must sit on a settings line whose comment gives a reason (a few words)."""
    missing = []
    for check_id in silenced:
        lines = [line for source in sources for line in source.splitlines() if check_id in line]
        reasons = [line.split("#", 1)[1] for line in lines if "#" in line]
        if not any(len(re.findall(r"[A-Za-z]{2,}", reason)) >= 4 for reason in reasons):
            missing.append(check_id)
    return missing


def test_nothing_is_silenced_without_a_written_reason(monkeypatch):
    prod = run_prod_settings(monkeypatch, PROD_ENV)
    sources = [path.read_text() for path in sorted(SETTINGS_DIR.glob("*.py"))]
    assert silenced_without_reason(list(prod.get("SILENCED_SYSTEM_CHECKS", [])), sources) == []


def test_a_silenced_check_without_a_reason_is_caught():
    explained = 'SILENCED_SYSTEM_CHECKS = ["security.W008"]  # nginx redirects to HTTPS before Django sees it'
    assert silenced_without_reason(["security.W008"], [explained]) == []
    assert silenced_without_reason(["security.W008"], ['SILENCED_SYSTEM_CHECKS = ["security.W008"]']) == [
        "security.W008"
    ]
    assert silenced_without_reason(["security.W004"], [explained]) == ["security.W004"]
