//! Scenario: an operator reads tcp_proxy access logs. Envoy and Legate log the same connection
//! to a file, in Envoy's default format and in a `json_format`; after a clean shutdown (which
//! flushes the buffered file) the lines must match once the fields that legitimately differ
//! (time, duration, ephemeral ports) are set aside.

use std::path::Path;

use legate_integration::envoy::Envoy;
use legate_integration::peers::{self, TcpEcho};
use legate_integration::process::{TempDir, PATIENCE};
use legate_integration::{admin, yaml, Legate};

const JSON_FORMAT: &str = "json_format: {start_time: '%START_TIME%', downstream_remote_address: '%DOWNSTREAM_REMOTE_ADDRESS%', downstream_local_address: '%DOWNSTREAM_LOCAL_ADDRESS%', upstream_host: '%UPSTREAM_HOST%', upstream_cluster: '%UPSTREAM_CLUSTER%', upstream_local_address: '%UPSTREAM_LOCAL_ADDRESS%', response_flags: '%RESPONSE_FLAGS%', response_code: '%RESPONSE_CODE%', protocol: '%PROTOCOL%', bytes_received: '%BYTES_RECEIVED%', bytes_sent: '%BYTES_SENT%', duration: '%DURATION%', listener: 'tcp'}";

fn logged_config(echo: &TcpEcho, dir: &Path) -> String {
    let file_log = |name: &str, format: &str| {
        format!(
            "- name: envoy.access_loggers.file\n  typed_config:\n    '@type': type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n    path: {}\n{format}",
            dir.join(name).display()
        )
    };
    let json = format!("    log_format: {{{JSON_FORMAT}}}");
    yaml::bootstrap(
        &[yaml::tcp_proxy_listener(
            "logged",
            &format!(
                "stat_prefix: logged\ncluster: echo\naccess_log:\n{}\n{}",
                file_log("default.log", ""),
                file_log("json.log", &json)
            ),
        )],
        &[yaml::static_cluster("echo", &[echo.addr()])],
    )
}

/// One connection: 100 bytes each way, closed by the client's half-close.
fn one_connection(port: u16) {
    let mut c = peers::connect(port);
    assert_eq!(peers::round_trip(&mut c, &[b'x'; 100]), [b'x'; 100]);
    c.shutdown(std::net::Shutdown::Write).expect("half-close");
    assert!(peers::is_closed_by_peer(&mut c));
}

fn wait_connection_done(admin_addr: std::net::SocketAddr) {
    legate_integration::process::wait_until("the connection to be logged", PATIENCE, || {
        let s = admin::Stats::parse(&admin::get(admin_addr, "/stats").body);
        (s.value("cluster.echo.upstream_cx_active") == 0 && s.value("tcp.logged.downstream_cx_total") == 1)
            .then_some(())
    });
}

/// Runs the connection through Envoy and through Legate; returns (envoy dir, legate dir).
fn log_through_both(echo: &TcpEcho) -> (TempDir, TempDir) {
    let envoy_dir = TempDir::new("envoy-logs");
    let legate_dir = TempDir::new("legate-logs");

    let mut envoy = Envoy::start(&logged_config(echo, envoy_dir.path()));
    one_connection(envoy.listener_port("logged"));
    wait_connection_done(envoy.admin);
    envoy.proc.signal("TERM");
    assert_eq!(envoy.proc.wait_exit(PATIENCE).code(), Some(0));

    let mut legate = Legate::start(&logged_config(echo, legate_dir.path()));
    one_connection(legate.listener_port("logged"));
    wait_connection_done(legate.admin);
    assert_eq!(legate.stop(), Some(0));
    (envoy_dir, legate_dir)
}

fn read_lines(dir: &TempDir, name: &str) -> Vec<String> {
    let path = dir.path().join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

/// The default TCP line with the start time and the duration replaced by placeholders.
fn normalise_default(line: &str) -> String {
    let mut f: Vec<&str> = line.split(' ').collect();
    assert!(f.len() >= 9, "not Envoy's default format: {line:?}");
    f[0] = "[START]";
    f[8] = "DURATION";
    f.join(" ")
}

#[test]
fn default_format_line_matches_envoys_for_the_same_connection() {
    let echo = TcpEcho::start();
    let (envoy_dir, legate_dir) = log_through_both(&echo);
    let e = read_lines(&envoy_dir, "default.log");
    let l = read_lines(&legate_dir, "default.log");
    assert_eq!(e.len(), 1, "envoy: {e:?}");
    assert_eq!(l.len(), 1, "legate: {l:?}");
    // e.g. `[2026-11-22T00:48:57.160Z] "- - -" 0 - 100 100 1 - "-" "-" "-" "-" "127.0.0.1:41013"`
    assert_eq!(normalise_default(&l[0]), normalise_default(&e[0]));
    let ts = regex::Regex::new(r"^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] ").expect("re");
    assert!(ts.is_match(&l[0]), "start time format: {:?}", l[0]);
}

#[test]
fn json_format_matches_envoys_for_the_same_connection() {
    let echo = TcpEcho::start();
    let (envoy_dir, legate_dir) = log_through_both(&echo);
    let parse = |dir: &TempDir| -> serde_json::Value {
        let lines = read_lines(dir, "json.log");
        assert_eq!(lines.len(), 1, "{lines:?}");
        serde_json::from_str(&lines[0]).expect("JSON access log line")
    };
    let (mut e, mut l) = (parse(&envoy_dir), parse(&legate_dir));
    // Keys come out sorted alphabetically in Envoy 1.40.
    let keys = |v: &serde_json::Value| -> Vec<String> { v.as_object().expect("object").keys().cloned().collect() };
    let raw_l = read_lines(&legate_dir, "json.log").remove(0);
    let pos: Vec<usize> = keys(&l).iter().map(|k| raw_l.find(&format!("\"{k}\"")).expect("key in line")).collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "keys not sorted: {raw_l}");
    // Fields that differ between two runs by nature.
    for v in [&mut e, &mut l] {
        let o = v.as_object_mut().expect("object");
        for k in [
            "start_time",
            "duration",
            "downstream_remote_address",
            "downstream_local_address",
            "upstream_local_address",
        ] {
            let val = o.remove(k);
            assert!(val.is_some_and(|x| !x.is_null()), "{k} missing");
        }
    }
    assert_eq!(l, e, "legate vs envoy JSON access log");
    assert_eq!(l["bytes_received"], 100, "bytes are JSON numbers");
    assert_eq!(l["protocol"], serde_json::Value::Null);
}
