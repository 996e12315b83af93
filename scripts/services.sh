#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis answer on 127.0.0.1, as the integration tests expect.
# Uses the machine's own when they run; otherwise starts them (Debian packages, installed
# with apt when missing). Ports: 5432 and 6379, or SHARDROP_TEST_DATABASE_URL/REDIS_URL.
set -euo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_up() {
  for _ in $(seq 1 100); do up "$1" && return 0; sleep 0.1; done
  echo "services: nothing answers on 127.0.0.1:$1" >&2
  return 1
}

ensure_postgres() {
  up 5432 && return 0
  if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    apt-get install -y -q postgresql >/dev/null
  fi
  local version
  version=$(ls /usr/lib/postgresql | sort -V | tail -1)
  if ! pg_lsclusters -h 2>/dev/null | grep -q .; then
    pg_createcluster "$version" main >/dev/null
    # Tests connect as postgres over TCP without a password, as on CI's machines.
    local hba="/etc/postgresql/$version/main/pg_hba.conf" tmp
    tmp=$(mktemp)
    printf 'host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' | cat - "$hba" > "$tmp"
    install -m 0640 -o postgres -g postgres "$tmp" "$hba"
    rm -f "$tmp"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  wait_up 5432
  su postgres -c "psql -qtc \"SELECT 1 FROM pg_database WHERE datname='test'\" | grep -q 1 || createdb test"
}

ensure_redis() {
  up 6379 && return 0
  command -v redis-server >/dev/null || apt-get install -y -q redis-server >/dev/null
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  wait_up 6379
}

[ -n "${SHARDROP_TEST_DATABASE_URL:-}" ] || ensure_postgres
[ -n "${SHARDROP_TEST_REDIS_URL:-}" ] || ensure_redis
echo "services: PostgreSQL and Redis answer" >&2
