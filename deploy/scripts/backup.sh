#!/usr/bin/env bash
# Back up CampusIQ (database and model artifacts) with `python manage.py backup`.
# Run inside the image, e.g.:
#   docker compose --profile ops run --rm backup                       (compose)
#   kubectl -n campusiq create job --from=cronjob/campusiq-backup backup-now   (Kubernetes)
# Extra arguments are passed to the command. docs/OPERATIONS.md: "Back up and restore".
set -euo pipefail

usage() {
  echo "usage: $(basename "$0") [manage.py backup options]" >&2
  echo "  Runs python manage.py backup (backups go to \$BACKUP_ROOT, here ${BACKUP_ROOT:-unset})." >&2
}

case "${1:-}" in
  -h | --help)
    usage
    exit 0
    ;;
esac

root="$(cd "$(dirname "$0")/../.." && pwd)"
exec python "$root/manage.py" backup "$@"
