#!/usr/bin/env bash
# Starts the PostgreSQL and Redis the test suite uses, on private ports, and writes their URLs to
# .services/env. Used by `make test` and by .ci/run. A service whose binaries are missing is skipped
# with a message: tests that need it then skip locally and fail on CI (CI=true).
#   scripts/services.sh start | stop | status
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_PORT="${CAMPUSIQ_PG_PORT:-55432}"
REDIS_PORT="${CAMPUSIQ_REDIS_PORT:-56379}"
# Outside the work tree: the postgres user must be able to reach it when we run as root.
STATE="${CAMPUSIQ_SERVICES_DIR:-/tmp/campusiq-services-$(printf '%s' "$ROOT" | md5sum | cut -c1-10)}"
ENV_FILE="$ROOT/.services/env"

as_pg_owner() {
  if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  if [ ! -x "$PG_BIN/initdb" ]; then
    echo "services: PostgreSQL not found in $PG_BIN; the suite runs on SQLite" >&2
    return 1
  fi
  local run="$STATE/postgres"
  mkdir -p "$run"
  chmod 755 "$STATE"
  [ "$(id -u)" = "0" ] && chown postgres:postgres "$run"
  if [ ! -s "$run/data/PG_VERSION" ]; then
    as_pg_owner "$PG_BIN/initdb" -D "$run/data" -U campusiq -A trust -E UTF8 --no-locale >"$STATE/initdb.log" 2>&1 \
      || { cat "$STATE/initdb.log" >&2; echo "services: initdb failed" >&2; exit 1; }
  fi
  if ! as_pg_owner "$PG_BIN/pg_ctl" -D "$run/data" status >/dev/null 2>&1; then
    # Durability off: this database only ever holds test data.
    as_pg_owner "$PG_BIN/pg_ctl" -D "$run/data" -l "$run/server.log" -w -t 60 start \
      -o "-p $PG_PORT -k $run -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >/dev/null \
      || { cat "$run/server.log" >&2; echo "services: PostgreSQL did not start" >&2; exit 1; }
  fi
  "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U campusiq -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='campusiq'" | grep -q 1 \
    || "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U campusiq campusiq \
    || { echo "services: could not create the campusiq database" >&2; exit 1; }
  echo "DATABASE_URL=postgres://campusiq@127.0.0.1:$PG_PORT/campusiq" >>"$ENV_FILE.tmp"
  echo "services: PostgreSQL on 127.0.0.1:$PG_PORT"
}

start_redis() {
  if ! command -v redis-server >/dev/null; then
    echo "services: redis-server not found; Redis tests skip (CI installs it)" >&2
    return 1
  fi
  mkdir -p "$STATE"
  if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --dir "$STATE" \
      --pidfile "$STATE/redis.pid" --logfile "$STATE/redis.log" --save "" --appendonly no >/dev/null
    for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 || { echo "services: Redis did not start" >&2; exit 1; }
  fi
  echo "REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0" >>"$ENV_FILE.tmp"
  echo "services: Redis on 127.0.0.1:$REDIS_PORT"
}

stop_all() {
  [ -x "$PG_BIN/pg_ctl" ] && [ -d "$STATE/postgres/data" ] && as_pg_owner "$PG_BIN/pg_ctl" -D "$STATE/postgres/data" -m fast stop >/dev/null 2>&1 || true
  # The Redis this checkout started (its pid file), never whichever one listens on the default port: a
  # stop without the start's CAMPUSIQ_REDIS_PORT would otherwise shut down another checkout's (or CI's).
  if [ -f "$STATE/redis.pid" ]; then
    kill "$(cat "$STATE/redis.pid")" 2>/dev/null || true
    rm -f "$STATE/redis.pid"
  fi
  rm -f "$ENV_FILE"
  echo "services: stopped"
}

case "${1:-start}" in
  start)
    mkdir -p "$ROOT/.services"
    : >"$ENV_FILE.tmp"
    start_postgres || true
    start_redis || true
    mv "$ENV_FILE.tmp" "$ENV_FILE"
    ;;
  stop) stop_all ;;
  status) cat "$ENV_FILE" 2>/dev/null || echo "services: none started" ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
