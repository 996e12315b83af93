#!/usr/bin/env bash
# Installs the outside tools the tests need, each only when it is missing.
#
# Why: machines (a developer's, CI's) come fresh, and nothing installed by hand survives, so
# the project itself must bring what its tests run. Everything goes under
# $HOME/.cache/shardrop (never into the project's target dir), and a second run with
# everything present is quick and prints nothing.
#
#   scripts/install-tools.sh            install all known tools
#   scripts/install-tools.sh garage     install only the named ones
#
# Tools: garage (S3 server for the integration tests; version pinned in infra/garage/VERSION).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

CACHE=${SHARDROP_CACHE:-$HOME/.cache/shardrop}
TOOLS_ROOT=$CACHE/tools                 # cargo install --root: binaries land in $TOOLS_ROOT/bin
GARAGE_VERSION=$(tr -d ' \n' <"$REPO_ROOT/infra/garage/VERSION")
GARAGE_BUILD_DIR=$CACHE/garage-build    # cargo target dir for the Garage build

ALL_TOOLS=(garage) # later: wasm-bindgen chromium node-deps

log() { printf 'install-tools: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

need_cargo() {
    command -v cargo >/dev/null 2>&1 || die "cargo is not on PATH (install Rust via rustup first)"
}

# ---- garage --------------------------------------------------------------------------

garage_is_current() {
    local bin=$TOOLS_ROOT/bin/garage
    [[ -x "$bin" ]] || return 1
    # `garage --version` prints e.g. "garage cargo:2.5.0 [features: k2v, lmdb, sqlite]".
    "$bin" --version 2>/dev/null | grep -Eq "(^|[^0-9.])${GARAGE_VERSION//./\\.}([^0-9.]|$)"
}

install_garage() {
    garage_is_current && return 0
    need_cargo
    log "building garage $GARAGE_VERSION into $TOOLS_ROOT/bin (the first build takes ~20 minutes)"
    cargo install garage --locked --version "$GARAGE_VERSION" \
        --root "$TOOLS_ROOT" --target-dir "$GARAGE_BUILD_DIR"
    garage_is_current || die "garage installed, but '$TOOLS_ROOT/bin/garage --version' is not $GARAGE_VERSION"
}

# ---- later ---------------------------------------------------------------------------
# install_wasm_bindgen() { ...; }  # wasm-bindgen-cli matching Cargo.lock (fails with --locked)
# install_chromium()     { ...; }  # Debian's chromium, for the browser tests
# install_node_deps()    { ...; }  # npm ci for the web package and its tests

# ---- main ----------------------------------------------------------------------------

install_one() {
    case $1 in
    garage) install_garage ;;
    # wasm-bindgen) install_wasm_bindgen ;;
    # chromium) install_chromium ;;
    # node-deps) install_node_deps ;;
    *) die "unknown tool '$1' (known: ${ALL_TOOLS[*]})" ;;
    esac
}

main() {
    local tools=("$@")
    ((${#tools[@]})) || tools=("${ALL_TOOLS[@]}")
    mkdir -p "$CACHE"
    # One install at a time on this machine (parallel CI jobs, two terminals).
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$CACHE/install-tools.lock"
        flock 9
    fi
    local tool
    for tool in "${tools[@]}"; do
        install_one "$tool"
    done
}

main "$@"
