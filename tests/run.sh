#!/usr/bin/env bash
# Every test of the workspace: installs what the tests need (tests/setup.sh), then runs the
# unit, snapshot, property, CLI and end-to-end tests. This is the README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
cargo test --workspace --locked
# Benchmarks are measured by hand (BENCHMARKS.md); here they only have to build.
cargo bench --workspace --locked --no-run
