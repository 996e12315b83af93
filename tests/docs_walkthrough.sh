#!/usr/bin/env bash
# Runs the curl walk-through of docs/api.md verbatim against a fresh `shardrop serve` on
# the embedded defaults at 127.0.0.1:8080 (the address the walk-through names), with
# cross-user instant upload on as the walk-through asks (dedup.scope = all), and fails
# if any step fails or the stored file does not hash to the source's SHA-1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$(mktemp -d)
LOG="$WORK/shardrop.log"
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

cargo build --release --locked --bin shardrop -q
SHARDROP__DEDUP__SCOPE=all SHARDROP_LISTEN=127.0.0.1:8080 SHARDROP_DATA_DIR="$WORK/data" \
  "$ROOT/target/release/shardrop" serve >"$LOG" 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:8080/healthz >/dev/null && break; sleep 0.1; done

# Every ```sh block of the walk-through, in order, as one script.
python3 - "$ROOT/docs/api.md" > "$WORK/walkthrough.sh" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
section = text.split("## Walk-through with curl", 1)[1].split("\n## ", 1)[0]
print("set -euo pipefail")
for block in re.findall(r"```sh\n(.*?)```", section, re.S):
    print(block)
PY
(cd "$WORK" && bash "$WORK/walkthrough.sh") | tee "$WORK/out.txt" || { echo "--- server log"; tail -50 "$LOG"; exit 1; }
grep -qx "stored intact" "$WORK/out.txt"
grep -qx "instant" "$WORK/out.txt"
grep -qx "10" "$WORK/out.txt"
echo "docs walk-through: 1 passed, 0 failed"
