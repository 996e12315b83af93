#!/usr/bin/env bash
# A single-node Garage (S3) on 127.0.0.1, for the integration tests and for people.
#
#   infra/garage/dev.sh start [--export] [DIR]   start (idempotent) and print the S3 env lines
#   infra/garage/dev.sh env   [--export] [DIR]   print the env lines of a running instance
#   infra/garage/dev.sh status [DIR]             say whether it runs (exit 0 if it does)
#   infra/garage/dev.sh stop  [DIR]              stop it (data stays in DIR)
#
# DIR defaults to target/garage-dev under the repository root. Everything Garage keeps
# (config, secrets, metadata, data, log, pid) lives in DIR; delete DIR for a clean slate.
# Only the env lines go to stdout, so `eval "$(infra/garage/dev.sh start --export)"` works.
#
# Overrides: GARAGE_BIN, GARAGE_S3_PORT (3900), GARAGE_RPC_PORT (3901),
# GARAGE_ADMIN_PORT (3903), GARAGE_BUCKET (shardrop-test), GARAGE_START_TIMEOUT (30 s),
# GARAGE_RUST_LOG (Garage's log filter; the caller's RUST_LOG is not passed on).
# Without GARAGE_BIN or a garage on PATH, it runs the one scripts/install-tools.sh builds.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

S3_PORT=${GARAGE_S3_PORT:-3900}
RPC_PORT=${GARAGE_RPC_PORT:-3901}
ADMIN_PORT=${GARAGE_ADMIN_PORT:-3903}
BUCKET=${GARAGE_BUCKET:-shardrop-test}
START_TIMEOUT=${GARAGE_START_TIMEOUT:-30}
REGION=garage

log() { printf 'garage-dev: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# ---- paths and small helpers ---------------------------------------------------------

set_paths() { # dir create(0|1)
    local dir=${1:-$REPO_ROOT/target/garage-dev}
    if [[ "$2" == 1 ]]; then mkdir -p "$dir"; fi
    DIR=$(cd "$dir" 2>/dev/null && pwd) || DIR=$dir # a missing DIR just means "not running"
    CFG=$DIR/garage.toml
    LOG=$DIR/garage.log
    PIDFILE=$DIR/garage.pid
    ENVFILE=$DIR/env
}

find_garage() {
    if [[ -n "${GARAGE_BIN:-}" ]]; then
        :
    elif command -v garage >/dev/null 2>&1; then
        GARAGE_BIN=$(command -v garage)
    else
        GARAGE_BIN=${SHARDROP_CACHE:-$HOME/.cache/shardrop}/tools/bin/garage # install-tools.sh puts it there
    fi
    [[ -x "$GARAGE_BIN" ]] ||
        die "no garage binary at '$GARAGE_BIN' (run scripts/install-tools.sh garage, or set GARAGE_BIN)"
}

# The Garage CLI, talking to the node of DIR. Garage reads GARAGE_RPC_HOST, GARAGE_RPC_SECRET,
# ... from the environment; drop them so a caller's settings for another cluster cannot leak in.
g() {
    env -u GARAGE_RPC_HOST -u GARAGE_RPC_SECRET -u GARAGE_RPC_SECRET_FILE \
        -u GARAGE_ADMIN_TOKEN -u GARAGE_ADMIN_TOKEN_FILE -u GARAGE_METRICS_TOKEN \
        -u GARAGE_METRICS_TOKEN_FILE -u GARAGE_CONFIG_FILE -u GARAGE_ALLOW_WORLD_READABLE_SECRETS \
        RUST_LOG="${GARAGE_RUST_LOG:-warn}" "$GARAGE_BIN" -c "$CFG" "$@"
}

random_hex() { # N bytes -> 2N hex digits
    od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

# A secret generated once and kept in DIR, so restarts reuse it.
persisted() { # name bytes [prefix]
    local file=$DIR/$1
    if [[ ! -s "$file" ]]; then
        (umask 077 && printf '%s%s\n' "${3:-}" "$(random_hex "$2")" >"$file")
    fi
    tr -d '\n' <"$file"
}

# ---- is it running? ------------------------------------------------------------------

# Prints the pid of the Garage started from DIR if it is alive.
running_pid() {
    local pid
    [[ -s "$PIDFILE" ]] || return 1
    pid=$(tr -d ' \n' <"$PIDFILE")
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # Guard against a recycled pid: the process must be the one using our config file.
    if [[ -r /proc/$pid/cmdline ]]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$CFG" || return 1
    fi
    printf '%s\n' "$pid"
}

s3_answers() { # port
    local code
    if ! command -v curl >/dev/null 2>&1; then
        port_in_use "$1"
        return
    fi
    code=$(curl -s -o /dev/null --max-time 2 -w '%{http_code}' "http://127.0.0.1:$1/" 2>/dev/null) || true
    [[ -n "$code" && "$code" != 000 ]]
}

running_s3_port() { # the S3 port the running instance was started with
    [[ -s "$DIR/s3_port" ]] && tr -d '\n' <"$DIR/s3_port" || printf '%s' "$S3_PORT"
}

# ---- env lines -----------------------------------------------------------------------

write_env() {
    local port
    port=$(running_s3_port)
    {
        printf 'SHARDROP_TEST_S3_ENDPOINT=http://127.0.0.1:%s\n' "$port"
        printf 'SHARDROP_TEST_S3_REGION=%s\n' "$REGION"
        printf 'SHARDROP_TEST_S3_BUCKET=%s\n' "$BUCKET"
        printf 'SHARDROP_TEST_S3_ACCESS_KEY_ID=%s\n' "$(tr -d '\n' <"$DIR/key_id")"
        printf 'SHARDROP_TEST_S3_SECRET_ACCESS_KEY=%s\n' "$(tr -d '\n' <"$DIR/key_secret")"
    } >"$ENVFILE.tmp"
    chmod 600 "$ENVFILE.tmp"
    mv "$ENVFILE.tmp" "$ENVFILE"
}

print_env() { # export(0|1)
    if [[ "$1" == 1 ]]; then sed 's/^/export /' "$ENVFILE"; else cat "$ENVFILE"; fi
}

# ---- start ---------------------------------------------------------------------------

db_engine() {
    # An existing metadata db keeps its engine; a new one uses sqlite when the binary has it.
    if [[ -e "$DIR/meta/db.sqlite" ]]; then
        echo sqlite
    elif [[ -e "$DIR/meta/db.lmdb" ]]; then
        echo lmdb
    elif "$GARAGE_BIN" --version 2>/dev/null | grep -q sqlite; then
        echo sqlite
    else
        echo lmdb
    fi
}

write_config() {
    local rpc_secret admin_token engine
    rpc_secret=$(persisted rpc_secret 32)
    admin_token=$(persisted admin_token 32)
    persisted key_id 12 GK >/dev/null
    persisted key_secret 32 >/dev/null
    engine=$(db_engine)
    mkdir -p "$DIR/meta" "$DIR/data"
    (
        umask 077
        cat >"$CFG" <<EOF
# Written by infra/garage/dev.sh; rewritten at each start.
metadata_dir = "$DIR/meta"
data_dir = "$DIR/data"
db_engine = "$engine"
replication_factor = 1

rpc_bind_addr = "127.0.0.1:$RPC_PORT"
rpc_public_addr = "127.0.0.1:$RPC_PORT"
rpc_secret = "$rpc_secret"

[s3_api]
s3_region = "$REGION"
api_bind_addr = "127.0.0.1:$S3_PORT"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$ADMIN_PORT"
admin_token = "$admin_token"
EOF
    )
    printf '%s\n' "$S3_PORT" >"$DIR/s3_port"
}

port_in_use() { # port
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

check_ports_free() {
    local name port
    for name in S3_PORT RPC_PORT ADMIN_PORT; do
        port=${!name}
        if port_in_use "$port"; then
            die "port $port (GARAGE_$name) is already in use on 127.0.0.1: another Garage? stop it, or pick other ports"
        fi
    done
}

launch() {
    rm -f "$PIDFILE"
    LOG_START=$( (wc -l <"$LOG") 2>/dev/null || echo 0)
    printf '\n==== %s: garage-dev starting %s\n' "$(date -u +%FT%TZ)" "$GARAGE_BIN" >>"$LOG"
    # The shell writes its own pid, then becomes Garage (exec keeps the pid); setsid -f and
    # nohup detach it from the caller's session, so it outlives the calling shell.
    local -a detach=(nohup)
    if command -v setsid >/dev/null 2>&1; then detach=(setsid -f nohup); fi
    # shellcheck disable=SC2016 # $$ and $@ are for the inner sh
    "${detach[@]}" sh -c 'echo $$ >"$1.tmp" && mv "$1.tmp" "$1"; shift; exec "$@"' sh "$PIDFILE" \
        env -u GARAGE_RPC_SECRET -u GARAGE_ADMIN_TOKEN -u GARAGE_METRICS_TOKEN \
        NO_COLOR=1 RUST_LOG="${GARAGE_RUST_LOG:-garage=info,garage_net=warn}" \
        "$GARAGE_BIN" -c "$CFG" server >>"$LOG" 2>&1 </dev/null 9>&- &
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -s "$PIDFILE" ]] && break
        sleep 0.1
    done
    [[ -s "$PIDFILE" ]] || fail_start "garage did not start"
}

LAUNCHED=0  # set once this call has started a server
LOG_START=0 # lines the log had before this call started a server

fail_start() {
    log "error: $*"
    if [[ -f "$LOG" ]]; then
        log "last 30 lines of $LOG:"
        tail -n 30 "$LOG" >&2
        # A panic's backtrace can push the cause out of the tail: repeat this run's errors.
        tail -n +"$((LOG_START + 1))" "$LOG" | grep -E -A1 ' ERROR |panicked' | grep -v '^--$' | tail -n 6 |
            sed 's/^/garage-dev: garage said: /' >&2 || true
    fi
    if [[ "$LAUNCHED" == 1 ]] && running_pid >/dev/null; then
        cmd_stop # do not leave a half-started server behind
    fi
    running_pid >/dev/null || rm -f "$PIDFILE"
    exit 1
}

# Waits (bounded) until check_cmd succeeds while the server stays alive.
wait_for() { # what deadline(epoch s) cmd...
    local what=$1 deadline=$2
    shift 2
    until "$@"; do
        running_pid >/dev/null || fail_start "garage exited while waiting for $what"
        ((SECONDS < deadline)) || fail_start "garage did not answer ($what) within ${START_TIMEOUT}s"
        sleep 0.2
    done
}

rpc_answers() { g status >/dev/null 2>&1; }

setup_layout() {
    [[ -f "$DIR/.done-layout" ]] && return 0
    local show version node_id
    show=$(g layout show) || return 1
    version=$(sed -n 's/^Current cluster layout version: *//p' <<<"$show")
    if [[ "${version:-0}" == 0 ]]; then
        node_id=$(g node id -q 2>/dev/null | head -n1)
        node_id=${node_id%%@*}
        [[ -n "$node_id" ]] || fail_start "could not read the node id"
        log "assigning layout to node ${node_id:0:16}"
        g layout assign -z dc1 -c 1G "$node_id" >/dev/null || return 1
        g layout apply --version 1 >/dev/null || return 1
    fi
    touch "$DIR/.done-layout"
}

setup_key() {
    [[ -f "$DIR/.done-key" ]] && return 0
    local key_id
    key_id=$(tr -d '\n' <"$DIR/key_id")
    if ! g key info "$key_id" >/dev/null 2>&1; then
        log "importing access key $key_id"
        g key import -n shardrop-dev --yes "$key_id" "$(tr -d '\n' <"$DIR/key_secret")" \
            >/dev/null || return 1
    fi
    touch "$DIR/.done-key"
}

setup_bucket() {
    [[ -f "$DIR/.done-bucket-$BUCKET" ]] && return 0
    local key_id
    key_id=$(tr -d '\n' <"$DIR/key_id")
    if ! g bucket info "$BUCKET" >/dev/null 2>&1; then
        log "creating bucket $BUCKET"
        g bucket create "$BUCKET" >/dev/null || return 1
    fi
    g bucket allow --read --write --owner "$BUCKET" --key "$key_id" >/dev/null || return 1
    touch "$DIR/.done-bucket-$BUCKET"
}

setup_done() {
    [[ -f "$DIR/.done-layout" && -f "$DIR/.done-key" && -f "$DIR/.done-bucket-$BUCKET" ]]
}

# Serializes concurrent starts on one DIR (say, parallel tests that each call start).
lock_dir() {
    command -v flock >/dev/null 2>&1 || return 0
    exec 9>"$DIR/.lock"
    flock -w $((START_TIMEOUT + 30)) 9 || die "another start on $DIR holds $DIR/.lock"
}

cmd_start() { # export
    local pid deadline port
    lock_dir
    if pid=$(running_pid) && setup_done && s3_answers "$(running_s3_port)"; then
        note_port_mismatch
        write_env
        print_env "$1"
        return 0
    fi
    find_garage
    deadline=$((SECONDS + START_TIMEOUT))
    if pid=$(running_pid); then
        if setup_done; then
            log "garage (pid $pid) is running, but S3 does not answer yet; waiting for it"
        else
            log "garage (pid $pid) is running; finishing its setup"
        fi
        note_port_mismatch
    else
        check_ports_free
        write_config
        log "starting $GARAGE_BIN (log: $LOG)"
        LAUNCHED=1
        launch
    fi
    wait_for "garage status" "$deadline" rpc_answers
    setup_layout || fail_start "layout setup failed"
    setup_key || fail_start "key import failed"
    setup_bucket || fail_start "bucket setup failed"
    port=$(running_s3_port)
    wait_for "S3 on port $port" "$deadline" s3_answers "$port"
    log "ready: pid $(running_pid), S3 on http://127.0.0.1:$port, bucket $BUCKET"
    write_env
    print_env "$1"
}

note_port_mismatch() {
    local port
    port=$(running_s3_port)
    if [[ -n "${GARAGE_S3_PORT:-}" && "$port" != "$GARAGE_S3_PORT" ]]; then
        log "note: already running with S3 on port $port; GARAGE_S3_PORT=$S3_PORT ignored (stop it first)"
    fi
}

# ---- stop / env / status -------------------------------------------------------------

cmd_stop() {
    local pid i
    if ! pid=$(running_pid); then
        log "not running (DIR $DIR)"
        rm -f "$PIDFILE"
        return 0
    fi
    log "stopping garage (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "still alive after 10 s; sending KILL"
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -f "$PIDFILE"
}

cmd_env() { # export
    running_pid >/dev/null || die "not running (DIR $DIR); use: $0 start"
    [[ -s "$ENVFILE" ]] || die "running but $ENVFILE is missing; run: $0 start"
    print_env "$1"
}

cmd_status() {
    local pid port
    if pid=$(running_pid); then
        port=$(running_s3_port)
        if s3_answers "$port"; then
            log "running: pid $pid, S3 on http://127.0.0.1:$port (DIR $DIR)"
        else
            log "running: pid $pid, but S3 on port $port does not answer (DIR $DIR)"
        fi
        return 0
    fi
    log "not running (DIR $DIR)"
    return 1
}

# ---- main ----------------------------------------------------------------------------

main() {
    local cmd=${1:-}
    [[ -n "$cmd" ]] || usage
    shift
    local export=0 dir=
    while (($#)); do
        case $1 in
        --export) export=1 ;;
        -h | --help) usage ;;
        -*) die "unknown option $1" ;;
        *)
            [[ -z "$dir" ]] || die "only one DIR may be given"
            dir=$1
            ;;
        esac
        shift
    done
    set_paths "$dir" "$([[ "$cmd" == start ]] && echo 1 || echo 0)"
    case $cmd in
    start) cmd_start "$export" ;;
    stop) cmd_stop ;;
    env) cmd_env "$export" ;;
    status) cmd_status ;;
    *) usage ;;
    esac
}

main "$@"
