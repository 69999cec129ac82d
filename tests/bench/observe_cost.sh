#!/usr/bin/env bash
# What metrics and access logs cost: the release mesh-proxy with them on (metrics, JSON access
# log to a file, /metrics scraped every second) against the same binary with them off, on
# the same table and upstream, in alternating runs of one session.
#
# usage: bash tests/bench/observe_cost.sh   (env: REPS=5 DURATION=10s CONNECTIONS=32
#                                            PROXY_CPU=1 LOAD_CPU=0 PORT_BASE=18300;
#                                            ON_METRICS=on|off ON_ACCESS_LOG=file|off to
#                                            measure one of the two alone)
# Needs wrk, nginx (the upstream), taskset, curl. Everything listens on 127.0.0.1; every
# process the script starts is stopped by PID when it exits.
set -euo pipefail
cd "$(dirname "$0")/../.."

REPS="${REPS:-5}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
PROXY_CPU="${PROXY_CPU:-1}"
LOAD_CPU="${LOAD_CPU:-0}"
PORT_BASE="${PORT_BASE:-18300}"
ON_METRICS="${ON_METRICS:-on}"
ON_ACCESS_LOG="${ON_ACCESS_LOG:-file}"
UPSTREAM_PORT=$((PORT_BASE + 1))
PROXY_PORT=$((PORT_BASE + 10))
ADMIN_PORT=$((PORT_BASE + 11))

for tool in wrk nginx taskset curl python3; do
  command -v "$tool" >/dev/null || { echo "observe_cost: missing $tool" >&2; exit 1; }
done

cargo build --release --locked -p meshc >&2
cargo build --profile proxy --locked -p mesh-proxy >&2
work=$(mktemp -d /tmp/observe-cost.XXXXXX)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
# stop PID: SIGTERM, wait, and forget it (so cleanup never signals a reused PID).
stop() {
  local pid="$1" keep=() p
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${pids[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  pids=("${keep[@]}")
}

# The upstream: one nginx worker answering 200 on the load generator's core.
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  keepalive_requests 1000000000;
  server {
    listen 127.0.0.1:$UPSTREAM_PORT;
    location / { return 200 "reviews-v2\n"; }
  }
}
EOF
taskset -c "$LOAD_CPU" nginx -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" &
pids+=($!)

# The table: one header route to v2 plus the 50/50 catch-all (all three subsets on the one
# upstream), the same policy as the peer benchmark at N = 1.
python3 tests/bench/gen_repo.py 1 "$work/repo" "$UPSTREAM_PORT" "$UPSTREAM_PORT" "$UPSTREAM_PORT"
target/release/meshc build "$work/repo" -o "$work/table.mtbl" >&2

wait_for() {
  local url="$1" i
  for i in $(seq 1 100); do
    if curl -fsS -o /dev/null "$url" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "observe_cost: $url did not answer" >&2
  exit 1
}
wait_for "http://127.0.0.1:$UPSTREAM_PORT/"

# cpu_ticks PID: user + system CPU of the process (all threads), in clock ticks.
cpu_ticks() {
  awk '{print $14 + $15}' "/proc/$1/stat"
}
TICK_US=$((1000000 / $(getconf CLK_TCK)))

# run MODE: one measurement; sets RPS (requests per second) and CPU_US (proxy CPU
# microseconds per request). Not run in a subshell, so every process it starts is in `pids`
# for cleanup.
run() {
  local mode="$1" flags pid scraper out ticks requests
  if [ "$mode" = on ]; then
    flags=(--metrics "$ON_METRICS" --access-log "$work/access.log")
    if [ "$ON_ACCESS_LOG" = off ]; then flags=(--metrics "$ON_METRICS" --access-log off); fi
  else
    flags=(--metrics off --access-log off)
  fi
  rm -f "$work/access.log"
  taskset -c "$PROXY_CPU" target/proxy/mesh-proxy --table "$work/table.mtbl" \
    --listen "127.0.0.1:$PROXY_PORT" --admin "127.0.0.1:$ADMIN_PORT" --workers 1 \
    --workload-name bench --workload-namespace default "${flags[@]}" \
    >/dev/null 2>>"$work/proxy.log" &
  pid=$!
  pids+=("$pid")
  wait_for "http://127.0.0.1:$ADMIN_PORT/healthz/ready"
  curl -fsS -o /dev/null -H 'x-user: user-0' "http://127.0.0.1:$PROXY_PORT/"
  scraper=""
  if [ "$mode" = on ] && [ "$ON_METRICS" = on ]; then
    # What a Prometheus server does: scrape every second for the whole run.
    (while sleep 1; do curl -fsS -o /dev/null "http://127.0.0.1:$ADMIN_PORT/metrics" || true; done) &
    scraper=$!
    pids+=("$scraper")
  fi
  # Warm-up, then the measured run.
  taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d2s -H 'x-user: user-0' \
    "http://127.0.0.1:$PROXY_PORT/" >/dev/null
  ticks=$(cpu_ticks "$pid")
  out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -H 'x-user: user-0' \
    "http://127.0.0.1:$PROXY_PORT/")
  ticks=$(( $(cpu_ticks "$pid") - ticks ))
  RPS=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  CPU_US=$(python3 -c "print(f'{$ticks * $TICK_US / max($requests, 1):.1f}')")
  if [ "$mode" = on ]; then
    if [ -n "$scraper" ]; then stop "$scraper"; fi
    # Sanity: the requests were counted and logged (warm-up and check request included).
    local counted lines
    counted=$({ curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" 2>/dev/null || true; } |
      awk '/^istio_requests_total\{/ {s += $NF} END {printf "%d", s}')
    sleep 1
    lines=0
    if [ -f "$work/access.log" ]; then lines=$(wc -l <"$work/access.log"); fi
    echo "  on: istio_requests_total=$counted access_log_lines=$lines" >&2
  fi
  stop "$pid"
}

declare -a on_runs off_runs on_cpu off_cpu
for rep in $(seq 1 "$REPS"); do
  # Alternate the order each round so drift on the shared machine hits both sides.
  if [ $((rep % 2)) -eq 1 ]; then order=(off on); else order=(on off); fi
  for mode in "${order[@]}"; do
    run "$mode"
    echo "rep $rep $mode: $RPS req/s, $CPU_US us CPU/req" >&2
    if [ "$mode" = on ]; then
      on_runs+=("$RPS")
      on_cpu+=("$CPU_US")
    else
      off_runs+=("$RPS")
      off_cpu+=("$CPU_US")
    fi
  done
done

python3 - "${off_runs[*]}" "${on_runs[*]}" "${off_cpu[*]}" "${on_cpu[*]}" <<'EOF'
import statistics, sys
off, on, off_cpu, on_cpu = ([float(x) for x in a.split()] for a in sys.argv[1:5])
med = statistics.median
def runs(xs, fmt):
    return ", ".join(fmt.format(x) for x in xs)
print(f"off (metrics and access log off):       median {med(off):,.0f} req/s, {med(off_cpu):.1f} us CPU/req  (runs {runs(off, '{:,.0f}')}; {runs(off_cpu, '{:.1f}')})")
print(f"on  (metrics, access log, 1 s scrapes): median {med(on):,.0f} req/s, {med(on_cpu):.1f} us CPU/req  (runs {runs(on, '{:,.0f}')}; {runs(on_cpu, '{:.1f}')})")
print(f"throughput on/off: {med(on) / med(off):.3f} (per round {runs([b / a for a, b in zip(off, on)], '{:.3f}')})")
print(f"CPU per request on/off: {med(on_cpu) / med(off_cpu):.3f} (per round {runs([b / a for a, b in zip(off_cpu, on_cpu)], '{:.3f}')})")
EOF
