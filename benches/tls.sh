#!/usr/bin/env bash
# TLS benchmark: HTTPS termination by Legate (DownstreamTlsContext in front of
# http_connection_manager + router) next to Envoy (the same YAML), nginx (`listen ... ssl`,
# proxy_pass with upstream keep-alive) and haproxy (`bind ... ssl crt`, mode http), one worker
# each, on 127.0.0.1 only. Downstream TLS 1.3 (ECDHE, ECDSA P-256 leaf from a throw-away CA made
# with openssl in the results directory), plain HTTP/1.1 keep-alive upstream (nginx, 5-byte body).
# Every target runs in the same invocation, interleaved inside each round; medians over rounds,
# ratios against the best peer, work per proxy-CPU-second from /proc/<pid>/stat.
#
#   benches/tls.sh [options]
#     -r N            rounds (default 5); the median over rounds is reported
#     -s LIST         scenarios, comma separated, from: ka,hs,res (default: all three)
#                       ka: HTTPS keep-alive, 5-byte body (wrk over https) -> req/s, p99
#                       hs: full handshakes: every request on a new TCP connection and a new
#                           TLS session (tls_helper.py handshakes, HS_P client processes)
#                           -> handshakes/s
#                       res: resumed handshakes: every request on a new TCP connection, TLS
#                           1.3 session resumed (wrk -H 'Connection: close'; wrk resumes)
#     -o DIR          results directory (default benches/results/tls-<timestamp>)
#     --quick         smoke test: 1 round, 2 s load runs
#     --no-legate     leave Legate out (checks the script and the peers)
#     --no-envoy      leave Envoy out
#     --no-nginx      leave nginx (as a proxy) out
#     --no-haproxy    leave haproxy out
#     --no-build      do not run `cargo build --release` (use the existing binary)
#     -h, --help      this text
#   Environment:
#     LEGATE_BIN      legate binary (default: <repo>/target/release/legate, built first)
#     ENVOY_BIN       envoy binary (default: `envoy` on PATH, else /opt/envoy-venv/bin/envoy)
#     BASE_PORT       first port of the port plan (default 25600; uses BASE_PORT+1 .. +49)
#     DUR             wrk -d seconds of every load run (default 8)
#     KA_T, KA_C      wrk threads and connections, keep-alive scenario (default 2, 64)
#     HS_P            client processes of the full-handshake scenario (default 4)
#     RES_T, RES_C    wrk threads and connections, resumption scenario (default 2, 32)
set -u

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
HELPER="$BENCH_DIR/tls_helper.py"
# shellcheck source=benches/lib.sh
. "$BENCH_DIR/lib.sh"

ORIG_ARGS="$*"
ROUNDS=5; SCEN="ka,hs,res"; OUTDIR=""; QUICK=0; BUILD=1
USE_LEGATE=1; USE_ENVOY=1; USE_NGINX=1; USE_HAPROXY=1
while [ $# -gt 0 ]; do common_opt "$@"; shift "$OPT_SHIFT"; done
DUR=${DUR:-8}; KA_T=${KA_T:-2}; KA_C=${KA_C:-64}; HS_P=${HS_P:-4}; RES_T=${RES_T:-2}; RES_C=${RES_C:-32}
if [ "$QUICK" = 1 ]; then ROUNDS=1; DUR=2; fi
case $ROUNDS in ''|*[!0-9]*|0) echo "-r needs a positive integer" >&2; exit 2;; esac
for s in ${SCEN//,/ }; do case $s in ka|hs|res) ;; *) die "unknown scenario '$s' (ka, hs, res)";; esac; done

# ---------------------------------------------------------------- tools (no auto-install)
need python3 "apt-get install python3"
need ss "apt-get install iproute2"
need timeout "apt-get install coreutils"
need openssl "apt-get install openssl   (certificates, and the TLS parameters check)"
need curl "apt-get install curl   (Envoy's and Legate's ssl stats from their admin endpoints)"
need wrk "apt-get install wrk"
need nginx "apt-get install nginx   (the upstream; also a peer unless --no-nginx)"
[ "$USE_HAPROXY" = 1 ] && need haproxy "apt-get install haproxy   (or run with --no-haproxy)"
if [ "$USE_ENVOY" = 1 ]; then
  find_envoy
fi
[ "$USE_LEGATE" = 1 ] && legate_bin

# ---------------------------------------------------------------- ports (127.0.0.1 only)
B=${BASE_PORT:-25600}
UP=$((B+1))   # nginx origin, plain HTTP/1.1
# per proxy: +1 the HTTPS listener, +9 admin (Envoy, Legate)
HAP=$((B+10)); NGX=$((B+20)); ENV=$((B+30)); LEG=$((B+40))
envoy_base_id "$B"

# ---------------------------------------------------------------- output
TS=$(date +%Y%m%d-%H%M%S)
OUTDIR=${OUTDIR:-$BENCH_DIR/results/tls-$TS}
mkdir -p "$OUTDIR"/{logs,conf,run,certs} || die "cannot create $OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
RAW=$OUTDIR/raw.csv
echo "scenario,variant,target,round,rate,p50_ms,p99_ms,count,proxy_cpu_s,per_cpu_s,duration_s,wall_s,busy_pct,foreign_pct,errors,rc,ssl_handshakes,ssl_reused,tls,load" >"$RAW"

trap stop_everything EXIT
trap 'exit 130' INT TERM
ports_free $UP $((HAP+1)) $((NGX+1)) $((ENV+1)) $((ENV+9)) $((LEG+1)) $((LEG+9))

# ---------------------------------------------------------------- certificates
# A throw-away CA and a leaf for localhost / 127.0.0.1, both ECDSA P-256, valid 2 days.
make_certs() {
  local d=$OUTDIR/certs
  {
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 -days 2 \
      -subj "/CN=legate-bench-ca" -keyout "$d/ca.key" -out "$d/ca.pem" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" &&
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 \
      -subj "/CN=localhost" -keyout "$d/leaf.key" -out "$d/leaf.csr" &&
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
      "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1" >"$d/leaf.ext" &&
    openssl x509 -req -in "$d/leaf.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
      -days 2 -sha256 -extfile "$d/leaf.ext" -out "$d/leaf.pem"
  } >"$OUTDIR/logs/openssl-certs.log" 2>&1 || die "certificate generation failed (see $OUTDIR/logs/openssl-certs.log)"
  cat "$d/leaf.pem" "$d/ca.pem" >"$d/chain.pem"             # nginx, Envoy, Legate: leaf + CA
  cat "$d/chain.pem" "$d/leaf.key" >"$d/haproxy.pem"        # haproxy: chain and key in one file
  chmod 600 "$d"/*.key "$d/haproxy.pem"
}

# ---------------------------------------------------------------- configs
NGX_USER=""; [ "$(id -u)" = 0 ] && NGX_USER="user root;"
nginx_head() {  # prefix dir, error log
  cat <<EOF
$NGX_USER
worker_processes 1;
pid $1/nginx.pid;
worker_rlimit_nofile 20000;
error_log $2 warn;
events { worker_connections 8000; }
EOF
}
nginx_temp_paths() {  # dir
  echo "  client_body_temp_path $1/tmp/body; proxy_temp_path $1/tmp/proxy; fastcgi_temp_path $1/tmp/fastcgi;"
  echo "  uwsgi_temp_path $1/tmp/uwsgi; scgi_temp_path $1/tmp/scgi;"
}
write_configs() {
  local c=$OUTDIR/certs
  mkdir -p "$OUTDIR/run/ngx-up/tmp" "$OUTDIR/run/ngx-proxy/tmp"
  # origin: 1 worker, plain HTTP/1.1, keep-alive forever, no logging, 5-byte body
  { nginx_head "$OUTDIR/run/ngx-up" "$OUTDIR/logs/nginx-upstream-error.log"; cat <<EOF
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
$(nginx_temp_paths "$OUTDIR/run/ngx-up")
  server {
    listen 127.0.0.1:$UP backlog=4096;
    location / { default_type text/plain; return 200 "hello"; }
  }
}
EOF
  } >"$OUTDIR/conf/nginx-upstream.conf"
  # nginx as the proxy: TLS 1.3 only, HTTP/1.1 (no http2), proxy_pass with upstream keep-alive
  { nginx_head "$OUTDIR/run/ngx-proxy" "$OUTDIR/logs/nginx-proxy-error.log"; cat <<EOF
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
$(nginx_temp_paths "$OUTDIR/run/ngx-proxy")
  upstream up { server 127.0.0.1:$UP; keepalive 256; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$((NGX+1)) ssl backlog=4096;
    ssl_certificate $c/chain.pem;
    ssl_certificate_key $c/leaf.key;
    ssl_protocols TLSv1.3;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
  } >"$OUTDIR/conf/nginx-proxy.conf"
  cat >"$OUTDIR/conf/haproxy.cfg" <<EOF
# mode http, one thread, TLS 1.3 terminated on the bind, keep-alive both sides,
# upstream connections shared (http-reuse always)
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  maxconn 4000
  timeout connect 5s
  timeout client  300s
  timeout server  300s
  timeout http-keep-alive 300s
frontend fe_https
  bind 127.0.0.1:$((HAP+1)) ssl crt $c/haproxy.pem ssl-min-ver TLSv1.3 alpn http/1.1 backlog 4096
  default_backend be_up
backend be_up
  http-reuse always
  server s1 127.0.0.1:$UP maxconn 1000
EOF
  write_envoy_yaml "$OUTDIR/conf/envoy.yaml" "$ENV"
  write_envoy_yaml "$OUTDIR/conf/legate.yaml" "$LEG"
}

# Envoy v3 bootstrap (lib.sh's pieces); the SAME text (ports aside) is given to Envoy and Legate.
# transport_socket follows the chain's filters (a sibling of `filters` in the same chain).
write_envoy_yaml() {  # file base_port
  local f=$1 p=$2 c=$OUTDIR/certs
  {
    cat <<EOF
# HTTPS listener for benches/tls.sh (Envoy v3 API; read unchanged by Envoy and Legate).
# DownstreamTlsContext (TLS 1.3 only, ALPN http/1.1, ECDSA P-256 leaf + CA) in front of
# HCM + router, no access log, no request-id generation; STATIC cluster "up", plain HTTP/1.1.
EOF
    yaml_admin $((p+9))
    yaml_listener https $((p+1)) envoy.filters.network.http_connection_manager \
      type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
    cat <<EOF
          codec_type: HTTP1
          generate_request_id: false
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                route: {cluster: up}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            tls_params:
              tls_minimum_protocol_version: TLSv1_3
              tls_maximum_protocol_version: TLSv1_3
            alpn_protocols: ["http/1.1"]
            tls_certificates:
            - certificate_chain: {filename: $c/chain.pem}
              private_key: {filename: $c/leaf.key}
  clusters:
EOF
    yaml_cluster up "$UP"
  } >"$f"
}

# ---------------------------------------------------------------- upstream and proxies
start_upstream() {
  nginx -t -q -p "$OUTDIR/run/ngx-up" -e "$OUTDIR/logs/nginx-upstream-error.log" -c "$OUTDIR/conf/nginx-upstream.conf" \
    || die "nginx upstream config invalid"
  start_bg nginx-upstream "$OUTDIR/logs/nginx-upstream.out" nginx -p "$OUTDIR/run/ngx-up" \
    -e "$OUTDIR/logs/nginx-upstream-error.log" -c "$OUTDIR/conf/nginx-upstream.conf" -g 'daemon off;'
  wait_tcp "$UP" || die "nginx upstream did not start"
}
start_proxy() {  # NAME: sets PID_OF[NAME]
  local name=$1
  case $name in
    haproxy) start_bg haproxy "$OUTDIR/logs/haproxy.log" haproxy -db -f "$OUTDIR/conf/haproxy.cfg";;
    nginx) start_bg nginx "$OUTDIR/logs/nginx-proxy.out" nginx -p "$OUTDIR/run/ngx-proxy" \
        -e "$OUTDIR/logs/nginx-proxy-error.log" -c "$OUTDIR/conf/nginx-proxy.conf" -g 'daemon off;';;
    envoy|legate) start_envoy "$name";;
  esac
  wait_tcp "$(( $(proxy_base "$name") + 1 ))" 30 || die "$name did not start (see $OUTDIR/logs/)"
}
proxy_base() { case $1 in haproxy) echo "$HAP";; nginx) echo "$NGX";; envoy) echo "$ENV";; legate) echo "$LEG";; esac; }
PROXIES=()
[ "$USE_HAPROXY" = 1 ] && PROXIES+=(haproxy)
[ "$USE_NGINX" = 1 ] && PROXIES+=(nginx)
[ "$USE_ENVOY" = 1 ] && PROXIES+=(envoy)
[ "$USE_LEGATE" = 1 ] && PROXIES+=(legate)
[ ${#PROXIES[@]} -gt 0 ] || die "no proxy left to measure"

# ssl_stats NAME: "handshakes reused" from Envoy's / Legate's admin /stats (NA NA for the others)
ssl_stats() {
  local name=$1 base
  case $name in envoy|legate) ;; *) echo "NA NA"; return;; esac
  base=$(proxy_base "$name")
  curl -s -m 5 "http://127.0.0.1:$((base+9))/stats" 2>/dev/null | awk -v l="listener.127.0.0.1_$((base+1)).ssl." '
    index($0, l "handshake:") == 1 {h=$2} index($0, l "session_reused:") == 1 {r=$2}
    END {print (h == "" ? "NA" : h), (r == "" ? 0 : r)}'
}
# tls_params NAME: what a TLS 1.3 client gets from the proxy (protocol, suite, key exchange,
# chain verified against our CA) and that a GET answers "hello"
TLS_DESC=()
check_tls() {
  local name=$1 port=$(( $(proxy_base "$1") + 1 )) out=$OUTDIR/logs/s_client-$1.txt desc body
  timeout 10 openssl s_client -brief -connect "127.0.0.1:$port" -servername localhost \
    -CAfile "$OUTDIR/certs/ca.pem" -verify_return_error </dev/null >"$out" 2>&1
  desc=$(awk -F': ' '/^Protocol version/{p=$2} /^Ciphersuite/{c=$2} /^(Server|Peer) Temp Key/{k=$2} /^Signature type/{g=$2}
    /^Verification/{v=$2} END{sub(/, .*/, "", k); printf "%s %s %s %s verify=%s", p, c, k, g, v}' "$out")
  body=$(curl -s -m 5 --cacert "$OUTDIR/certs/ca.pem" "https://localhost:$port/" --resolve "localhost:$port:127.0.0.1")
  [ "$body" = hello ] || die "$name: GET https://localhost:$port/ did not answer 'hello' (got '$body'); see $out"
  case $desc in TLSv1.3*verify=OK) ;; *) die "$name: not a verified TLS 1.3 session: $desc (see $out)";; esac
  TLS_DESC+=("$name: $desc")
  log "  $name: $desc; GET / -> hello"
  eval "TLS_OF_$1=\"\${desc% verify=*}\""
}

# ---------------------------------------------------------------- results
# emit scenario variant target round rate p50 p99 count errors handshakes reused load
emit() {
  local per=NA tls
  if [ "$M_CPU" != NA ] && awk -v c="$M_CPU" 'BEGIN{exit !(c>0)}'; then
    per=$(awk -v w="$8" -v c="$M_CPU" 'BEGIN{printf "%.0f", w/c}')
  fi
  eval "tls=\${TLS_OF_$3:-NA}"
  echo "$1,$2,$3,$4,$5,$6,$7,$8,$M_CPU,$per,$DUR,$M_WALL,$M_BUSY,$M_FOREIGN,$9,$M_RC,${10},${11},$tls,${12}" >>"$RAW"
  log "  $1/$3 round $4: $5 /s, p99 $7 ms, proxy CPU ${M_CPU}s, per proxy-CPU-s: $per, busy ${M_BUSY}%, foreign ${M_FOREIGN}%, errors: $9, ssl handshakes ${10} (reused ${11})"
}
to_ms() {  # wrk latency ("512.00us", "1.20ms", "2.01s") -> ms
  awk -v v="$1" 'BEGIN{ if (v=="") {print "NA"; exit}
    n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n=n; else if (v ~ /m$/) n*=60000; else if (v ~ /s$/) n*=1000;
    printf "%.3f", n }'
}

# run_load SCEN ROUND NAME: one bounded load run through NAME's HTTPS listener
run_load() {
  local s=$1 r=$2 name=$3 port=$(( $(proxy_base "$3") + 1 )) pid=${PID_OF[$3]} out h0 h1 reu0 reu1 dh dr
  local -a args
  out="$OUTDIR/logs/$s-$name-$r.txt"
  read -r h0 reu0 < <(ssl_stats "$name")
  case $s in
    ka|res)
      if [ "$s" = ka ]; then args=(-t"$KA_T" -c"$KA_C" -d"${DUR}s" --latency)
      else args=(-t"$RES_T" -c"$RES_C" -d"${DUR}s" --latency -H 'Connection: close'); fi
      measure "$pid" "$out" timeout -k 5 $((DUR + 30)) wrk "${args[@]}" "https://127.0.0.1:$port/";;
    hs)
      measure "$pid" "$out" timeout -k 5 $((DUR + 60)) python3 "$HELPER" handshakes --port "$port" \
        --procs "$HS_P" --duration "$DUR";;
  esac
  read -r h1 reu1 < <(ssl_stats "$name")
  dh=NA; dr=NA
  [ "$h0" != NA ] && [ "$h1" != NA ] && { dh=$((h1 - h0)); dr=$((reu1 - reu0)); }
  case $s in
    ka|res)
      wrk_counts "$out"
      emit "$s" "$( [ "$s" = ka ] && echo small || echo resumed)" "$name" "$r" "${W_RPS:-0}" \
        "$(to_ms "$(awk '$1=="50%"{print $2}' "$out")")" "$(to_ms "$(awk '$1=="99%"{print $2}' "$out")")" \
        "${W_REQS:-0}" "$W_ERRS" "$dh" "$dr" "wrk ${args[*]}";;
    hs)
      local kv count errors rate p50 p99
      kv=$(grep '^count=' "$out")
      count=$(sed -E 's/.*count=([0-9]+).*/\1/' <<<"$kv"); errors=$(sed -E 's/.*errors=([0-9]+).*/\1/' <<<"$kv")
      rate=$(sed -E 's/.*rate=([0-9.]+).*/\1/' <<<"$kv")
      p50=$(sed -E 's/.*p50_ms=([0-9.NA]+).*/\1/' <<<"$kv"); p99=$(sed -E 's/.*p99_ms=([0-9.NA]+).*/\1/' <<<"$kv")
      emit hs new "$name" "$r" "${rate:-0}" "${p50:-NA}" "${p99:-NA}" "${count:-0}" "${errors:-1}" "$dh" "$dr" \
        "tls_helper.py handshakes --procs $HS_P --duration $DUR";;
  esac
}

scen() {  # ka | hs | res
  local s=$1 r name
  for name in "${PROXIES[@]}"; do   # warm-up: fills the upstream pools, checks the path works
    timeout -k 5 20 wrk -t1 -c8 -d1s "https://127.0.0.1:$(( $(proxy_base "$name") + 1 ))/" \
      >"$OUTDIR/logs/$s-warmup-$name.txt" 2>&1 || log "WARN: warm-up through $name failed"
  done
  for ((r=1; r<=ROUNDS; r++)); do
    for name in "${PROXIES[@]}"; do run_load "$s" "$r" "$name"; done
  done
}

# ---------------------------------------------------------------- main
make_certs
write_configs
validate_http_peers

start_upstream
for name in "${PROXIES[@]}"; do start_proxy "$name"; done
log "TLS parameters each proxy negotiates with a TLS 1.3 client (openssl s_client):"
for name in "${PROXIES[@]}"; do check_tls "$name"; done

{
  env_header
  echo "rounds: $ROUNDS  scenarios: $SCEN  quick: $QUICK  DUR=$DUR KA_T=$KA_T KA_C=$KA_C HS_P=$HS_P RES_T=$RES_T RES_C=$RES_C"
  echo "proxies: ${PROXIES[*]}  BASE_PORT=$B"
  [ "$USE_LEGATE" = 1 ] && echo "legate: $LEGATE_BIN (built $(date -r "$LEGATE_BIN" -Is); this checkout's HEAD $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null))"
  [ "$USE_ENVOY" = 1 ] && echo "envoy: $("$ENVOY_BIN" --version 2>/dev/null | awk '/version:/{print $NF}') ($ENVOY_BIN)"
  [ "$USE_HAPROXY" = 1 ] && haproxy -vv 2>/dev/null | grep -E '^HAProxy version|Running on OpenSSL'
  echo "$(nginx -V 2>&1 | head -1); $(nginx -V 2>&1 | grep -o 'built with OpenSSL [0-9a-z.]*')"
  wrk -v 2>&1 | head -1; openssl version
  echo "certificates: ECDSA P-256 leaf (CN=localhost, SAN localhost, 127.0.0.1) + CA, in $OUTDIR/certs"
  echo "negotiated (openssl s_client, TLS 1.3 client):"; printf '  %s\n' "${TLS_DESC[@]}"
  echo "load before: $(uptime)"
} >"$OUTDIR/env.txt"

T0=$(date +%s)
for s in ka hs res; do
  case ,$SCEN, in *,$s,*) ;; *) continue;; esac
  log "=== scenario $s ($ROUNDS rounds; proxies: ${PROXIES[*]})"
  noise_snapshot "$s"
  scen "$s"
done
log "measurement wall time: $(( $(date +%s) - T0 )) s"

summarize "$HELPER"
