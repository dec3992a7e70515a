#!/usr/bin/env bash
# Instructions per proxied HTTP request, counted by valgrind (callgrind): a deterministic
# measure for A/B comparisons of Legate builds on a shared, noisy machine, where CPU-time
# ratios move by ±10 % between rounds. It counts user-space instructions only (the kernel's
# share, most of a small request's cost, is not in it) and valgrind counts `rep movs`/`stos`
# iterations one by one, so memcpy/memset weigh more than they cost: use it to compare builds,
# and benches/http.sh for what a user sees.
#
# Usage:
#   benches/instructions.sh [BIN ...]      (default: target/release/legate; not built here)
#   Environment: N (measured requests, default 20000), SCENARIOS ("h1 h2h1"), NGINX_REF=1 to
#   add nginx as a proxy on the HTTP/1.1 scenario for reference.
# Scenarios: h1 = HTTP/1.1 keep-alive, `h2load --h1 -c 16`; h2h1 = h2c downstream (`h2load -c 16
# -m 10`) to an HTTP/1.1 upstream. The upstream is nginx answering 5 bytes. Only 127.0.0.1.
set -u
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
N=${N:-20000}
SCENARIOS=${SCENARIOS:-"h1 h2h1"}
BINS=("$@")
[ ${#BINS[@]} -eq 0 ] && BINS=("$REPO/target/release/legate")
for t in valgrind callgrind_control h2load nginx curl; do
  command -v "$t" >/dev/null || { echo "missing: $t (apt-get install valgrind nghttp2-client nginx curl)" >&2; exit 1; }
done
W=$(mktemp -d /tmp/legate-instr.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP=$(free_port); H1=$(free_port); H2=$(free_port); ADM=$(free_port); NGX=$(free_port)
mkdir -p "$W/up/logs" "$W/px/logs"
cat >"$W/up.conf" <<EOF
worker_processes 1;
pid $W/up/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$UP backlog=4096; location / { return 200 "hello"; } }
}
EOF
cat >"$W/px.conf" <<EOF
worker_processes 1;
master_process off;
pid $W/px/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream up { server 127.0.0.1:$UP; keepalive 64; }
  server {
    listen 127.0.0.1:$NGX backlog=4096;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
hcm() {  # name port codec
  cat <<EOF
  - name: $1
    address: {socket_address: {address: 127.0.0.1, port_value: $2}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: $1
          codec_type: $3
          generate_request_id: false
          route_config:
            virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: "/"}, route: {cluster: up}}]}]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
EOF
}
{
  echo "admin: {address: {socket_address: {address: 127.0.0.1, port_value: $ADM}}}"
  echo "static_resources:"
  echo "  listeners:"
  hcm h1 "$H1" HTTP1
  hcm h2h1 "$H2" HTTP2
  echo "  clusters:"
  echo "  - {name: up, type: STATIC, connect_timeout: 5s, load_assignment: {cluster_name: up, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $UP}}}}]}]}}"
} >"$W/legate.yaml"
nginx -p "$W/up" -e "$W/up/error.log" -c "$W/up.conf" -g 'daemon off;' >/dev/null 2>&1 &
PIDS+=($!)

# measure NAME SCENARIO PORT LOAD-ARGS CMD...: instructions per request of CMD under callgrind.
measure() {
  local name=$1 scen=$2 port=$3 load=$4; shift 4
  local out="$W/cg.$RANDOM"
  valgrind --tool=callgrind --callgrind-out-file="$out.%p" "$@" >"$out.log" 2>&1 &
  local vp=$!
  local i
  for i in $(seq 1 120); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.5; done
  # shellcheck disable=SC2086
  h2load $load -n 3000 -c 16 "http://127.0.0.1:$port/" >/dev/null 2>&1
  callgrind_control -z "$vp" >/dev/null 2>&1
  local done_n
  # shellcheck disable=SC2086
  done_n=$(h2load $load -n "$N" -c 16 "http://127.0.0.1:$port/" 2>&1 | awk '/^requests:/ {print $8}')
  callgrind_control -d "$vp" >/dev/null 2>&1
  sleep 1
  kill "$vp" 2>/dev/null; wait "$vp" 2>/dev/null
  local f ir
  f=$(ls -t "$out".*.1 2>/dev/null | head -1)
  ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$f" 2>/dev/null)
  if [ -z "$ir" ] || [ "${done_n:-0}" != "$N" ]; then
    printf '%-40s %-6s %s\n' "$name" "-" "failed (succeeded: ${done_n:-0} of $N)"
  else
    printf '%-40s %-6s %8d\n' "$name" "$scen" $((ir / N))
  fi
}

printf '%-40s %-6s %8s\n' "target" "scen." "instr/req"
for scen in $SCENARIOS; do
  case $scen in
    h1) port=$H1; load="--h1" ;;
    h2h1) port=$H2; load="-m 10" ;;
    *) echo "unknown scenario $scen" >&2; exit 2 ;;
  esac
  for b in "${BINS[@]}"; do
    measure "$b" "$scen" "$port" "$load" "$b" -c "$W/legate.yaml" --concurrency 1 -l warn
  done
  if [ "$scen" = h1 ] && [ "${NGINX_REF:-0}" = 1 ]; then
    measure "nginx (proxy_pass, keepalive)" "$scen" "$NGX" "--h1" nginx -p "$W/px" -e "$W/px/error.log" -c "$W/px.conf" -g 'daemon off;'
  fi
done
