#!/usr/bin/env bash
# A throwaway Ceph RGW (S3) on 127.0.0.1, for the integration tests and for people.
#
#   infra/ceph/rgw.sh start [--export] [DIR]    start (idempotent) and print the S3 env lines
#   infra/ceph/rgw.sh env   [--export] [DIR]    print the env lines of a running instance
#   infra/ceph/rgw.sh status [DIR]              say what runs (exit 0 if all of it does)
#   infra/ceph/rgw.sh stop  [DIR]               stop it (data stays in DIR)
#
# DIR defaults to target/rgw-dev under the repository root. One mon, one OSD (bluestore on a
# sparse file, pools of size 1) and one radosgw run as plain processes, without cephx; their
# config, stores, logs, pid files and admin sockets all live in DIR. `stop` leaves DIR: the
# caller deletes it (rm -rf DIR) to free the disk. Only the env lines go to stdout, so
# `eval "$(infra/ceph/rgw.sh start --export)"` works. A first start takes ~8 s, a restart ~4 s.
#
# Overrides: RGW_PORT (S3, 7480), RGW_MON_PORT (7490; fixed once DIR exists; not Ceph's usual
# 3300/6789, so a real cluster can run beside it), RGW_BUCKET (shardrop-test), RGW_DATA_SIZE
# (size of the OSD's sparse file, 20G; set before the first start), RGW_START_TIMEOUT (90 s),
# RGW_MGR (1 also runs a ceph-mgr, ~300 MB more, for `ceph -c DIR/ceph.conf -s` statistics).
# The OSD (and mgr) take free ports in 6800-7300. Binaries: Debian's (scripts/install-tools.sh rgw).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

S3_PORT=${RGW_PORT:-7480}
MON_PORT=${RGW_MON_PORT:-7490}
BUCKET=${RGW_BUCKET:-shardrop-test}
DATA_SIZE=${RGW_DATA_SIZE:-20G}
START_TIMEOUT=${RGW_START_TIMEOUT:-90}
WITH_MGR=${RGW_MGR:-0}
REGION=default  # the zonegroup's api_name; RGW's SigV4 check accepts any region
USER_ID=shardrop-dev
RGW_NAME=client.rgw.shardrop
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

log() { printf 'rgw-dev: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# ---- paths and small helpers ---------------------------------------------------------

set_paths() { # dir create(0|1)
    local dir=${1:-$REPO_ROOT/target/rgw-dev}
    if [[ "$2" == 1 ]]; then mkdir -p "$dir"; fi
    DIR=$(cd "$dir" 2>/dev/null && pwd) || DIR=$dir # a missing DIR just means "not running"
    CONF=$DIR/ceph.conf
    RUN=$DIR/run
    LOGS=$DIR/log
    ENVFILE=$DIR/env
}

# Stop order: the radosgw first, the mon last (an OSD whose mon is gone waits 5 s to say goodbye).
daemons() {
    printf '%s\n' "$RGW_NAME"
    if [[ "$WITH_MGR" == 1 || -s "$RUN/mgr.x.pid" ]]; then echo mgr.x; fi
    printf '%s\n' osd.0 mon.a
}

find_ceph() {
    local bin
    for bin in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool; do
        command -v "$bin" >/dev/null 2>&1 ||
            die "no $bin on PATH (run scripts/install-tools.sh rgw)"
    done
    if [[ "$WITH_MGR" == 1 ]]; then
        command -v ceph-mgr >/dev/null 2>&1 || die "no ceph-mgr on PATH (run scripts/install-tools.sh rgw)"
    fi
    [[ "$(curl --help all 2>/dev/null)" == *--aws-sigv4* ]] || die "curl 7.75 or later (with --aws-sigv4) is needed"
}

# The Ceph CLIs, talking to the cluster of DIR; a caller's CEPH_ARGS must not leak in.
ceph_env() { env -u CEPH_ARGS -u CEPH_CONF -u CEPH_KEYRING "$@"; }
c() { ceph_env ceph -c "$CONF" --connect-timeout 5 "$@" 2>>"$LOGS/cli.err"; }
rgw_admin() { ceph_env radosgw-admin -c "$CONF" "$@" 2>>"$LOGS/cli.err"; }

random_hex() { # N bytes -> 2N hex digits
    od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

# A value generated once and kept in DIR, so restarts reuse it.
persisted() { # name value-if-new
    local file=$DIR/$1
    if [[ ! -s "$file" ]]; then
        (umask 077 && printf '%s\n' "$2" >"$file")
    fi
    tr -d '\n' <"$file"
}

# ---- is it running? ------------------------------------------------------------------

# Prints the pid of the named daemon started from DIR if it is alive.
running_pid() { # name
    local pid file=$RUN/$1.pid
    [[ -s "$file" ]] || return 1
    pid=$(tr -d ' \n' <"$file")
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # Guard against a recycled pid: the process must be the one using our config file.
    if [[ -r /proc/$pid/cmdline ]]; then
        { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$CONF" || return 1
    fi
    printf '%s\n' "$pid"
}

all_running() {
    local name
    for name in $(daemons); do running_pid "$name" >/dev/null || return 1; done
}

any_running() {
    local name
    for name in $(daemons); do running_pid "$name" >/dev/null && return 0; done
    return 1
}

port_in_use() { # port
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

s3_answers() { # port
    local code
    code=$(curl -s -o /dev/null --max-time 2 -w '%{http_code}' "http://127.0.0.1:$1/" 2>/dev/null) || true
    [[ -n "$code" && "$code" != 000 ]]
}

running_s3_port() { # the S3 port the running instance was started with
    [[ -s "$DIR/s3_port" ]] && tr -d '\n' <"$DIR/s3_port" || printf '%s' "$S3_PORT"
}

# ---- env lines -----------------------------------------------------------------------

write_env() {
    {
        printf 'SHARDROP_TEST_S3_ENDPOINT=http://127.0.0.1:%s\n' "$(running_s3_port)"
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

# ---- config --------------------------------------------------------------------------

write_config() {
    local fsid mon_port data_bytes
    fsid=$(persisted fsid "$(cat /proc/sys/kernel/random/uuid)")
    if [[ -f "$DIR/.done-mon" ]]; then # the monmap holds the mon's port: fixed once created
        mon_port=$(tr -d '\n' <"$DIR/mon_port")
        if [[ -n "${RGW_MON_PORT:-}" && "$mon_port" != "$RGW_MON_PORT" ]]; then
            log "note: the mon of $DIR listens on $mon_port; RGW_MON_PORT=$RGW_MON_PORT ignored"
        fi
        MON_PORT=$mon_port
    else
        printf '%s\n' "$MON_PORT" >"$DIR/mon_port"
    fi
    data_bytes=$(numfmt --from=iec "$DATA_SIZE") || die "RGW_DATA_SIZE=$DATA_SIZE is not a size like 20G"
    persisted key_id "SD$(random_hex 9 | tr a-f A-F)" >/dev/null
    persisted key_secret "$(random_hex 20)" >/dev/null
    mkdir -p "$RUN" "$LOGS" "$DIR/crash" "$DIR/mon" "$DIR/mgr" "$DIR/osd" "$DIR/rgw"
    cat >"$CONF" <<EOF
# Written by infra/ceph/rgw.sh; rewritten at each start.
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$MON_PORT]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
# No cephx: without it the messengers must not ask for "secure" mode, only crc.
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = false
ms mon client mode = crc
ms mon service mode = crc
ms mon cluster mode = crc
ms client mode = crc
ms service mode = crc
ms cluster mode = crc
# Everything in DIR, nothing in /var.
run dir = $RUN
pid file = $RUN/\$name.pid
log file = $LOGS/\$name.log
mon cluster log file = $LOGS/\$cluster.\$channel.log
crash dir = $DIR/crash
mon data = $DIR/mon
mgr data = $DIR/mgr
osd data = $DIR/osd
rgw data = $DIR/rgw
# One OSD: pools of size 1, few PGs, no warnings about either.
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 2
mon data avail crit = 1
# Commit map changes at once, not batched per second: radosgw's first start creates ~7 pools.
paxos propose interval = 0.05
mgr initial modules = iostat

[osd]
osd objectstore = bluestore
bluestore block create = true
bluestore block size = $data_bytes
# Small memory: a fixed 128 MiB cache instead of autotuning toward osd_memory_target (4 GiB);
# that target set to its minimum too, should autotuning be turned back on.
bluestore cache autotune = false
bluestore cache size = 134217728
osd memory target = 939524096

[$RGW_NAME]
rgw frontends = beast endpoint=127.0.0.1:$S3_PORT
rgw thread pool size = 64
EOF
    printf '%s\n' "$S3_PORT" >"$DIR/s3_port"
}

# ---- start ---------------------------------------------------------------------------

LAUNCHED=0 # set once this call has started a daemon
FAILING=   # the daemon whose logs fail_start shows

need_free_port() { # port variable
    if port_in_use "$1"; then
        fail_start "port $1 ($2) is already in use on 127.0.0.1: another RGW? stop it, or pick another port"
    fi
}

# Before anything starts: the ports of the daemons this call will start must be free.
check_ports_free() {
    running_pid mon.a >/dev/null || need_free_port "$MON_PORT" RGW_MON_PORT
    running_pid "$RGW_NAME" >/dev/null || need_free_port "$(running_s3_port)" RGW_PORT
}

launch() { # name command...
    local name=$1 pidfile=$RUN/$1.pid i
    shift
    FAILING=$name
    rm -f "$pidfile"
    printf '\n==== %s: rgw-dev starting %s\n' "$(date -u +%FT%TZ)" "$name" >>"$LOGS/$name.out"
    # The shell writes its own pid, then becomes the daemon (exec keeps the pid); setsid -f and
    # nohup detach it from the caller's session, so it outlives the calling shell.
    local -a detach=(nohup)
    if command -v setsid >/dev/null 2>&1; then detach=(setsid -f nohup); fi
    LAUNCHED=1
    # shellcheck disable=SC2016 # $$ and $@ are for the inner sh
    "${detach[@]}" sh -c 'echo $$ >"$1.tmp" && mv "$1.tmp" "$1"; shift; exec "$@"' sh "$pidfile" \
        env -u CEPH_ARGS -u CEPH_CONF -u CEPH_KEYRING "$@" -f -c "$CONF" \
        >>"$LOGS/$name.out" 2>&1 </dev/null 9>&- &
    for ((i = 0; i < 50; i++)); do
        [[ -s "$pidfile" ]] && return 0
        sleep 0.1
    done
    fail_start "$name did not start"
}

fail_start() {
    log "error: $*"
    local f
    for f in "$LOGS/$FAILING.out" "$LOGS/$FAILING.log"; do
        [[ -n "$FAILING" && -s "$f" ]] || continue
        log "last 15 lines of $f:"
        tail -n 15 "$f" >&2
    done
    if [[ "$LAUNCHED" == 1 ]]; then
        cmd_stop # do not leave a half-started cluster behind
    fi
    exit 1
}

# Waits (bounded) until the command succeeds while the daemon stays alive.
wait_for() { # name what cmd...
    local name=$1 what=$2
    shift 2
    FAILING=$name
    until "$@"; do
        running_pid "$name" >/dev/null || fail_start "$name exited while waiting for $what"
        ((SECONDS < DEADLINE)) || fail_start "no $what within ${START_TIMEOUT}s"
        sleep 0.3
    done
}

mon_answers() { c mon stat >/dev/null; }
osd_up() {
    local dump
    dump=$(c osd dump) && grep -q '^osd\.0 up' <<<"$dump"
}

start_mon() {
    running_pid mon.a >/dev/null && return 0
    if [[ ! -f "$DIR/.done-mon" ]]; then
        rm -rf "${DIR:?}/mon" && mkdir -p "$DIR/mon"
        monmaptool --create --fsid "$(cat "$DIR/fsid")" --addv a "[v2:127.0.0.1:$MON_PORT]" \
            --enable-all-features --set-min-mon-release pacific "$DIR/monmap" >/dev/null 2>>"$LOGS/cli.err" ||
            fail_start "monmaptool failed (see $LOGS/cli.err)"
        ceph_env ceph-mon -c "$CONF" -i a --mkfs --monmap "$DIR/monmap" >>"$LOGS/mon.a.out" 2>&1 ||
            { FAILING=mon.a && fail_start "ceph-mon --mkfs failed"; }
        touch "$DIR/.done-mon"
    fi
    log "starting the mon on 127.0.0.1:$MON_PORT"
    launch mon.a ceph-mon -i a
}

start_mgr() {
    [[ "$WITH_MGR" == 1 ]] || return 0
    running_pid mgr.x >/dev/null && return 0
    log "starting a mgr"
    launch mgr.x ceph-mgr -i x
}

start_osd() {
    running_pid osd.0 >/dev/null && return 0
    if [[ ! -f "$DIR/.done-osd" ]]; then
        local uuid id
        uuid=$(persisted osd_uuid "$(cat /proc/sys/kernel/random/uuid)")
        id=$(c osd new "$uuid") || fail_start "ceph osd new failed (see $LOGS/cli.err)"
        [[ "$id" == 0 ]] || fail_start "the OSD got id '$id', not 0"
        log "creating the OSD's store ($DATA_SIZE sparse file $DIR/osd/block)"
        rm -rf "${DIR:?}/osd" && mkdir -p "$DIR/osd"
        ceph_env ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$uuid" >>"$LOGS/osd.0.out" 2>&1 ||
            { FAILING=osd.0 && fail_start "ceph-osd --mkfs failed"; }
        touch "$DIR/.done-osd"
    fi
    log "starting the OSD"
    launch osd.0 ceph-osd -i 0
}

start_rgw() {
    running_pid "$RGW_NAME" >/dev/null && return 0
    log "starting radosgw on 127.0.0.1:$(running_s3_port)"
    launch "$RGW_NAME" radosgw -n "$RGW_NAME"
}

setup_user() {
    [[ -f "$DIR/.done-user" ]] && return 0
    local key_id secret
    key_id=$(tr -d '\n' <"$DIR/key_id")
    secret=$(tr -d '\n' <"$DIR/key_secret")
    if rgw_admin user info --uid "$USER_ID" >/dev/null; then
        rgw_admin key create --uid "$USER_ID" --key-type s3 --access-key "$key_id" --secret-key "$secret" \
            >/dev/null || return 1
    else
        log "creating S3 user $USER_ID, access key $key_id"
        rgw_admin user create --uid "$USER_ID" --display-name "Shardrop dev" \
            --access-key "$key_id" --secret-key "$secret" >/dev/null || return 1
    fi
    touch "$DIR/.done-user"
}

# One signed S3 request on the bucket (curl signs; the credentials go through stdin, not argv).
s3_bucket_call() { # curl-method-option -> HTTP status
    printf 'user = "%s:%s"\n' "$(tr -d '\n' <"$DIR/key_id")" "$(tr -d '\n' <"$DIR/key_secret")" |
        curl -s -K - -o /dev/null -w '%{http_code}' --max-time 10 "$1" \
            --aws-sigv4 "aws:amz:$REGION:s3" -H "x-amz-content-sha256: $EMPTY_SHA256" \
            "http://127.0.0.1:$(running_s3_port)/$BUCKET"
}

setup_bucket() {
    [[ -f "$DIR/.done-bucket-$BUCKET" ]] && return 0
    local code
    code=$(s3_bucket_call --head) || true
    if [[ "$code" != 200 ]]; then
        log "creating bucket $BUCKET"
        code=$(s3_bucket_call -XPUT) || true
        [[ "$code" == 200 ]] || { log "CreateBucket answered HTTP $code"; return 1; }
    fi
    touch "$DIR/.done-bucket-$BUCKET"
}

setup_done() {
    [[ -f "$DIR/.done-user" && -f "$DIR/.done-bucket-$BUCKET" ]]
}

# Serializes concurrent starts on one DIR (say, parallel tests that each call start).
lock_dir() {
    command -v flock >/dev/null 2>&1 || return 0
    exec 9>"$DIR/.lock"
    flock -w $((START_TIMEOUT + 30)) 9 || die "another start on $DIR holds $DIR/.lock"
}

cmd_start() { # export
    lock_dir
    if all_running && setup_done && s3_answers "$(running_s3_port)"; then
        note_port_mismatch
        write_env
        print_env "$1"
        return 0
    fi
    find_ceph
    DEADLINE=$((SECONDS + START_TIMEOUT))
    if any_running; then
        log "partly running; starting what is missing"
        note_port_mismatch
        [[ -s "$CONF" ]] || die "$CONF is missing; stop it first"
        MON_PORT=$(tr -d '\n' <"$DIR/mon_port")
    else
        write_config
    fi
    check_ports_free
    start_mon
    wait_for mon.a "answer from the mon" mon_answers
    start_mgr
    start_osd
    wait_for osd.0 "OSD up" osd_up
    start_rgw
    wait_for "$RGW_NAME" "S3 on port $(running_s3_port)" s3_answers "$(running_s3_port)"
    FAILING=$RGW_NAME
    setup_user || fail_start "creating the S3 user failed (see $LOGS/cli.err)"
    setup_bucket || fail_start "creating bucket $BUCKET failed"
    log "ready: S3 on http://127.0.0.1:$(running_s3_port), bucket $BUCKET (DIR $DIR)"
    write_env
    print_env "$1"
}

note_port_mismatch() {
    local port
    port=$(running_s3_port)
    if [[ -n "${RGW_PORT:-}" && "$port" != "$RGW_PORT" ]]; then
        log "note: already running with S3 on port $port; RGW_PORT=$RGW_PORT ignored (stop it first)"
    fi
}

# ---- stop / env / status -------------------------------------------------------------

wait_gone() { # pid tenths-of-a-second
    local i
    for ((i = 0; i < $2; i++)); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

stop_one() { # name
    local pid
    pid=$(running_pid "$1") || { rm -f "$RUN/$1.pid"; return 0; }
    log "stopping $1 (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" 150; then
        log "$1 still alive after 15 s; sending KILL"
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 50 || true
    fi
    rm -f "$RUN/$1.pid"
}

cmd_stop() {
    local name
    if ! any_running; then
        log "not running (DIR $DIR)"
        return 0
    fi
    for name in $(daemons); do stop_one "$name"; done
}

cmd_env() { # export
    all_running || die "not running (DIR $DIR); use: $0 start"
    [[ -s "$ENVFILE" ]] || die "running but $ENVFILE is missing; run: $0 start"
    print_env "$1"
}

cmd_status() {
    local name pid rss port ok=0
    any_running || { log "not running (DIR $DIR)"; return 1; }
    for name in $(daemons); do
        if pid=$(running_pid "$name"); then
            rss=$(awk '/^VmRSS/ { printf "%d MiB", $2 / 1024 }' "/proc/$pid/status" 2>/dev/null) || true
            log "$name: pid $pid, ${rss:-? MiB} resident"
        else
            log "$name: not running"
            ok=1
        fi
    done
    port=$(running_s3_port)
    if s3_answers "$port"; then
        log "S3 on http://127.0.0.1:$port (DIR $DIR)"
    else
        log "S3 on port $port does not answer (DIR $DIR)"
        ok=1
    fi
    return "$ok"
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
