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
# shellcheck source=benches/lib.sh
. "$BENCH_DIR/lib.sh"

ORIG_ARGS="$*"
ROUNDS=5; SCEN="h1,h2,mem"; OUTDIR=""; QUICK=0; BUILD=1
USE_LEGATE=1; USE_ENVOY=1; USE_NGINX=1; USE_HAPROXY=1
while [ $# -gt 0 ]; do common_opt "$@"; shift "$OPT_SHIFT"; done
H1_DUR=${H1_DUR:-8}; WRK_T=${WRK_T:-2}; WRK_C=${WRK_C:-64}
H2_N=${H2_N:-100000}; H2_C=${H2_C:-16}; H2_M=${H2_M:-10}
MEM_CONNS=${MEM_CONNS:-2000}; MEM_SETTLE=${MEM_SETTLE:-2}; MEM_WAIT=${MEM_WAIT:-2}
if [ "$QUICK" = 1 ]; then ROUNDS=1; H1_DUR=2; H2_N=20000; fi
case $ROUNDS in ''|*[!0-9]*|0) echo "-r needs a positive integer" >&2; exit 2;; esac

# ---------------------------------------------------------------- tools (no auto-install)
need python3 "apt-get install python3"
need ss "apt-get install iproute2"
need timeout "apt-get install coreutils"
need nginx "apt-get install nginx   (the upstream; also a peer unless --no-nginx)"
case ,$SCEN, in *,h1,*) need wrk "apt-get install wrk";; esac
case ,$SCEN, in *,h2,*) need h2load "apt-get install nghttp2-client";; esac
[ "$USE_HAPROXY" = 1 ] && need haproxy "apt-get install haproxy   (or run with --no-haproxy)"
if [ "$USE_ENVOY" = 1 ]; then
  find_envoy
fi
[ "$USE_LEGATE" = 1 ] && legate_bin

# ---------------------------------------------------------------- ports (127.0.0.1 only)
B=${BASE_PORT:-25400}
UP_H1=$((B+1)); UP_H2=$((B+2))   # nginx origin: HTTP/1.1 and h2c (prior knowledge)
# per proxy: +1 HTTP/1.1 -> h1, +2 h2c -> h1, +3 h2c -> h2c, +9 admin
HAP=$((B+10)); NGX=$((B+20)); ENV=$((B+30)); LEG=$((B+40))
envoy_base_id "$B"

# ---------------------------------------------------------------- output
TS=$(date +%Y%m%d-%H%M%S)
OUTDIR=${OUTDIR:-$BENCH_DIR/results/http-$TS}
mkdir -p "$OUTDIR"/{logs,conf,run,www} || die "cannot create $OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
RAW=$OUTDIR/raw.csv
echo "scenario,variant,target,round,rps,p50_ms,p99_ms,requests,proxy_cpu_s,req_per_cpu_s,duration_s,wall_s,busy_pct,foreign_pct,errors,rc,rss0_mib,rss1_mib,kib_per_conn,load" >"$RAW"

raise_nofile "$MEM_CONNS"

trap stop_everything EXIT
trap 'exit 130' INT TERM
ports_free $UP_H1 $UP_H2 $((HAP+1)) $((HAP+2)) $((HAP+3)) $((NGX+1)) $((NGX+2)) \
  $((ENV+1)) $((ENV+2)) $((ENV+3)) $((ENV+9)) $((LEG+1)) $((LEG+2)) $((LEG+3)) $((LEG+9))

# ---------------------------------------------------------------- results
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
EOF
    yaml_admin $((p+9))
    for l in "h1 $((p+1)) HTTP1 up_h1" "h2h1 $((p+2)) HTTP2 up_h1" "h2h2 $((p+3)) HTTP2 up_h2"; do
      set -- $l
      yaml_listener "$1" "$2" envoy.filters.network.http_connection_manager \
        type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
      cat <<EOF
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
      yaml_cluster "$1" "$2"
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
    envoy) start_envoy envoy; port=$((ENV+3));;
    legate) start_envoy legate; port=$((LEG+3));;
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
        local p50 p99
        wrk_counts "$out"
        p50=$(to_ms "$(awk '$1=="50%"{print $2}' "$out")")
        p99=$(to_ms "$(awk '$1=="99%"{print $2}' "$out")")
        emit h1 "$v" "$name" "$r" "${W_RPS:-0}" "$p50" "$p99" "${W_REQS:-0}" "$H1_DUR" "$W_ERRS" "$load"
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
  local p r name port pid ready rss0 rss1 opened errs
  for p in "${PROXIES[@]}"; do stop_name "$p"; done   # a fresh process per round
  for ((r=1; r<=ROUNDS; r++)); do
    for name in "${PROXIES[@]}"; do
      start_proxy "$name"; pid=${PID_OF[$name]}; port=$(( $(proxy_base "$name") + 1 ))
      sleep "$MEM_SETTLE"
      rss0=$(rss_kib "$pid")
      ready="$OUTDIR/run/idle-$name-$r.ready"
      idle_client "$name-$r" "$ready" 1200 \
        timeout -k 5 300 python3 "$HELPER" idle --port "$port" -n "$MEM_CONNS" --ready-file "$ready" --max-seconds 240
      opened=$OPENED
      sleep "$MEM_WAIT"
      rss1=$(rss_kib "$pid")
      errs=0; [ "$opened" = "$MEM_CONNS" ] || errs="opened=$opened/$MEM_CONNS"
      stop_pid "$IDLE_PID"
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
validate_http_peers

{
  env_header
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

summarize "$HELPER"
