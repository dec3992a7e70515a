# MongoDB peers for integration/tests/mongo_*.rs (sourced by integration/run-tests.sh).
#
# The MongoDB server is not installable from Debian; `nx-27017` (PyPI) is a MongoDB
# wire-protocol server (OP_MSG and the OP_QUERY handshake) backed by SQLite, `mockupdb` scripts
# exact replies for edge cases, and `pymongo` is the driver the tests drive them with;
# `backports.zstd` (pymongo's zstd before Python 3.14's `compression.zstd`) lets pymongo
# negotiate zstd compression, and the tests' compressing front uses it too.
# All go into one venv; the tests find its python through LEGATE_MONGO_PYTHON (or the default path).

MONGO_VENV="${HOME}/.cache/legate-test/mongo-venv"
MONGO_PIP_SPECS=('nx-27017==0.8.*' 'mockupdb==1.8.*' 'pymongo==4.*' 'backports.zstd==1.*')

need python3 python3

provision_mongo() {
    # A venv from before backports.zstd was added only needs that package, not a rebuild.
    if "$MONGO_VENV/bin/python" -c 'import pymongo, mockupdb, nx_27017' >/dev/null 2>&1 \
        && ! "$MONGO_VENV/bin/python" -c 'from backports import zstd' >/dev/null 2>&1; then
        log "installing backports.zstd into $MONGO_VENV"
        "$MONGO_VENV/bin/pip" install --disable-pip-version-check --quiet "${MONGO_PIP_SPECS[3]}"
    fi
    if ! "$MONGO_VENV/bin/python" -c 'import pymongo, mockupdb, nx_27017; from backports import zstd' >/dev/null 2>&1; then
        if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
            install_debian python3-venv
        fi
        log "installing ${MONGO_PIP_SPECS[*]} into $MONGO_VENV"
        rm -rf "$MONGO_VENV"
        python3 -m venv "$MONGO_VENV"
        "$MONGO_VENV/bin/pip" install --disable-pip-version-check --quiet "${MONGO_PIP_SPECS[@]}"
    fi
    export LEGATE_MONGO_PYTHON="$MONGO_VENV/bin/python"
}
