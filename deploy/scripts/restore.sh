#!/usr/bin/env bash
# Restore CampusIQ from a backup with `python manage.py restore FILE [--force]`.
# Stop web, workers and beat first (docs/OPERATIONS.md: "Back up and restore"); the restore replaces
# the database and the model artifacts. Without --force the command refuses to replace existing data.
set -euo pipefail

usage() {
  echo "usage: $(basename "$0") FILE [--force]" >&2
  echo "  FILE     a backup written by backup.sh (python manage.py backup)" >&2
  echo "  --force  replace the data that is there (manage.py restore refuses otherwise)" >&2
}

if [ "$#" -lt 1 ] || [ "$#" -gt 2 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  usage
  exit 2
fi
backup_file="$1"
if [ "$#" -eq 2 ] && [ "$2" != "--force" ]; then
  usage
  exit 2
fi
if [ ! -f "$backup_file" ]; then
  echo "restore.sh: $backup_file is not a file" >&2
  exit 2
fi

root="$(cd "$(dirname "$0")/../.." && pwd)"
exec python "$root/manage.py" restore "$backup_file" "${@:2}"
