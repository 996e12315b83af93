#!/usr/bin/env bash
# Refreshes the README's picture, docs/screenshot.png, from the page test's screenshot of
# three finished uploads (tests/artifacts/page-finished.png). The test run writes only under
# tests/artifacts/ (ignored by git), so a run leaves the checkout as it was; refreshing the
# tracked picture is this deliberate step, after a run of scripts/test.sh or of the page
# test alone (`cd tests/e2e && node --test page.test.mjs`, after the builds test.sh makes).
set -euo pipefail
cd "$(dirname "$0")/.."
shot=tests/artifacts/page-finished.png
if [[ ! -s $shot ]]; then
    echo "$shot is missing: run scripts/test.sh (or: cd tests/e2e && node --test page.test.mjs) first" >&2
    exit 1
fi
cp "$shot" docs/screenshot.png
echo "docs/screenshot.png <- $shot (taken $(date -r "$shot" '+%Y-%m-%d %H:%M'))" >&2
git status --short -- docs/screenshot.png >&2 || true
