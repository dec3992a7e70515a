//! Syntax of Envoy's command operators: which names exist, which take a parameter or a
//! `:N` length, and the parameter checks some of them make, with Envoy 1.40's error texts
//! (each one reproduced with `envoy --mode validate`).

use super::operator::is_plain_supported;

const COMMAND_ONLY: u8 = 0;
const PARAMS_REQUIRED: u8 = 1;
const PARAMS_OPTIONAL: u8 = 2;
const LENGTH_ALLOWED: u8 = 4;

/// Envoy's syntax flags for a known command, `None` for unknown names.
pub(crate) fn syntax(command: &str) -> Option<u8> {
    Some(match command {
        "REQ" | "RESP" | "TRAILER" | "REQUEST_HEADER" | "RESPONSE_HEADER" | "RESPONSE_TRAILER" | "STREAM_INFO_REQ"
        | "ENVIRONMENT" | "DYNAMIC_METADATA" | "QUERY_PARAM" => PARAMS_REQUIRED | LENGTH_ALLOWED,
        "COMMON_DURATION" | "CLUSTER_METADATA" | "UPSTREAM_METADATA" => PARAMS_REQUIRED,
        "START_TIME"
        | "START_TIME_LOCAL"
        | "EMIT_TIME"
        | "EMIT_TIME_LOCAL"
        | "DOWNSTREAM_PEER_CERT_V_START"
        | "DOWNSTREAM_PEER_CERT_V_END"
        | "UPSTREAM_PEER_CERT_V_START"
        | "UPSTREAM_PEER_CERT_V_END"
        | "RESPONSE_CODE_DETAILS"
        | "GRPC_STATUS" => PARAMS_OPTIONAL,
        "FILTER_STATE" | "UPSTREAM_FILTER_STATE" | "PATH" | "METADATA" | "XFCC_VALUE" | "CEL" => {
            PARAMS_OPTIONAL | LENGTH_ALLOWED
        }
        _ if is_plain_unsupported(command) || is_plain_supported(command) => COMMAND_ONLY,
        _ => return None,
    })
}

/// Command-only operators Envoy knows that `StreamInfo` cannot answer yet.
fn is_plain_unsupported(command: &str) -> bool {
    const NAMES: &[&str] = &[
        "REQUEST_DURATION",
        "REQUEST_TX_DURATION",
        "RESPONSE_DURATION",
        "RESPONSE_TX_DURATION",
        "DOWNSTREAM_HANDSHAKE_DURATION",
        "ROUNDTRIP_DURATION",
        "UPSTREAM_CONNECTION_POOL_READY_DURATION",
        "BYTES_RETRANSMITTED",
        "PACKETS_RETRANSMITTED",
        "UPSTREAM_WIRE_BYTES_RECEIVED",
        "UPSTREAM_HEADER_BYTES_RECEIVED",
        "UPSTREAM_DECOMPRESSED_HEADER_BYTES_RECEIVED",
        "DOWNSTREAM_WIRE_BYTES_RECEIVED",
        "DOWNSTREAM_HEADER_BYTES_RECEIVED",
        "DOWNSTREAM_DECOMPRESSED_HEADER_BYTES_RECEIVED",
        "UPSTREAM_WIRE_BYTES_SENT",
        "UPSTREAM_HEADER_BYTES_SENT",
        "UPSTREAM_DECOMPRESSED_HEADER_BYTES_SENT",
        "DOWNSTREAM_WIRE_BYTES_SENT",
        "DOWNSTREAM_HEADER_BYTES_SENT",
        "DOWNSTREAM_DECOMPRESSED_HEADER_BYTES_SENT",
        "UPSTREAM_PROTOCOL",
        "CONNECTION_TERMINATION_DETAILS",
        "UPSTREAM_HOST_NAME",
        "UPSTREAM_HOST_NAME_WITHOUT_PORT",
        "UPSTREAM_CONNECTION_ID",
        "UPSTREAM_REQUEST_ATTEMPT_COUNT",
        "UPSTREAM_TLS_CIPHER",
        "UPSTREAM_TLS_VERSION",
        "UPSTREAM_TLS_SESSION_ID",
        "UPSTREAM_PEER_ISSUER",
        "UPSTREAM_PEER_CERT",
        "UPSTREAM_PEER_SUBJECT",
        "UPSTREAM_PEER_URI_SAN",
        "UPSTREAM_PEER_DNS_SAN",
        "UPSTREAM_PEER_IP_SAN",
        "UPSTREAM_LOCAL_URI_SAN",
        "UPSTREAM_LOCAL_DNS_SAN",
        "UPSTREAM_LOCAL_IP_SAN",
        "DOWNSTREAM_DIRECT_LOCAL_ADDRESS",
        "DOWNSTREAM_DIRECT_LOCAL_ADDRESS_WITHOUT_PORT",
        "DOWNSTREAM_DIRECT_LOCAL_PORT",
        "DOWNSTREAM_DIRECT_REMOTE_ADDRESS",
        "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT",
        "DOWNSTREAM_DIRECT_REMOTE_PORT",
        "DOWNSTREAM_PEER_URI_SAN",
        "DOWNSTREAM_PEER_DNS_SAN",
        "DOWNSTREAM_PEER_IP_SAN",
        "DOWNSTREAM_PEER_EMAIL_SAN",
        "DOWNSTREAM_PEER_OTHERNAME_SAN",
        "DOWNSTREAM_LOCAL_URI_SAN",
        "DOWNSTREAM_LOCAL_DNS_SAN",
        "DOWNSTREAM_LOCAL_IP_SAN",
        "DOWNSTREAM_LOCAL_EMAIL_SAN",
        "DOWNSTREAM_LOCAL_OTHERNAME_SAN",
        "DOWNSTREAM_PEER_SUBJECT",
        "DOWNSTREAM_LOCAL_SUBJECT",
        "DOWNSTREAM_TLS_SESSION_ID",
        "DOWNSTREAM_TLS_CIPHER",
        "DOWNSTREAM_TLS_VERSION",
        "DOWNSTREAM_PEER_FINGERPRINT_256",
        "DOWNSTREAM_PEER_FINGERPRINT_1",
        "DOWNSTREAM_PEER_SERIAL",
        "DOWNSTREAM_PEER_CHAIN_FINGERPRINTS_256",
        "DOWNSTREAM_PEER_CHAIN_FINGERPRINTS_1",
        "DOWNSTREAM_PEER_CHAIN_SERIALS",
        "DOWNSTREAM_PEER_ISSUER",
        "DOWNSTREAM_PEER_CERT",
        "DOWNSTREAM_TRANSPORT_FAILURE_REASON",
        "FILTER_CHAIN_NAME",
        "VIRTUAL_CLUSTER_NAME",
        "TLS_JA3_FINGERPRINT",
        "TLS_JA4_FINGERPRINT",
        "STREAM_ID",
        "LOCAL_REPLY_BODY",
        "TRACE_ID",
        "SPAN_ID",
        "UPSTREAM_LOCAL_CLOSE_REASON",
        "DOWNSTREAM_LOCAL_CLOSE_REASON",
        "UPSTREAM_DETECTED_CLOSE_TYPE",
        "DOWNSTREAM_DETECTED_CLOSE_TYPE",
    ];
    NAMES.contains(&command)
}

/// Envoy's `CommandSyntaxChecker::verifySyntax`.
pub(crate) fn verify_syntax(flags: u8, command: &str, sub: &str, len: Option<usize>) -> Result<(), String> {
    if flags == COMMAND_ONLY && (!sub.is_empty() || len.is_some()) {
        return Err(format!("{command} does not take any parameters or length"));
    }
    if flags & PARAMS_REQUIRED != 0 && sub.is_empty() {
        return Err(format!("{command} requires parameters"));
    }
    if flags & LENGTH_ALLOWED == 0 && len.is_some() {
        return Err(format!("{command} does not allow length to be specified."));
    }
    Ok(())
}

pub(crate) const CEL_EMPTY_ERROR: &str = "Not able to parse expression: INVALID_ARGUMENT: ERROR: <input>:1:1: \
Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', \
'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}";

/// `X?Y` → (main, alternative), with Envoy's checks.
pub(crate) fn parse_header_names(sub: &str) -> Result<(String, String), String> {
    let parts: Vec<&str> = sub.split('?').collect();
    if parts.len() > 2 {
        return Err(format!("More than 1 alternative header specified in token: {sub}"));
    }
    let main = parts[0].to_ascii_lowercase();
    let alt = parts.get(1).copied().unwrap_or("").to_ascii_lowercase();
    if !header_name_is_valid(&main) || !header_name_is_valid(&alt) {
        return Err("Invalid header configuration. Format string contains invalid characters.".into());
    }
    Ok((main, alt))
}

/// Envoy's `HeaderUtility::headerNameIsValid`: RFC 7230 token, optionally after one `:`.
fn header_name_is_valid(name: &str) -> bool {
    let token = match name.strip_prefix(':') {
        Some("") => return false,
        Some(rest) => rest,
        None => name,
    };
    token.bytes().all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

pub(crate) fn check_common_duration(sub: &str) -> Result<(), String> {
    let parts: Vec<&str> = sub.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(format!("Invalid common duration configuration: {sub}."));
    }
    match parts.get(2) {
        Some(p) if !["ms", "us", "ns"].contains(p) => Err(format!("Invalid common duration precision: {p}.")),
        _ => Ok(()),
    }
}

pub(crate) fn check_filter_state(sub: &str) -> Result<(), String> {
    let mut parts = sub.split(':');
    let key = parts.next().unwrap_or("");
    let kind = parts.next().filter(|k| !k.is_empty()).unwrap_or("TYPED");
    let field = parts.next().unwrap_or("");
    if key.is_empty() {
        return Err("Invalid filter state configuration, key cannot be empty.".into());
    }
    if !["PLAIN", "TYPED", "FIELD"].contains(&kind) {
        return Err("Invalid filter state serialize type, only support PLAIN/TYPED/FIELD.".into());
    }
    if (kind == "FIELD") == field.is_empty() {
        return Err("Invalid filter state serialize type, FIELD should be used with the field name.".into());
    }
    Ok(())
}

pub(crate) fn check_path(sub: &str) -> Result<(), String> {
    let mut parts = sub.split(':');
    if let Some(q) = parts.next().filter(|q| !q.is_empty() && !["WQ", "NQ"].contains(q)) {
        return Err(format!("Invalid PATH option: '{q}', only 'WQ'/'NQ' are allowed"));
    }
    if let Some(p) = parts.next().filter(|p| !p.is_empty() && !["ORIG", "PATH", "ORIG_OR_PATH"].contains(p)) {
        return Err(format!("Invalid PATH option: '{p}', only 'ORIG'/'PATH'/'ORIG_OR_PATH' are allowed"));
    }
    Ok(())
}

pub(crate) fn check_metadata(sub: &str) -> Result<(), String> {
    const TYPES: &[&str] =
        &["DYNAMIC", "CLUSTER", "ROUTE", "UPSTREAM_HOST", "LISTENER", "VIRTUAL_HOST", "LISTENER_FILTER_CHAIN"];
    let kind = sub.split(':').next().unwrap_or("");
    if TYPES.contains(&kind) {
        Ok(())
    } else {
        Err(format!("{kind} is not supported type of metadata"))
    }
}

pub(crate) fn check_xfcc(sub: &str) -> Result<(), String> {
    const KEYS: &[&str] = &["by", "hash", "cert", "chain", "subject", "uri", "dns"];
    if sub.is_empty() {
        return Err("XFCC_VALUE command requires a subcommand".into());
    }
    if KEYS.iter().any(|k| k.eq_ignore_ascii_case(sub)) {
        Ok(())
    } else {
        Err(format!("XFCC_VALUE command does not support subcommand: {sub}"))
    }
}
