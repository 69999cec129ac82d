#!/usr/bin/env bash
# A bounded soak of the release mesh-proxy: DURATION seconds (default 600) of load over healthy,
# half-dead, flaky, dead and slow upstreams, with every other request on a new connection
# (connection churn) and a table reload (SIGHUP) every 15 s. The proxy's resident memory and
# open file descriptors are sampled every 5 s; the summary gives start (after a 30 s warm-up),
# end and max RSS, the request counts by status, and whether the proxy is still healthy.
#
#   bash tests/reliability/soak.sh [DURATION_SECONDS] [CONNECTIONS]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
duration=${1:-600}
connections=${2:-64}
rm -rf "$WORK" && mkdir -p "$WORK"
ulimit -n "$(ulimit -Hn)"
build_release
start_nginx
write_table
start_proxy
for host in ok half flaky dead slow; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $host" "http://127.0.0.1:$LISTEN_PORT/")
    log "warm-up: $host -> $code"
done
sample "$PROXY_PID" "$WORK/rss.tsv" 5
(
    end=$(($(date +%s) + duration))
    while [ "$(date +%s)" -lt "$end" ]; do
        sleep 15
        kill -HUP "$PROXY_PID" 2>/dev/null || exit 0
    done
) &
PIDS+=("$!")
log "soak: $duration s, $connections connections, mesh-proxy pid $PROXY_PID"
wrk -t 1 -c "$connections" -d "${duration}s" --timeout 5s -s "$ROOT/tests/reliability/soak.lua" \
    "http://127.0.0.1:$LISTEN_PORT/" >"$WORK/wrk.log" 2>&1 || true
kill -0 "$PROXY_PID" 2>/dev/null || die "mesh-proxy exited during the soak (see $WORK/proxy.log)"
ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN_PORT/healthz/ready")
table=$(curl -s "http://127.0.0.1:$ADMIN_PORT/table")
curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" >"$WORK/metrics.txt" || true
sleep 6
read -r rss_start rss_end rss_max fds_start fds_end <<<"$(awk '
    $1 >= 30 && !s {start = $2; fstart = $3; s = 1}
    $2 > max {max = $2}
    {end = $2; fend = $3}
    END {print start, end, max, fstart, fend}' "$WORK/rss.tsv")"
requests=$(awk '/requests in/ {print $1}' "$WORK/wrk.log")
errors=$(grep -E 'Socket errors|Non-2xx' "$WORK/wrk.log" | tr -s ' ' | paste -sd ';' -)
by_code=$(awk '/^istio_requests_total\{/ {
        match($0, /response_code="[0-9]+"/); code = substr($0, RSTART + 15, RLENGTH - 16)
        match($0, /response_flags="[^"]*"/); flags = substr($0, RSTART + 16, RLENGTH - 17)
        n[code " " flags] += $NF}
    END {for (k in n) printf "%s=%d ", k, n[k]}' "$WORK/metrics.txt")
echo "soak: ${duration}s, $connections connections (every other request on a new connection), SIGHUP reload every 15 s"
echo "requests: $requests; $errors"
echo "by status and flags: ${by_code:-unavailable}"
echo "proxy RSS KiB: start (30 s) $rss_start, end $rss_end, max $rss_max; open fds: $fds_start -> $fds_end"
echo "after the soak: /healthz/ready $ready; /table $table"
