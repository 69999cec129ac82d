# shellcheck shell=bash
# Helpers shared by the reliability scripts (sourced): release binaries, an nginx upstream
# (healthy, flaky and slow servers), a policy that mixes them with dead endpoints, mesh-proxy,
# and RSS sampling. Everything listens on 127.0.0.1; every process started here is stopped by
# its PID when the script exits.

set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=${WORK:-/tmp/meshc-reliability}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
PIDS=()

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# Stops what this script started, newest first: SIGTERM, then SIGKILL after 5 s.
cleanup() {
    local i pid
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        pid=${PIDS[$i]}
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

build_release() {
    log "building meshc and mesh-proxy (release)"
    (cd "$ROOT" && nice -n 10 cargo build --release --locked -p meshc -p mesh-proxy >"$WORK/build.log" 2>&1) \
        || die "build failed, see $WORK/build.log"
    MESHC=$ROOT/target/release/meshc
    PROXY=$ROOT/target/release/mesh-proxy
}

# start_nginx: OK_PORTS (two), FLAKY_PORT (503 for about half the requests) and SLOW_PORT
# (a 2,000-byte body sent at 4 KiB/s, about half a second per response).
start_nginx() {
    OK_PORTS=("$(free_port)" "$(free_port)")
    FLAKY_PORT=$(free_port)
    SLOW_PORT=$(free_port)
    local d=$WORK/nginx
    mkdir -p "$d"
    local body
    body=$(head -c 2000 /dev/zero | tr '\0' 'x')
    cat >"$d/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid nginx.pid;
error_log error.log warn;
events { worker_connections 30000; }
http {
  access_log off;
  client_body_temp_path tmp_body;
  proxy_temp_path tmp_proxy;
  fastcgi_temp_path tmp_fastcgi;
  uwsgi_temp_path tmp_uwsgi;
  scgi_temp_path tmp_scgi;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  split_clients "\${connection}\${connection_requests}" \$flaky { 50% 503; * 200; }
  server { listen 127.0.0.1:${OK_PORTS[0]} backlog=4096; location / { return 200 "ok-1\n"; } }
  server { listen 127.0.0.1:${OK_PORTS[1]} backlog=4096; location / { return 200 "ok-2\n"; } }
  server {
    listen 127.0.0.1:$FLAKY_PORT backlog=4096;
    location / { if (\$flaky = 503) { return 503 "flaky\n"; } return 200 "flaky-ok\n"; }
  }
  server {
    listen 127.0.0.1:$SLOW_PORT backlog=4096;
    location / { limit_rate 4k; return 200 "$body"; }
  }
}
EOF
    "$NGINX" -p "$d/" -e "$d/error.log" -c "$d/nginx.conf" >"$d/stdout.log" 2>&1 </dev/null &
    PIDS+=("$!")
    NGINX_PID=$!
    for _ in $(seq 100); do
        curl -fsS "http://127.0.0.1:${OK_PORTS[0]}/" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "nginx did not come up (see $d)"
}

# write_table: the soak policy, compiled to $WORK/table.mtbl. Hosts:
#   ok      two healthy endpoints, round robin
#   half    two healthy and two dead endpoints; retries on connect-failure; outlier ejection
#   flaky   503 half the time; 3 retries on 5xx
#   dead    one dead endpoint; 2 retries on connect-failure (503 UF, URX)
#   slow    a 2,000-byte body that takes about half a second to stream (2 s route timeout)
write_table() {
    local dead1 dead2 repo=$WORK/policy
    dead1=$(free_port)
    dead2=$(free_port)
    mkdir -p "$repo"
    python3 - "$repo/policy.yaml" "$dead1" "$dead2" "${OK_PORTS[0]}" "${OK_PORTS[1]}" "$FLAKY_PORT" "$SLOW_PORT" <<'EOF'
import sys
out, dead1, dead2, ok1, ok2, flaky, slow = sys.argv[1:]
def entry(name, ports):
    eps = "".join(
        f"  - address: 127.0.0.1\n    ports:\n      http: {p}\n    labels:\n      version: v{i + 1}\n"
        for i, p in enumerate(ports))
    return (f"apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: {name}\n"
            f"spec:\n  hosts:\n  - {name}.default.svc.cluster.local\n  location: MESH_INTERNAL\n"
            f"  resolution: STATIC\n  ports:\n  - number: 9080\n    name: http\n    protocol: HTTP\n"
            f"  endpoints:\n{eps}---\n")
def vs(name, extra):
    return (f"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: {name}\n"
            f"spec:\n  hosts:\n  - {name}\n  http:\n  - name: default\n{extra}    route:\n"
            f"    - destination:\n        host: {name}\n---\n")
def retries(n, on):
    return f"    retries:\n      attempts: {n}\n      retryOn: {on}\n"
text = entry("ok", [ok1, ok2]) + entry("half", [dead1, ok1, dead2, ok2]) + entry("flaky", [flaky])
text += entry("dead", [dead1]) + entry("slow", [slow])
text += vs("ok", "") + vs("half", retries(3, "connect-failure")) + vs("flaky", retries(3, "5xx"))
text += vs("dead", retries(2, "connect-failure")) + vs("slow", "    timeout: 2s\n")
text += ("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: half\n"
         "spec:\n  host: half\n  trafficPolicy:\n    outlierDetection:\n      consecutiveGatewayErrors: 1\n"
         "      interval: 1s\n      baseEjectionTime: 5s\n      maxEjectionPercent: 50\n")
open(out, "w").write(text)
EOF
    "$MESHC" build "$repo" -o "$WORK/table.mtbl" >"$WORK/meshc.log" 2>&1 || die "meshc build failed: $(cat "$WORK/meshc.log")"
}

# start_proxy [EXTRA ARGS...]: mesh-proxy on LISTEN_PORT/ADMIN_PORT, PID in PROXY_PID.
start_proxy() {
    LISTEN_PORT=$(free_port)
    ADMIN_PORT=$(free_port)
    "$PROXY" --table "$WORK/table.mtbl" --listen "127.0.0.1:$LISTEN_PORT" \
        --admin "127.0.0.1:$ADMIN_PORT" --workers "${PROXY_WORKERS:-1}" --access-log off "$@" \
        >"$WORK/proxy.log" 2>&1 </dev/null &
    PIDS+=("$!")
    PROXY_PID=$!
    for _ in $(seq 100); do
        curl -fsS "http://127.0.0.1:$ADMIN_PORT/healthz/ready" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "mesh-proxy did not come up (see $WORK/proxy.log)"
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# sample PID FILE INTERVAL: appends "seconds rss_kib open_fds" lines until PID exits.
sample() {
    local pid=$1 file=$2 interval=$3 start
    start=$(date +%s)
    (
        while kill -0 "$pid" 2>/dev/null; do
            echo "$(($(date +%s) - start)) $(rss_kib "$pid") $(fds "$pid")" >>"$file"
            sleep "$interval"
        done
    ) &
    PIDS+=("$!")
}
