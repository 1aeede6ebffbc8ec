"""Start-up imports only what every process needs: scikit-learn and the spreadsheet libraries load where
training, scoring, imports and exports run (gunicorn's master preloads them: tests/core/test_gunicorn.py)."""

import json
import os
import subprocess
import sys

from tests.support.processes import ROOT

# Modules that cost start-up time and that no page, command or check needs until it trains, scores or
# reads or writes a spreadsheet.
DEFERRED = ("sklearn", "scipy", "joblib", "predictions.pipeline", "openpyxl")

_LOADED_AFTER_CHECK = """
import json, sys
from django.core.management import execute_from_command_line
from django.urls import get_resolver

execute_from_command_line(["manage.py", "check"])
get_resolver().url_patterns  # the URL configuration: every view, API and admin module
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {d.split(".")[0] for d in %r})))
"""


def loaded_after_check(settings_module: str) -> set[str]:
    """The modules (of the DEFERRED packages) a fresh process holds after `manage.py check`."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
        "DJANGO_SETTINGS_MODULE": settings_module,
    }
    command = [sys.executable, "-c", _LOADED_AFTER_CHECK % (DEFERRED,)]
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_manage_py_check_imports_no_training_scoring_or_spreadsheet_library():
    loaded = loaded_after_check("campusiq.settings.dev")
    assert not {m for m in loaded if m in DEFERRED or m.split(".")[0] in DEFERRED}, sorted(loaded)[:20]


def test_a_spreadsheet_export_still_loads_openpyxl_when_it_runs():
    """The stand-in XLSX format (campusiq.core.spreadsheets) is the real one as soon as it is used."""
    code = (
        "import django, sys, io\n"
        "django.setup()\n"
        "import tablib\n"
        "from import_export.formats import base_formats\n"
        "assert 'openpyxl' not in sys.modules\n"
        "assert base_formats.XLSX in base_formats.BINARY_FORMATS and base_formats.XLSX().is_binary()\n"
        "content = base_formats.XLSX().export_data(tablib.Dataset(['campus', 3], headers=['a', 'b']))\n"
        "assert 'openpyxl' in sys.modules and content[:2] == b'PK'\n"
        "back = tablib.import_set(content)\n"
        "assert back.dict == [{'a': 'campus', 'b': '3'}], back.dict\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "campusiq.settings.test"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
