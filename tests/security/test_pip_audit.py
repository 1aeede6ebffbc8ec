"""scripts/pip_audit.py: the ignore file is checked every time (an expired or unexplained entry fails),
findings fail, and a vulnerability service that cannot be reached is reported as "did not run", never
as a clean audit. pip-audit itself is replaced here: the suite must not depend on the network."""

import datetime
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("pip_audit_script", ROOT / "scripts" / "pip_audit.py")
pip_audit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pip_audit)

TODAY = datetime.date(2026, 11, 26)
REASON = "Only the unused XML-RPC handler is affected; CampusIQ never imports it."


def entry(**overrides) -> str:
    values = {"id": '"GHSA-2m34-jcjv-45xf"', "package": '"example"', "reason": f'"{REASON}"', "expires": "2027-01-15"}
    values |= overrides
    return "[[ignore]]\n" + "".join(f"{key} = {value}\n" for key, value in values.items() if value is not None)


def problems(text: str) -> list[str]:
    return pip_audit.ignore_file_problems(text, today=TODAY)[1]


def test_the_projects_ignore_file_is_valid_today():
    assert pip_audit.ignore_file_problems(pip_audit.IGNORE_FILE.read_text(), today=datetime.date.today())[1] == []


def test_a_complete_entry_is_accepted():
    entries, found = pip_audit.ignore_file_problems(entry(), today=TODAY)
    assert found == [] and [(e.id, e.expires) for e in entries] == [("GHSA-2m34-jcjv-45xf", datetime.date(2027, 1, 15))]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (entry(expires="2026-11-25"), "expired on 2026-11-25"),
        (entry(expires="2027-06-01"), "more than 90 days ahead"),
        (entry(expires='"2027-01-15"'), "must be a TOML date"),
        (entry(expires=None), "missing expires"),
        (entry(reason='"needed"'), "the reason must say"),
        (entry(reason=None), "missing reason"),
        (entry(id='"not-an-id"'), "advisory id"),
        (entry(package='"../evil"'), "distribution name"),
        (entry(owner='"me"'), "unknown keys owner"),
        (entry() + entry(), "listed twice"),
        ("ignore = 1\n", "array of tables"),
        ("[[ignore]\n", "not valid TOML"),
    ],
)
def test_a_bad_entry_fails_with_its_reason(text, message):
    assert any(message in problem for problem in problems(text)), problems(text)


def report(*dependencies) -> dict:
    return {"dependencies": list(dependencies), "fixes": []}


def fake_pip_audit(monkeypatch, outcome):
    """pip-audit replaced: `outcome(service)` returns a report (dict) or an error line (str)."""
    calls = []

    def run(command, **kwargs):
        service = command[command.index("--vulnerability-service") + 1]
        calls.append((service, command))
        result = outcome(service)
        if isinstance(result, dict):
            Path(command[command.index("--output") + 1]).write_text(json.dumps(result))
            return pip_audit.subprocess.CompletedProcess(command, 0, "", "")
        return pip_audit.subprocess.CompletedProcess(command, 1, "", f"Traceback ...\n{result}\n")

    monkeypatch.setattr(pip_audit.subprocess, "run", run)
    return calls


@pytest.fixture
def ignore_file(tmp_path):
    path = tmp_path / "ignore.toml"
    path.write_text(entry(expires=str(datetime.date.today() + datetime.timedelta(days=30))))
    return path


def run(ignore_file, *extra) -> int:
    return pip_audit.main([str(ignore_file.parent / "prod.txt"), "--ignore-file", str(ignore_file), *extra])


CLEAN = report({"name": "django", "version": "5.2.8", "vulns": []})
IGNORED = report(
    {"name": "example", "version": "1.0", "vulns": [{"id": "PYSEC-2026-1", "aliases": ["GHSA-2m34-jcjv-45xf"]}]}
)
VULNERABLE = report(
    {"name": "django", "version": "5.2.8", "vulns": [{"id": "PYSEC-2026-9", "aliases": [], "fix_versions": ["5.2.9"]}]}
)
MIRROR = report({"name": "django", "skip_reason": "Dependency not found on PyPI and could not be audited: django"})


def test_clean_and_ignored_findings_pass(monkeypatch, ignore_file, capsys):
    fake_pip_audit(monkeypatch, lambda service: CLEAN)
    assert run(ignore_file) == 0
    assert "no known vulnerabilities" in capsys.readouterr().out
    calls = fake_pip_audit(monkeypatch, lambda service: IGNORED)
    assert run(ignore_file) == 0
    assert calls[0][1][calls[0][1].index("--ignore-vuln") + 1] == "GHSA-2m34-jcjv-45xf"


def test_a_vulnerability_fails(monkeypatch, ignore_file, capsys):
    fake_pip_audit(monkeypatch, lambda service: VULNERABLE)
    assert run(ignore_file) == 1
    assert "django 5.2.8: PYSEC-2026-9 (fixed in 5.2.9)" in capsys.readouterr().out


def test_an_unreachable_service_falls_back_to_the_next(monkeypatch, ignore_file):
    calls = fake_pip_audit(monkeypatch, lambda service: CLEAN if service == "pypi" else "ConnectionError: api.osv.dev")
    assert run(ignore_file) == 0
    assert [service for service, _ in calls] == ["osv", "pypi"]


def test_no_service_is_reported_as_not_run_and_fails_only_when_required(monkeypatch, ignore_file, capsys):
    fake_pip_audit(monkeypatch, lambda service: MIRROR if service == "pypi" else "ConnectionError: api.osv.dev")
    assert run(ignore_file) == 0
    out = capsys.readouterr().out
    assert "THE AUDIT DID NOT RUN" in out and "api.osv.dev" in out and "could not check any dependency" in out
    assert run(ignore_file, "--require-audit") == 1


def test_a_dependency_left_unchecked_fails(monkeypatch, ignore_file):
    fake_pip_audit(monkeypatch, lambda service: report(*CLEAN["dependencies"], *MIRROR["dependencies"]))
    assert run(ignore_file) == 1


def test_an_expired_entry_fails_before_any_audit(monkeypatch, tmp_path, capsys):
    calls = fake_pip_audit(monkeypatch, lambda service: CLEAN)
    expired = tmp_path / "ignore.toml"
    expired.write_text(entry(expires=str(datetime.date.today() - datetime.timedelta(days=1))))
    assert run(expired) == 1
    assert calls == [] and "expired on" in capsys.readouterr().out
