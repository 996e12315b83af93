#!/usr/bin/env bash
# Runs every test: installs what the tests need when missing (Garage and wasm-bindgen,
# pinned; Chromium; npm packages), makes sure PostgreSQL and Redis answer on 127.0.0.1
# (starting them when they do not), starts a Garage for this run, then runs lints, the
# Rust unit and integration tests (the API suite on Garage, then again on Ceph RGW), the
# docs walk-through against a real `shardrop serve`, a schemathesis fuzz of the API against
# its OpenAPI document (scripts/fuzz-api.sh), and the browser and fault tests
# (headless Chromium driving the wasm engine and the page; the page's screenshots land in
# tests/artifacts/, which git ignores: the README's docs/screenshot.png changes only through
# scripts/screenshot.sh; tests/e2e/cluster.test.mjs runs a 3-replica, 3-Garage-node cluster
# from infra/local/ and writes tests/artifacts/cluster-faults.json).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

step() { printf '\n==> %s\n' "$*" >&2; }

step "tools"
scripts/install-tools.sh

step "services"
scripts/services.sh

step "garage"
GARAGE_DIR="$ROOT/target/garage-test"
# Ports of its own, so a developer's dev Garage (infra/garage/dev.sh, port 3900) can keep running.
export GARAGE_S3_PORT=${GARAGE_S3_PORT:-3910} GARAGE_RPC_PORT=${GARAGE_RPC_PORT:-3911} GARAGE_ADMIN_PORT=${GARAGE_ADMIN_PORT:-3913}
# A fresh Garage each run, deleted at the end with all it stored (GBs per run).
stop_garage() { infra/garage/dev.sh stop "$GARAGE_DIR" >/dev/null 2>&1 || true; rm -rf "$GARAGE_DIR"; }
stop_garage
trap stop_garage EXIT
eval "$(infra/garage/dev.sh start "$GARAGE_DIR" --export)"

step "lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p shardrop-engine --target wasm32-unknown-unknown --locked -- -D warnings

step "rust tests"
# Garage enforces x-amz-checksum-sha1: the API suite checks the backend finds that out.
SHARDROP_TEST_S3_PART_CHECK=sha1 cargo test --workspace --locked

step "API suite on Ceph RGW"
# RGW 16 ignores x-amz-checksum-sha1 and enforces Content-MD5: the same suite, S3 half only.
RGW_DIR="$ROOT/target/rgw-test"
stop_rgw() { infra/ceph/rgw.sh stop "$RGW_DIR" >/dev/null 2>&1 || true; rm -rf "$RGW_DIR"; }
stop_rgw
stop_cluster() { python3 infra/local/cluster.py destroy "$ROOT/target/cluster-test" >/dev/null 2>&1 || true; }
trap 'stop_garage; stop_rgw; stop_cluster' EXIT
(
    # An RGW that fails to start must fail the run, not leave Garage's settings in place.
    rgw_env=$(infra/ceph/rgw.sh start "$RGW_DIR" --export) || exit 1
    eval "$rgw_env"
    SHARDROP_TEST_S3_PART_CHECK=md5 cargo test -p shardrop-backend --test api --locked -- --skip embedded
)
# It keeps running for the engine's browser test on RGW, under names of its own.
eval "$(infra/ceph/rgw.sh env "$RGW_DIR" --export | sed 's/SHARDROP_TEST_S3_/SHARDROP_TEST_RGW_/')"

step "engine in a browser worker (wasm-bindgen-test, headless Chromium)"
CHROMEDRIVER=/usr/bin/chromedriver \
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="${SHARDROP_CACHE:-$HOME/.cache/shardrop}/tools/bin/wasm-bindgen-test-runner" \
  cargo test -p shardrop-engine --target wasm32-unknown-unknown --locked

step "builds"
web-wasm/build.sh
www/build.sh
cargo build --release --locked --bin shardrop

step "docs walk-through"
tests/docs_walkthrough.sh

step "API fuzz (schemathesis)"
scripts/fuzz-api.sh

step "browser and fault tests"
# Every case runs here: a test that would skip for want of a store fails instead.
(cd tests/e2e && SHARDROP_E2E_ALL=1 npm test --silent)
