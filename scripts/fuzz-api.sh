#!/usr/bin/env bash
# Property-based fuzz of the REST API: schemathesis generates requests from the served
# OpenAPI document (/api/v1/openapi.json) and checks every answer against it. It runs
# against a fresh `shardrop serve` on the embedded defaults (SQLite, in-process tracker,
# local object store) on a free 127.0.0.1 port with a temp data dir, deleted at exit.
#
# Why: the document is generated from annotations beside the handlers, and nothing else
# checks that the two agree. This fails on any 5xx, any answer whose status, content type,
# headers or body the document does not declare, any schema-invalid request that is not
# refused with a 4xx, and any schema-valid one that is refused (see CHECKS below), over
# at least MIN_CASES generated requests. The seed is fixed, so a failure reproduces.
#
# It runs as one account (made here, with a session whose token goes on every request), so
# the routes that need a token are fuzzed past the 401; `ignored_auth` checks that each of
# them refuses a request without it. Logging out (`delete_session`, and signing out
# everywhere, `delete_all_sessions`) is left out: it would end the fuzzer's own session
# half-way.
#
# Usage: scripts/fuzz-api.sh (needs target/release/shardrop: cargo build --release --bin shardrop)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SCHEMATHESIS_VERSION=4.32.5
SEED=${SHARDROP_FUZZ_SEED:-20261122}
# Per operation and phase; the operations (all but the two sign-outs) come to a few thousand cases.
EXAMPLES=${SHARDROP_FUZZ_EXAMPLES:-200}
MIN_CASES=1000
# The whole run takes well under a minute here; this only stops a hung one.
TIME_LIMIT=270

VENV="${SHARDROP_CACHE:-$HOME/.cache/shardrop}/venv-schemathesis"
if [ "$("$VENV/bin/schemathesis" --version 2>/dev/null)" != "schemathesis, version $SCHEMATHESIS_VERSION" ]; then
    echo "installing schemathesis $SCHEMATHESIS_VERSION into $VENV" >&2
    python3 -m venv --clear "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

BIN="$ROOT/target/release/shardrop"
[ -x "$BIN" ] || { echo "fuzz-api: $BIN is missing: cargo build --release --bin shardrop" >&2; exit 1; }

WORK=$(mktemp -d)
cleanup() {
    if [ -n "${PID:-}" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
# The embedded defaults: no SHARDROP__* setting from the caller's environment applies. But
# for the sign-up and login limit, off: the fuzzer signs up and logs in thousands of times
# from one address, and would spend the run waiting on 429s.
mapfile -t UNSET < <(env | sed -n 's/^\(SHARDROP__[A-Za-z0-9_]*\)=.*/-u\n\1/p')
env "${UNSET[@]}" SHARDROP_LISTEN="127.0.0.1:$PORT" SHARDROP_DATA_DIR="$WORK/data" \
    SHARDROP__HTTP__AUTH_RATE_PER_MINUTE=0 \
    "$BIN" serve >"$WORK/shardrop.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do
    curl -sf "$BASE/readyz" >/dev/null && break
    kill -0 "$PID" 2>/dev/null || { echo "fuzz-api: the server exited"; cat "$WORK/shardrop.log"; exit 1; }
    sleep 0.1
done
curl -sf "$BASE/readyz" >/dev/null || { echo "fuzz-api: the server is not ready"; tail -50 "$WORK/shardrop.log"; exit 1; }

# The fuzzer's account and session: its token goes on every request (-H below), and the
# seeding acts as the same account, so that the seeded ids are ones the fuzzer may see.
# Ids that exist, for half of the requests to routes with an id in their path (the other
# half get generated ids): two stored files, uploaded through the API itself (create, sign,
# PUT, report), since a file's bytes go to a signed URL the document does not describe;
# and two open uploads of 3 parts, none sent. DELETE gets its own of each, so the other
# routes keep seeing theirs.
SEEDED=$("$VENV/bin/python" - "$BASE/api/v1" <<'PY'
import base64, hashlib, json, secrets, sys, urllib.request

api = sys.argv[1]
auth = {}

def call(method, url, body=None, headers=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    h = {"content-type": "application/json"} if body is not None else {}
    req = urllib.request.Request(url, data=data, method=method, headers={**h, **(headers or {})})
    with urllib.request.urlopen(req) as r:
        return r.headers, r.read()

def api_call(method, path, body=None):
    """A call to the API as the fuzzer's account (part PUTs go to signed URLs, without it)."""
    return call(method, f"{api}{path}", body, headers=auth)

def upload(content):
    _, up = api_call("POST", "/uploads", {"name": "fuzz-seed.txt", "size": len(content)})
    up = json.loads(up)
    sha1 = base64.b64encode(hashlib.sha1(content).digest()).decode()
    _, signed = api_call("POST", f"/uploads/{up['upload_id']}/parts/sign",
                         {"parts": [{"number": 1, "sha1": sha1, "size": len(content)}]})
    part = json.loads(signed)["parts"][0]
    headers, _ = call(part["method"], part["url"], headers=part["headers"], raw=content)
    _, answer = api_call("PUT", f"/uploads/{up['upload_id']}/parts/1", {"etag": headers["etag"], "sha1": sha1})
    return json.loads(answer)["file"]["file_id"]

def open_upload(name, size=20 << 20):
    _, up = api_call("POST", "/uploads", {"name": name, "size": size})
    up = json.loads(up)
    last = size - (up["part_count"] - 1) * up["part_size"]
    return up["upload_id"], up["part_count"], up["part_size"], last

credentials = {"username": "fuzzer", "password": secrets.token_urlsafe(16)}
api_call("POST", "/users", credentials)
_, session = api_call("POST", "/sessions", credentials)
token = json.loads(session)["token"]
auth["authorization"] = f"Bearer {token}"

(open_id, parts, part_size, last), aborted = open_upload("fuzz-open.bin"), open_upload("fuzz-aborted.bin")
# One a line: the token, then TOML values for the config below.
print(token)
for value in (upload(b"kept by the API fuzz\n"), upload(b"deleted by the API fuzz\n"), open_id, aborted[0]):
    print(json.dumps([value]))
print(json.dumps(list(range(1, parts + 1))))
print(json.dumps(sorted({part_size, last})))
PY
) || { echo "fuzz-api: could not sign up or store the seed files"; tail -50 "$WORK/shardrop.log"; exit 1; }
{ read -r TOKEN; read -r FILE_KEPT; read -r FILE_DELETED; read -r UPLOAD_OPEN; read -r UPLOAD_ABORTED
  read -r PART_NUMBERS; read -r PART_SIZES; } <<<"$SEEDED"

# What each check means here, and why two are left out:
# - not_a_server_error: no 5xx, whatever the request.
# - status_code_conformance, content_type_conformance, response_headers_conformance,
#   response_schema_conformance: every answer is one the document declares, in full.
# - negative_data_rejection: a request the schema forbids (wrong type, unknown field, a
#   digest that is not one, a part number 0) is refused with a 4xx. Right for this API:
#   every body and parameter is parsed into validated types at the edge.
# - positive_data_acceptance: a request the schema allows is not refused with a 400 or
#   422. Except for five operations, whose 422s depend on state the schema cannot carry:
#   signing and reporting a part must fit the upload's plan (which part numbers exist and
#   how long each is), and so must the parts a start asks to sign (`parts` of
#   `create_upload`); and a list cursor must be one this server gave out.
# - unsupported_method, allow_header_conformance: another method is 405 with `Allow`.
# - use_after_free, ensure_resource_availability (stateful): a deleted upload or file is
#   gone, a created one is there.
# - missing_required_header: the API requires no header parameter (the bearer token is a
#   security scheme, not a parameter); checked so that stays true.
# - ignored_auth: every operation the document says needs the bearer token answers 401 (or
#   403) without it, and with a wrong one.
# Left out: object_level_authorization (it needs a second account configured in the fuzzer;
# the API's and the browser tests check that one account never sees another's uploads and
# files), and max_response_time (timing on a shared machine).
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance
CHECKS=$CHECKS,response_schema_conformance,negative_data_rejection,positive_data_acceptance
CHECKS=$CHECKS,unsupported_method,allow_header_conformance,use_after_free,ensure_resource_availability
CHECKS=$CHECKS,missing_required_header,ignored_auth

cat >"$WORK/schemathesis.toml" <<TOML
# The defaults, and 413: a \`size\` over the maximum is \`413 file-too-large\` (as tus answers
# an Upload-Length over its limit), a body over \`http.json_limit\` \`413 body-too-large\`.
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]

# Sequences of calls that follow the document's links (create -> sign -> report -> complete,
# delete -> get): more of them than the default, as they reach states single calls do not.
[phases.stateful]
max-steps = 10
generation = { max-examples = $EXAMPLES }

[dictionaries]
file-kept = { values = $FILE_KEPT }
file-deleted = { values = $FILE_DELETED }
upload-open = { values = $UPLOAD_OPEN }
upload-aborted = { values = $UPLOAD_ABORTED }
# The open upload's plan: its part numbers, and the lengths they have.
part-numbers = { values = $PART_NUMBERS }
part-sizes = { values = $PART_SIZES }

[[operations]]
include-operation-id = ["get_file", "download_file", "download_url"]
parameters = { "path.file_id" = { dictionary = "file-kept", probability = 0.5 } }

[[operations]]
include-operation-id = "delete_file"
parameters = { "path.file_id" = { dictionary = "file-deleted", probability = 0.5 } }

[[operations]]
include-path-regex = "^/api/v1/uploads/"
exclude-operation-id = ["abort_upload", "sign_parts"]
parameters = { "path.upload_id" = { dictionary = "upload-open", probability = 0.5 } }

# So that some signing requests fit the open upload's plan and are signed.
[[operations]]
include-operation-id = "sign_parts"
parameters = { "path.upload_id" = { dictionary = "upload-open", probability = 0.5 }, "body.parts[*].number" = { dictionary = "part-numbers", probability = 0.5 }, "body.parts[*].size" = { dictionary = "part-sizes", probability = 0.5 } }

[[operations]]
include-operation-id = "abort_upload"
parameters = { "path.upload_id" = { dictionary = "upload-aborted", probability = 0.5 } }

# A schema-valid request may still not fit the upload's plan, or carry a cursor this
# server never gave out: 422 there is the right answer, not a refusal of valid data.
[[operations]]
include-operation-id = ["sign_parts", "report_part", "create_upload", "list_files", "list_uploads"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
TOML

set +e
(cd "$WORK" && timeout "$TIME_LIMIT" "$VENV/bin/schemathesis" --config-file "$WORK/schemathesis.toml" --no-color \
    run "$BASE/api/v1/openapi.json" --url "$BASE" \
    -H "Authorization: Bearer $TOKEN" --exclude-operation-id delete_session \
    --exclude-operation-id delete_all_sessions \
    --checks "$CHECKS" --seed "$SEED" --max-examples "$EXAMPLES" --workers 1 \
    --generation-database none --request-timeout 10 --max-redirects 0) | tee "$WORK/out.txt"
STATUS=${PIPESTATUS[0]}
set -e
# What the requests reached, from the server's own counters (405s, one per route and
# method, left out).
echo "fuzz-api: answers by route, method and status:"
curl -sf "$BASE/metrics" | sed -n 's/^shardrop_http_requests_total{\(.*\)} \([0-9]*\)$/  \2 \1/p' \
    | grep -v 'status="405"' | sort -k2 || true
CASES=$(sed -n 's/^ *\([0-9][0-9]*\) generated.*/\1/p' "$WORK/out.txt" | tail -1)
echo "fuzz-api: ${CASES:-no} generated test cases (at least $MIN_CASES needed), schemathesis exit $STATUS"
if [ "$STATUS" -ne 0 ] || [ "${CASES:-0}" -lt "$MIN_CASES" ]; then
    echo "--- server log (last 50 lines)"
    tail -50 "$WORK/shardrop.log"
    echo "API fuzz: 0 passed, 1 failed"
    exit 1
fi
echo "API fuzz: 1 passed, 0 failed"
