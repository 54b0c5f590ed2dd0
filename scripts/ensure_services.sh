#!/usr/bin/env bash
# Makes sure the PostgreSQL and Redis that the test suite uses are installed and running on
# 127.0.0.1, and that the `test` database exists. Safe to run when they already are.
# With DATABASE_URL in the environment, PostgreSQL is yours (left alone; pytest creates its test_
# database there); likewise Redis with REDIS_URL, or with both CACHE_URL and CELERY_BROKER_URL.
set -euo pipefail

own_postgres=${DATABASE_URL:+yes}
own_redis=${REDIS_URL:+yes}
[ -n "${CACHE_URL:-}" ] && [ -n "${CELERY_BROKER_URL:-}" ] && own_redis=yes
[ -n "$own_postgres" ] && echo "PostgreSQL: DATABASE_URL from the environment (not starting one)"
[ -n "$own_redis" ] && echo "Redis: REDIS_URL / CACHE_URL and CELERY_BROKER_URL from the environment (not starting one)"

need_apt=()
[ -n "$own_postgres" ] || command -v pg_ctlcluster >/dev/null 2>&1 || need_apt+=(postgresql)
[ -n "$own_redis" ] || command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "Installing ${need_apt[*]} from Debian's packages"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ -z "$own_postgres" ]; then
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "Starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432 >/dev/null || { echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1; }
if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1; then
  createdb -h 127.0.0.1 -U postgres test
fi
echo "PostgreSQL: 127.0.0.1:5432 (database test)"
fi

if [ -z "$own_redis" ]; then
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "Starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.5; done
fi
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null || { echo "Redis did not come up on 127.0.0.1:6379" >&2; exit 1; }
echo "Redis: 127.0.0.1:6379 (databases 1: cache, 2: broker)"
fi
