#!/usr/bin/env bash
# mesh-proxy beside Envoy, nginx and HAProxy in one run of ../shared/bench/ (see its README).
# usage: bash tests/bench/run_peers.sh    (env: PEERS, NS, CASES, REPS as the harness takes)
set -euo pipefail
cd "$(dirname "$0")/../.."
# meshc as released; the proxy as shipped (Cargo.toml's `proxy` profile: fat LTO).
cargo build --release -p meshc
cargo build --profile proxy -p mesh-proxy
bench=../shared/bench
export CUSTOM_PEER_NAME=mesh-proxy
export CUSTOM_PEER_GEN="python3 $PWD/tests/bench/gen_repo.py {N} {dir}/repo {v1} {v2} {v3} && $PWD/target/release/meshc build {dir}/repo -o {cfg}"
# The peers' configs turn access logs off (nginx: `access_log off`), so mesh-proxy runs with
# its access log off too; metrics stay on. MESH_PROXY_FLAGS adds or overrides flags.
export CUSTOM_PEER_CMD="$PWD/target/proxy/mesh-proxy --table {cfg} --listen 127.0.0.1:{port} --admin 127.0.0.1:19911 --workers 1 --access-log off ${MESH_PROXY_FLAGS:-}"
export PEERS="${PEERS:-mesh-proxy envoy nginx}"
bash "$bench/run_peers.sh"
