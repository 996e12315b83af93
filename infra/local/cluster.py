#!/usr/bin/env python3
"""A whole Shardrop deployment on 127.0.0.1, for the fault tests and for people.

Three Garage nodes (replication factor 3) behind nginx as the S3 endpoint the replicas
presign for; three `shardrop serve` replicas behind nginx round-robin with no stickiness;
the machine's PostgreSQL and Redis.

  infra/local/cluster.py start [--export|--json] [DIR]  start whatever is not running; print env
  infra/local/cluster.py env [--export|--json] [DIR]    print the env of a running cluster
  infra/local/cluster.py status [DIR]                   one line per process (exit 1 if any is down)
  infra/local/cluster.py kill NAME [DIR]                SIGKILL one process: garage-2, replica-1, nginx
  infra/local/cluster.py stop [DIR]                     stop exactly the processes start started
  infra/local/cluster.py destroy [DIR]                  stop, drop the database and Redis keys, delete DIR

DIR defaults to target/cluster. Everything lives in it: configs, Garage's data, one log per
process in DIR/logs, and DIR/run/NAME.pid holding each process's pid and start time (so stop
never signals a process it did not start, even if a pid was reused). `start` after `kill`
restarts just the killed process, which is how the fault tests bring a node back.

Read at the first start and kept in DIR/cluster.json: CLUSTER_PORT_BASE (4100: API 4100,
S3 4101, replicas 4111-4113, Garage S3 4121-4123, RPC 4131-4133, admin 4141-4143),
CLUSTER_DATABASE_URL (postgres://postgres@127.0.0.1:5432/shardrop_cluster; created if
missing), CLUSTER_REDIS_URL (redis://127.0.0.1:6379), and every SHARDROP__* variable, which
goes to each replica. Binaries: SHARDROP_BIN (target/release/shardrop), GARAGE_BIN (as
infra/garage/dev.sh finds it), NGINX_BIN (nginx on PATH or /usr/sbin/nginx).
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NODES = (1, 2, 3)
START_TIMEOUT = float(os.environ.get("CLUSTER_START_TIMEOUT", "60"))


def log(msg):
    print(f"cluster: {msg}", file=sys.stderr, flush=True)


def die(msg):
    log(f"error: {msg}")
    sys.exit(1)


# ---- settings, kept in DIR/cluster.json from the first start ----------------------------


def first_settings(d):
    base = int(os.environ.get("CLUSTER_PORT_BASE", "4100"))
    return {
        "ports": {
            "api": base,
            "s3": base + 1,
            "replica": {str(i): base + 10 + i for i in NODES},
            "garage_s3": {str(i): base + 20 + i for i in NODES},
            "garage_rpc": {str(i): base + 30 + i for i in NODES},
            "garage_admin": {str(i): base + 40 + i for i in NODES},
        },
        "database_url": os.environ.get(
            "CLUSTER_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/shardrop_cluster"
        ),
        "redis_url": os.environ.get("CLUSTER_REDIS_URL", "redis://127.0.0.1:6379"),
        "redis_prefix": f"shardrop-cluster-{secrets.token_hex(4)}",
        "bucket": "shardrop",
        "region": "garage",
        "key_id": "GK" + secrets.token_hex(12),
        "key_secret": secrets.token_hex(32),
        "rpc_secret": secrets.token_hex(32),
        "admin_token": secrets.token_hex(32),
        "replica_env": {k: v for k, v in os.environ.items() if k.startswith("SHARDROP__")},
        "node_ids": {},
        "setup_done": False,
    }


def load_settings(d, create):
    path = d / "cluster.json"
    if path.exists():
        return json.loads(path.read_text())
    if not create:
        die(f"no cluster in {d} (start one with: {sys.argv[0]} start {d})")
    d.mkdir(parents=True, exist_ok=True)
    s = first_settings(d)
    save_settings(d, s)
    return s


def save_settings(d, s):
    tmp = d / "cluster.json.tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        json.dump(s, f, indent=2)
    tmp.replace(d / "cluster.json")


# ---- processes: pid + start time in DIR/run/NAME.pid --------------------------------------


def start_time(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command may hold spaces or parentheses: fields start after the last ')'.
    return stat.rsplit(")", 1)[1].split()[19]


def running(d, name):
    """The pid of NAME if the process this cluster started is still alive."""
    try:
        pid, started = (d / "run" / f"{name}.pid").read_text().split()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None  # no record, or the process is gone (even between two reads)
    # fields[0] is the state (Z: a zombie, dead already); fields[19] the start time.
    if fields[19] != started or fields[0] == "Z":
        return None
    return int(pid)


def launch(d, name, argv, env=None):
    (d / "run").mkdir(exist_ok=True)
    (d / "logs").mkdir(exist_ok=True)
    logf = open(d / "logs" / f"{name}.log", "ab")
    logf.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} starting {argv[0]}\n".encode())
    logf.flush()
    p = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    for _ in range(100):
        if start_time(p.pid):
            break
        time.sleep(0.01)
    (d / "run" / f"{name}.pid").write_text(f"{p.pid} {start_time(p.pid)}\n")
    return p


def stop_process(d, name, sig=signal.SIGTERM, grace=10.0):
    pid = running(d, name)
    if pid is None:
        (d / "run" / f"{name}.pid").unlink(missing_ok=True)
        return False
    os.kill(pid, sig)
    deadline = time.monotonic() + grace
    while running(d, name) and time.monotonic() < deadline:
        time.sleep(0.05)
    if running(d, name):
        log(f"{name} (pid {pid}) still alive after {grace:.0f} s: SIGKILL")
        kill_group(pid)
        while running(d, name):
            time.sleep(0.05)
    (d / "run" / f"{name}.pid").unlink(missing_ok=True)
    return True


def kill_group(pid):
    """SIGKILL a process and its children (nginx's workers): each runs in a session of its own."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_until(what, check, procs=(), timeout=START_TIMEOUT):
    deadline = time.monotonic() + timeout
    while not check():
        for name, p in procs:
            if p.poll() is not None:
                die(f"{name} exited (status {p.returncode}) while waiting for {what}; see its log")
        if time.monotonic() > deadline:
            die(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


# ---- Garage ----------------------------------------------------------------------------


def garage_bin():
    b = os.environ.get("GARAGE_BIN") or shutil.which("garage")
    if not b:
        cache = Path(os.environ.get("SHARDROP_CACHE", Path.home() / ".cache/shardrop"))
        b = str(cache / "tools/bin/garage")
    if not os.access(b, os.X_OK):
        die(f"no garage binary at {b} (run scripts/install-tools.sh garage, or set GARAGE_BIN)")
    return b


def garage_config(d, s, i):
    p = s["ports"]
    node = d / f"garage-{i}"
    (node / "meta").mkdir(parents=True, exist_ok=True)
    (node / "data").mkdir(parents=True, exist_ok=True)
    peers = [f"{nid}@127.0.0.1:{p['garage_rpc'][n]}" for n, nid in sorted(s["node_ids"].items()) if n != str(i)]
    cfg = node / "garage.toml"
    text = f"""# Written by infra/local/cluster.py at each start.
metadata_dir = "{node}/meta"
data_dir = "{node}/data"
db_engine = "sqlite"
replication_factor = 3
rpc_bind_addr = "127.0.0.1:{p['garage_rpc'][str(i)]}"
rpc_public_addr = "127.0.0.1:{p['garage_rpc'][str(i)]}"
rpc_secret = "{s['rpc_secret']}"
# Full ids of the other nodes: a restarted node rejoins at once instead of after a minute.
bootstrap_peers = {json.dumps(peers)}

[s3_api]
s3_region = "{s['region']}"
api_bind_addr = "127.0.0.1:{p['garage_s3'][str(i)]}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{p['garage_admin'][str(i)]}"
admin_token = "{s['admin_token']}"
"""
    with open(os.open(cfg, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(text)
    return cfg


def garage_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("GARAGE_") and k != "RUST_LOG"}
    env["RUST_LOG"] = "garage=info,garage_net=warn"
    env["NO_COLOR"] = "1"
    return env


def g(d, i, *args, check=True):
    cfg = d / f"garage-{i}" / "garage.toml"
    env = garage_env()
    env["RUST_LOG"] = "warn"
    r = subprocess.run([garage_bin(), "-c", str(cfg), *args], capture_output=True, text=True, env=env)
    if check and r.returncode != 0:
        die(f"garage {' '.join(args)} (node {i}) failed: {r.stderr.strip() or r.stdout.strip()}")
    return r


def garage_answers(d, i):
    return g(d, i, "status", check=False).returncode == 0


def setup_garage(d, s):
    """First start only: connect the nodes, lay out three zones, import the key, make the bucket."""
    for i in NODES:
        out = g(d, i, "node", "id", "-q").stdout.strip().splitlines()[0]
        s["node_ids"][str(i)] = out.split("@")[0]
    for i in (2, 3):
        g(d, 1, "node", "connect", f"{s['node_ids'][str(i)]}@127.0.0.1:{s['ports']['garage_rpc'][str(i)]}")
    wait_until("the Garage nodes to see each other", lambda: g(d, 1, "status").stdout.count("127.0.0.1:") >= 3)
    for i in NODES:
        g(d, 1, "layout", "assign", "-z", f"dc{i}", "-c", "2G", s["node_ids"][str(i)])
    g(d, 1, "layout", "apply", "--version", "1")
    g(d, 1, "key", "import", "-n", "shardrop-cluster", "--yes", s["key_id"], s["key_secret"])
    g(d, 1, "bucket", "create", s["bucket"])
    g(d, 1, "bucket", "allow", "--read", "--write", "--owner", s["bucket"], "--key", s["key_id"])
    # Every node must know the bucket before the replicas (which check it) start.
    wait_until("the bucket on every node", lambda: all(g(d, i, "bucket", "info", s["bucket"], check=False).returncode == 0 for i in NODES))
    save_settings(d, s)


# ---- PostgreSQL and Redis -----------------------------------------------------------------


def ensure_database(url):
    u = urllib.parse.urlparse(url)
    name = u.path.lstrip("/")
    admin = u._replace(path="/postgres").geturl()
    if not shutil.which("psql"):
        log(f"no psql on PATH: assuming database {name} exists")
        return
    q = subprocess.run(
        ["psql", admin, "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"], capture_output=True, text=True
    )
    if q.returncode != 0:
        die(f"PostgreSQL at {admin} does not answer: {q.stderr.strip()} (scripts/services.sh starts one)")
    if q.stdout.strip() != "1":
        subprocess.run(["psql", admin, "-qc", f'CREATE DATABASE "{name}"'], check=True, capture_output=True)
        log(f"created database {name}")


def drop_database(url):
    u = urllib.parse.urlparse(url)
    name = u.path.lstrip("/")
    if shutil.which("psql"):
        admin = u._replace(path="/postgres").geturl()
        subprocess.run(["psql", admin, "-qc", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], capture_output=True)


def drop_redis_keys(url, prefix):
    if not shutil.which("redis-cli"):
        return
    keys = subprocess.run(["redis-cli", "-u", url, "--scan", "--pattern", f"{prefix}*"], capture_output=True, text=True)
    names = keys.stdout.split()
    for i in range(0, len(names), 500):
        subprocess.run(["redis-cli", "-u", url, "del", *names[i : i + 500]], capture_output=True)


# ---- replicas and nginx -------------------------------------------------------------------


def shardrop_bin():
    b = os.environ.get("SHARDROP_BIN") or str(ROOT / "target/release/shardrop")
    if not os.access(b, os.X_OK):
        die(f"no shardrop binary at {b} (cargo build --release --bin shardrop, or set SHARDROP_BIN)")
    return b


def replica_env(d, s, i):
    p = s["ports"]
    secret = d / "s3-secret"
    if not secret.exists():
        with open(os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(s["key_secret"] + "\n")
    api = f"127.0.0.1:{p['api']}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARDROP")}
    env.update(
        {
            "SHARDROP_LISTEN": f"127.0.0.1:{p['replica'][str(i)]}",
            "SHARDROP_DATA_DIR": str(d / f"replica-{i}"),
            "SHARDROP_LOG": os.environ.get("CLUSTER_LOG", "info"),
            "SHARDROP__DATABASE__URL": s["database_url"],
            "SHARDROP__TRACKER__KIND": "redis",
            "SHARDROP__TRACKER__REDIS_URL": s["redis_url"],
            "SHARDROP__TRACKER__PREFIX": s["redis_prefix"],
            "SHARDROP__STORAGE__KIND": "s3",
            "SHARDROP__STORAGE__S3__ENDPOINT": f"http://127.0.0.1:{p['s3']}",
            "SHARDROP__STORAGE__S3__REGION": s["region"],
            "SHARDROP__STORAGE__S3__BUCKET": s["bucket"],
            "SHARDROP__STORAGE__S3__ACCESS_KEY_ID": s["key_id"],
            "SHARDROP__STORAGE__S3__SECRET_ACCESS_KEY_FILE": str(secret),
            "SHARDROP__STORAGE__S3__CORS_ORIGINS": f"[http://{api},http://localhost:{p['api']}]",
            # nginx sets X-Real-IP: rate limits count each client, not nginx.
            "SHARDROP__HTTP__CLIENT_IP_HEADER": "x-real-ip",
        }
    )
    if (ROOT / "www/dist/index.html").exists():
        env["SHARDROP__WEB_DIR"] = str(ROOT / "www/dist")
    env.update(s["replica_env"])
    (d / f"replica-{i}").mkdir(exist_ok=True)
    return env


def ready(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def nginx_bin():
    b = os.environ.get("NGINX_BIN") or shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(b, os.X_OK):
        die(f"no nginx at {b} (apt-get install nginx-light; scripts/install-tools.sh nginx)")
    return b


def nginx_config(d, s):
    p = s["ports"]
    text = (ROOT / "infra/local/nginx.conf").read_text()
    values = {"RUN": d / "run", "LOGS": d / "logs", "API_PORT": p["api"], "S3_PORT": p["s3"]}
    for i in NODES:
        values[f"REPLICA_{i}"] = p["replica"][str(i)]
        values[f"GARAGE_{i}"] = p["garage_s3"][str(i)]
    for k, v in values.items():
        text = text.replace(f"@{k}@", str(v))
    (d / "run").mkdir(exist_ok=True)
    (d / "logs").mkdir(exist_ok=True)
    cfg = d / "nginx.conf"
    cfg.write_text(text)
    return cfg


# ---- commands -----------------------------------------------------------------------------


def names():
    return [f"garage-{i}" for i in NODES] + ["nginx"] + [f"replica-{i}" for i in NODES]


def check_port_free(port, name):
    if port_open(port):
        die(f"port {port} ({name}) is taken on 127.0.0.1: another cluster? set CLUSTER_PORT_BASE")


def cmd_start(d):
    s = load_settings(d, create=True)
    p = s["ports"]
    started = []
    for i in NODES:
        name = f"garage-{i}"
        if running(d, name) is None:
            check_port_free(p["garage_rpc"][str(i)], name)
            cfg = garage_config(d, s, i)
            started.append((name, launch(d, name, [garage_bin(), "-c", str(cfg), "server"], garage_env())))
    for i in NODES:
        wait_until(f"garage-{i}", lambda i=i: garage_answers(d, i), started)
    if not s["setup_done"]:
        setup_garage(d, s)
        for i in NODES:  # now every config can name every peer
            garage_config(d, s, i)
        ensure_database(s["database_url"])
        s["setup_done"] = True
        save_settings(d, s)
    if running(d, "nginx") is None:
        check_port_free(p["api"], "nginx")
        cfg = nginx_config(d, s)
        started.append(("nginx", launch(d, "nginx", [nginx_bin(), "-p", str(d), "-c", str(cfg)])))
        wait_until("nginx", lambda: port_open(p["api"]) and port_open(p["s3"]), started)
    replicas = []
    for i in NODES:
        name = f"replica-{i}"
        if running(d, name) is None:
            check_port_free(p["replica"][str(i)], name)
            proc = launch(d, name, [shardrop_bin(), "serve"], replica_env(d, s, i))
            replicas.append((name, proc))
            started.append((name, proc))
    for name, _ in replicas:
        port = p["replica"][name.split("-")[1]]
        wait_until(f"{name} to be ready", lambda port=port: ready(port), started)
    if started:
        log("started " + ", ".join(n for n, _ in started) + f"; API http://127.0.0.1:{p['api']}, logs in {d}/logs")
    return s


def env_of(s):
    p = s["ports"]
    return {
        "CLUSTER_API": f"http://127.0.0.1:{p['api']}",
        "CLUSTER_S3": f"http://127.0.0.1:{p['s3']}",
        "CLUSTER_REPLICAS": ",".join(f"http://127.0.0.1:{p['replica'][str(i)]}" for i in NODES),
        "CLUSTER_GARAGE_S3": ",".join(f"http://127.0.0.1:{p['garage_s3'][str(i)]}" for i in NODES),
        "CLUSTER_DATABASE_URL": s["database_url"],
        "CLUSTER_REDIS_URL": s["redis_url"],
        "CLUSTER_REDIS_PREFIX": s["redis_prefix"],
        "CLUSTER_S3_REGION": s["region"],
        "CLUSTER_S3_BUCKET": s["bucket"],
        "CLUSTER_S3_ACCESS_KEY_ID": s["key_id"],
        "CLUSTER_S3_SECRET_ACCESS_KEY": s["key_secret"],
    }


def print_env(s, fmt):
    env = env_of(s)
    if fmt == "json":
        print(json.dumps(env))
    else:
        for k, v in env.items():
            print(f"{'export ' if fmt == 'export' else ''}{k}={v}")


def cmd_stop(d):
    if not (d / "cluster.json").exists():
        log(f"no cluster in {d}")
        return
    # The front first, so nothing new arrives; Garage last, so replicas can finish writes.
    for name in ["nginx"] + [f"replica-{i}" for i in NODES] + [f"garage-{i}" for i in NODES]:
        if stop_process(d, name):
            log(f"stopped {name}")


def cmd_status(d):
    s = load_settings(d, create=False)
    down = 0
    for name in names():
        pid = running(d, name)
        down += pid is None
        print(f"{name:10} {'pid ' + str(pid) if pid else 'down'}")
    print(f"API http://127.0.0.1:{s['ports']['api']}  S3 http://127.0.0.1:{s['ports']['s3']}  logs {d}/logs")
    return 1 if down else 0


def cmd_kill(d, name):
    if name not in names():
        die(f"no process {name!r}; one of {', '.join(names())}")
    pid = running(d, name)
    if pid is None:
        die(f"{name} is not running")
    kill_group(pid)
    while running(d, name):
        time.sleep(0.02)
    log(f"killed {name} (pid {pid})")


def cmd_destroy(d):
    if not (d / "cluster.json").exists():
        shutil.rmtree(d, ignore_errors=True)
        return
    s = load_settings(d, create=False)
    cmd_stop(d)
    drop_database(s["database_url"])
    drop_redis_keys(s["redis_url"], s["redis_prefix"])
    shutil.rmtree(d, ignore_errors=True)
    log(f"destroyed {d}")


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    cmd, rest = argv[0], argv[1:]
    fmt = "plain"
    for flag in ("--export", "--json"):
        if flag in rest:
            fmt = flag[2:]
            rest.remove(flag)
    target = None
    if cmd == "kill":
        if not rest:
            die("kill needs a NAME")
        target = rest.pop(0)
    d = Path(rest[0] if rest else ROOT / "target/cluster").resolve()
    if cmd == "start":
        print_env(cmd_start(d), fmt)
    elif cmd == "env":
        print_env(load_settings(d, create=False), fmt)
    elif cmd == "status":
        return cmd_status(d)
    elif cmd == "kill":
        cmd_kill(d, target)
    elif cmd == "stop":
        cmd_stop(d)
    elif cmd == "destroy":
        cmd_destroy(d)
    else:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
