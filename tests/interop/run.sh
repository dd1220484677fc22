#!/usr/bin/env bash
# Interop suite: the published JavaScript client (@stratasync/client,
# @stratasync/core, @stratasync/transport-graphql; versions pinned in
# package.json) against the Rust example server, `taskboard` (actix-web)
# and `taskboard-axum` (the same application on axum).
#
#   bash tests/interop/run.sh [extra node --test args, e.g. --test-name-pattern=restart]
#
# Builds the server, installs the pinned npm packages (skipped when
# node_modules already holds exactly those versions), and runs the Node
# test suite three times over:
#   1. every file against one `taskboard` on a fresh database;
#   2. every file against one `taskboard-axum` on another fresh database;
#   3. the files where two clients see each other's edits (REDIS_FILES)
#      against two servers on another fresh database, sharing a private
#      redis-server and polling the log only once a minute: the second
#      client of each scenario talks to the second node, so what reaches it
#      came through Redis.
# Then stops the servers and drops the databases. Exits non-zero on any
# failure, on a skipped or `todo` test (reporter.mjs), and on a run that
# ran no test; the last line is always `N passed, M failed` (both runs).
#
# Needs: cargo, node >= 20.14, npm, psql, redis-server and redis-cli, and
# PostgreSQL reachable at INTEROP_PG_URL (default
# postgres://postgres@127.0.0.1:5432; the role must be allowed to CREATE
# DATABASE).
# Environment knobs: CARGO_TARGET_DIR, INTEROP_PG_URL, INTEROP_KEEP_LOGS=1,
# INTEROP_SUITE_TIMEOUT (seconds per run, default 300), INTEROP_TASKBOARD_BIN
# and INTEROP_TASKBOARD_AXUM_BIN (test prebuilt server binaries; no build;
# both must be given), INTEROP_SEED (convergence
# interleaving; fixed by default).
set -uo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$HERE"

PG_URL="${INTEROP_PG_URL:-postgres://postgres@127.0.0.1:5432}"
PG_URL="${PG_URL%/}"
SUITE_TIMEOUT="${INTEROP_SUITE_TIMEOUT:-300}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$CARGO_TARGET_DIR" in
  /*) ;;
  *) CARGO_TARGET_DIR="$ROOT/$CARGO_TARGET_DIR" ;;
esac
BIN="${INTEROP_TASKBOARD_BIN:-$CARGO_TARGET_DIR/debug/taskboard}"
AXUM_BIN="${INTEROP_TASKBOARD_AXUM_BIN:-$CARGO_TARGET_DIR/debug/taskboard-axum}"
# The binary start_server and the suite's own restarts run.
SERVER_BIN="$BIN"

LOG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/stratasync-interop.XXXXXX")"
DB_NAME="interop_$(date +%s)_$$_$RANDOM"
ADMIN_URL="$PG_URL/postgres"
# The files of the second run: two clients that see each other's edits
# live. (07-membership is not among them: with its second client on
# another node, the client's clearAll-then-start races its own previous
# subscription, "WebSocketManager supports only one active delta
# subscription", a @stratasync/client 0.5.1 bug.)
REDIS_FILES=(test/03-actions.test.mjs test/06-convergence.test.mjs)
SERVER_PIDS=()
REDIS_PID=""
SUITE_PID=""
PASSED=0
FAILED=0
FAILURE_REASON=""

log() { printf '== interop: %s\n' "$*"; }

print_logs() {
  local f
  for f in "$LOG_DIR"/*.log; do
    [ -s "$f" ] || continue
    printf '\n----- %s (last 200 lines) -----\n' "$(basename "$f")"
    tail -n 200 "$f"
  done
  printf '\n(logs in %s)\n' "$LOG_DIR"
}

stop_pid() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
}

stop_servers() {
  local pid f
  for pid in "${SERVER_PIDS[@]}"; do
    stop_pid "$pid"
    wait "$pid" 2>/dev/null
  done
  SERVER_PIDS=()
  # Servers the tests started (lib/server.mjs writes <name>.pid), in case a
  # test process died before stopping them.
  for f in "$LOG_DIR"/*.pid; do
    [ -f "$f" ] || continue
    pid="$(cat "$f")"
    if [ -n "$pid" ] && grep -q taskboard "/proc/$pid/cmdline" 2>/dev/null; then
      stop_pid "$pid"
    fi
  done
  if [ -n "$REDIS_PID" ]; then
    stop_pid "$REDIS_PID"
    wait "$REDIS_PID" 2>/dev/null
    REDIS_PID=""
  fi
}

drop_databases() {
  # The suite's databases and the extra ones tests create (<name>_<suffix>).
  local names
  names="$(timeout 30 psql "$ADMIN_URL" -X -At -c \
    "SELECT datname FROM pg_database WHERE datname = '$DB_NAME' OR datname LIKE '${DB_NAME}\_%'" 2>/dev/null)"
  for n in $names; do
    timeout 30 psql "$ADMIN_URL" -X -q -c "DROP DATABASE IF EXISTS \"$n\" WITH (FORCE)" >/dev/null 2>&1 ||
      echo "warning: could not drop database $n" >&2
  done
}

# The counts of every run so far (reporter.mjs writes summary-<run>.json
# for each run); prints each failure.
read_summaries() {
  local counts
  counts="$(node -e '
    let passed = 0, failed = 0;
    for (const file of process.argv.slice(1)) {
      const s = JSON.parse(require("fs").readFileSync(file, "utf8"));
      passed += s.passed;
      failed += s.failed;
      for (const f of s.failures) console.error(`interop: FAILED: ${f.split("\n")[0]}`);
    }
    console.log(`PASSED=${passed}; FAILED=${failed}`);
  ' "$LOG_DIR"/summary-*.json)" || return 1
  eval "$counts"
}

SUMMARIES_READ=0
finish() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$SUITE_PID" ]; then
    # Interrupted: stop the test processes (timeout signals its process group).
    kill -TERM "$SUITE_PID" 2>/dev/null
    for _ in $(seq 1 150); do
      kill -0 "$SUITE_PID" 2>/dev/null || break
      sleep 0.1
    done
  fi
  stop_servers
  drop_databases
  if [ "$SUMMARIES_READ" = 0 ] && compgen -G "$LOG_DIR/summary-*.json" >/dev/null; then
    read_summaries || true
  fi
  if [ -n "$FAILURE_REASON" ] && [ "$FAILED" -eq 0 ]; then
    FAILED=1
  fi
  if [ "$FAILED" -gt 0 ] || [ "$status" -ne 0 ]; then
    [ -n "$FAILURE_REASON" ] && echo "interop: FAILED: $FAILURE_REASON" >&2
    print_logs
    [ "$FAILED" -eq 0 ] && FAILED=1
    echo "$PASSED passed, $FAILED failed"
    exit 1
  fi
  [ "${INTEROP_KEEP_LOGS:-0}" = 1 ] || rm -rf "$LOG_DIR"
  echo "$PASSED passed, $FAILED failed"
  exit 0
}
trap finish EXIT
trap 'FAILURE_REASON="interrupted"; exit 130' INT TERM  # `wait` below is interruptible

fail() {
  FAILURE_REASON="$*"
  exit 1
}

# A free TCP port on 127.0.0.1.
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# start_server NAME DATABASE_URL [VAR=value...]: a taskboard on a free port,
# healthy; sets SERVER_URL.
start_server() {
  local name=$1 db_url=$2 port pid
  shift 2
  port="$(free_port)"
  [ -n "$port" ] || fail "no free port"
  log "starting $(basename "$SERVER_BIN") $name on 127.0.0.1:$port"
  env -u REDIS_URL -u TASKBOARD_TOKENS DATABASE_URL="$db_url" PORT="$port" BIND=127.0.0.1 WORKERS=2 TASKBOARD_NO_DEMO=1 \
    NO_COLOR=1 RUST_LOG="${RUST_LOG:-info}" "$@" "$SERVER_BIN" >"$LOG_DIR/$name.log" 2>&1 &
  pid=$!
  SERVER_PIDS+=("$pid")
  SERVER_URL="http://127.0.0.1:$port"
  node -e '
    const url = process.argv[1];
    const deadline = Date.now() + 60000;
    (async () => {
      while (Date.now() < deadline) {
        try {
          const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
          if (res.ok) process.exit(0);
        } catch {}
        await new Promise((r) => setTimeout(r, 100));
      }
      process.exit(1);
    })();' "$SERVER_URL/health" || fail "server $name did not become healthy within 60 s"
  kill -0 "$pid" 2>/dev/null || fail "server $name exited during start"
}

create_database() {
  timeout 30 psql "$ADMIN_URL" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$1\"" >/dev/null ||
    fail "could not create database $1"
}

# run_suite RUN DATABASE_URL BASE_URL PEER_URL FILES...: one run of the Node
# test suite (plus this script's arguments); adds its counts. Files run one
# at a time (some scenarios stop servers or prune the sync log); every test
# has its own timeout, and the whole run one more.
run_suite() {
  local run=$1 db_url=$2 base=$3 peer=$4 rc counts
  shift 4
  log "running the Node test suite ($run): $*"
  INTEROP_BASE_URL="$base" INTEROP_PEER_URL="$peer" INTEROP_DATABASE_URL="$db_url" INTEROP_TASKBOARD_BIN="$SERVER_BIN" \
    INTEROP_LOG_DIR="$LOG_DIR" INTEROP_SUMMARY="$LOG_DIR/summary-$run.json" \
    timeout -k 10 "$SUITE_TIMEOUT" node --import ./setup.mjs --test --test-concurrency=1 --test-timeout=120000 \
    --test-force-exit \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=./reporter.mjs --test-reporter-destination=stderr \
    "${EXTRA_ARGS[@]}" "$@" &
  SUITE_PID=$!
  wait "$SUITE_PID"
  rc=$?
  SUITE_PID=""
  [ -s "$LOG_DIR/summary-$run.json" ] || fail "the test runner produced no results ($run)"
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    fail "the $run run exceeded ${SUITE_TIMEOUT} s"
  fi
  counts="$(node -e '
    const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    console.log(`${s.passed} ${s.failed} ${s.filtered}`);' "$LOG_DIR/summary-$run.json")"
  read -r p f filtered <<<"$counts"
  log "$run: $p passed, $f failed, $filtered filtered out"
  # A run that ran nothing proves nothing (unless a name pattern given to
  # this script left its files' tests out).
  if [ $((p + f)) -eq 0 ] && [ "$filtered" -eq 0 ]; then
    fail "the $run run ran no test"
  fi
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    fail "node --test exited with status $rc ($run)"
  fi
}

EXTRA_ARGS=("$@")

for tool in cargo node npm psql redis-server redis-cli; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed"
done
# node --test-force-exit needs 20.14 (module.register 20.6, --test-timeout 20.11).
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 14) ? 0 : 1)' ||
  fail "node >= 20.14 is required"

# 1. The server (INTEROP_TASKBOARD_BIN=<path> tests a prebuilt binary instead).
if [ -n "${INTEROP_TASKBOARD_BIN:-}" ]; then
  log "using the prebuilt server $BIN"
else
  log "cargo build -p taskboard (both binaries)"
  (cd "$ROOT" && timeout 1200 cargo build -p taskboard --quiet) >"$LOG_DIR/build.log" 2>&1 ||
    { cat "$LOG_DIR/build.log"; fail "cargo build -p taskboard failed"; }
fi
[ -x "$BIN" ] || fail "no server binary at $BIN"
[ -x "$AXUM_BIN" ] || fail "no server binary at $AXUM_BIN"
# The client schema the tests use, exported by the server (lib/client.mjs).
"$BIN" schema --format json >"$HERE/lib/schema.generated.json" 2>"$LOG_DIR/schema.log" ||
  { cat "$LOG_DIR/schema.log"; fail "taskboard schema failed"; }

# 2. The pinned npm packages.
if node ./check-install.mjs >/dev/null 2>&1; then
  log "node_modules is current"
else
  log "npm install"
  timeout 600 npm install --no-audit --no-fund >"$LOG_DIR/npm.log" 2>&1 ||
    { cat "$LOG_DIR/npm.log"; fail "npm install failed"; }
  node ./check-install.mjs || fail "npm install did not produce the pinned versions"
fi

timeout 30 pg_isready -q -d "$ADMIN_URL" 2>/dev/null || timeout 30 psql "$ADMIN_URL" -X -At -c 'SELECT 1' >/dev/null ||
  fail "PostgreSQL is not reachable at $PG_URL"

# 3. One server, every file.
log "database $DB_NAME"
create_database "$DB_NAME"
start_server server "$PG_URL/$DB_NAME"
ONE="$SERVER_URL"
run_suite single "$PG_URL/$DB_NAME" "$ONE" "$ONE" test/*.test.mjs
kill -0 "${SERVER_PIDS[0]}" 2>/dev/null || fail "the server died during the suite"
stop_servers

# 3b. The same on the axum binary.
log "database ${DB_NAME}_axum"
create_database "${DB_NAME}_axum"
SERVER_BIN="$AXUM_BIN"
start_server axum "$PG_URL/${DB_NAME}_axum"
run_suite axum "$PG_URL/${DB_NAME}_axum" "$SERVER_URL" "$SERVER_URL" test/*.test.mjs
kill -0 "${SERVER_PIDS[0]}" 2>/dev/null || fail "the axum server died during the suite"
stop_servers
SERVER_BIN="$BIN"

# 4. Two servers sharing a private redis-server, polling the log once a
# minute: the two-client files, each client on its own node.
REDIS_PORT="$(free_port)"
[ -n "$REDIS_PORT" ] || fail "no free port"
log "starting redis-server on 127.0.0.1:$REDIS_PORT"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
  >"$LOG_DIR/redis.log" 2>&1 &
REDIS_PID=$!
for _ in $(seq 1 100); do
  [ "$(redis-cli -p "$REDIS_PORT" PING 2>/dev/null)" = PONG ] && break
  sleep 0.1
done
[ "$(redis-cli -p "$REDIS_PORT" PING 2>/dev/null)" = PONG ] || fail "redis-server did not start"
log "database ${DB_NAME}_redis"
create_database "${DB_NAME}_redis"
start_server node1 "$PG_URL/${DB_NAME}_redis" REDIS_URL="redis://127.0.0.1:$REDIS_PORT" SYNC_POLL_MS=60000
NODE1="$SERVER_URL"
start_server node2 "$PG_URL/${DB_NAME}_redis" REDIS_URL="redis://127.0.0.1:$REDIS_PORT" SYNC_POLL_MS=60000
NODE2="$SERVER_URL"
# Both nodes' subscribers are on the channel before any test writes (a
# wake-up published earlier would be lost, and the poll is a minute away).
for _ in $(seq 1 300); do
  [ "$(redis-cli -p "$REDIS_PORT" PUBSUB NUMSUB sync:deltas | tail -n 1)" = 2 ] && break
  sleep 0.1
done
[ "$(redis-cli -p "$REDIS_PORT" PUBSUB NUMSUB sync:deltas | tail -n 1)" = 2 ] ||
  fail "the two nodes did not subscribe to redis"
run_suite redis "$PG_URL/${DB_NAME}_redis" "$NODE1" "$NODE2" "${REDIS_FILES[@]}"
for pid in "${SERVER_PIDS[@]}"; do
  kill -0 "$pid" 2>/dev/null || fail "a node died during the suite"
done

read_summaries || fail "the test runner produced no results"
SUMMARIES_READ=1
[ $((PASSED + FAILED)) -gt 0 ] || fail "no test ran"
[ -z "$FAILURE_REASON" ] && [ "$FAILED" -eq 0 ]
