//! Envoy's command operators: how each one is answered from a [`StreamInfo`] (names, syntax
//! flags and parameter checks live in the `syntax` module).
//!
//! Every name below was checked against the Envoy 1.40 binary (`envoy --mode validate`);
//! any other name fails with Envoy's `Not supported field in StreamInfo: NAME`.
//!
//! Answered from `StreamInfo`: `START_TIME`, `START_TIME_LOCAL`, `EMIT_TIME`,
//! `EMIT_TIME_LOCAL`, `PROTOCOL`, `RESPONSE_CODE` (`0` when unset, as Envoy prints for TCP),
//! `RESPONSE_CODE_DETAILS[(ALLOW_WHITESPACES)]`, `RESPONSE_FLAGS`, `RESPONSE_FLAGS_LONG`,
//! `BYTES_RECEIVED`, `BYTES_SENT`, `DURATION`, `UPSTREAM_HOST`, `UPSTREAM_CLUSTER`,
//! `UPSTREAM_CLUSTER_RAW` (same field: Legate has no `alt_stat_name` split yet),
//! `UPSTREAM_LOCAL_ADDRESS[_WITHOUT_PORT]`, `UPSTREAM_LOCAL_PORT`,
//! `UPSTREAM_REMOTE_ADDRESS[_WITHOUT_PORT]`, `UPSTREAM_REMOTE_PORT` (see
//! [`StreamInfo::upstream_remote_address`]), `UPSTREAM_TRANSPORT_FAILURE_REASON` (spaces become
//! `_`, as in Envoy), `DOWNSTREAM_REMOTE_ADDRESS[_WITHOUT_PORT]`, `DOWNSTREAM_REMOTE_PORT`,
//! `DOWNSTREAM_LOCAL_ADDRESS[_WITHOUT_PORT]`, `DOWNSTREAM_LOCAL_PORT`, `CONNECTION_ID`,
//! `ROUTE_NAME`, `REQUESTED_SERVER_NAME` (sanitized like Envoy: `invalid:` prefix),
//! `REQ`/`REQUEST_HEADER`/`STREAM_INFO_REQ`, `RESP`/`RESPONSE_HEADER`,
//! `TRAILER`/`RESPONSE_TRAILER` (`X?Y` fallback, `:N` truncation), `REQUEST_HEADERS_BYTES`,
//! `RESPONSE_HEADERS_BYTES`, `RESPONSE_TRAILERS_BYTES`, `GRPC_STATUS[(CAMEL_STRING|SNAKE_STRING|
//! NUMBER)]`, `GRPC_STATUS_NUMBER`, `HOSTNAME`, `ENVIRONMENT(KEY):N`, `UNIQUE_ID`,
//! `CUSTOM_FLAGS` (always empty: Legate sets no custom flags) and `ACCESS_LOG_TYPE`
//! (`TcpConnectionEnd` for TCP, `DownstreamEnd` for HTTP: the end-of-stream logs Legate writes).
//!
//! Known to Envoy but not answerable from `StreamInfo` yet, so they print `-` (JSON `null`):
//! `REQUEST_DURATION`, `REQUEST_TX_DURATION`, `RESPONSE_DURATION`, `RESPONSE_TX_DURATION`,
//! `DOWNSTREAM_HANDSHAKE_DURATION`, `ROUNDTRIP_DURATION`, `UPSTREAM_CONNECTION_POOL_READY_DURATION`,
//! `COMMON_DURATION`, `BYTES_RETRANSMITTED`, `PACKETS_RETRANSMITTED`, the
//! `{UPSTREAM,DOWNSTREAM}_{WIRE,HEADER,DECOMPRESSED_HEADER}_BYTES_{SENT,RECEIVED}` family,
//! `UPSTREAM_PROTOCOL`, `CONNECTION_TERMINATION_DETAILS`, `UPSTREAM_HOST_NAME[_WITHOUT_PORT]`,
//! `UPSTREAM_CONNECTION_ID`, `UPSTREAM_REQUEST_ATTEMPT_COUNT`,
//! `DOWNSTREAM_DIRECT_{LOCAL,REMOTE}_{ADDRESS,ADDRESS_WITHOUT_PORT,PORT}`, the TLS operators
//! other than `DOWNSTREAM_TLS_VERSION`, `DOWNSTREAM_TLS_CIPHER` and `DOWNSTREAM_PEER_SUBJECT`
//! (`DOWNSTREAM_TLS_SESSION_ID`, the other `DOWNSTREAM_PEER_*`, `DOWNSTREAM_LOCAL_*_SAN`, `DOWNSTREAM_LOCAL_SUBJECT`,
//! `UPSTREAM_TLS_*`, `UPSTREAM_PEER_*`, `UPSTREAM_LOCAL_*_SAN`, `*_PEER_CERT_V_START/END`,
//! `TLS_JA3_FINGERPRINT`, `TLS_JA4_FINGERPRINT`, `DOWNSTREAM_TRANSPORT_FAILURE_REASON`: all `-`
//! in Envoy too on plain-text connections), `FILTER_CHAIN_NAME`, `VIRTUAL_CLUSTER_NAME`,
//! `STREAM_ID`, `LOCAL_REPLY_BODY`, `TRACE_ID`, `SPAN_ID`, `PATH`, `QUERY_PARAM`,
//! `DYNAMIC_METADATA`, `CLUSTER_METADATA`, `UPSTREAM_METADATA`, `METADATA`, `FILTER_STATE`,
//! `UPSTREAM_FILTER_STATE`, `CEL`, `XFCC_VALUE`, `{UPSTREAM,DOWNSTREAM}_LOCAL_CLOSE_REASON`,
//! `{UPSTREAM,DOWNSTREAM}_DETECTED_CLOSE_TYPE`. Their syntax is still checked with Envoy's
//! messages (`CEL` expressions and `METADATA`/`FILTER_STATE` paths are not evaluated).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use super::stream_info::{find_header, headers_byte_size, StreamInfo};
use super::syntax::{
    check_common_duration, check_filter_state, check_metadata, check_path, check_xfcc, parse_header_names, syntax,
    verify_syntax, CEL_EMPTY_ERROR,
};
use super::time_fmt::{has_newline_specifier, TimeFormat};

/// What an operator produced: Envoy prints `-` (or nothing) for `Missing`; JSON renders
/// `Uint`/`Int` as numbers and `Str` as strings.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Missing,
    Str(String),
    Uint(u64),
    Int(i64),
}

impl Value {
    /// Text form; `None` when missing.
    pub(crate) fn into_text(self) -> Option<String> {
        match self {
            Value::Missing => None,
            Value::Str(s) => Some(s),
            Value::Uint(n) => Some(n.to_string()),
            Value::Int(n) => Some(n.to_string()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Headers {
    Request,
    Response,
    Trailers,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Addr {
    DownstreamRemote,
    DownstreamLocal,
    UpstreamLocal,
    UpstreamRemote,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum AddrPart {
    /// `ip:port` (`[ip]:port` for IPv6).
    Full,
    /// The address without the port.
    Ip,
    /// The port alone (a JSON number).
    Port,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum GrpcFormat {
    Camel,
    Snake,
    Number,
}

/// One parsed command operator.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    Header {
        source: Headers,
        main: String,
        alt: String,
        max_len: Option<usize>,
    },
    Time {
        format: TimeFormat,
        local: bool,
        emit: bool,
    },
    Protocol,
    ResponseCode,
    ResponseCodeDetails {
        allow_whitespace: bool,
    },
    ResponseFlags,
    ResponseFlagsLong,
    BytesReceived,
    BytesSent,
    Duration,
    UpstreamHost,
    UpstreamCluster,
    Address {
        source: Addr,
        part: AddrPart,
    },
    ConnectionId,
    RouteName,
    RequestedServerName,
    DownstreamTlsVersion,
    DownstreamTlsCipher,
    DownstreamPeerSubject,
    UpstreamTransportFailureReason,
    HeadersBytes(Headers),
    GrpcStatus(GrpcFormat),
    UniqueId,
    AccessLogType,
    /// A value fixed at parse time (`HOSTNAME`, `ENVIRONMENT`, `CUSTOM_FLAGS`).
    Const(Value),
    /// Known to Envoy, not answerable yet: always missing.
    Unsupported,
}

/// Command-only operators answered by [`plain_op`].
pub(crate) fn is_plain_supported(command: &str) -> bool {
    plain_op(command).is_some()
}

/// Command-only operators answered from `StreamInfo`.
fn plain_op(command: &str) -> Option<Op> {
    use Addr::*;
    use AddrPart::*;
    let addr = |source, part| Op::Address { source, part };
    Some(match command {
        "PROTOCOL" => Op::Protocol,
        "RESPONSE_CODE" => Op::ResponseCode,
        "RESPONSE_FLAGS" => Op::ResponseFlags,
        "RESPONSE_FLAGS_LONG" => Op::ResponseFlagsLong,
        "BYTES_RECEIVED" => Op::BytesReceived,
        "BYTES_SENT" => Op::BytesSent,
        "DURATION" => Op::Duration,
        "UPSTREAM_HOST" => Op::UpstreamHost,
        "UPSTREAM_CLUSTER" | "UPSTREAM_CLUSTER_RAW" => Op::UpstreamCluster,
        "UPSTREAM_LOCAL_ADDRESS" => addr(UpstreamLocal, Full),
        "UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT" => addr(UpstreamLocal, Ip),
        "UPSTREAM_LOCAL_PORT" => addr(UpstreamLocal, Port),
        "UPSTREAM_REMOTE_ADDRESS" => addr(UpstreamRemote, Full),
        "UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT" => addr(UpstreamRemote, Ip),
        "UPSTREAM_REMOTE_PORT" => addr(UpstreamRemote, Port),
        "DOWNSTREAM_LOCAL_ADDRESS" => addr(DownstreamLocal, Full),
        "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT" => addr(DownstreamLocal, Ip),
        "DOWNSTREAM_LOCAL_PORT" => addr(DownstreamLocal, Port),
        "DOWNSTREAM_REMOTE_ADDRESS" => addr(DownstreamRemote, Full),
        "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT" => addr(DownstreamRemote, Ip),
        "DOWNSTREAM_REMOTE_PORT" => addr(DownstreamRemote, Port),
        "CONNECTION_ID" => Op::ConnectionId,
        "ROUTE_NAME" => Op::RouteName,
        "REQUESTED_SERVER_NAME" => Op::RequestedServerName,
        "DOWNSTREAM_TLS_VERSION" => Op::DownstreamTlsVersion,
        "DOWNSTREAM_TLS_CIPHER" => Op::DownstreamTlsCipher,
        "DOWNSTREAM_PEER_SUBJECT" => Op::DownstreamPeerSubject,
        "UPSTREAM_TRANSPORT_FAILURE_REASON" => Op::UpstreamTransportFailureReason,
        "REQUEST_HEADERS_BYTES" => Op::HeadersBytes(Headers::Request),
        "RESPONSE_HEADERS_BYTES" => Op::HeadersBytes(Headers::Response),
        "RESPONSE_TRAILERS_BYTES" => Op::HeadersBytes(Headers::Trailers),
        "GRPC_STATUS_NUMBER" => Op::GrpcStatus(GrpcFormat::Number),
        "UNIQUE_ID" => Op::UniqueId,
        "ACCESS_LOG_TYPE" => Op::AccessLogType,
        "CUSTOM_FLAGS" => Op::Const(Value::Str(String::new())),
        "HOSTNAME" => Op::Const(hostname().map_or(Value::Missing, Value::Str)),
        _ => return None,
    })
}

/// Builds the operator for `%COMMAND(sub):len%`, with Envoy's error text on failure.
pub(crate) fn parse_op(command: &str, sub: &str, len: Option<usize>) -> Result<Op, String> {
    let flags = syntax(command).ok_or_else(|| format!("Not supported field in StreamInfo: {command}"))?;
    verify_syntax(flags, command, sub, len)?;
    if let Some(op) = plain_op(command) {
        return Ok(op);
    }
    let header = |source| {
        let (main, alt) = parse_header_names(sub)?;
        Ok(Op::Header { source, main, alt, max_len: len })
    };
    let time = |local, emit| {
        if has_newline_specifier(sub) {
            return Err("Invalid header configuration. Format string contains newline.".into());
        }
        let format = TimeFormat::parse(sub, local);
        Ok(Op::Time { format, local, emit })
    };
    match command {
        "REQ" | "REQUEST_HEADER" | "STREAM_INFO_REQ" => header(Headers::Request),
        "RESP" | "RESPONSE_HEADER" => header(Headers::Response),
        "TRAILER" | "RESPONSE_TRAILER" => header(Headers::Trailers),
        "START_TIME" => time(false, false),
        "START_TIME_LOCAL" => time(true, false),
        "EMIT_TIME" => time(false, true),
        "EMIT_TIME_LOCAL" => time(true, true),
        "DOWNSTREAM_PEER_CERT_V_START"
        | "DOWNSTREAM_PEER_CERT_V_END"
        | "UPSTREAM_PEER_CERT_V_START"
        | "UPSTREAM_PEER_CERT_V_END" => time(false, false).map(|_| Op::Unsupported),
        "RESPONSE_CODE_DETAILS" => Ok(Op::ResponseCodeDetails { allow_whitespace: sub == "ALLOW_WHITESPACES" }),
        "GRPC_STATUS" => Ok(Op::GrpcStatus(match sub {
            "" | "CAMEL_STRING" => GrpcFormat::Camel,
            "SNAKE_STRING" => GrpcFormat::Snake,
            "NUMBER" => GrpcFormat::Number,
            _ => {
                return Err(format!(
                    "GrpcStatusFormatter only supports CAMEL_STRING, SNAKE_STRING or NUMBER. Got: {sub}"
                ))
            }
        })),
        "ENVIRONMENT" => Ok(Op::Const(Value::Str(match std::env::var_os(sub) {
            Some(v) => truncate(&v.to_string_lossy(), len),
            None => "-".to_string(),
        }))),
        "COMMON_DURATION" => check_common_duration(sub).map(|_| Op::Unsupported),
        "FILTER_STATE" | "UPSTREAM_FILTER_STATE" => check_filter_state(sub).map(|_| Op::Unsupported),
        "PATH" => check_path(sub).map(|_| Op::Unsupported),
        "METADATA" => check_metadata(sub).map(|_| Op::Unsupported),
        "XFCC_VALUE" => check_xfcc(sub).map(|_| Op::Unsupported),
        "CEL" if sub.is_empty() => Err(CEL_EMPTY_ERROR.to_string()),
        _ => Ok(Op::Unsupported),
    }
}

/// Envoy truncates to `max_len` bytes; this backs off to a UTF-8 boundary.
fn truncate(value: &str, max_len: Option<usize>) -> String {
    match max_len {
        Some(max) if value.len() > max => {
            let mut end = max;
            while !value.is_char_boundary(end) {
                end -= 1;
            }
            value[..end].to_string()
        }
        _ => value.to_string(),
    }
}

/// `gethostname()`, read once at parse time like Envoy.
fn hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
        .find(|s| !s.is_empty())
}

/// A random (version 4) UUID, like Envoy's `UNIQUE_ID`.
fn uuid4() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; 16];
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    for half in bytes.chunks_mut(8) {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        hasher.write_u128(now);
        half.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// Envoy's `StringUtil::sanitizeInvalidHostname`.
fn sanitize_hostname(name: &str) -> String {
    let mut sanitized = false;
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                sanitized = true;
                '_'
            }
        })
        .collect();
    if sanitized {
        format!("invalid:{cleaned}")
    } else {
        cleaned
    }
}

const GRPC_CAMEL: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];
const GRPC_SNAKE: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// Envoy's `Grpc::Common::getGrpcStatus(trailers, headers, info)`, logged only for gRPC
/// requests (`:path` present and `content-type` `application/grpc[+...]`).
fn grpc_status(info: &StreamInfo) -> Option<i64> {
    let req = &info.request_headers;
    let content_type = find_header(req, "content-type").unwrap_or("");
    let grpc =
        content_type.strip_prefix("application/grpc").is_some_and(|rest| rest.is_empty() || rest.starts_with('+'));
    if find_header(req, ":path").is_none() || !grpc {
        return None;
    }
    let parse = |headers: &[(String, String)]| {
        find_header(headers, "grpc-status").filter(|v| !v.is_empty()).map(|v| v.parse::<u64>().map_or(-1, |n| n as i64))
    };
    parse(&info.response_trailers).or_else(|| parse(&info.response_headers)).or_else(|| {
        info.response_code.map(|code| i64::from(crate::filter::http::conn_manager::http_to_grpc_status(code)))
    })
}

fn non_empty(value: &Option<String>) -> Value {
    match value {
        Some(v) if !v.is_empty() => Value::Str(v.clone()),
        _ => Value::Missing,
    }
}

impl Op {
    /// This operator's value for `info`.
    pub(crate) fn eval(&self, info: &StreamInfo) -> Value {
        match self {
            Op::Header { source, main, alt, max_len } => {
                let headers = match source {
                    Headers::Request => &info.request_headers,
                    Headers::Response => &info.response_headers,
                    Headers::Trailers => &info.response_trailers,
                };
                find_header(headers, main)
                    .or_else(|| (!alt.is_empty()).then(|| find_header(headers, alt)).flatten())
                    .map_or(Value::Missing, |v| Value::Str(truncate(v, *max_len)))
            }
            Op::Time { format, local, emit } => {
                let time = if *emit { SystemTime::now() } else { info.start_time };
                Value::Str(format.format(time, *local))
            }
            Op::Protocol => info.protocol.map_or(Value::Missing, |p| Value::Str(p.to_string())),
            Op::ResponseCode => Value::Uint(u64::from(info.response_code.unwrap_or(0))),
            Op::ResponseCodeDetails { allow_whitespace } => match &info.response_code_details {
                None => Value::Missing,
                Some(d) if *allow_whitespace => Value::Str(d.clone()),
                Some(d) => Value::Str(d.chars().map(|c| if " \t\n\x0b\x0c\r".contains(c) { '_' } else { c }).collect()),
            },
            Op::ResponseFlags => Value::Str(info.response_flags.to_string()),
            Op::ResponseFlagsLong => Value::Str(info.response_flags.to_long_string()),
            Op::BytesReceived => Value::Uint(info.bytes_received),
            Op::BytesSent => Value::Uint(info.bytes_sent),
            Op::Duration => {
                info.duration.map_or(Value::Missing, |d| Value::Uint(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
            }
            Op::UpstreamHost => info.upstream_host.map_or(Value::Missing, |a| Value::Str(a.to_string())),
            Op::UpstreamCluster => non_empty(&info.upstream_cluster),
            Op::Address { source, part } => {
                let address: Option<SocketAddr> = match source {
                    Addr::DownstreamRemote => info.downstream_remote_address,
                    Addr::DownstreamLocal => info.downstream_local_address,
                    Addr::UpstreamLocal => info.upstream_local_address,
                    Addr::UpstreamRemote => info.upstream_remote_address(),
                };
                match (address, part) {
                    (None, _) => Value::Missing,
                    (Some(a), AddrPart::Full) => Value::Str(a.to_string()),
                    (Some(a), AddrPart::Ip) => Value::Str(a.ip().to_string()),
                    (Some(a), AddrPart::Port) => Value::Uint(u64::from(a.port())),
                }
            }
            Op::ConnectionId => Value::Uint(info.connection_id),
            Op::RouteName => non_empty(&info.route_name),
            Op::RequestedServerName => match non_empty(&info.requested_server_name) {
                Value::Str(sni) => Value::Str(sanitize_hostname(&sni)),
                other => other,
            },
            Op::DownstreamTlsVersion => {
                info.downstream_tls_version.map_or(Value::Missing, |v| Value::Str(v.to_string()))
            }
            Op::DownstreamTlsCipher => info.downstream_tls_cipher.map_or(Value::Missing, |v| Value::Str(v.to_string())),
            Op::DownstreamPeerSubject => non_empty(&info.downstream_peer_subject),
            Op::UpstreamTransportFailureReason => match non_empty(&info.upstream_transport_failure_reason) {
                Value::Str(r) => Value::Str(r.replace(' ', "_")),
                other => other,
            },
            Op::HeadersBytes(source) => Value::Uint(headers_byte_size(match source {
                Headers::Request => &info.request_headers,
                Headers::Response => &info.response_headers,
                Headers::Trailers => &info.response_trailers,
            })),
            Op::GrpcStatus(format) => match (grpc_status(info), format) {
                (None, _) => Value::Missing,
                (Some(code), GrpcFormat::Number) => Value::Int(code),
                (Some(code), GrpcFormat::Camel) => Value::Str(
                    usize::try_from(code)
                        .ok()
                        .and_then(|i| GRPC_CAMEL.get(i))
                        .map_or(code.to_string(), |s| s.to_string()),
                ),
                (Some(code), GrpcFormat::Snake) => Value::Str(
                    usize::try_from(code)
                        .ok()
                        .and_then(|i| GRPC_SNAKE.get(i))
                        .map_or(code.to_string(), |s| s.to_string()),
                ),
            },
            Op::UniqueId => Value::Str(uuid4()),
            Op::AccessLogType => {
                Value::Str(if info.protocol.is_some() { "DownstreamEnd" } else { "TcpConnectionEnd" }.to_string())
            }
            Op::Const(value) => value.clone(),
            Op::Unsupported => Value::Missing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(command: &str, sub: &str, len: Option<usize>) -> String {
        parse_op(command, sub, len).err().unwrap_or_default()
    }

    #[test]
    fn unknown_operator_error_text_matches_envoy() {
        assert_eq!(err("FOO", "", None), "Not supported field in StreamInfo: FOO");
        assert_eq!(err("REQ_WITHOUT_QUERY", "x", None), "Not supported field in StreamInfo: REQ_WITHOUT_QUERY");
    }

    #[test]
    fn syntax_errors_match_envoy() {
        assert_eq!(err("REQ", "", None), "REQ requires parameters");
        assert_eq!(err("PROTOCOL", "x", None), "PROTOCOL does not take any parameters or length");
        assert_eq!(err("BYTES_SENT", "", Some(2)), "BYTES_SENT does not take any parameters or length");
        assert_eq!(err("START_TIME", "", Some(3)), "START_TIME does not allow length to be specified.");
        assert_eq!(err("REQ", "A?B?C", None), "More than 1 alternative header specified in token: A?B?C");
        assert_eq!(err("REQ", " x ", None), "Invalid header configuration. Format string contains invalid characters.");
        assert_eq!(err("START_TIME", "a%-3En", None), "Invalid header configuration. Format string contains newline.");
        assert_eq!(
            err("GRPC_STATUS", "FOO", None),
            "GrpcStatusFormatter only supports CAMEL_STRING, SNAKE_STRING or NUMBER. Got: FOO"
        );
        assert_eq!(err("FILTER_STATE", "", None), "Invalid filter state configuration, key cannot be empty.");
        assert_eq!(
            err("FILTER_STATE", "a:TYPED:x", None),
            "Invalid filter state serialize type, FIELD should be used with the field name."
        );
        assert_eq!(err("COMMON_DURATION", "a:b:xs", None), "Invalid common duration precision: xs.");
        assert_eq!(err("PATH", "wq", None), "Invalid PATH option: 'wq', only 'WQ'/'NQ' are allowed");
        assert_eq!(err("METADATA", "", None), " is not supported type of metadata");
        assert_eq!(err("XFCC_VALUE", "bad", None), "XFCC_VALUE command does not support subcommand: bad");
        assert!(err("CEL", "", Some(3)).starts_with("Not able to parse expression"));
        assert!(parse_op("REQ", "A?", None).is_ok());
        assert!(parse_op("REQ", "?B", None).is_ok());
        assert!(parse_op("REQ", ":PATH", Some(0)).is_ok());
        assert!(parse_op("DYNAMIC_METADATA", "a:b", Some(5)).is_ok());
        assert!(parse_op("HOSTNAME", "", None).is_ok());
    }

    #[test]
    fn sni_and_transport_failure_are_sanitized_like_envoy() {
        assert_eq!(sanitize_hostname("example.com"), "example.com");
        assert_eq!(sanitize_hostname("a b"), "invalid:a_b");
        let info = StreamInfo {
            upstream_transport_failure_reason: Some("delayed connect error: Connection refused".into()),
            ..StreamInfo::default()
        };
        assert_eq!(
            Op::UpstreamTransportFailureReason.eval(&info),
            Value::Str("delayed_connect_error:_Connection_refused".into())
        );
    }

    #[test]
    fn grpc_status_needs_a_grpc_request_and_falls_back_to_http_status() {
        let mut info = StreamInfo { response_code: Some(404), ..StreamInfo::default() };
        assert_eq!(Op::GrpcStatus(GrpcFormat::Camel).eval(&info), Value::Missing);
        info.request_headers =
            vec![(":path".into(), "/nothing".into()), ("content-type".into(), "application/grpc".into())];
        // Envoy 1.40 logged `Unimplemented` for this request.
        let camel = Op::GrpcStatus(GrpcFormat::Camel).eval(&info);
        assert_eq!(camel, Value::Str("Unimplemented".into()));
        info.response_trailers = vec![("grpc-status".into(), "14".into())];
        let snake = Op::GrpcStatus(GrpcFormat::Snake).eval(&info);
        assert_eq!(snake, Value::Str("UNAVAILABLE".into()));
        let number = Op::GrpcStatus(GrpcFormat::Number).eval(&info);
        assert_eq!(number, Value::Int(14));
    }

    #[test]
    fn unique_ids_are_version_4_uuids() {
        let a = uuid4();
        let b = uuid4();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(["8", "9", "a", "b"].contains(&&a[19..20]));
    }

    #[test]
    fn environment_is_read_once_and_truncated() {
        let op = parse_op("ENVIRONMENT", "LEGATE_SURELY_UNSET_VAR", None);
        let value = op.map(|o| o.eval(&StreamInfo::default()));
        assert_eq!(value, Ok(Value::Str("-".into())));
        if let Ok(path) = std::env::var("PATH") {
            let op = parse_op("ENVIRONMENT", "PATH", Some(2));
            let value = op.map(|o| o.eval(&StreamInfo::default()));
            assert_eq!(value, Ok(Value::Str(truncate(&path, Some(2)))));
        }
    }
}
