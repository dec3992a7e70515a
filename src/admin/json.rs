//! JSON as Envoy's admin prints it (protobuf's pretty printer: one-space indent, a newline at
//! the end), and the small protobuf-JSON shapes several endpoints share: socket addresses,
//! timestamps, durations, the node's build version.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::{json, Map, Value};

/// Pretty JSON with a one-space indent and a trailing newline.
pub(crate) fn pretty(v: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    if v.serialize(&mut ser).is_err() {
        return "{}\n".to_string();
    }
    let mut s = String::from_utf8(buf).unwrap_or_default();
    s.push('\n');
    s
}

/// `google.protobuf.Timestamp` in JSON: `2026-11-22T00:48:56.470Z`.
pub(crate) fn timestamp(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// `google.protobuf.Duration` in JSON: `600s`, `1.500s` (0, 3, 6 or 9 fraction digits).
pub(crate) fn duration(d: Duration) -> String {
    let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
    if nanos == 0 {
        format!("{secs}s")
    } else if nanos % 1_000_000 == 0 {
        format!("{secs}.{:03}s", nanos / 1_000_000)
    } else if nanos % 1_000 == 0 {
        format!("{secs}.{:06}s", nanos / 1_000)
    } else {
        format!("{secs}.{nanos:09}s")
    }
}

/// `envoy.config.core.v3.Address` of an IP socket.
pub(crate) fn socket_address(a: SocketAddr) -> Value {
    json!({"socket_address": {"address": a.ip().to_string(), "port_value": a.port()}})
}

/// `Locality` with empty fields left out (proto3 JSON), `{}` when all are empty.
pub(crate) fn locality(region: &str, zone: &str, sub_zone: &str) -> Value {
    let mut m = Map::new();
    for (k, v) in [("region", region), ("zone", zone), ("sub_zone", sub_zone)] {
        if !v.is_empty() {
            m.insert(k.into(), Value::String(v.into()));
        }
    }
    Value::Object(m)
}

/// The wall-clock time the server started (Legate loads its static config at start).
pub(crate) fn start_time(server: &crate::server::ServerState) -> SystemTime {
    SystemTime::now().checked_sub(server.started.elapsed()).unwrap_or(SystemTime::UNIX_EPOCH)
}

/// `node.user_agent_build_version` from `cli::build_version()`
/// (`<sha>/<version>/<status>/<build type>/<ssl>`). `with_patch` prints a zero patch too
/// (`/server_info` prints every field; `/config_dump` leaves zeros out).
pub(crate) fn build_version(with_patch: bool) -> Value {
    let full = crate::cli::build_version();
    let parts: Vec<&str> = full.split('/').collect();
    let part = |i: usize| parts.get(i).copied().unwrap_or("");
    let mut nums = part(1).split('.').map(|n| n.parse::<u64>().unwrap_or(0));
    let (major, minor, patch) = (nums.next().unwrap_or(0), nums.next().unwrap_or(0), nums.next().unwrap_or(0));
    let mut version = Map::new();
    if with_patch || major != 0 {
        version.insert("major_number".into(), major.into());
    }
    if with_patch || minor != 0 {
        version.insert("minor_number".into(), minor.into());
    }
    if with_patch || patch != 0 {
        version.insert("patch".into(), patch.into());
    }
    json!({
        "version": version,
        "metadata": {
            "revision.sha": part(0),
            "revision.status": part(2),
            "build.type": part(3),
            "ssl.version": part(4),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_uses_one_space_indent_and_ends_with_newline() {
        let v = json!({"certificates": []});
        assert_eq!(pretty(&v), "{\n \"certificates\": []\n}\n");
        assert_eq!(pretty(&json!({})), "{}\n");
        assert_eq!(pretty(&json!({"a": {"b": [1]}})), "{\n \"a\": {\n  \"b\": [\n   1\n  ]\n }\n}\n");
    }

    #[test]
    fn durations_print_like_protobuf() {
        assert_eq!(duration(Duration::from_secs(600)), "600s");
        assert_eq!(duration(Duration::from_millis(1500)), "1.500s");
        assert_eq!(duration(Duration::from_micros(1)), "0.000001s");
        assert_eq!(duration(Duration::from_nanos(5)), "0.000000005s");
    }

    #[test]
    fn timestamps_are_utc_with_milliseconds() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_308_536_470);
        assert_eq!(timestamp(t), "2026-11-22T00:48:56.470Z");
    }

    #[test]
    fn locality_leaves_empty_fields_out() {
        assert_eq!(locality("", "", ""), json!({}));
        assert_eq!(locality("r", "", "s"), json!({"region": "r", "sub_zone": "s"}));
    }
}
