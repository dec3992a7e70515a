#!/usr/bin/env bash
# MongoDB benchmark: CPU per operation through Legate's mongo_proxy + tcp_proxy against
# tcp_proxy alone, on the same lockstep OP_MSG `find` traffic to a fast scripted upstream
# (benches/mongo_helper.py), in the same run, interleaved per round; then the codec alone on
# recorded pymongo traffic (codecs/examples/mongo_codec_time.rs). 127.0.0.1 only, bounded.
#
#   benches/mongo.sh [--quick] [-r ROUNDS] [--no-build]
#   Environment: LEGATE_BIN (default target/release/legate), OPS (default 20000 per round),
#                CONNS (default 4), BASE_PORT (default 25300; uses +0..+3)
set -u
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
HELPER="$BENCH_DIR/mongo_helper.py"
# shellcheck source=benches/lib.sh
. "$BENCH_DIR/lib.sh"
ROUNDS=5; BUILD=1; OPS=${OPS:-20000}; CONNS=${CONNS:-4}; BASE_PORT=${BASE_PORT:-25300}
while [ $# -gt 0 ]; do
  case $1 in
    -r) ROUNDS=$2; shift 2;;
    --quick) ROUNDS=1; OPS=4000; shift;;
    --no-build) BUILD=0; shift;;
    *) echo "usage: benches/mongo.sh [--quick] [-r ROUNDS] [--no-build]" >&2; exit 2;;
  esac
done
LEGATE_BIN=${LEGATE_BIN:-$REPO/target/release/legate}
if [ "$BUILD" = 1 ]; then
  (cd "$REPO" && cargo build --release --bin legate -q) || exit 1
fi
TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$TMP"; }
trap cleanup EXIT

UP=$BASE_PORT
python3 "$HELPER" upstream "$UP" & PIDS+=($!)

config() {  # name port with_mongo
  local mongo=""
  if [ "$3" = 1 ]; then
    mongo="      - name: envoy.filters.network.mongo_proxy
        typed_config:
          '@type': type.googleapis.com/envoy.extensions.filters.network.mongo_proxy.v3.MongoProxy
          stat_prefix: bench
"
  fi
  cat > "$TMP/$1.yaml" <<YAML
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  listeners:
  - name: $1
    address: {socket_address: {address: 127.0.0.1, port_value: $2}}
    filter_chains:
    - filters:
$mongo      - name: envoy.filters.network.tcp_proxy
        typed_config:
          '@type': type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: bench
          cluster: up
  clusters:
  - name: up
    type: STATIC
    load_assignment:
      cluster_name: up
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $UP}}}}]}]
YAML
}
config mongo $((BASE_PORT + 1)) 1
config plain $((BASE_PORT + 2)) 0
"$LEGATE_BIN" -c "$TMP/mongo.yaml" --concurrency 1 >"$TMP/mongo.log" 2>&1 & MONGO_PID=$!; PIDS+=($MONGO_PID)
"$LEGATE_BIN" -c "$TMP/plain.yaml" --concurrency 1 >"$TMP/plain.log" 2>&1 & PLAIN_PID=$!; PIDS+=($PLAIN_PID)
sleep 1

declare -a R_MONGO R_PLAIN
for r in $(seq 1 "$ROUNDS"); do
  for target in mongo plain; do
    if [ $target = mongo ]; then pid=$MONGO_PID; port=$((BASE_PORT + 1)); else pid=$PLAIN_PID; port=$((BASE_PORT + 2)); fi
    before=$(proc_ticks "$pid")
    done_ops=$(timeout 120 python3 "$HELPER" client "$port" "$OPS" "$CONNS")
    after=$(proc_ticks "$pid")
    us=$(python3 -c "print(($after - $before) * 1e6 / $CLK_TCK / max(1, $done_ops))")
    log "round $r $target: $done_ops ops, $((after - before)) ticks, ${us} us CPU/op"
    if [ $target = mongo ]; then R_MONGO+=("$us"); else R_PLAIN+=("$us"); fi
  done
done
M=$(printf '%s\n' "${R_MONGO[@]}" | median); P=$(printf '%s\n' "${R_PLAIN[@]}" | median)
echo "cpu_per_op_us mongo_proxy+tcp_proxy=$M tcp_proxy=$P ratio=$(python3 -c "print(round($M / $P, 3) if $P else 'n/a')") (target <= 1.2; $ROUNDS rounds, $OPS ops, $CONNS conns)"
(cd "$REPO" && cargo run --release -q -p legate-codecs --example mongo_codec_time)
