//! The ErrorResponses the filter sends on its own before it closes a connection, built once.
//! Both are FATAL, as the server's own would be: the session is over.

use std::sync::LazyLock;

use legate_codecs::postgres::encode;

/// SQLSTATE 08P01 protocol_violation.
const PROTOCOL_VIOLATION: &str = "08P01";
/// SQLSTATE 08006 connection_failure.
const CONNECTION_FAILURE: &str = "08006";

static INVALID_MESSAGE: LazyLock<Vec<u8>> = LazyLock::new(|| {
    encode::error_response("FATAL", PROTOCOL_VIOLATION, "invalid frontend message: the proxy closed the connection")
});

static INVALID_STARTUP: LazyLock<Vec<u8>> =
    LazyLock::new(|| encode::error_response("FATAL", PROTOCOL_VIOLATION, "invalid startup packet"));

static SERVER_GONE: LazyLock<Vec<u8>> =
    LazyLock::new(|| encode::error_response("FATAL", CONNECTION_FAILURE, "server closed the connection unexpectedly"));

/// A frontend message that cannot be framed (e.g. a length of 2^31-1).
pub fn invalid_message() -> &'static [u8] {
    &INVALID_MESSAGE
}

/// A startup packet that cannot be parsed.
pub fn invalid_startup() -> &'static [u8] {
    &INVALID_STARTUP
}

/// The server closed its side without an error of its own and without being asked to.
pub fn server_gone() -> &'static [u8] {
    &SERVER_GONE
}

/// SQLSTATE 28000 invalid_authorization_specification (Envoy's code for this refusal).
const INVALID_AUTHORIZATION: &str = "28000";
/// SQLSTATE 08001 sqlclient_unable_to_establish_sqlconnection.
const UNABLE_TO_CONNECT: &str = "08001";

static DOWNSTREAM_SSL_REQUIRED: LazyLock<Vec<u8>> = LazyLock::new(|| {
    // Envoy's words, character for character.
    encode::error_response("FATAL", INVALID_AUTHORIZATION, "connection denied by Envoy proxy: downstream ssl required.")
});

static UPSTREAM_SSL_FAILED: LazyLock<Vec<u8>> = LazyLock::new(|| {
    encode::error_response(
        "FATAL",
        UNABLE_TO_CONNECT,
        "the proxy could not establish SSL with the server (upstream_ssl)",
    )
});

/// `downstream_ssl: REQUIRE` and the client started without asking for SSL.
pub fn downstream_ssl_required() -> &'static [u8] {
    &DOWNSTREAM_SSL_REQUIRED
}

/// `upstream_ssl: REQUIRE` (or a failed handshake) and the server connection is not TLS.
pub fn upstream_ssl_failed() -> &'static [u8] {
    &UPSTREAM_SSL_FAILED
}
