"""pip-audit on the locked dependencies, with an ignore file whose entries expire.

    python scripts/pip_audit.py [--require-audit] [--service osv|pypi ...] [REQUIREMENTS ...]

1. requirements/pip-audit-ignore.toml is checked first, always, offline: every entry has an advisory
   id, a package, a reason and an expiry date no more than 90 days ahead; an expired entry fails.
2. pip-audit runs on each locked file (default: requirements/prod.txt and requirements/dev.txt) against
   the first vulnerability service that answers (default: OSV, then PyPI), ignoring the entries of the
   file. Any vulnerability not ignored fails; so does any dependency the service could not check.
3. No service reachable (a machine without internet, or one whose PyPI mirror has no per-release JSON):
   it says so loudly, naming each service and why. That fails only with --require-audit, which CI (with
   internet) passes, so an outage there is never mistaken for a clean audit.

Exit status: 0 clean (or audit impossible without --require-audit), 1 findings or a bad ignore file.
"""

import argparse
import datetime
import json
import re
import subprocess  # nosec B404
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IGNORE_FILE = ROOT / "requirements" / "pip-audit-ignore.toml"
LOCKED = [ROOT / "requirements" / "prod.txt", ROOT / "requirements" / "dev.txt"]
SERVICES = ["osv", "pypi"]
MAX_DAYS_AHEAD = 90
ID_PATTERN = re.compile(r"^(PYSEC-\d{4}-\d+|GHSA(-[23456789cfghjmpqrvwx]{4}){3}|CVE-\d{4}-\d{4,}|OSV-\d{4}-\d+)$")
ENTRY_KEYS = {"id", "package", "reason", "expires"}


@dataclass
class Ignore:
    id: str
    package: str
    reason: str
    expires: datetime.date


def ignore_file_problems(text: str, *, today: datetime.date) -> tuple[list[Ignore], list[str]]:
    """The entries of the ignore file, and what is wrong with it (empty: nothing)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        return [], [f"not valid TOML: {error}"]
    problems = [f"unknown top-level key {key!r} (only [[ignore]] tables)" for key in data if key != "ignore"]
    entries, seen = [], set()
    raw_entries = data.get("ignore", [])
    if not isinstance(raw_entries, list):
        return [], [*problems, "ignore must be an array of tables ([[ignore]])"]
    for number, raw in enumerate(raw_entries, start=1):
        where = f"entry {number} ({raw.get('id', 'no id')})"
        if missing := ENTRY_KEYS - raw.keys():
            problems.append(f"{where}: missing {', '.join(sorted(missing))}")
            continue
        if unknown := raw.keys() - ENTRY_KEYS:
            problems.append(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        if not isinstance(raw["id"], str) or not ID_PATTERN.match(raw["id"]):
            problems.append(f"{where}: id must be a PYSEC-, GHSA-, CVE- or OSV- advisory id")
        elif raw["id"] in seen:
            problems.append(f"{where}: listed twice")
        seen.add(raw["id"])
        if not isinstance(raw["package"], str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", raw["package"]):
            problems.append(f"{where}: package must be a distribution name")
        if not isinstance(raw["reason"], str) or len(re.findall(r"[A-Za-z]{2,}", raw["reason"])) < 6:
            problems.append(f"{where}: the reason must say, in a sentence, why this is acceptable for now")
        expires = raw["expires"]
        if not isinstance(expires, datetime.date) or isinstance(expires, datetime.datetime):
            problems.append(f"{where}: expires must be a TOML date, e.g. 2027-02-26")
            continue
        if expires < today:
            problems.append(f"{where}: expired on {expires}; look again (upgrade, or a new reason and date)")
        elif expires > today + datetime.timedelta(days=MAX_DAYS_AHEAD):
            problems.append(f"{where}: expires {expires}, more than {MAX_DAYS_AHEAD} days ahead")
        entries.append(Ignore(raw["id"], raw["package"], raw["reason"], expires))
    return entries, problems


@dataclass
class Audit:
    """One locked file against one service."""

    service: str
    requirements: Path
    ran: bool = False
    why_not: str = ""
    audited: int = 0
    vulnerabilities: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    ignored_seen: set[str] = field(default_factory=set)


def parse_report(audit: Audit, report: dict, ignores: list[Ignore]) -> Audit:
    ignored_ids = {entry.id for entry in ignores}
    for dependency in report.get("dependencies", []):
        if "skip_reason" in dependency:
            audit.skipped.append(f"{dependency['name']}: {dependency['skip_reason']}")
            continue
        audit.audited += 1
        for vuln in dependency.get("vulns", []):
            names = {vuln["id"], *vuln.get("aliases", [])}
            if names & ignored_ids:
                audit.ignored_seen |= names & ignored_ids
                continue
            fixed = ", ".join(vuln.get("fix_versions", [])) or "no fixed release yet"
            package = f"{dependency['name']} {dependency['version']}"
            audit.vulnerabilities.append(f"{package}: {vuln['id']} (fixed in {fixed})")
    # Every dependency skipped: the service answered nothing useful (a mirror without per-release JSON).
    audit.ran = audit.audited > 0 or not audit.skipped
    if not audit.ran:
        audit.why_not = f"could not check any dependency ({audit.skipped[0]})"
    return audit


def run_pip_audit(service: str, requirements: Path, ignores: list[Ignore], timeout: int) -> Audit:
    audit = Audit(service=service, requirements=requirements)
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "report.json"
        command = [
            str(Path(sys.executable).parent / "pip-audit"),
            *("--requirement", str(requirements), "--disable-pip", "--require-hashes"),
            *("--vulnerability-service", service, "--format", "json", "--output", str(output)),
            *("--progress-spinner", "off", "--timeout", str(timeout)),
            *(argument for entry in ignores for argument in ("--ignore-vuln", entry.id)),
        ]
        # Bandit B404/B603: runs pip-audit only, from this virtualenv, with arguments built here.
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603  # nosec B603
        if not output.exists():
            lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
            audit.why_not = lines[-1][:300] if lines else f"pip-audit exited with {result.returncode}"
            return audit
        return parse_report(audit, json.loads(output.read_text()), ignores)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("requirements", nargs="*", type=Path, default=LOCKED)
    parser.add_argument("--service", action="append", choices=SERVICES, help="try these, in order (default: all)")
    parser.add_argument("--require-audit", action="store_true", help="fail when no service can be reached")
    parser.add_argument("--ignore-file", type=Path, default=IGNORE_FILE)
    parser.add_argument("--timeout", type=int, default=15)
    args = parser.parse_args(argv)

    ignores, problems = ignore_file_problems(args.ignore_file.read_text(), today=datetime.date.today())
    name = args.ignore_file.relative_to(ROOT) if args.ignore_file.is_relative_to(ROOT) else args.ignore_file
    if problems:
        print(f"pip-audit: {name} is not valid:", *(f"  - {p}" for p in problems), sep="\n")
        return 1
    print(f"pip-audit: {name}: {len(ignores)} accepted advisories, none expired")

    failed, not_run, ran, reported = False, [], False, set()
    for requirements in args.requirements:
        attempts = []
        for service in args.service or SERVICES:
            audit = run_pip_audit(service, requirements, ignores, args.timeout)
            if audit.ran:
                break
            attempts.append(f"{service}: {audit.why_not}")
        else:
            not_run.append(f"{requirements.name}: " + "; ".join(attempts))
            continue
        ran, reported = True, reported | audit.ignored_seen
        label = f"{requirements.name} against {audit.service}"
        if audit.vulnerabilities or audit.skipped:
            failed = True
            print(f"pip-audit: {label}: {len(audit.vulnerabilities)} vulnerabilities, {len(audit.skipped)} unchecked")
            print(*(f"  - {line}" for line in audit.vulnerabilities + audit.skipped), sep="\n")
        else:
            print(f"pip-audit: {label}: {audit.audited} dependencies, no known vulnerabilities")
    for entry in ignores if ran else []:
        if entry.id not in reported:
            print(f"pip-audit: note: {entry.id} ({entry.package}) was not reported; remove it if it is fixed")

    if not_run:
        print("pip-audit: THE AUDIT DID NOT RUN; no vulnerability service could be used:")
        print(*(f"  - {line}" for line in not_run), sep="\n")
        if args.require_audit:
            return 1
        print("pip-audit: not failing (no --require-audit); CI with internet access runs it for real.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
