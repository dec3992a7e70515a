//! Scenario: `--config-yaml` merged over `-c` the way Envoy does it (protobuf MergeFrom):
//! repeated fields append, scalars override, a duplicate cluster is an error.

use std::net::SocketAddr;

use legate_integration::legate::validate;
use legate_integration::peers::{self, free_port, TcpEcho};
use legate_integration::process::{wait_until, PATIENCE};
use legate_integration::{admin, yaml, Legate};

#[test]
fn config_yaml_adds_a_listener_next_to_the_files() {
    let echo = TcpEcho::start();
    let base = yaml::simple_tcp_proxy("l1", "echo", &[echo.addr()]);
    let extra = "static_resources: {listeners: [{name: l_extra, address: {socket_address: {address: 127.0.0.1, port_value: 0}}, filter_chains: [{filters: [{name: envoy.filters.network.tcp_proxy, typed_config: {'@type': type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: l_extra, cluster: echo}}]}]}]}";
    let legate = Legate::start_with(&base, &["--config-yaml", extra]);

    let ports = [legate.listener_port("l1"), legate.listener_port("l_extra")];
    assert_ne!(ports[0], ports[1]);
    for port in ports {
        let mut c = peers::connect(port);
        assert_eq!(peers::round_trip(&mut c, b"via both"), b"via both");
    }
    let s = legate.stats();
    assert_eq!(s.value("tcp.l1.downstream_cx_total"), 1);
    assert_eq!(s.value("tcp.l_extra.downstream_cx_total"), 1);
    assert_eq!(s.value("listener_manager.listener_added"), 2);
}

#[test]
fn config_yaml_overrides_the_admin_port() {
    let echo = TcpEcho::start();
    let base = yaml::simple_tcp_proxy("l1", "echo", &[echo.addr()]);
    // The override must be a real port: port 0 is proto3's default and MergeFrom skips it.
    // The port was free a moment ago; if something takes it meanwhile, try another.
    for _ in 0..3 {
        let port = free_port();
        let over = format!("admin: {{address: {{socket_address: {{port_value: {port}}}}}}}");
        let mut legate = Legate::spawn(&base, &["--config-yaml", &over]);
        let file = legate.dir.path().join("admin_address");
        let addr: Option<SocketAddr> = wait_until("admin address or exit", PATIENCE, || {
            if legate.proc.try_exit().is_some() {
                return Some(None);
            }
            let a = std::fs::read_to_string(&file).ok()?.trim().parse().ok()?;
            Some(Some(a))
        });
        let Some(addr) = addr else {
            assert!(
                legate.proc.stderr_text().contains("in use"),
                "legate failed for another reason:\n{}",
                legate.proc.stderr_text()
            );
            continue;
        };
        assert_eq!(addr, SocketAddr::from(([127, 0, 0, 1], port)));
        legate.wait_ready();
        let r = admin::get(addr, "/ready");
        assert_eq!((r.status, r.body.as_str()), (200, "LIVE\n"));
        return;
    }
    panic!("could not find a free admin port in 3 tries");
}

#[test]
fn config_yaml_duplicate_cluster_is_rejected() {
    let echo = TcpEcho::start();
    let dir = legate_integration::process::TempDir::new("merge");
    let base = dir.write("base.yaml", &yaml::simple_tcp_proxy("l1", "echo", &[echo.addr()]));
    let over = "static_resources: {clusters: [{name: echo, type: STATIC, connect_timeout: 2s, load_assignment: {cluster_name: echo}}]}";
    let out = validate(&base, &["--config-yaml", over]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("duplicate cluster"), "{}", out.stderr);
    assert!(out.stderr.contains("'echo'"), "{}", out.stderr);
}

#[test]
fn config_yaml_alone_validates_with_empty_config_path() {
    let echo = TcpEcho::start();
    let whole = yaml::simple_tcp_proxy("l1", "echo", &[echo.addr()]);
    let out = legate_integration::legate::run_legate(&["--mode", "validate", "--config-yaml", &whole], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    // Envoy prints the (empty) config path it was given.
    assert_eq!(out.stdout, "configuration '' OK\n");
}

#[test]
fn config_yaml_with_bad_yaml_is_rejected() {
    let echo = TcpEcho::start();
    let dir = legate_integration::process::TempDir::new("merge");
    let base = dir.write("base.yaml", &yaml::simple_tcp_proxy("l1", "echo", &[echo.addr()]));
    let out = validate(&base, &["--config-yaml", "static_resources: {listeners: ["]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("--config-yaml"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}
