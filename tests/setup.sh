#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain. Idempotent: a second run
# only checks. Used by tests/run.sh (the README's test command) and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
deps=target/test-deps
mkdir -p "$deps"

# The SARIF 2.1.0 JSON Schema, to validate `meshc check --output-format sarif` against.
# Microsoft publishes it inside the @microsoft/jest-sarif npm package.
if [ ! -s "$deps/sarif-2.1.0.json" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent @microsoft/jest-sarif@1.0.0-beta.0 >/dev/null)
  tar -xzf "$tmp"/microsoft-jest-sarif-*.tgz -C "$tmp" package/lib/schemas/sarif-2.1.0-rtm.5.json
  cp "$tmp/package/lib/schemas/sarif-2.1.0-rtm.5.json" "$deps/sarif-2.1.0.json"
  rm -rf "$tmp"
fi

# Prometheus and promtool, for the observability tests (a real server scrapes mesh-proxy).
# The tests start their own server on a free loopback port; the package's service is not used.
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
