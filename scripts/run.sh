#!/usr/bin/env bash
# Builds and runs Shardrop on its embedded defaults (SQLite, in-process part tracker,
# local object store under ./data): the page at http://127.0.0.1:8080 and the API under
# /api/v1. Installs the wasm target and wasm-bindgen-cli first when missing (the first
# time, about 8 minutes). Extra arguments go to `shardrop serve` (e.g. `--config FILE`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-tools.sh wasm-target wasm-bindgen
web-wasm/build.sh
www/build.sh
cargo build --release --locked --bin shardrop
echo "Shardrop on http://${SHARDROP_LISTEN:-127.0.0.1:8080} (data in ${SHARDROP_DATA_DIR:-./data})" >&2
exec target/release/shardrop serve "$@"
