"""The deployment and CI files pass their own validators, each from the hash-locked venv (requirements/dev.txt):
hadolint on the Dockerfile, check-jsonschema's bundled schemas on the compose files and the GitHub
workflows, kubernetes-validate's bundled schemas on the Kubernetes manifests, pre-commit on its config.
Every schema ships inside its package: nothing is fetched. These tools come with `make venv`, so a
missing one fails rather than skips.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy.promql import DEPLOY, ROOT

# The oldest Kubernetes minor still commonly run by managed clusters; the manifests use nothing newer.
KUBERNETES_VERSION = "1.30.0"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
COMPOSE_FILES = sorted(DEPLOY.glob("docker-compose*.yml"))


def tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    assert path.is_file(), f"{name} is not in the venv: run `make venv` (it comes with requirements/dev.txt)"
    return str(path)


def run(*args: str) -> str:
    result = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


# --- Dockerfile -----------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint():
    run(tool("hadolint"), "--no-color", "--failure-threshold", "style", str(DEPLOY / "Dockerfile"))


def test_each_hadolint_ignore_says_why():
    lines = (DEPLOY / "Dockerfile").read_text().splitlines()
    for number, line in enumerate(lines):
        if not line.startswith("# hadolint ignore="):
            continue
        # The comment lines right above the ignore name each rule it ignores, with the reason.
        above = number
        while above > 0 and lines[above - 1].startswith("# ") and "hadolint" not in lines[above - 1]:
            above -= 1
        reason = " ".join(lines[above:number])
        for rule in line.removeprefix("# hadolint ignore=").split(","):
            assert rule.strip() in reason, f"Dockerfile line {number + 1}: {rule} is ignored without a reason above"


# --- compose and GitHub workflows -----------------------------------------------------------------


def test_compose_files_match_the_compose_specification():
    assert COMPOSE_FILES
    output = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", *map(str, COMPOSE_FILES))
    assert "ok -- validation done" in output


def test_workflows_match_the_github_workflow_schema_and_set_a_timeout():
    names = {path.name for path in WORKFLOWS}
    assert {"ci.yml", "security.yml", "build.yml"} <= names
    files = list(map(str, WORKFLOWS))
    run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *files)
    # Every job ends on its own instead of GitHub's six hours.
    run(tool("check-jsonschema"), "--builtin-schema", "custom.github-workflows-require-timeout", *files)


def test_ci_workflow_runs_the_same_script_as_local_ci():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    steps = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    assert "bash .ci/run" in steps


def test_build_workflow_builds_the_image_without_pushing():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "build.yml").read_text())
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    (build,) = [step for step in steps if step.get("uses", "").startswith("docker/build-push-action@")]
    assert build["with"]["file"] == "deploy/Dockerfile" and build["with"]["context"] == "."
    assert build["with"]["push"] is False


def test_security_workflow_runs_make_security():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "security.yml").read_text())
    steps = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    assert "make security" in steps


# --- Kubernetes -----------------------------------------------------------------------------------


def test_kubernetes_manifests_match_the_api_schemas():
    manifests = sorted(path for path in (DEPLOY / "k8s").rglob("*.yaml") if path.name != "kustomization.yaml")
    documents = sum(1 for path in manifests for doc in yaml.safe_load_all(path.read_text()) if doc)
    output = run(
        tool("kubernetes-validate"), "--strict", "--kubernetes-version", KUBERNETES_VERSION, *map(str, manifests)
    )
    # A kind without a schema is only a warning for the tool: here every document must have been checked.
    passed = re.findall(r"^INFO .* passed for resource ", output, re.MULTILINE)
    assert len(passed) == documents, output
    assert "WARN" not in output and "ERROR" not in output, output


# --- pre-commit -----------------------------------------------------------------------------------


def test_pre_commit_config_is_valid_and_uses_the_venv_tools():
    # check-jsonschema bundles no pre-commit schema; pre-commit's own validator is the authority.
    path = ROOT / ".pre-commit-config.yaml"
    run(tool("pre-commit"), "validate-config", str(path))
    hooks = [hook for repo in yaml.safe_load(path.read_text())["repos"] for hook in repo["hooks"]]
    ids = {hook["id"] for hook in hooks}
    assert {"ruff", "ruff-format", "trailing-whitespace", "end-of-file-fixer", "check-yaml", "check-json"} <= ids
    for hook in hooks:
        executable = hook["entry"].split()[0]
        assert executable.startswith(".venv/bin/"), hook["id"]
        assert (Path(sys.executable).parent / Path(executable).name).is_file(), f"{hook['id']}: {executable}"


@pytest.mark.parametrize("name", ["CONTRIBUTING.md", "docs/DEVELOPMENT.md"])
def test_developer_docs_are_linked_from_the_readme(name):
    assert (ROOT / name).is_file()
    assert f"]({name})" in (ROOT / "README.md").read_text() or f"`{name}`" in (ROOT / "README.md").read_text()
