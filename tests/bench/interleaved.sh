#!/usr/bin/env bash
# mesh-proxy and nginx measured in short alternating segments, both running throughout, so
# that a pair's two sides are seconds apart instead of the harness's half minute: on this
# shared machine the speed drifts over tens of seconds, and a closer pair sees less of it.
#
# usage: [NS="1 1000 10000"] [CASES="first last catchall"] [ROUNDS=20] [SEGMENT=3]
#        bash tests/bench/interleaved.sh            (then: interleaved_summary.py TSV RUN_ID)
# Per N: the harness's upstreams (../shared/bench/gen_upstream.py, nginx) on CPU 0; mesh-proxy
# (target/proxy/mesh-proxy, --workers 1 --access-log off, as in tests/bench/run_peers.sh) and
# nginx (../shared/bench/gen_nginx.py, one worker) both on CPU 1, each on its own port, with
# the same N header routes. One is loaded at a time; the other waits in epoll. Each round, for
# each case, wrk -t1 -c32 (CPU 0, the harness's report.lua) loads one proxy for SEGMENT
# seconds, then the other (odd rounds mesh-proxy first, even rounds nginx). Each segment
# writes a row: requests/s, proxy CPU per request (user + system of the proxy's process, or of
# nginx's worker, from /proc/PID/stat) and wrk's p50/p90/p99, with the machine's steal time.
# Rows go to $BENCH_WORK/interleaved.tsv (default /tmp/bench-work). Before measuring, the
# routes are checked as the harness does (first and last reach v2 only, the catch-all v2 and
# v3) and each (proxy, case) gets one warm-up segment. Every process is stopped by PID.
#   THINK_MS=n: below saturation, as in tests/bench/cpu_split.sh: each connection waits a
#   random 0..2n ms between a response and its next request, so both proxies get the same
#   offered load; the run id then starts with interleaved-think<n>-.
set -euo pipefail
cd "$(dirname "$0")/../.."
NS=${NS:-1 1000 10000}
CASES=${CASES:-first last catchall}
ROUNDS=${ROUNDS:-20}
SEGMENT=${SEGMENT:-3}
bench=../shared/bench
work_root=${BENCH_WORK:-/tmp/bench-work}
mkdir -p "$work_root"
tsv=$work_root/interleaved.tsv
[ -s "$tsv" ] || printf 'run_id\tN\tcase\tround\tpeer\trps\tproxy_cpu_us_per_req\tp50_us\tp90_us\tp99_us\tsteal_pct\n' >"$tsv"
if [ -n "${THINK_MS:-}" ]; then
  run_id=${RUN_ID:-interleaved-think$THINK_MS-$(date +%Y%m%dT%H%M%S)}
else
  run_id=${RUN_ID:-interleaved-$(date +%Y%m%dT%H%M%S)}
fi
cargo build --release -p meshc
cargo build --profile proxy -p mesh-proxy
ticks=$(getconf CLK_TCK)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

header_value() { # N case
  case $2 in
    first) echo user-0 ;;
    last) echo "user-$(($1 - 1))" ;;
    catchall) echo nobody ;;
    *) echo "unknown case $2" >&2; exit 2 ;;
  esac
}

# Which upstreams answer 12 requests with this header: "v2" or "v2 v3".
upstreams_seen() { # port value
  for _ in $(seq 12); do
    curl -s -D - -o /dev/null -H "x-user: $2" "http://127.0.0.1:$1/" | tr -d '\r' |
      awk -F': ' 'tolower($1) == "x-upstream" {print $2}'
  done | sort -u | tr '\n' ' ' | sed 's/ $//'
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
steal_snapshot() { awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t, $9}' /proc/stat; }

# One segment: load the proxy on PORT (process PID) for SEGMENT seconds; prints the row's
# measured fields.
segment() { # port pid value
  local c0 c1 all0 steal0 all1 steal1 out
  c0=$(cpu_ticks "$2")
  read -r all0 steal0 < <(steal_snapshot)
  out=$(taskset -c 0 wrk -t1 -c32 -d"${SEGMENT}s" -s "$script" -H "x-user: $3" "http://127.0.0.1:$1/")
  c1=$(cpu_ticks "$2")
  read -r all1 steal1 < <(steal_snapshot)
  awk -v c=$((c1 - c0)) -v t="$ticks" -v st=$((steal1 - steal0)) -v all=$((all1 - all0)) '
    /^WRKRESULT/ {
      for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
      if (f["non2xx"] + f["connect_err"] + f["read_err"] + f["write_err"] + f["timeout_err"] > 0) {
        print "errors in a segment: " $0 > "/dev/stderr"; exit 1
      }
      printf "%s\t%.2f\t%s\t%s\t%s\t%.2f\n", f["rps"], c / t * 1e6 / f["requests"], f["p50_us"], f["p90_us"], f["p99_us"], 100 * st / all
    }' <<<"$out"
}

script=$bench/report.lua
if [ -n "${THINK_MS:-}" ]; then
  script=$(mktemp /tmp/mesh-interleaved-think.XXXXXX.lua)
  cat "$bench/report.lua" >"$script"
  echo "delay = function() return math.random(0, 2 * $THINK_MS) end" >>"$script"
fi
for n in $NS; do
  work=$(mktemp -d /tmp/mesh-interleaved.XXXXXX)
  mkdir -p "$work/up" "$work/px"
  python3 "$bench/gen_upstream.py" -o "$work/up.conf"
  taskset -c 0 nginx -p "$work/up/" -e "$work/up.err" -c "$work/up.conf" &
  up_pid=$!
  pids+=("$up_pid")
  python3 tests/bench/gen_repo.py "$n" "$work/repo" 18081 18082 18083
  target/release/meshc build "$work/repo" -o "$work/table.mtbl" >/dev/null
  taskset -c 1 target/proxy/mesh-proxy --table "$work/table.mtbl" --listen 127.0.0.1:10083 \
    --admin 127.0.0.1:19911 --workers 1 --access-log off ${MESH_PROXY_FLAGS:-} 2>"$work/mesh.err" &
  mesh_pid=$!
  pids+=("$mesh_pid")
  python3 "$bench/gen_nginx.py" "$n" --listen 10084 -o "$work/px.conf"
  taskset -c 1 nginx -p "$work/px/" -e "$work/px.err" -c "$work/px.conf" &
  nginx_master=$!
  pids+=("$nginx_master")
  for port in 10083 10084; do
    for _ in $(seq 100); do
      curl -s -o /dev/null -H "x-user: user-0" "http://127.0.0.1:$port/" && break
      sleep 0.1
    done
  done
  nginx_worker=$(pgrep -P "$(cat "$work/px/nginx.pid")" | head -1)
  for c in $CASES; do
    value=$(header_value "$n" "$c")
    if [ "$c" = catchall ]; then want="v2 v3"; else want="v2"; fi
    for port in 10083 10084; do
      seen=$(upstreams_seen "$port" "$value")
      if [ "$seen" != "$want" ]; then
        echo "interleaved.sh: N=$n $c on :$port reached '$seen', not '$want'" >&2
        exit 1
      fi
    done
    segment 10083 "$mesh_pid" "$value" >/dev/null
    segment 10084 "$nginx_worker" "$value" >/dev/null
  done
  for round in $(seq "$ROUNDS"); do
    for c in $CASES; do
      value=$(header_value "$n" "$c")
      if ((round % 2)); then order="mesh-proxy nginx"; else order="nginx mesh-proxy"; fi
      for peer in $order; do
        if [ "$peer" = mesh-proxy ]; then row=$(segment 10083 "$mesh_pid" "$value")
        else row=$(segment 10084 "$nginx_worker" "$value"); fi
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$run_id" "$n" "$c" "$round" "$peer" "$row" >>"$tsv"
      done
    done
    echo "interleaved.sh: N=$n round $round of $ROUNDS done" >&2
  done
  for pid in "$mesh_pid" "$nginx_master" "$up_pid"; do kill "$pid" 2>/dev/null || true; done
  wait "$mesh_pid" "$nginx_master" "$up_pid" 2>/dev/null || true
  pids=()
  rm -rf "$work"
done
[ "$script" = "$bench/report.lua" ] || rm -f "$script"
python3 tests/bench/interleaved_summary.py "$tsv" "$run_id"
