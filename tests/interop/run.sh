#!/usr/bin/env bash
# Interop suite: the published JavaScript client (@stratasync/client,
# @stratasync/core, @stratasync/transport-graphql; versions pinned in
# package.json) against the Rust example server `taskboard`.
#
#   bash tests/interop/run.sh [extra node --test args, e.g. --test-name-pattern=restart]
#
# Builds the server, installs the pinned npm packages (skipped when
# node_modules already holds exactly those versions), creates a fresh
# database, starts the server on a free port, runs the Node test suite,
# stops the server and drops the database(s). Exits non-zero on any failure;
# the last line is always `N passed, M failed`.
#
# Needs: cargo, node >= 20.14, npm, psql, and PostgreSQL reachable at
# INTEROP_PG_URL (default postgres://postgres@127.0.0.1:5432; the role must be
# allowed to CREATE DATABASE). Redis is not used.
# Environment knobs: CARGO_TARGET_DIR, INTEROP_PG_URL, INTEROP_KEEP_LOGS=1,
# INTEROP_SUITE_TIMEOUT (seconds, default 300), INTEROP_TASKBOARD_BIN (test a
# prebuilt server binary; no build), INTEROP_SEED (convergence interleaving).
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

LOG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/stratasync-interop.XXXXXX")"
DB_NAME="interop_$(date +%s)_$$_$RANDOM"
DB_URL="$PG_URL/$DB_NAME"
ADMIN_URL="$PG_URL/postgres"
SERVER_PID=""
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

stop_server() {
  if [ -n "$SERVER_PID" ]; then
    stop_pid "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null
  fi
  SERVER_PID=""
  # Servers the tests started (lib/server.mjs writes <name>.pid), in case a
  # test process died before stopping them.
  local f pid
  for f in "$LOG_DIR"/*.pid; do
    [ -f "$f" ] || continue
    pid="$(cat "$f")"
    if [ -n "$pid" ] && grep -q taskboard "/proc/$pid/cmdline" 2>/dev/null; then
      stop_pid "$pid"
    fi
  done
}

drop_databases() {
  # The suite's database and the extra ones tests create (<name>_<suffix>).
  local names
  names="$(timeout 30 psql "$ADMIN_URL" -X -At -c \
    "SELECT datname FROM pg_database WHERE datname = '$DB_NAME' OR datname LIKE '${DB_NAME}\_%'" 2>/dev/null)"
  for n in $names; do
    timeout 30 psql "$ADMIN_URL" -X -q -c "DROP DATABASE IF EXISTS \"$n\" WITH (FORCE)" >/dev/null 2>&1 ||
      echo "warning: could not drop database $n" >&2
  done
}

SUMMARY="$LOG_DIR/summary.json"
SUMMARY_READ=0
read_summary() {
  [ "$SUMMARY_READ" = 1 ] && return 0
  [ -s "$SUMMARY" ] || return 1
  SUMMARY_READ=1
  eval "$(node -e '
    const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    console.log(`PASSED=${s.passed}; FAILED=${s.failed}`);
    for (const f of s.failures) console.error(`interop: FAILED: ${f.split("\n")[0]}`);
    for (const f of s.expectedFailures) console.error(`interop: expected failure (known server bug): ${f}`);
    for (const f of s.unexpectedPasses) console.error(`interop: UNEXPECTED PASS (remove its todo): ${f}`);
  ' "$SUMMARY")"
}

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
  stop_server
  drop_databases
  read_summary || true
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

for tool in cargo node npm psql; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed"
done
# node --test-force-exit needs 20.14 (module.register 20.6, --test-timeout 20.11).
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 14) ? 0 : 1)' ||
  fail "node >= 20.14 is required"

# 1. The server (INTEROP_TASKBOARD_BIN=<path> tests a prebuilt binary instead).
if [ -n "${INTEROP_TASKBOARD_BIN:-}" ]; then
  log "using the prebuilt server $BIN"
else
  log "cargo build -p taskboard"
  (cd "$ROOT" && timeout 1200 cargo build -p taskboard --quiet) >"$LOG_DIR/build.log" 2>&1 ||
    { cat "$LOG_DIR/build.log"; fail "cargo build -p taskboard failed"; }
fi
[ -x "$BIN" ] || fail "no server binary at $BIN"

# 2. The pinned npm packages.
if node ./check-install.mjs >/dev/null 2>&1; then
  log "node_modules is current"
else
  log "npm install"
  timeout 600 npm install --no-audit --no-fund >"$LOG_DIR/npm.log" 2>&1 ||
    { cat "$LOG_DIR/npm.log"; fail "npm install failed"; }
  node ./check-install.mjs || fail "npm install did not produce the pinned versions"
fi

# 3. A fresh database.
log "database $DB_NAME"
timeout 30 pg_isready -q -d "$ADMIN_URL" 2>/dev/null || timeout 30 psql "$ADMIN_URL" -X -At -c 'SELECT 1' >/dev/null ||
  fail "PostgreSQL is not reachable at $PG_URL"
timeout 30 psql "$ADMIN_URL" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$DB_NAME\"" >/dev/null ||
  fail "could not create database $DB_NAME"

# 4. The server on a free port.
PORT="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
[ -n "$PORT" ] || fail "no free port"
log "starting taskboard on 127.0.0.1:$PORT"
env -u REDIS_URL -u TASKBOARD_TOKENS DATABASE_URL="$DB_URL" PORT="$PORT" BIND=127.0.0.1 WORKERS=2 TASKBOARD_NO_DEMO=1 \
  NO_COLOR=1 RUST_LOG="${RUST_LOG:-info}" "$BIN" >"$LOG_DIR/server.log" 2>&1 &
SERVER_PID=$!
BASE_URL="http://127.0.0.1:$PORT"
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
  })();' "$BASE_URL/health" || fail "the server did not become healthy within 60 s"
kill -0 "$SERVER_PID" 2>/dev/null || fail "the server exited during start"

# 5. The suite. Files run one at a time (some scenarios stop servers or prune
# the sync log); every test has its own timeout, and the whole run one more.
log "running the Node test suite"
INTEROP_BASE_URL="$BASE_URL" INTEROP_DATABASE_URL="$DB_URL" INTEROP_TASKBOARD_BIN="$BIN" INTEROP_LOG_DIR="$LOG_DIR" \
  INTEROP_SUMMARY="$SUMMARY" \
  timeout -k 10 "$SUITE_TIMEOUT" node --import ./setup.mjs --test --test-concurrency=1 --test-timeout=120000 \
  --test-force-exit \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=./reporter.mjs --test-reporter-destination=stderr \
  "$@" test/*.test.mjs &
SUITE_PID=$!
wait "$SUITE_PID"
RC=$?
SUITE_PID=""

# 6. The counts (written by reporter.mjs).
read_summary || FAILURE_REASON="the test runner produced no results"
if [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ]; then
  FAILURE_REASON="the suite exceeded ${SUITE_TIMEOUT} s"
elif [ "$RC" -ne 0 ] && [ "$FAILED" -eq 0 ]; then
  FAILURE_REASON="node --test exited with status $RC"
fi
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  FAILURE_REASON="${FAILURE_REASON:+$FAILURE_REASON; }the server died during the suite"
fi
[ -z "$FAILURE_REASON" ] && [ "$FAILED" -eq 0 ]
