#!/usr/bin/env bash
# Builds the npm package `shardrop` into web-wasm/pkg (or $1): the engine compiled to
# wasm32, its wasm-bindgen glue (--target web), and the thin JS around it.
set -euo pipefail
cd "$(dirname "$0")"
OUT=$(realpath -m "${1:-pkg}")
TOOLS=${SHARDROP_CACHE:-$HOME/.cache/shardrop}/tools/bin
WASM_BINDGEN=${WASM_BINDGEN:-$(command -v wasm-bindgen || echo "$TOOLS/wasm-bindgen")}
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

cargo build -p shardrop-engine --target wasm32-unknown-unknown --release --locked
rm -rf "$OUT" && mkdir -p "$OUT"
# No wasm-opt: measured here it changes nothing for SHA-1, and Debian's breaks bindgen output.
"$WASM_BINDGEN" --target web --out-dir "$OUT" --out-name shardrop_engine \
  "$TARGET_DIR/wasm32-unknown-unknown/release/shardrop_engine.wasm"
cp js/index.js js/index.d.ts js/worker.js js/package.json js/README.md "$OUT/"
echo "shardrop package in $OUT" >&2
