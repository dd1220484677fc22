#!/usr/bin/env bash
# The README's first command from a fresh clone: `cargo run -p taskboard`
# in a clone of the committed tree, against a database that does not exist
# yet. Checks that it builds from what is committed, creates its database,
# prints how to try it (on the port it bound), answers /health, and serves
# the demo workspace to the printed bootstrap request; then stops it.
#
# Uses $CARGO_TARGET_DIR (dependencies are not rebuilt, only the
# workspace's own crates, whose path differs). Needs PostgreSQL and Redis
# up (scripts/services.sh), curl and psql.
set -euo pipefail
cd "$(dirname "$0")/.."

PG="${FRESH_CLONE_PG_URL:-postgres://postgres@127.0.0.1:5432}"
DB="stratasync_fresh_clone_$$"
WORK="$(mktemp -d)"
SERVER_PID=""

cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  psql "$PG/postgres" -X -q -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "fresh clone: $*" >&2
  echo "--- server output" >&2
  cat "$WORK/out.txt" "$WORK/err.txt" >&2 2>/dev/null || true
  exit 1
}

git clone -q . "$WORK/repo"
# PORT=0: the OS picks a free port; the printed lines name it.
(cd "$WORK/repo" && exec setsid env -u REDIS_URL -u TASKBOARD_TOKENS -u TASKBOARD_NO_DEMO \
  DATABASE_URL="$PG/$DB" PORT=0 RUST_LOG=warn cargo run -q -p taskboard) >"$WORK/out.txt" 2>"$WORK/err.txt" &
SERVER_PID=$!

# Build and start: wait for the printed bootstrap line (up to 20 minutes).
line=""
for _ in $(seq 1 2400); do
  line="$(grep -m1 -F '/sync/bootstrap' "$WORK/out.txt" || true)"
  [ -n "$line" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || fail "cargo run -p taskboard exited"
  sleep 0.5
done
[ -n "$line" ] || fail "no 'try it' lines printed"
url="$(sed -E 's/.*curl -s "([^"]+)".*/\1/' <<<"$line")"
token="$(sed -E 's/.*Bearer ([^"]+)".*/\1/' <<<"$line")"
base="${url%%/sync/*}"

curl -sf --max-time 10 "$base/health" | grep -q '"status":"ok"' || fail "$base/health did not answer ok"
metadata="$(curl -sf --max-time 30 "$url" -H "Authorization: Bearer $token" | head -n1)" ||
  fail "the printed bootstrap request failed"
grep -q '"Task":5' <<<"$metadata" || fail "the demo workspace's five tasks are missing: $metadata"
echo "fresh clone: cargo run -p taskboard served the demo workspace at $base ($metadata)"
