# HTTP peers for the http_connection_manager tests (sourced by integration/run-tests.sh).
#
# curl (HTTP/1.1 and --http2-prior-knowledge), nghttp and h2load (nghttp2-client: HTTP/2
# frames, trailers, bounded h2c load) from Debian; grpcio + grpcio-tools (the Python gRPC
# server and client of integration/grpc/, stubs generated at run time) in a venv. The tests
# find its python through LEGATE_GRPC_PYTHON (or the default path below).

GRPC_VENV="${HOME}/.cache/legate-test/grpc-venv"
GRPC_PIP_SPECS=('grpcio>=1.60,<2' 'grpcio-tools>=1.60,<2')

need curl curl
need nghttp nghttp2-client
need h2load nghttp2-client
need python3 python3

provision_http() {
    if ! "$GRPC_VENV/bin/python" -c 'import grpc, grpc_tools.protoc' >/dev/null 2>&1; then
        if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
            install_debian python3-venv
        fi
        log "installing ${GRPC_PIP_SPECS[*]} into $GRPC_VENV"
        rm -rf "$GRPC_VENV"
        python3 -m venv "$GRPC_VENV"
        "$GRPC_VENV/bin/pip" install --disable-pip-version-check --quiet "${GRPC_PIP_SPECS[@]}"
    fi
    export LEGATE_GRPC_PYTHON="$GRPC_VENV/bin/python"
}
