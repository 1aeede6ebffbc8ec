#!/usr/bin/env bash
# The whole suite, as `make test` and .ci/run run it: services, lint, migration check, tests with
# coverage. Prints each stage's time. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
TIMES=()

stage() {
  local name="$1"; shift
  local started=$SECONDS
  echo "==> $name"
  if "$@"; then
    TIMES+=("$(printf '%-22s %5ss' "$name" $((SECONDS - started)))")
  else
    local rc=$?
    TIMES+=("$(printf '%-22s %5ss  FAILED' "$name" $((SECONDS - started)))")
    report
    exit $rc
  fi
}

report() {
  echo "---- stage times ----"
  printf '%s\n' "${TIMES[@]}"
}

load_services() {
  bash scripts/services.sh start
  set -a
  # shellcheck disable=SC1091
  . .services/env
  set +a
}

identity_providers() {
  # The OpenID Connect provider the sign-on tests sign in against (panva's oidc-provider, locked).
  if command -v npm >/dev/null; then
    npm ci --prefix tests/support/oidc --no-audit --no-fund --ignore-scripts --loglevel=error
  else
    echo "npm not found: the sign-on tests skip (CI=true: they fail)"
  fi
}

stage "services" load_services
stage "identity providers" identity_providers
stage "lint (ruff)" "$BIN/ruff" check .
stage "format (ruff)" "$BIN/ruff" format --check .
# --no-cache: nothing is written into the checkout.
stage "layers (import-linter)" "$BIN/lint-imports" --no-cache
stage "bandit" "$BIN/bandit" -q -r campusiq accounts students attendance predictions portal scripts deploy -x '*/migrations/*'
# The ignore file is always checked (an expired entry fails); the audit needs an advisory service.
stage "pip-audit" "$BIN/python" scripts/pip_audit.py ${PIP_AUDIT_ARGS:-}
stage "migrations check" env DJANGO_SETTINGS_MODULE=campusiq.settings.test "$BIN/python" manage.py makemigrations --check --dry-run
stage "pytest + coverage" "$BIN/python" -m pytest --cov --cov-report=term --cov-fail-under=85 "$@"
report
