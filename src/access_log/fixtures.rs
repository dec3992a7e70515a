//! Lines written by a real Envoy 1.40, reproduced from the same facts.
//!
//! `testdata/envoy_1_40/` holds the exact Envoy configurations and the log files Envoy wrote
//! (see its README). For every listener, the `*_truth.log` logger recorded the raw facts of each
//! connection or request; here each truth line becomes a [`StreamInfo`], every other logger's
//! format is parsed from the same configuration, and its output must equal Envoy's line byte
//! for byte.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value as J;

use super::{Formatter, ResponseFlags, StreamInfo};

const HTTP_CONFIG: &str = include_str!("testdata/envoy_1_40/http.json");
const EDGE_CONFIG: &str = include_str!("testdata/envoy_1_40/edge.json");
const V6_CONFIG: &str = include_str!("testdata/envoy_1_40/v6.json");

/// The captured log file with this name.
fn captured(name: &str) -> Option<&'static str> {
    macro_rules! logs {
        ($($file:literal),* $(,)?) => {
            match name {
                $($file => Some(include_str!(concat!("testdata/envoy_1_40/captures/", $file))),)*
                _ => None,
            }
        };
    }
    logs!(
        "http_truth.log",
        "http_default.log",
        "http_text.log",
        "http_json.log",
        "http_json_omit.log",
        "http_times.log",
        "tcp_truth.log",
        "tcp_default.log",
        "tcp_text.log",
        "tcp_json.log",
        "tcp_times.log",
        "tcpr_truth.log",
        "tcpr_default.log",
        "tcpr_text.log",
        "tcpr_json.log",
        "e_http_truth.log",
        "e_http_omit.log",
        "e_http_omit_all.log",
        "v6_truth.log",
        "v6_text.log",
    )
}

struct Logger {
    file: String,
    formatter: Formatter,
}

/// Every file logger of every listener in an Envoy configuration, grouped by listener.
fn loggers(config: &str) -> Vec<Vec<Logger>> {
    let config: J = serde_json::from_str(config).unwrap();
    let listeners = config["static_resources"]["listeners"].as_array().unwrap();
    listeners
        .iter()
        .map(|listener| {
            let filter = &listener["filter_chains"][0]["filters"][0]["typed_config"];
            let logs = filter["access_log"].as_array().unwrap();
            logs.iter()
                .map(|log| {
                    let tc = &log["typed_config"];
                    let path = tc["path"].as_str().unwrap();
                    let file = path.rsplit('/').next().unwrap().to_string();
                    let lf = &tc["log_format"];
                    let omit = lf["omit_empty_values"].as_bool().unwrap_or(false);
                    let formatter = if let Some(text) = lf["text_format_source"]["inline_string"].as_str() {
                        Formatter::parse_text_with_options(text, omit).unwrap()
                    } else if lf["json_format"].is_object() {
                        Formatter::parse_json(&lf["json_format"], omit).unwrap()
                    } else {
                        Formatter::envoy_default()
                    };
                    Logger { file, formatter }
                })
                .collect()
        })
        .collect()
}

/// A `StreamInfo` holding the facts of one `*_truth.log` line.
fn info_from_truth(line: &str) -> StreamInfo {
    let v: J = serde_json::from_str(line).unwrap();
    let s = |k: &str| v[k].as_str().map(String::from);
    let addr = |k: &str| v[k].as_str().map(|a| a.parse().unwrap());
    let headers = |k: &str| {
        v[k].as_object()
            .unwrap()
            .iter()
            .filter_map(|(n, val)| val.as_str().map(|val| (n.clone(), val.to_string())))
            .collect()
    };
    let protocol = match v["protocol"].as_str() {
        Some("HTTP/1.1") => Some("HTTP/1.1"),
        Some("HTTP/2") => Some("HTTP/2"),
        Some(other) => panic!("unexpected protocol {other}"),
        None => None,
    };
    let mut flags = ResponseFlags::default();
    for name in v["flags"].as_str().unwrap().split(',').filter(|f| *f != "-") {
        flags.set(ResponseFlags::from_short_name(name).unwrap());
    }
    StreamInfo {
        start_time: UNIX_EPOCH + Duration::from_nanos(s("ns").unwrap().parse().unwrap()),
        duration: v["dur"].as_u64().map(Duration::from_millis),
        bytes_received: v["br"].as_u64().unwrap(),
        bytes_sent: v["bs"].as_u64().unwrap(),
        protocol,
        response_code: protocol.and(v["code"].as_u64().map(|c| c as u16)),
        response_code_details: s("details"),
        response_flags: flags,
        upstream_host: addr("uh"),
        upstream_cluster: s("cluster"),
        upstream_local_address: addr("ula"),
        upstream_transport_failure_reason: s("utfr"),
        downstream_remote_address: addr("dra"),
        downstream_local_address: addr("dla"),
        connection_id: v["cid"].as_u64().unwrap(),
        route_name: s("route"),
        requested_server_name: s("sni"),
        downstream_tls_version: None,
        downstream_tls_cipher: None,
        downstream_peer_subject: None,
        request_headers: headers("req"),
        response_headers: headers("resp"),
        response_trailers: headers("trailers"),
    }
}

/// Checks every captured logger of every listener against our output; returns how many
/// lines were compared.
fn check(config: &str) -> usize {
    let hostname = Formatter::parse_text("%HOSTNAME%").unwrap().format(&StreamInfo::default());
    let mut compared = 0;
    for listener in loggers(config) {
        let Some(truth) = listener.iter().find(|l| l.file.ends_with("_truth.log")) else {
            continue;
        };
        let infos: Vec<StreamInfo> = captured(&truth.file).unwrap().lines().map(info_from_truth).collect();
        for logger in &listener {
            let Some(lines) = captured(&logger.file) else {
                continue;
            };
            let lines: Vec<&str> = lines.lines().collect();
            assert_eq!(lines.len(), infos.len(), "{}", logger.file);
            for (i, (expected, info)) in lines.iter().zip(&infos).enumerate() {
                let expected = format!("{expected}\n").replace("host=vm ", &format!("host={hostname} "));
                let ours = logger.formatter.format(info);
                assert_eq!(ours, expected, "{} line {}", logger.file, i + 1);
                compared += 1;
            }
        }
    }
    compared
}

#[test]
fn fixtures_from_envoy_1_40_are_reproduced_exactly() {
    // 7 HTTP requests x 6 loggers, 1 TCP echo x 5, 1 refused TCP x 4.
    assert_eq!(check(HTTP_CONFIG), 7 * 6 + 5 + 4);
}

#[test]
fn json_omit_empty_values_edge_cases_from_envoy_1_40_are_reproduced() {
    assert_eq!(check(EDGE_CONFIG), 2 * 3);
}

#[test]
fn ipv6_addresses_and_more_strftime_flags_from_envoy_1_40_are_reproduced() {
    assert_eq!(check(V6_CONFIG), 2);
}

#[test]
fn default_format_for_a_tcp_connection_matches_envoy() {
    let info = StreamInfo {
        start_time: UNIX_EPOCH + Duration::from_millis(1_795_308_270_630),
        upstream_host: Some("127.0.0.1:19199".parse().unwrap()),
        response_flags: {
            let mut f = ResponseFlags::UF;
            f.set(ResponseFlags::URX);
            f
        },
        duration: Some(Duration::from_micros(900)),
        ..StreamInfo::default()
    };
    assert_eq!(
        Formatter::envoy_default().format(&info),
        "[2026-11-22T00:44:30.630Z] \"- - -\" 0 UF,URX 0 0 0 - \"-\" \"-\" \"-\" \"-\" \"127.0.0.1:19199\"\n"
    );
}

#[test]
fn default_format_for_an_http_request_matches_envoy() {
    let info = info_from_truth(captured("http_truth.log").unwrap().lines().next().unwrap());
    let expected = captured("http_default.log").unwrap().lines().next().unwrap();
    assert!(expected.contains("\"GET /up/path?q=1 HTTP/1.1\" 200 - 0 14 "));
    assert_eq!(Formatter::envoy_default().format(&info), format!("{expected}\n"));
}
