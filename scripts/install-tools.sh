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
# Tools: garage (S3 server for the integration tests; version pinned in infra/garage/VERSION),
# wasm-target (rustup's wasm32-unknown-unknown), wasm-bindgen (the CLI, at exactly the
# version of the wasm-bindgen crate in Cargo.lock), chromium (Debian's Chromium and
# ChromeDriver, for the browser tests), rgw (Debian's Ceph mon, OSD, mgr and radosgw, for
# infra/ceph/rgw.sh), nginx (Debian's nginx-light, the load balancer of infra/local/),
# node-deps (npm ci of tests/e2e).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

CACHE=${SHARDROP_CACHE:-$HOME/.cache/shardrop}
TOOLS_ROOT=$CACHE/tools                 # cargo install --root: binaries land in $TOOLS_ROOT/bin
GARAGE_VERSION=$(tr -d ' \n' <"$REPO_ROOT/infra/garage/VERSION")
GARAGE_BUILD_DIR=$CACHE/garage-build    # cargo target dir for the Garage build

ALL_TOOLS=(garage wasm-target wasm-bindgen chromium rgw nginx node-deps)

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

# ---- the wasm engine ------------------------------------------------------------------

install_wasm_target() {
    rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown && return 0
    log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown >&2
}

wasm_bindgen_version() {
    # The version of the wasm-bindgen crate locked for the engine: the CLI must match it.
    awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$REPO_ROOT/Cargo.lock"
}

install_wasm_bindgen() {
    local want bin=$TOOLS_ROOT/bin/wasm-bindgen
    want=$(wasm_bindgen_version)
    [[ -n "$want" ]] || die "no wasm-bindgen in Cargo.lock"
    [[ -x "$bin" ]] && [[ "$("$bin" --version 2>/dev/null)" == "wasm-bindgen $want" ]] && return 0
    need_cargo
    log "building wasm-bindgen-cli $want into $TOOLS_ROOT/bin (about 8 minutes the first time)"
    # Not --locked: its lock file pins crates that no longer build here.
    cargo install wasm-bindgen-cli --version "$want" --root "$TOOLS_ROOT" --target-dir "$CACHE/wasm-bindgen-build"
}

# ---- browser tests --------------------------------------------------------------------

install_chromium() {
    # Chromium for the browser tests; its ChromeDriver for wasm-bindgen-test.
    [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]] && return 0
    command -v apt-get >/dev/null 2>&1 || die "no /usr/bin/chromium and no apt-get to install it"
    log "installing Debian's chromium and chromium-driver"
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >&2
}

# ---- Ceph RGW --------------------------------------------------------------------------

install_rgw() {
    # A second S3 server for the tests, run as plain processes by infra/ceph/rgw.sh
    # (ceph-mgr only with RGW_MGR=1).
    [[ -x /usr/bin/radosgw && -x /usr/bin/ceph-mon && -x /usr/bin/ceph-osd ]] && return 0
    command -v apt-get >/dev/null 2>&1 || die "no /usr/bin/radosgw and no apt-get to install it"
    log "installing Debian's radosgw, ceph-mon, ceph-osd and ceph-mgr"
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        radosgw ceph-mon ceph-osd ceph-mgr >&2
}

# ---- nginx -----------------------------------------------------------------------------

install_nginx() {
    # The load balancer in front of the local cluster's replicas and Garage nodes
    # (infra/local/cluster.py runs it as a plain process with a config of its own).
    command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] && return 0
    command -v apt-get >/dev/null 2>&1 || die "no nginx and no apt-get to install it"
    log "installing Debian's nginx-light"
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx-light >&2
    # The package starts a system nginx on port 80; the cluster runs its own.
    if command -v service >/dev/null 2>&1; then service nginx stop >/dev/null 2>&1 || true; fi
}

install_node_deps() {
    command -v npm >/dev/null 2>&1 || die "npm is not on PATH (install Node.js first)"
    local dir=$REPO_ROOT/tests/e2e
    # npm ci only when the lock file changed since the last install.
    local stamp=$dir/node_modules/.shardrop-installed-lock
    if cmp -s "$dir/package-lock.json" "$stamp" 2>/dev/null; then
        return 0
    fi
    log "npm ci in tests/e2e"
    (cd "$dir" && npm ci --no-audit --no-fund >&2)
    cp "$dir/package-lock.json" "$stamp"
}

# ---- main ----------------------------------------------------------------------------

install_one() {
    case $1 in
    garage) install_garage ;;
    wasm-target) install_wasm_target ;;
    wasm-bindgen) install_wasm_bindgen ;;
    chromium) install_chromium ;;
    rgw) install_rgw ;;
    nginx) install_nginx ;;
    node-deps) install_node_deps ;;
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
