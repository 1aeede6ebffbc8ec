#!/usr/bin/env bash
# Creates the secret files docker-compose.yml reads, in deploy/secrets/, with random values.
# Never overwrites a file that exists (to rotate a secret, see docs/OPERATIONS.md). Never commit them:
# deploy/secrets/*.txt is in .gitignore.
set -euo pipefail

usage() {
  echo "usage: $(basename "$0") [SECRETS_DIR]   (default: deploy/secrets)" >&2
}
case "${1:-}" in
  -h | --help)
    usage
    exit 0
    ;;
esac

dir="${1:-$(cd "$(dirname "$0")/.." && pwd)/secrets}"
mkdir -p "$dir"
# Other users of this host may not read the directory; the files themselves must be readable by the
# containers' own users (postgres, redis, nobody, grafana, campusiq), which compose cannot change.
chmod 0700 "$dir"

random_hex() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }

write() {
  local value="$2" path="$dir/$1.txt"
  if [ -e "$path" ]; then
    echo "kept    $path"
    return
  fi
  (umask 0222 && printf '%s' "$value" >"$path")
  echo "created $path"
}

read_or_new() {
  local path="$dir/$1.txt"
  if [ -e "$path" ]; then cat "$path"; else random_hex; fi
}

postgres_password="$(read_or_new postgres_password)"
redis_password="$(read_or_new redis_password)"

write django_secret_key "$(random_hex)$(random_hex)"
write postgres_password "$postgres_password"
write database_url "postgres://campusiq:${postgres_password}@db:5432/campusiq"
write redis_password "$redis_password"
write redis_url "redis://:${redis_password}@redis:6379/0"
write metrics_token "$(random_hex)"
write grafana_admin_password "$(random_hex)"
