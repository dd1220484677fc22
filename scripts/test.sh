#!/usr/bin/env bash
# The project's test command (README "Quick start"; CI runs exactly this).
# Needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379
# (scripts/services.sh starts them if they are down).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
# The two-process realtime test and the interop suite run the example
# binaries (`-p taskboard` builds both `taskboard` and `taskboard-axum`);
# tests/tests/minimal_app.rs starts examples/minimal.
cargo build -p taskboard -p minimal --bins
cargo test --workspace
# The published JavaScript client against the example server.
bash tests/interop/run.sh
