#!/usr/bin/env bash
# Builds the page into www/dist: the sources as they are, and the `shardrop` package
# (built by web-wasm/build.sh) under vendor/, where the page's import map finds it.
set -euo pipefail
cd "$(dirname "$0")"
[ -f ../web-wasm/pkg/index.js ] || ../web-wasm/build.sh
rm -rf dist
cp -r src dist
mkdir -p dist/vendor
cp -r ../web-wasm/pkg dist/vendor/shardrop
echo "page in $(pwd)/dist" >&2
