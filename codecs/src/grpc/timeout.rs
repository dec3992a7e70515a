//! The `grpc-timeout` request header.

use std::time::Duration;

/// PROTOCOL-HTTP2.md: "TimeoutValue → {positive integer as ASCII string of at most 8 digits}".
const MAX_DIGITS: usize = 8;

/// Parses `grpc-timeout` (`TimeoutValue TimeoutUnit`, units `H M S m u n`); `None` when it is
/// malformed, as Envoy then ignores the header.
pub fn parse_timeout(value: &[u8]) -> Option<Duration> {
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > MAX_DIGITS || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // At most 8 ASCII digits: fits in a u64 with room to spare.
    let n = digits.iter().fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}
