#!/usr/bin/env bash
# User and system CPU time per request of one proxy under load, from /proc/PID/stat: where
# the proxy's time goes, user space or kernel (the harness reports only their sum).
#
# usage: [N=1] [VALUE=user-0] [DURATION=5] [CONNS=32] bash tests/bench/cpu_split.sh mesh-proxy|nginx
# Upstreams (../shared/bench/gen_upstream.py, nginx) and wrk -t1 -c$CONNS on CPU 0, the proxy on
# CPU 1 (mesh-proxy from PROXY, default target/proxy/mesh-proxy (`cargo build --profile proxy
# -p mesh-proxy`), --workers 1 --access-log off and MESH_PROXY_FLAGS, or nginx from ../shared/bench/gen_nginx.py),
# N header routes, requests with `x-user: VALUE`. Prints req/s and user and system us per
# request (the process's threads together), minor page faults per request, and wrk's p50,
# p90 and p99, and the steal time of the machine's cores. Every process is stopped by PID.
#   SYSCALLS=1: system calls per request by kind and context switches, counted at full speed
#   by the kernel's tracepoints (perf stat; needs root or perf_event_paranoid <= -1).
#   STRACE=1: the same from strace -c, which slows the proxy about tenfold.
#   THINK_MS=n: each connection waits between a response and its next request, a whole number
#   of ms drawn uniformly from 0..2n (random, so that the connections do not move in step), so
#   the offered load (about CONNS / (n ms + latency)) is the same for every proxy and below
#   what the cores can take: the latencies are then the proxy's more than the queue of the load
#   generator's core. Prints p99.9 as well.
set -euo pipefail
cd "$(dirname "$0")/../.."
peer=${1:?usage: cpu_split.sh mesh-proxy|nginx}
n=${N:-1}
value=${VALUE:-user-0}
duration=${DURATION:-5}
conns=${CONNS:-32}
work=$(mktemp -d /tmp/mesh-cpu-split.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
mkdir -p "$work/up" "$work/px"
python3 ../shared/bench/gen_upstream.py -o "$work/up.conf"
taskset -c 0 nginx -p "$work/up/" -e "$work/up.err" -c "$work/up.conf" &
pids+=($!)
case $peer in
  mesh-proxy)
    python3 tests/bench/gen_repo.py "$n" "$work/repo" 18081 18082 18083
    target/release/meshc build "$work/repo" -o "$work/table.mtbl" >/dev/null
    taskset -c 1 "${PROXY:-target/proxy/mesh-proxy}" --table "$work/table.mtbl" --listen 127.0.0.1:10083 \
      --admin 127.0.0.1:19911 --workers 1 --access-log off ${MESH_PROXY_FLAGS:-} 2>"$work/proxy.err" &
    pids+=($!)
    proxy=$!
    ;;
  nginx)
    python3 ../shared/bench/gen_nginx.py "$n" --listen 10083 -o "$work/px.conf"
    taskset -c 1 nginx -p "$work/px/" -e "$work/px.err" -c "$work/px.conf" &
    pids+=($!)
    ;;
  *) echo "unknown peer $peer" >&2; exit 2 ;;
esac
for _ in $(seq 100); do
  curl -s -o /dev/null -H "x-user: $value" http://127.0.0.1:10083/ && break
  sleep 0.1
done
if [ "$peer" = nginx ]; then
  # The worker, not the master, serves: its CPU time is the proxy's.
  proxy=$(pgrep -P "$(cat "$work/px/nginx.pid")" | head -1)
fi
ticks=$(getconf CLK_TCK)
if [ "${STRACE:-0}" = 1 ]; then
  # Syscall counts for the run (strace slows the proxy: read the counts, not the times).
  strace -c -f -p "$proxy" -o "$work/strace.txt" 2>/dev/null &
  tracer=$!
  pids+=("$tracer")
  sleep 0.5
fi
if [ "${SYSCALLS:-0}" = 1 ]; then
  # System calls and context switches at full speed, counted by the kernel's tracepoints.
  perf stat -x, -o "$work/perf.txt" -p "$proxy" -e raw_syscalls:sys_enter,context-switches \
    -e syscalls:sys_enter_epoll_wait,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto \
    -e syscalls:sys_enter_writev,syscalls:sys_enter_readv,syscalls:sys_enter_read,syscalls:sys_enter_write \
    -e syscalls:sys_enter_getsockopt,syscalls:sys_enter_epoll_ctl 2>/dev/null &
  counter=$!
  pids+=("$counter")
  sleep 0.2
fi
read -r u0 s0 f0 < <(awk '{print $14, $15, $10}' "/proc/$proxy/stat")
read -r all0 steal0 < <(awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t, $9}' /proc/stat)
script=()
if [ -n "${THINK_MS:-}" ]; then
  cat >"$work/think.lua" <<EOF
delay = function() return math.random(0, 2 * $THINK_MS) end
done = function(summary, latency, requests)
  io.write(string.format("p99.9 %dus\\n", latency:percentile(99.9)))
end
EOF
  script=(-s "$work/think.lua")
fi
out=$(taskset -c 0 wrk -t1 -c"$conns" -d"${duration}s" --latency "${script[@]}" -H "x-user: $value" http://127.0.0.1:10083/)
read -r u1 s1 f1 < <(awk '{print $14, $15, $10}' "/proc/$proxy/stat")
read -r all1 steal1 < <(awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t, $9}' /proc/stat)
lat=$(awk '/^ +(50|90|99)%/ {printf "p%s %s ", $1, $2} /^p99.9 / {printf "%s %s ", $1, $2}' <<<"$out" | tr -d '%')
requests=$(awk '/requests in/ {print $1}' <<<"$out")
rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
awk -v p="$peer" -v n="$n" -v r="$requests" -v rps="$rps" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v t="$ticks" \
  -v f=$((f1 - f0)) -v lat="$lat" -v st=$((steal1 - steal0)) -v all=$((all1 - all0)) \
  'BEGIN { printf "%s N=%s: %s req/s, user %.1f us/req, system %.1f us/req, %.3f minor faults/req, %ssteal %.1f%%\n", p, n, rps, u / t * 1e6 / r, s / t * 1e6 / r, f / r, lat, 100 * st / all }'
if [ "${STRACE:-0}" = 1 ]; then
  kill -INT "$tracer"
  wait "$tracer" 2>/dev/null || true
  awk -v r="$requests" '$NF ~ /^[a-z_0-9]+$/ && $(NF-1) ~ /^[0-9]+$/ && $NF != "total" {
      calls = ($5 ~ /^[0-9]+$/ && NF >= 6) ? $4 : $(NF-1); printf "  %-16s %.2f calls/req\n", $NF, $4 / r }' \
    "$work/strace.txt"
fi
if [ "${SYSCALLS:-0}" = 1 ]; then
  kill -INT "$counter"
  wait "$counter" 2>/dev/null || true
  awk -F, -v r="$requests" '$1 ~ /^[0-9]+$/ && $1 > 0 { printf "  %-40s %.3f /req\n", $3, $1 / r }' "$work/perf.txt"
fi
