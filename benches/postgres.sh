#!/usr/bin/env bash
# PostgreSQL benchmark: `pgbench -S -c 16 -j 2 -T <t>` against a throw-away PostgreSQL
# directly, through Legate (postgres_proxy + tcp_proxy, --concurrency 1), through haproxy
# (mode tcp, one thread) and through pgbouncer (session mode; single-threaded by design).
# All on 127.0.0.1; targets interleaved inside each round (the order rotates by one each
# round); medians over rounds; ratios to
# direct and to pgbouncer; transactions per proxy-CPU-second from /proc/<pid>/stat.
#
#   benches/postgres.sh [options]
#     -r N          rounds (default 3)
#     -t S          pgbench -T seconds (default 10)
#     -o DIR        results directory (default benches/results/postgres-<timestamp>)
#     --quick       smoke test: 1 round, -T 3
#     --no-sql      Legate with enable_sql_parsing: false as well (an extra target)
#     --ssl         clients use TLS (PGSSLMODE=require): PostgreSQL with ssl=on (direct),
#                   Legate terminating it (terminate_ssl, starttls socket, clear to the
#                   server), pgbouncer with client_tls_sslmode=require (clear to the server).
#                   No haproxy: it cannot answer PostgreSQL's in-band SSLRequest.
#     --no-build    do not run `cargo build --release`
#     -h, --help    this text
#   Environment: LEGATE_BIN (default <repo>/target/release/legate), BASE_PORT (default 25400).
set -u

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
# shellcheck source=benches/lib.sh
. "$BENCH_DIR/lib.sh"
ROUNDS=3; T=10; OUTDIR=""; BUILD=1; NOSQL=0; SSL=0
while [ $# -gt 0 ]; do
  case $1 in
    -t) T=$2; shift 2;;
    --quick) ROUNDS=1; T=3; shift;;
    --no-sql) NOSQL=1; shift;;
    --ssl) SSL=1; shift;;
    *) common_opt "$@"; shift "$OPT_SHIFT";;
  esac
done

need pgbench "apt-get install postgresql-client"
[ "$SSL" = 1 ] || need haproxy "apt-get install haproxy"
[ "$SSL" = 1 ] && need openssl "apt-get install openssl"
need pgbouncer "apt-get install pgbouncer"
need ss "apt-get install iproute2"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || die "PostgreSQL server not found in /usr/lib/postgresql/*/bin: apt-get install postgresql"
legate_bin

B=${BASE_PORT:-25400}
PG=$((B+1)); LEG=$((B+2)); HAP=$((B+3)); BOUNCER=$((B+4)); LEG_ADMIN=$((B+5)); LEG2=$((B+6)); LEG2_ADMIN=$((B+7))
ports_free $PG $LEG $HAP $BOUNCER $LEG_ADMIN $LEG2 $LEG2_ADMIN

OUTDIR=${OUTDIR:-$BENCH_DIR/results/postgres-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUTDIR"/{logs,conf} || die "cannot create $OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
chmod 755 "$OUTDIR" "$OUTDIR/conf" "$OUTDIR/logs"
RAW=$OUTDIR/raw.csv
echo "target,round,tps,transactions,proxy_cpu_s,tx_per_cpu_s" >"$RAW"

# PostgreSQL and pgbouncer refuse to run as root: run them as the postgres user then.
AS_PG=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || die "running as root needs a postgres user (Debian's postgresql package creates it)"
  AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups)
  chown -R postgres:postgres "$OUTDIR"
fi

trap stop_all EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- certificate (--ssl)
PG_SSL=()
if [ "$SSL" = 1 ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost -days 2 \
    -keyout "$OUTDIR/conf/server.key" -out "$OUTDIR/conf/server.crt" >"$OUTDIR/logs/openssl.log" 2>&1 \
    || die "openssl failed: see $OUTDIR/logs/openssl.log"
  chmod 600 "$OUTDIR/conf/server.key"
  [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$OUTDIR/conf"
  PG_SSL=(-c ssl=on -c ssl_cert_file="$OUTDIR/conf/server.crt" -c ssl_key_file="$OUTDIR/conf/server.key")
  export PGSSLMODE=require PGGSSENCMODE=disable
fi

# ---------------------------------------------------------------- PostgreSQL
log "initdb"
"${AS_PG[@]}" "$PGBIN/initdb" -D "$OUTDIR/pgdata" -A trust -U postgres --no-sync >"$OUTDIR/logs/initdb.log" 2>&1 \
  || die "initdb failed: see $OUTDIR/logs/initdb.log"
start_bg postgres "$OUTDIR/logs/postgres.log" "${AS_PG[@]}" "$PGBIN/postgres" -D "$OUTDIR/pgdata" -p "$PG" -c listen_addresses=127.0.0.1 \
  -c unix_socket_directories="$OUTDIR" -c fsync=off -c synchronous_commit=off -c max_connections=100 "${PG_SSL[@]}"
PG_PID=$LAST_PID
wait_tcp "$PG" 30 || die "postgres did not start: see $OUTDIR/logs/postgres.log"
sleep 1
pgbench -i -s 1 -q -h 127.0.0.1 -p "$PG" -U postgres postgres >"$OUTDIR/logs/pgbench-init.log" 2>&1 \
  || die "pgbench -i failed"

# ---------------------------------------------------------------- proxies
legate_conf() {  # port admin_port sql_parsing
  local tls="" term=""
  if [ "$SSL" = 1 ]; then
    term="
          terminate_ssl: true"
    tls="
      transport_socket:
        name: envoy.transport_sockets.starttls
        typed_config:
          '@type': type.googleapis.com/envoy.extensions.transport_sockets.starttls.v3.StartTlsConfig
          tls_socket_config:
            common_tls_context:
              tls_certificates:
              - certificate_chain: {filename: $OUTDIR/conf/server.crt}
                private_key: {filename: $OUTDIR/conf/server.key}"
  fi
  cat <<YAML
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: $2}}
static_resources:
  listeners:
  - name: pg
    address: {socket_address: {address: 127.0.0.1, port_value: $1}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.postgres_proxy
        typed_config:
          '@type': type.googleapis.com/envoy.extensions.filters.network.postgres_proxy.v3alpha.PostgresProxy
          stat_prefix: pg
          enable_sql_parsing: $3$term
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          '@type': type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: pg_tcp
          cluster: pg$tls
  clusters:
  - name: pg
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: pg
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $PG}}}
YAML
}
legate_conf "$LEG" "$LEG_ADMIN" true >"$OUTDIR/conf/legate.yaml"
start_bg legate "$OUTDIR/logs/legate.log" "$LEGATE_BIN" -c "$OUTDIR/conf/legate.yaml" --concurrency 1
wait_tcp "$LEG" 30 || die "legate did not start"
TARGETS="direct legate haproxy pgbouncer"
if [ "$NOSQL" = 1 ]; then
  legate_conf "$LEG2" "$LEG2_ADMIN" false >"$OUTDIR/conf/legate-nosql.yaml"
  start_bg legate-nosql "$OUTDIR/logs/legate-nosql.log" "$LEGATE_BIN" -c "$OUTDIR/conf/legate-nosql.yaml" --concurrency 1
  wait_tcp "$LEG2" 30 || die "legate (no sql parsing) did not start"
  TARGETS="direct legate legate-nosql haproxy pgbouncer"
fi
# The server side stays clear for the proxies (they terminate the clients' TLS).
BOUNCER_TLS=""
[ "$SSL" = 1 ] && BOUNCER_TLS="client_tls_sslmode = require
client_tls_key_file = $OUTDIR/conf/server.key
client_tls_cert_file = $OUTDIR/conf/server.crt
server_tls_sslmode = disable"

if [ "$SSL" = 0 ]; then
cat >"$OUTDIR/conf/haproxy.cfg" <<CFG
global
  nbthread 1
  maxconn 1000
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
frontend pg
  bind 127.0.0.1:$HAP
  default_backend pg
backend pg
  server pg 127.0.0.1:$PG
CFG
start_bg haproxy "$OUTDIR/logs/haproxy.log" haproxy -f "$OUTDIR/conf/haproxy.cfg" -db
wait_tcp "$HAP" 30 || die "haproxy did not start"
else
  TARGETS=${TARGETS/ haproxy/}
fi

echo '"postgres" ""' >"$OUTDIR/conf/userlist.txt"
cat >"$OUTDIR/conf/pgbouncer.ini" <<INI
[databases]
postgres = host=127.0.0.1 port=$PG dbname=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER
unix_socket_dir =
auth_type = trust
auth_file = $OUTDIR/conf/userlist.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 40
logfile =
pidfile =
$BOUNCER_TLS
INI
[ "$(id -u)" = 0 ] && chown -R postgres:postgres "$OUTDIR/conf"
start_bg pgbouncer "$OUTDIR/logs/pgbouncer.log" "${AS_PG[@]}" pgbouncer "$OUTDIR/conf/pgbouncer.ini"
wait_tcp "$BOUNCER" 30 || die "pgbouncer did not start: see $OUTDIR/logs/pgbouncer.log"

port_of() {
  case $1 in direct) echo "$PG";; legate) echo "$LEG";; legate-nosql) echo "$LEG2";; haproxy) echo "$HAP";; pgbouncer) echo "$BOUNCER";; esac
}

# ---------------------------------------------------------------- rounds
# The order rotates by one target each round, so no target always runs right after the same
# one (the first proxy after `direct` found PostgreSQL just loaded by 16 direct clients).
read -r -a ORDER <<<"$TARGETS"
for ((r=1; r<=ROUNDS; r++)); do
  k=$(( (r - 1) % ${#ORDER[@]} ))
  for target in "${ORDER[@]:k}" "${ORDER[@]:0:k}"; do
    port=$(port_of "$target"); pid=${PID_OF[$target]:-}
    c0=0; [ -n "$pid" ] && c0=$(proc_ticks "$pid")
    out=$(timeout $((T + 60)) pgbench -n -S -c 16 -j 2 -T "$T" -h 127.0.0.1 -p "$port" -U postgres postgres 2>&1)
    rc=$?
    c1=0; [ -n "$pid" ] && c1=$(proc_ticks "$pid")
    echo "$out" >"$OUTDIR/logs/pgbench-$target-$r.log"
    [ $rc = 0 ] || die "pgbench via $target failed (rc $rc): see $OUTDIR/logs/pgbench-$target-$r.log"
    tps=$(echo "$out" | awk '/^tps = .*without initial connection time/ {print $3}')
    n=$(echo "$out" | awk -F': ' '/number of transactions actually processed/ {split($2, a, "/"); print a[1]}')
    cpu=$(awk -v a="$c0" -v b="$c1" -v h="$CLK_TCK" 'BEGIN {printf "%.2f", (b - a) / h}')
    per=$(awk -v n="$n" -v c="$cpu" 'BEGIN {if (c > 0) printf "%.0f", n / c; else print "NA"}')
    echo "$target,$r,$tps,$n,$cpu,$per" >>"$RAW"
    log "round $r $target: tps=$tps transactions=$n proxy_cpu=${cpu}s tx/cpu-s=$per"
  done
done

# Legate's own view of the last run: the counts must match what pgbench did.
curl -s "http://127.0.0.1:$LEG_ADMIN/stats?filter=^postgres\\.pg\\.(statements|statements_select|transactions|sessions|sessions_terminated_ssl|errors|protocol_errors|statements_parsed)$" \
  >"$OUTDIR/legate-stats.txt" 2>/dev/null || true

# ---------------------------------------------------------------- summary (medians)
col() { awk -F, -v t="$1" -v c="$2" 'NR>1 && $1==t && $c!="NA" {print $c}' "$RAW" | median; }
D_TPS=$(col direct 3); B_TPS=$(col pgbouncer 3); B_PER=$(col pgbouncer 6); H_PER=$(col haproxy 6)
[ "$H_PER" = NA ] && H_PER=0  # --ssl: no haproxy
BEST_PER=$(awk -v a="$B_PER" -v b="$H_PER" 'BEGIN {print (a + 0 > b + 0 ? a : b)}')
{
  ssl=""; [ "$SSL" = 1 ] && ssl=", clients over TLS (sslmode=require)"
  echo "pgbench -S -c 16 -j 2 -T $T$ssl, $ROUNDS round(s), medians; $(nproc) cores; $(date -u +%FT%TZ)"
  echo
  echo "| target | TPS | × direct | × pgbouncer TPS | tx per proxy-CPU-s | × best of pgbouncer/haproxy |"
  echo "|---|---|---|---|---|---|"
  for target in $TARGETS; do
    tps=$(col "$target" 3); per=$(col "$target" 6)
    awk -v t="$target" -v tps="$tps" -v per="$per" -v d="$D_TPS" -v b="$B_TPS" -v best="$BEST_PER" 'BEGIN {
      printf "| %s | %.0f | %.2f | %.2f | %s | %s |\n", t, tps, tps / d, tps / b,
        (per == "NA" ? "n/a" : sprintf("%.0f", per)), (per == "NA" ? "n/a" : sprintf("%.2f", per / best))
    }'
  done
  # Paired ratios: each round's figure against the peers' in the same round, median over
  # rounds. The machine drifts between rounds (single rounds move by +-10 % here); pairing
  # within a round cancels the drift that the medians above keep.
  paired() {  # target column mode(pgbouncer|best) -> median over rounds of target / reference
    awk -F, -v t="$1" -v c="$2" -v mode="$3" 'NR > 1 {v[$1 "," $2] = $c; r[$2] = 1}
      END {for (k in r) {x = v[t "," k]; b = v["pgbouncer," k]
        if (mode == "best") {h = v["haproxy," k]; if (h != "" && h != "NA" && h + 0 > b + 0) b = h}
        if (x != "" && x != "NA" && b + 0 > 0) print x / b}}' "$RAW" | median
  }
  echo
  echo "Paired (median over rounds of the ratio within each round):"
  echo
  echo "| target | × pgbouncer TPS | × best of pgbouncer/haproxy per proxy-CPU-s |"
  echo "|---|---|---|"
  for target in $TARGETS; do
    case $target in direct|pgbouncer) continue;; esac
    awk -v t="$target" -v a="$(paired "$target" 3 pgbouncer)" -v b="$(paired "$target" 6 best)" \
      'BEGIN {printf "| %s | %s | %s |\n", t, (a == "NA" ? "n/a" : sprintf("%.2f", a)), (b == "NA" ? "n/a" : sprintf("%.2f", b))}'
  done
} | tee "$OUTDIR/summary.md"
log "results in $OUTDIR"
