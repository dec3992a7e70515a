//! Scenario: a listener's port is already taken by another process. Legate must not start half
//! a server: it exits 1 and says which listener could not bind.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};

use legate_integration::peers::TcpEcho;
use legate_integration::process::PATIENCE;
use legate_integration::{yaml, Legate};

#[test]
fn tcp_port_in_use_exits_1_naming_the_listener() {
    let squatter = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind squatter");
    let port = squatter.local_addr().expect("addr").port();
    let echo = TcpEcho::start();
    let cfg = yaml::bootstrap(
        &[yaml::tcp_proxy_listener("busy_listener", "stat_prefix: busy\ncluster: echo")
            .replace("port_value: 0", &format!("port_value: {port}"))],
        &[yaml::static_cluster("echo", &[echo.addr()])],
    );
    let mut legate = Legate::spawn(&cfg, &[]);
    let code = legate.wait_exit(PATIENCE);
    let stderr = legate.proc.stderr_text();
    assert_eq!(code, Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("busy_listener"), "stderr must name the listener:\n{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "stderr must name the address:\n{stderr}");
    assert!(stderr.to_lowercase().contains("in use"), "stderr must say the address is in use:\n{stderr}");
    drop(squatter);
}

#[test]
fn udp_port_in_use_exits_1_naming_the_listener() {
    let squatter = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind squatter");
    let port = squatter.local_addr().expect("addr").port();
    let upstream = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind upstream");
    let cfg = yaml::bootstrap(
        &[yaml::udp_proxy_listener("busy_udp", "busy_udp", "sink", "")
            .replace("port_value: 0", &format!("port_value: {port}"))],
        &[yaml::static_cluster("sink", &[upstream.local_addr().expect("addr")])],
    );
    let mut legate = Legate::spawn(&cfg, &[]);
    let code = legate.wait_exit(PATIENCE);
    let stderr = legate.proc.stderr_text();
    assert_eq!(code, Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("busy_udp"), "stderr:\n{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "stderr:\n{stderr}");
}

#[test]
fn admin_port_in_use_exits_1() {
    let squatter = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind squatter");
    let port = squatter.local_addr().expect("addr").port();
    let echo = TcpEcho::start();
    let cfg = yaml::simple_tcp_proxy("l", "echo", &[echo.addr()]).replacen(
        "port_value: 0",
        &format!("port_value: {port}"),
        1,
    );
    let mut legate = Legate::spawn(&cfg, &[]);
    let code = legate.wait_exit(PATIENCE);
    let stderr = legate.proc.stderr_text();
    assert_eq!(code, Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("admin"), "stderr must name the admin listener:\n{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "stderr:\n{stderr}");
}
