#!/usr/bin/env bash
# N concurrent client connections (default 10,000) against the release mesh-proxy: all are
# opened and held at once, each sends one request, every answer is counted, and the proxy's
# resident memory is reported with all connections open and idle, all answered, and after the
# clients leave. ROUNDS (default 2) repeats that against the same proxy, to tell memory the
# allocator keeps from memory that grows with every round.
#
#   [ROUNDS=10] bash tests/reliability/connections.sh [N]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
n=${1:-10000}
rm -rf "$WORK" && mkdir -p "$WORK"
ulimit -n "$(ulimit -Hn)"
build_release
start_nginx
write_table
start_proxy
curl -fsS -H 'Host: ok' "http://127.0.0.1:$LISTEN_PORT/" >/dev/null || die "the proxy does not serve"
rss_before=$(rss_kib "$PROXY_PID")
sample "$PROXY_PID" "$WORK/rss.tsv" 0.2
rounds=${ROUNDS:-2}
for round in $(seq "$rounds"); do
    log "round $round: opening $n connections to mesh-proxy (pid $PROXY_PID, RSS $(rss_kib "$PROXY_PID") KiB)"
    python3 "$ROOT/tests/reliability/hold_connections.py" 127.0.0.1 "$LISTEN_PORT" "$n" ok 5 \
        | tee "$WORK/clients-$round.log" | while read -r line; do
        log "clients: $line"
        case $line in
        OPENED) echo "$(rss_kib "$PROXY_PID") $(fds "$PROXY_PID")" >"$WORK/opened-$round" ;;
        HOLDING) echo "$(rss_kib "$PROXY_PID") $(fds "$PROXY_PID")" >"$WORK/holding-$round" ;;
        esac
    done
    sleep 2
    kill -0 "$PROXY_PID" || die "mesh-proxy exited"
    read -r rss_opened fds_opened <"$WORK/opened-$round"
    read -r rss_holding fds_holding <"$WORK/holding-$round"
    result=$(grep '^RESULT' "$WORK/clients-$round.log")
    echo "round $round: $n connections; $result; proxy RSS KiB: before $rss_before, all open and idle $rss_opened ($fds_opened fds), all answered and open $rss_holding ($fds_holding fds), after they closed $(rss_kib "$PROXY_PID") ($(fds "$PROXY_PID") fds)"
done
rss_max=$(awk 'BEGIN {m = 0} $2 > m {m = $2} END {print m}' "$WORK/rss.tsv")
echo "max proxy RSS over $rounds rounds: $rss_max KiB"
