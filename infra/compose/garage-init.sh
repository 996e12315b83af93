#!/bin/sh
# Run by the garage-init service of compose.yaml: gives the single Garage node a layout,
# imports Shardrop's access key (id from .env, secret from secrets/s3_secret_key) and
# creates the bucket with that key as its owner (the backend writes the bucket's CORS and
# lifecycle rules, which needs owner rights). Every step checks first: safe to run again.
set -eu
: "${S3_BUCKET:?}" "${S3_ACCESS_KEY_ID:?}" "${GARAGE_CAPACITY:=100G}"

g() { garage -c /etc/garage.toml "$@"; }

tries=0
until g status >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 60 ]; then
        echo "garage-init: Garage does not answer after 60 s:" >&2
        g status >&2 || true
        exit 1
    fi
    sleep 1
done

version=$(g layout show | sed -n 's/^Current cluster layout version: *//p')
if [ "${version:-0}" = 0 ]; then
    node=$(g node id -q)
    node=${node%%@*}
    echo "garage-init: assigning the layout to node $(echo "$node" | cut -c1-16)"
    g layout assign -z dc1 -c "$GARAGE_CAPACITY" "$node" >/dev/null
    g layout apply --version 1 >/dev/null
fi

if ! g key info "$S3_ACCESS_KEY_ID" >/dev/null 2>&1; then
    echo "garage-init: importing access key $S3_ACCESS_KEY_ID"
    g key import -n shardrop --yes "$S3_ACCESS_KEY_ID" "$(cat /run/secrets/s3_secret_key)" >/dev/null
fi

if ! g bucket info "$S3_BUCKET" >/dev/null 2>&1; then
    echo "garage-init: creating bucket $S3_BUCKET"
    g bucket create "$S3_BUCKET" >/dev/null
fi
g bucket allow --read --write --owner "$S3_BUCKET" --key "$S3_ACCESS_KEY_ID" >/dev/null
echo "garage-init: bucket $S3_BUCKET is ready for key $S3_ACCESS_KEY_ID"
