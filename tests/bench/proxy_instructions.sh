#!/usr/bin/env bash
# User-space instructions per proxied request, counted by callgrind: a noise-free figure for
# comparing two mesh-proxy builds on this shared machine (wall-clock runs are not).
#
# usage: [MESHC=path] bash tests/bench/proxy_instructions.sh [PROXY_BINARY|nginx] [N] [HEADER_VALUE]
#   defaults: target/proxy/mesh-proxy (`cargo build --profile proxy -p mesh-proxy`), N=1
#   (routes of tests/bench/gen_repo.py), user-0
#   `nginx` counts nginx as the harness configures it (../shared/bench/gen_nginx.py, N map
#   entries), one process (`master_process off`), for the same requests.
#   mesh-proxy runs with `--busy-poll 0`: the spinner's idle polling is not a request's work
#   (and under callgrind's slowdown every gap looks short). MESH_PROXY_FLAGS adds flags.
#   CALLGRIND_FLAGS is passed to valgrind, e.g. "--cache-sim=yes --branch-sim=yes" for the
#   simulated cache misses (read them with callgrind_annotate on the profile printed).
# needs: valgrind, nginx (the harness's upstreams: ../shared/bench/gen_upstream.py), python3.
# It starts nginx (upstreams on 18081-18083) and the proxy under callgrind on 127.0.0.1:10083,
# sends 300 warm-up requests, zeroes the counters, sends 2,000 keep-alive requests on one
# connection, dumps, and prints total instructions / 2,000. Both processes are stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/../.."
proxy=${1:-target/proxy/mesh-proxy}
n=${2:-1}
value=${3:-user-0}
meshc=${MESHC:-target/release/meshc}
work=$(mktemp -d /tmp/mesh-instr.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
python3 ../shared/bench/gen_upstream.py -o "$work/upstream.conf"
nginx -p "$work/" -e "$work/error.log" -c "$work/upstream.conf" >"$work/upstream.log" 2>&1 &
pids+=($!)
if [ "$proxy" = nginx ]; then
  mkdir -p "$work/px"
  python3 ../shared/bench/gen_nginx.py "$n" --listen 10083 -o "$work/px.conf"
  sed -i 's/^daemon off;/daemon off;\nmaster_process off;/' "$work/px.conf"
  valgrind --tool=callgrind ${CALLGRIND_FLAGS:-} --callgrind-out-file="$work/cg.out" \
    nginx -p "$work/px/" -e "$work/px.err" -c "$work/px.conf" >"$work/proxy.log" 2>&1 &
else
  python3 tests/bench/gen_repo.py "$n" "$work/repo" 18081 18082 18083
  "$meshc" build "$work/repo" -o "$work/table.mtbl" >/dev/null
  valgrind --tool=callgrind ${CALLGRIND_FLAGS:-} --callgrind-out-file="$work/cg.out" \
    "$proxy" --table "$work/table.mtbl" --listen 127.0.0.1:10083 --admin 127.0.0.1:19911 \
    --workers 1 --access-log off --busy-poll 0 ${MESH_PROXY_FLAGS:-} >"$work/proxy.log" 2>&1 &
fi
proxy_pid=$!
pids+=($proxy_pid)
client() {
  python3 - "$1" "$value" <<'PY'
import http.client, sys
n, value = int(sys.argv[1]), sys.argv[2]
c = http.client.HTTPConnection("127.0.0.1", 10083, timeout=30)
ok = 0
for _ in range(n):
    c.request("GET", "/", headers={"x-user": value, "Host": "127.0.0.1:10083", "User-Agent": "bench"})
    r = c.getresponse(); r.read(); ok += r.status == 200
if ok != n:
    sys.exit(f"{n - ok} of {n} requests failed")
PY
}
for _ in $(seq 150); do
  curl -s -o /dev/null -H "x-user: $value" http://127.0.0.1:10083/ && break
  sleep 0.2
done
client 300
callgrind_control -z "$proxy_pid" >/dev/null 2>&1
client 2000
callgrind_control -d "$proxy_pid" >/dev/null 2>&1
sleep 0.5
total=$(callgrind_annotate "$work/cg.out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "$proxy N=$n $value: $((total / 2000)) instructions per request (callgrind, user space; profile $work/cg.out.1)"
