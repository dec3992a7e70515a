# redis_proxy tests and benches/redis.sh.
# redis-server, redis-cli and redis-benchmark come from run-tests.sh's own list (redis-server,
# redis-tools). Here: redis-py (a client library the tests drive the proxy with), in a venv.

REDIS_PY_VENV="${REDIS_PY_VENV:-$HOME/.cache/legate-test/redis-py-venv}"

provision_redis() {
    if ! "$REDIS_PY_VENV/bin/python" -c 'import redis' >/dev/null 2>&1; then
        rm -rf "$REDIS_PY_VENV"
        python3 -m venv "$REDIS_PY_VENV"
        "$REDIS_PY_VENV/bin/pip" install --disable-pip-version-check --quiet 'redis>=5,<7'
    fi
    export LEGATE_REDIS_PY="$REDIS_PY_VENV/bin/python"
}
