//! What an access-log line is made from: one finished TCP connection or HTTP stream.
//!
//! The proxy fills a [`StreamInfo`] as the stream runs and hands it to
//! [`AccessLog::log`](super::sink::AccessLog::log) when the stream ends. Conventions the
//! formatter relies on (each checked against Envoy 1.40 output):
//!
//! - `protocol`: `Some("HTTP/1.0" | "HTTP/1.1" | "HTTP/2" | "HTTP/3")` for HTTP, `None` for TCP
//!   (`%PROTOCOL%` prints `-`, JSON `null`).
//! - `response_code`: `None` for TCP; `%RESPONSE_CODE%` then prints `0`, as Envoy does.
//! - `upstream_host`: the chosen endpoint, set as soon as one is picked (also when the connect
//!   later fails: Envoy logs `127.0.0.1:19199` with `UF`). `upstream_local_address` is set only
//!   once the upstream connection is established; `%UPSTREAM_REMOTE_ADDRESS%` is derived from
//!   the two (see [`StreamInfo::upstream_remote_address`]).
//! - `downstream_remote_address`: what Envoy calls the (possibly XFF-derived) remote address:
//!   with `use_remote_address: false` an HCM request carrying `x-forwarded-for: 10.0.0.1`
//!   logs `10.0.0.1:0`.
//! - `upstream_cluster`: the name Envoy prints, i.e. `alt_stat_name` when configured.
//! - `request_headers`: lower-case names, pseudo-headers included (`:method`, `:path`,
//!   `:authority`, `:scheme`), in the order Envoy holds them (the first entry with a name wins
//!   for `%REQ(..)%`), and including headers the proxy added (`x-forwarded-proto`,
//!   `x-request-id`, ...): `%REQUEST_HEADERS_BYTES%` sums name and value lengths over all of
//!   them. Empty for TCP. The same holds for `response_headers` (with `:status`) and
//!   `response_trailers`.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use super::response_flags::ResponseFlags;

/// Everything an access log line may print about one connection or stream.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamInfo {
    /// When the downstream connection (TCP) or request (HTTP) started.
    pub start_time: SystemTime,
    /// Total duration: connection life (TCP) or start to last byte out (HTTP).
    pub duration: Option<Duration>,
    /// Downstream body bytes received (HTTP) or connection bytes received (TCP).
    pub bytes_received: u64,
    /// Downstream body bytes sent (HTTP) or connection bytes sent (TCP).
    pub bytes_sent: u64,
    /// `HTTP/1.0`, `HTTP/1.1`, `HTTP/2`, `HTTP/3`; `None` for TCP.
    pub protocol: Option<&'static str>,
    /// HTTP status sent downstream; `None` for TCP or when none was sent.
    pub response_code: Option<u16>,
    /// Envoy's response code details, e.g. `via_upstream`, `route_not_found`.
    pub response_code_details: Option<String>,
    /// Response flags in the order they were set.
    pub response_flags: ResponseFlags,
    /// The selected upstream endpoint.
    pub upstream_host: Option<SocketAddr>,
    /// The upstream cluster's observability name.
    pub upstream_cluster: Option<String>,
    /// Local address of the established upstream connection.
    pub upstream_local_address: Option<SocketAddr>,
    /// Why the upstream transport failed, e.g. `delayed connect error: Connection refused`.
    pub upstream_transport_failure_reason: Option<String>,
    /// Downstream peer address (XFF-derived when Envoy would use XFF).
    pub downstream_remote_address: Option<SocketAddr>,
    /// Local address the downstream connection arrived on.
    pub downstream_local_address: Option<SocketAddr>,
    /// Downstream connection id.
    pub connection_id: u64,
    /// Name of the matched route.
    pub route_name: Option<String>,
    /// SNI sent by the downstream client.
    pub requested_server_name: Option<String>,
    /// The downstream TLS version (`TLSv1.3`), when Legate terminated TLS.
    pub downstream_tls_version: Option<&'static str>,
    /// The downstream TLS cipher (OpenSSL name), when Legate terminated TLS.
    pub downstream_tls_cipher: Option<&'static str>,
    /// The subject of the client certificate (RFC 2253 form), when one was presented.
    pub downstream_peer_subject: Option<String>,
    /// Request headers, lower-case names; HTTP only, empty for TCP.
    pub request_headers: Vec<(String, String)>,
    /// Response headers, lower-case names.
    pub response_headers: Vec<(String, String)>,
    /// Response trailers, lower-case names.
    pub response_trailers: Vec<(String, String)>,
}

impl Default for StreamInfo {
    fn default() -> Self {
        StreamInfo {
            start_time: SystemTime::UNIX_EPOCH,
            duration: None,
            bytes_received: 0,
            bytes_sent: 0,
            protocol: None,
            response_code: None,
            response_code_details: None,
            response_flags: ResponseFlags::default(),
            upstream_host: None,
            upstream_cluster: None,
            upstream_local_address: None,
            upstream_transport_failure_reason: None,
            downstream_remote_address: None,
            downstream_local_address: None,
            connection_id: 0,
            route_name: None,
            requested_server_name: None,
            downstream_tls_version: None,
            downstream_tls_cipher: None,
            downstream_peer_subject: None,
            request_headers: Vec::new(),
            response_headers: Vec::new(),
            response_trailers: Vec::new(),
        }
    }
}

impl StreamInfo {
    /// Envoy's `upstreamRemoteAddress`: the upstream host once a connection to it exists.
    ///
    /// Envoy sets it when the upstream connection is established, which is also when
    /// `upstream_local_address` becomes known, so it is `upstream_host` when both are set.
    pub fn upstream_remote_address(&self) -> Option<SocketAddr> {
        self.upstream_local_address.and(self.upstream_host)
    }
}

/// The first value of header `name` (compared ASCII case-insensitively).
pub(crate) fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Envoy's `HeaderMap::byteSize()`: the sum of name and value lengths.
pub(crate) fn headers_byte_size(headers: &[(String, String)]) -> u64 {
    headers.iter().map(|(n, v)| (n.len() + v.len()) as u64).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_headers_bytes_match_envoy_byte_size() {
        // The headers Envoy 1.40 held for `curl -H 'content-type: application/grpc'
        // -H 'x-request-id: g1' http://127.0.0.1:19103/nothing`; it logged 152.
        let headers: Vec<(String, String)> = [
            (":authority", "127.0.0.1:19103"),
            (":path", "/nothing"),
            (":method", "GET"),
            (":scheme", "http"),
            ("user-agent", "curl/7.88.1"),
            ("accept", "*/*"),
            ("content-type", "application/grpc"),
            ("x-request-id", "g1"),
            ("x-forwarded-proto", "http"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
        assert_eq!(headers_byte_size(&headers), 152);
    }

    #[test]
    fn first_header_with_a_name_wins() {
        let headers = vec![("x-dup".to_string(), "one".to_string()), ("x-dup".to_string(), "two".to_string())];
        assert_eq!(find_header(&headers, "x-dup"), Some("one"));
        assert_eq!(find_header(&headers, "X-DUP"), Some("one"));
        assert_eq!(find_header(&headers, "x-nope"), None);
    }

    #[test]
    fn upstream_remote_address_needs_an_established_connection() {
        let host: SocketAddr = "127.0.0.1:19199".parse().unwrap();
        let mut info = StreamInfo { upstream_host: Some(host), ..StreamInfo::default() };
        assert_eq!(info.upstream_remote_address(), None);
        info.upstream_local_address = Some("127.0.0.1:40000".parse().unwrap());
        assert_eq!(info.upstream_remote_address(), Some(host));
    }
}
