#!/usr/bin/env bash
# Builds and runs Shardrop on its embedded defaults (SQLite, in-process part tracker,
# local object store under ./data): nothing else to install. Extra arguments go to
# `shardrop serve` (e.g. `--config shardrop.toml`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin shardrop
echo "Shardrop on http://${SHARDROP_LISTEN:-127.0.0.1:8080} (data in ${SHARDROP_DATA_DIR:-./data})" >&2
exec target/release/shardrop serve "$@"
