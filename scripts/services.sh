#!/usr/bin/env bash
# Makes sure PostgreSQL (127.0.0.1:5432, trust auth for local connections)
# and Redis (127.0.0.1:6379) are running, then waits until both answer.
#
#   * Both already answering: does nothing.
#   * Missing: installs them with apt (Debian and Ubuntu; as root or through
#     sudo). Elsewhere it says what to install (or to run
#     `docker compose up -d` with the repository's docker-compose.yml) and
#     exits 1.
#   * No PostgreSQL cluster: creates one (`pg_createcluster`, trust auth).
#     A cluster that the install itself created (Debian makes one with
#     password auth) is replaced the same way, since it is empty.
#   * Down: starts the first cluster (`pg_ctlcluster`) and a
#     `redis-server` without persistence.
#
# Fails loudly if either does not come up.
set -euo pipefail

# The ports (5432 and 6379 unless set, e.g. to check this script elsewhere).
PG_PORT="${SERVICES_PG_PORT:-5432}"
REDIS_PORT="${SERVICES_REDIS_PORT:-6379}"

say() { echo "services: $*"; }
die() { echo "services: $*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pg_up() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h 127.0.0.1 -p "$PG_PORT"
  else
    port_open "$PG_PORT"
  fi
}

redis_up() {
  if command -v redis-cli >/dev/null 2>&1; then
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1
  else
    port_open "$REDIS_PORT"
  fi
}

pg_installed() { command -v pg_ctlcluster >/dev/null 2>&1 && compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; }

# The first cluster as "<version> <name>", or nothing.
first_cluster() { pg_lsclusters -h 2>/dev/null | awk 'NR == 1 { print $1, $2 }'; }

as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "installing needs root: run this script as root or install sudo"
  fi
}

# A cluster with trust auth for local connections (the URLs of the README
# carry no password), listening on $PG_PORT.
create_cluster() {
  local version
  version="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n1)"
  say "creating PostgreSQL $version cluster 'main' (trust auth for local connections)"
  as_root pg_createcluster --port "$PG_PORT" "$version" main -- --auth=trust
}

if pg_up && redis_up; then
  exit 0
fi

packages=()
if ! pg_up && ! pg_installed; then
  packages+=(postgresql)
fi
if ! redis_up && ! command -v redis-server >/dev/null 2>&1; then
  packages+=(redis-server)
fi
fresh_postgres=0
if [ "${#packages[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    die "missing: ${packages[*]}. Install PostgreSQL (15 or newer) and Redis (7 or newer) with your system's \
package manager, or run them in containers with 'docker compose up -d' (docker-compose.yml), then run this again."
  fi
  say "installing ${packages[*]} with apt"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"
  if [[ " ${packages[*]} " == *" postgresql "* ]]; then
    fresh_postgres=1
  fi
fi

if [ "$fresh_postgres" = 1 ]; then
  # The package's own cluster (running or not): empty, with password auth
  # for TCP connections. Replace it.
  cluster="$(first_cluster)"
  if [ -n "$cluster" ]; then
    say "replacing the cluster the package created ($cluster)"
    # shellcheck disable=SC2086 # "<version> <name>" are two arguments
    as_root pg_dropcluster --stop $cluster
  fi
fi
if ! pg_up; then
  cluster="$(first_cluster)"
  if [ -z "$cluster" ]; then
    create_cluster
    cluster="$(first_cluster)"
  fi
  say "starting PostgreSQL ($cluster)"
  # shellcheck disable=SC2086
  as_root pg_ctlcluster --skip-systemctl-redirect $cluster start || true
fi
if ! redis_up; then
  say "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no
fi
for _ in $(seq 1 60); do
  if pg_up && redis_up; then
    exit 0
  fi
  sleep 0.5
done
die "PostgreSQL or Redis did not come up on 127.0.0.1 (ports $PG_PORT and $REDIS_PORT)"
