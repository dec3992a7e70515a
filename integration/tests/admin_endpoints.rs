//! Scenario: an operator uses the admin endpoint the way they use Envoy's. Each check is
//! written against Envoy 1.40's formats (envoy-captures/admin/) and is also run against the
//! real Envoy (`every_admin_check_holds_for_envoy_itself`), so a failing Legate check means
//! Legate differs from Envoy, not that the check is wrong.

use std::net::SocketAddr;

use legate_integration::admin::{self, Response, Stats};
use legate_integration::envoy::Envoy;
use legate_integration::peers::{self, TcpEcho};
use legate_integration::process::{wait_until, PATIENCE};
use legate_integration::{yaml, Legate};

const LISTENER: &str = "admin_l";
const CLUSTER: &str = "admin_echo";
const TEXT: &str = "text/plain; charset=UTF-8";
const JSON: &str = "application/json";

/// A proxy (Legate or Envoy) serving `yaml::simple_tcp_proxy(LISTENER, CLUSTER, [echo])` after
/// one proxied round trip has finished.
struct Target {
    admin: SocketAddr,
    port: u16,
    echo: SocketAddr,
    /// The `<ip>_<port>` in `listener.<ip>_<port>.*`. Envoy names a port-0 listener's stats
    /// after its config (`127.0.0.1_0`); Legate deliberately uses the bound port.
    listener_stat_addr: String,
}

fn config(echo: &TcpEcho) -> String {
    yaml::simple_tcp_proxy(LISTENER, CLUSTER, &[echo.addr()])
}

fn stats(t: &Target) -> Stats {
    Stats::parse(&admin::get(t.admin, "/stats").body)
}

fn send_one_connection(t: &Target) {
    let mut c = peers::connect(t.port);
    assert_eq!(peers::round_trip(&mut c, b"admin"), b"admin");
    drop(c);
    let destroyed = format!("listener.{}.downstream_cx_destroy", t.listener_stat_addr);
    wait_until("the proxied connection to end", PATIENCE, || (stats(t).value(&destroyed) == 1).then_some(()));
}

fn legate_target(echo: &TcpEcho) -> (Legate, Target) {
    let legate = Legate::start(&config(echo));
    let port = legate.listener_port(LISTENER);
    let t = Target { admin: legate.admin, port, echo: echo.addr(), listener_stat_addr: "127.0.0.1_0".into() };
    send_one_connection(&t);
    (legate, t)
}

fn assert_body(r: &Response, status: u16, content_type: &str, body: &str) {
    assert_eq!(r.status, status, "body: {:?}", r.body);
    assert_eq!(r.header("content-type"), Some(content_type));
    assert_eq!(r.body, body);
}

// ---- the checks ----

fn check_ready_and_headers(t: &Target) {
    let r = admin::get(t.admin, "/ready");
    assert_body(&r, 200, TEXT, "LIVE\n");
    for path in ["/ready", "/stats"] {
        let r = admin::get(t.admin, path);
        assert_eq!(r.header("cache-control"), Some("no-cache, max-age=0"), "{path}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{path}");
    }
}

fn check_unknown_path_is_404_with_help(t: &Target) {
    let help = admin::get(t.admin, "/help");
    assert_eq!(help.status, 200);
    assert!(help.body.starts_with("admin commands are:\n"), "/help: {:?}", help.body);
    for line in ["  /ready", "  /stats", "  /clusters", "  /listeners", "  /quitquitquit (POST)"] {
        assert!(help.body.contains(line), "/help lacks {line:?}");
    }
    for path in ["/no_such_path", "/no_such_path?x=1", "/stats/"] {
        let r = admin::get(t.admin, path);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.header("content-type"), Some(TEXT), "{path}");
        assert!(r.body.starts_with("invalid path. admin commands are:"), "{path}: {:?}", r.body);
        assert_eq!(r.body, format!("invalid path. {}", help.body), "{path}");
    }
}

fn check_mutations_need_post(t: &Target) {
    for path in
        ["/quitquitquit", "/healthcheck/fail", "/healthcheck/ok", "/logging", "/reset_counters", "/drain_listeners"]
    {
        let r = admin::get(t.admin, path);
        assert_body(&r, 405, TEXT, "Method GET not allowed, POST required.");
    }
}

fn check_healthcheck_fail_makes_ready_draining(t: &Target) {
    assert_body(&admin::get(t.admin, "/ready"), 200, TEXT, "LIVE\n");
    assert_eq!(stats(t).value("server.live"), 1);
    assert_body(&admin::post(t.admin, "/healthcheck/fail"), 200, TEXT, "OK\n");
    assert_body(&admin::get(t.admin, "/ready"), 503, TEXT, "DRAINING\n");
    assert_eq!(stats(t).value("server.live"), 0);
    assert_body(&admin::post(t.admin, "/healthcheck/ok"), 200, TEXT, "OK\n");
    assert_body(&admin::get(t.admin, "/ready"), 200, TEXT, "LIVE\n");
    assert_eq!(stats(t).value("server.live"), 1);
}

fn check_listeners_show_the_bound_port(t: &Target) {
    let r = admin::get(t.admin, "/listeners");
    assert_body(&r, 200, TEXT, &format!("{LISTENER}::127.0.0.1:{}\n", t.port));
    let j = admin::get(t.admin, "/listeners?format=json");
    assert_eq!(j.header("content-type"), Some(JSON));
    let v = j.json();
    let l = &v["listener_statuses"][0];
    assert_eq!(l["name"], LISTENER, "{v}");
    assert_eq!(l["local_address"]["socket_address"]["address"], "127.0.0.1");
    assert_eq!(l["local_address"]["socket_address"]["port_value"], u64::from(t.port), "{v}");
}

fn check_clusters_lines(t: &Target) {
    let r = admin::get(t.admin, "/clusters");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some(TEXT));
    let host = format!("{CLUSTER}::{}::", t.echo);
    let lines: Vec<&str> = r.body.lines().collect();
    for want in [
        format!("{CLUSTER}::observability_name::{CLUSTER}"),
        format!("{CLUSTER}::default_priority::max_connections::1024"),
        format!("{CLUSTER}::default_priority::max_pending_requests::1024"),
        format!("{CLUSTER}::default_priority::max_requests::1024"),
        format!("{CLUSTER}::default_priority::max_retries::3"),
        format!("{CLUSTER}::high_priority::max_connections::1024"),
        format!("{CLUSTER}::added_via_api::false"),
        format!("{host}cx_active::0"),
        format!("{host}cx_connect_fail::0"),
        format!("{host}cx_total::1"),
        format!("{host}health_flags::healthy"),
        format!("{host}weight::1"),
        format!("{host}priority::0"),
        format!("{host}success_rate::-1"),
    ] {
        assert!(lines.contains(&want.as_str()), "/clusters lacks {want:?}:\n{}", r.body);
    }
    let j = admin::get(t.admin, "/clusters?format=json").json();
    assert_eq!(j["cluster_statuses"][0]["name"], CLUSTER, "{j}");
}

fn check_prometheus_names(t: &Target) {
    let r = admin::get(t.admin, "/stats/prometheus");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some(TEXT));
    let lines: Vec<&str> = r.body.lines().collect();
    for want in [
        "# TYPE envoy_tcp_downstream_cx_total counter".to_string(),
        format!("envoy_tcp_downstream_cx_total{{envoy_tcp_prefix=\"{LISTENER}\"}} 1"),
        "# TYPE envoy_cluster_upstream_cx_total counter".to_string(),
        format!("envoy_cluster_upstream_cx_total{{envoy_cluster_name=\"{CLUSTER}\"}} 1"),
        format!("envoy_listener_downstream_cx_total{{envoy_listener_address=\"{}\"}} 1", t.listener_stat_addr),
        format!("envoy_cluster_upstream_cx_active{{envoy_cluster_name=\"{CLUSTER}\"}} 0"),
        "# TYPE envoy_cluster_upstream_cx_active gauge".to_string(),
    ] {
        assert!(lines.contains(&want.as_str()), "prometheus lacks {want:?}");
    }
    // `?format=prometheus` on /stats is the same exposition.
    let r2 = admin::get(t.admin, "/stats?format=prometheus");
    assert_eq!(r2.status, 200);
    assert!(r2.body.contains("# TYPE envoy_tcp_downstream_cx_total counter"));
}

fn check_stats_json(t: &Target) {
    let r = admin::get(t.admin, "/stats?format=json");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some(JSON));
    let v = r.json();
    let stats = v["stats"].as_array().expect("\"stats\" array");
    let find = |name: &str| stats.iter().find(|s| s["name"] == name).cloned();
    let cx = find(&format!("tcp.{LISTENER}.downstream_cx_total")).expect("tcp counter in JSON");
    assert_eq!(cx["value"], 1);
    let up = find(&format!("cluster.{CLUSTER}.upstream_cx_total")).expect("cluster counter");
    assert_eq!(up["value"], 1);
}

fn check_stats_filter_and_bad_type(t: &Target) {
    let r = admin::get(t.admin, "/stats?filter=^tcp\\.");
    assert_eq!(r.status, 200);
    let s = Stats::parse(&r.body);
    assert!(!s.0.is_empty(), "filter matched nothing");
    assert!(s.0.keys().all(|k| k.starts_with("tcp.")), "{:?}", s.0.keys());
    let bad = admin::get(t.admin, "/stats?type=bogus");
    assert_body(&bad, 400, TEXT, "invalid &type= param");
    let regex = admin::get(t.admin, "/stats?filter=(");
    assert_eq!(regex.status, 400, "{:?}", regex.body);
}

fn check_server_info(t: &Target) {
    let r = admin::get(t.admin, "/server_info");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some(JSON));
    let v = r.json();
    assert_eq!(v["state"], "LIVE", "{v}");
    let version = v["version"].as_str().expect("version string");
    let re = regex::Regex::new(r"^[0-9a-f]{40}/\d+\.\d+\.\d+/Clean/(RELEASE|DEBUG)/\S+$").expect("regex");
    assert!(re.is_match(version), "version {version:?}");
    assert!(v["uptime_current_epoch"].as_str().is_some_and(|u| u.ends_with('s')), "{v}");
    let opts = &v["command_line_options"];
    // Whatever the process was started with (2, or 1 in the test command's second pass), the
    // option and the `server.concurrency` gauge agree.
    let stats = Stats::parse(&admin::get(t.admin, "/stats?filter=^server\\.concurrency$").body);
    let gauge = stats.get("server.concurrency").and_then(|g| g.parse::<u64>().ok());
    assert!(gauge.is_some() && opts["concurrency"].as_u64() == gauge, "{gauge:?} {v}");
    assert_eq!(opts["drain_time"], "600s", "{v}");
    assert_eq!(opts["mode"], "Serve", "{v}");
}

fn check_config_dump(t: &Target) {
    let r = admin::get(t.admin, "/config_dump");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some(JSON));
    let v = r.json();
    let configs = v["configs"].as_array().expect("configs array");
    let of = |ty: &str| {
        configs
            .iter()
            .find(|c| c["@type"] == format!("type.googleapis.com/envoy.admin.v3.{ty}"))
            .unwrap_or_else(|| panic!("no {ty} in /config_dump"))
    };
    let listeners = of("ListenersConfigDump");
    let l = &listeners["static_listeners"][0]["listener"];
    assert_eq!(l["name"], LISTENER, "{listeners}");
    assert_eq!(l["@type"], "type.googleapis.com/envoy.config.listener.v3.Listener");
    let clusters = of("ClustersConfigDump");
    let c = &clusters["static_clusters"][0]["cluster"];
    assert_eq!(c["name"], CLUSTER, "{clusters}");
    assert_eq!(c["@type"], "type.googleapis.com/envoy.config.cluster.v3.Cluster");
    of("BootstrapConfigDump");
    let bogus = admin::get(t.admin, "/config_dump?resource=bogus");
    assert_eq!(bogus.status, 404);
    assert_eq!(bogus.body, "bogus not found in config dump");
}

fn check_logging(t: &Target) {
    let r = admin::post(t.admin, "/logging");
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with("active loggers:\n"), "{:?}", r.body);
    let r = admin::post(t.admin, "/logging?upstream=debug");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("\n  upstream: debug\n"), "{}", r.body);
    let bad = admin::post(t.admin, "/logging?bogus=debug");
    assert_eq!(bad.status, 400);
    assert!(bad.body.starts_with("error: unknown logger name\n"), "{:?}", bad.body);
    let r = admin::post(t.admin, "/logging?level=info");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("\n  upstream: info\n"), "{}", r.body);
}

fn check_reset_counters(t: &Target) {
    let name = format!("tcp.{LISTENER}.downstream_cx_total");
    assert_eq!(stats(t).value(&name), 1);
    assert_body(&admin::post(t.admin, "/reset_counters"), 200, TEXT, "OK\n");
    assert_eq!(stats(t).value(&name), 0);
    // Reset counters are still "used": ?usedonly keeps listing them.
    let used = Stats::parse(&admin::get(t.admin, "/stats?usedonly").body);
    assert!(used.get(&name).is_some(), "{name} missing from ?usedonly");
}

// ---- Envoy: the checks are right ----

#[test]
fn every_admin_check_holds_for_envoy_itself() {
    let echo = TcpEcho::start();
    let envoy = Envoy::start(&config(&echo));
    let t = Target {
        admin: envoy.admin,
        port: envoy.listener_port(LISTENER),
        echo: echo.addr(),
        listener_stat_addr: "127.0.0.1_0".into(),
    };
    send_one_connection(&t);
    check_ready_and_headers(&t);
    check_unknown_path_is_404_with_help(&t);
    check_mutations_need_post(&t);
    check_listeners_show_the_bound_port(&t);
    check_clusters_lines(&t);
    check_prometheus_names(&t);
    check_stats_json(&t);
    check_stats_filter_and_bad_type(&t);
    check_server_info(&t);
    check_config_dump(&t);
    check_logging(&t);
    check_healthcheck_fail_makes_ready_draining(&t);
    check_reset_counters(&t);
}

// ---- Legate ----

#[test]
fn ready_says_live_with_envoys_admin_headers() {
    let echo = TcpEcho::start();
    let (_legate, t) = legate_target(&echo);
    check_ready_and_headers(&t);
}

#[test]
fn unknown_admin_path_is_404_with_the_help_listing() {
    let echo = TcpEcho::start();
    let (_legate, t) = legate_target(&echo);
    check_unknown_path_is_404_with_help(&t);
}

#[test]
fn mutating_admin_paths_answer_get_with_405() {
    let echo = TcpEcho::start();
    let (_legate, t) = legate_target(&echo);
    check_mutations_need_post(&t);
}

#[test]
fn healthcheck_fail_makes_ready_draining_until_healthcheck_ok() {
    let echo = TcpEcho::start();
    let (_legate, t) = legate_target(&echo);
    check_healthcheck_fail_makes_ready_draining(&t);
}

#[test]
fn listeners_show_the_real_port_when_config_says_0() {
    let echo = TcpEcho::start();
    let (_legate, t) = legate_target(&echo);
    check_listeners_show_the_bound_port(&t);
}

#[test]
fn clusters_list_hosts_in_envoys_line_format() {
    let echo = TcpEcho::start();
    let (_legate, t) = legate_target(&echo);
    check_clusters_lines(&t);
}

#[test]
fn prometheus_names_follow_envoys_tag_extraction() {
    let echo = TcpEcho::start();
    let (_legate, t) = legate_target(&echo);
    check_prometheus_names(&t);
}

#[test]
fn stats_json_lists_counters_with_values() {
    let echo = TcpEcho::start();
    let (_legate, t) = legate_target(&echo);
    check_stats_json(&t);
}

#[test]
fn stats_filter_and_bad_parameters() {
    let echo = TcpEcho::start();
    let (_legate, t) = legate_target(&echo);
    check_stats_filter_and_bad_type(&t);
}

#[test]
fn server_info_reports_state_version_and_options() {
    let echo = TcpEcho::start();
    let (_legate, t) = legate_target(&echo);
    check_server_info(&t);
}

#[test]
fn config_dump_has_the_static_listener_and_cluster() {
    let echo = TcpEcho::start();
    let (_legate, t) = legate_target(&echo);
    check_config_dump(&t);
}

#[test]
fn logging_lists_and_changes_levels() {
    let echo = TcpEcho::start();
    let (_legate, t) = legate_target(&echo);
    check_logging(&t);
}

#[test]
fn reset_counters_zeroes_counters_but_keeps_them_used() {
    let echo = TcpEcho::start();
    let (_legate, t) = legate_target(&echo);
    check_reset_counters(&t);
}
