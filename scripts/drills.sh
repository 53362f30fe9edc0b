#!/usr/bin/env bash
# Builds the release server and runs the reliability drills against the local PostgreSQL.
# Usage: scripts/drills.sh [--only NAME ...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --locked
exec python3 scripts/drills.py --bin target/release/cashcraft "$@"
