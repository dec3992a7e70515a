//! Scenario: a user swaps Envoy for Legate. The real Envoy and Legate serve the same config
//! (ephemeral ports, distinct processes) and get the same traffic; Legate must create every stat
//! Envoy creates under the tcp_proxy, cluster and listener trees, count the traffic the same,
//! and give the same validate verdicts for the same configs, except where Legate deliberately
//! differs (listed in `DELIBERATE`).

use std::collections::BTreeSet;
use std::net::{Shutdown, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use legate_integration::admin::{self, Stats};
use legate_integration::envoy::{envoy_validate, Envoy};
use legate_integration::legate::{run_legate, workspace_root};
use legate_integration::peers::{self, DeadPort, TcpEcho, UdpEcho};
use legate_integration::process::{wait_until, TempDir, PATIENCE};
use legate_integration::{yaml, Legate};

/// Either proxy, as the traffic and the stats see it.
struct Side {
    name: &'static str,
    admin: SocketAddr,
    port: u16,
}

impl Side {
    fn stats(&self) -> Stats {
        Stats::parse(&admin::get(self.admin, "/stats").body)
    }

    /// `listener.<ip>_<port>.` of the (only) proxy listener. Envoy names a port-0 listener
    /// after its config (`127.0.0.1_0`), Legate after the bound port.
    fn listener_prefix(&self) -> String {
        self.stats().only_listener_prefix(self.name)
    }

    fn wait_eq(&self, name: &str, want: u64) {
        wait_until(&format!("{}: {name} == {want}", self.name), PATIENCE, || {
            (self.stats().value(name) == want).then_some(())
        });
    }
}

fn both(cfg: &str, listener: &str) -> (Envoy, Legate, Side, Side) {
    let envoy = Envoy::start(cfg);
    let legate = Legate::start(cfg);
    let e = Side { name: "envoy", admin: envoy.admin, port: envoy.listener_port(listener) };
    let l = Side { name: "legate", admin: legate.admin, port: legate.listener_port(listener) };
    (envoy, legate, e, l)
}

/// Three connections, each: 100 bytes there and back, then a half-close from the client and
/// EOF from the upstream.
fn echo_traffic(side: &Side) {
    for i in 0..3u8 {
        let mut c = peers::connect(side.port);
        let msg = [b'a' + i; 100];
        assert_eq!(peers::round_trip(&mut c, &msg), msg);
        c.shutdown(Shutdown::Write).expect("half-close");
        assert!(peers::is_closed_by_peer(&mut c), "{}: EOF expected", side.name);
    }
    let destroyed = format!("{}downstream_cx_destroy", side.listener_prefix());
    side.wait_eq(&destroyed, 3);
}

/// Stat names under the compared trees, with the listener address replaced by `<addr>`.
fn compared_names(side: &Side, trees: &[String]) -> BTreeSet<String> {
    let listener = side.listener_prefix();
    side.stats()
        .0
        .keys()
        .map(|k| k.replacen(&listener, "listener.<addr>.", 1))
        .filter(|k| trees.iter().any(|t| k.starts_with(t.as_str())))
        .collect()
}

fn assert_names_include(envoy: &Side, legate: &Side, trees: &[String]) {
    let e = compared_names(envoy, trees);
    let l = compared_names(legate, trees);
    assert!(!e.is_empty(), "envoy has no stats under {trees:?}");
    let missing: Vec<&String> = e.difference(&l).collect();
    assert!(missing.is_empty(), "Legate lacks {} of Envoy's stat names: {missing:#?}", missing.len());
}

fn tcp_trees() -> Vec<String> {
    vec!["tcp.diff.".into(), "cluster.diff_echo.upstream_cx_".into(), "listener.<addr>.downstream_cx_".into()]
}

#[test]
fn legate_stat_names_include_envoys_for_the_same_tcp_proxy_traffic() {
    let echo = TcpEcho::start();
    let cfg = yaml::simple_tcp_proxy("diff", "diff_echo", &[echo.addr()]);
    let (_envoy, _legate, e, l) = both(&cfg, "diff");
    echo_traffic(&e);
    echo_traffic(&l);
    assert_names_include(&e, &l, &tcp_trees());
}

#[test]
fn legate_counts_the_same_tcp_proxy_traffic_as_envoy() {
    let echo = TcpEcho::start();
    let cfg = yaml::simple_tcp_proxy("diff", "diff_echo", &[echo.addr()]);
    let (_envoy, _legate, e, l) = both(&cfg, "diff");
    echo_traffic(&e);
    echo_traffic(&l);
    for side in [&e, &l] {
        side.wait_eq("cluster.diff_echo.upstream_cx_destroy", 3);
    }
    let (es, ls) = (e.stats(), l.stats());
    let (el, ll) = (e.listener_prefix(), l.listener_prefix());
    for name in [
        "tcp.diff.downstream_cx_total",
        "tcp.diff.downstream_cx_no_route",
        "tcp.diff.downstream_cx_rx_bytes_total",
        "tcp.diff.downstream_cx_tx_bytes_total",
        "tcp.diff.idle_timeout",
        "cluster.diff_echo.upstream_cx_total",
        "cluster.diff_echo.upstream_cx_active",
        "cluster.diff_echo.upstream_cx_connect_fail",
        "cluster.diff_echo.upstream_cx_destroy",
        "cluster.diff_echo.upstream_cx_rx_bytes_total",
        "cluster.diff_echo.upstream_cx_tx_bytes_total",
        "cluster.diff_echo.membership_total",
        "cluster.diff_echo.membership_healthy",
    ] {
        assert_eq!(ls.value(name), es.value(name), "{name}: legate vs envoy");
    }
    for suffix in ["downstream_cx_total", "downstream_cx_destroy", "downstream_cx_active"] {
        assert_eq!(
            ls.value(&format!("{ll}{suffix}")),
            es.value(&format!("{el}{suffix}")),
            "listener {suffix}: legate vs envoy"
        );
    }
}

#[test]
fn legate_counts_a_refused_upstream_like_envoy() {
    let dead = DeadPort::new();
    let cfg = yaml::simple_tcp_proxy("diff", "diff_echo", &[dead.addr()]);
    let (_envoy, _legate, e, l) = both(&cfg, "diff");
    for side in [&e, &l] {
        let mut c = peers::connect(side.port);
        assert!(peers::is_closed_by_peer(&mut c), "{}", side.name);
        side.wait_eq("cluster.diff_echo.upstream_cx_connect_fail", 1);
        let destroyed = format!("{}downstream_cx_destroy", side.listener_prefix());
        side.wait_eq(&destroyed, 1);
    }
    let (es, ls) = (e.stats(), l.stats());
    for name in [
        "tcp.diff.downstream_cx_total",
        "tcp.diff.downstream_cx_rx_bytes_total",
        "tcp.diff.downstream_cx_tx_bytes_total",
        "cluster.diff_echo.upstream_cx_total",
        "cluster.diff_echo.upstream_cx_active",
        "cluster.diff_echo.upstream_cx_connect_fail",
        "cluster.diff_echo.upstream_cx_connect_attempts_exceeded",
        "cluster.diff_echo.upstream_cx_none_healthy",
    ] {
        assert_eq!(ls.value(name), es.value(name), "{name}: legate vs envoy");
    }
}

#[test]
fn legate_udp_stat_names_include_envoys() {
    let echo = UdpEcho::start();
    let cfg = yaml::bootstrap(
        &[yaml::udp_proxy_listener("udp_diff", "udp_diff", "udp_echo", "idle_timeout: 60s")],
        &[yaml::static_cluster("udp_echo", &[echo.addr()])],
    );
    let envoy = Envoy::start(&cfg);
    let legate = Legate::start(&cfg);
    let e = Side { name: "envoy", admin: envoy.admin, port: envoy.listener_port("udp_diff") };
    let l = Side { name: "legate", admin: legate.admin, port: legate.listener_port("udp_diff") };
    for side in [&e, &l] {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        s.send_to(b"diff", ("127.0.0.1", side.port)).expect("send");
        let mut buf = [0u8; 16];
        let (n, _) = s.recv_from(&mut buf).expect("echo");
        assert_eq!(&buf[..n], b"diff");
        side.wait_eq("udp.udp_diff.downstream_sess_tx_datagrams", 1);
    }
    let trees = ["udp.udp_diff.", "cluster.udp_echo.udp."];
    let names = |side: &Side| -> BTreeSet<String> {
        side.stats().0.into_keys().filter(|k| trees.iter().any(|t| k.starts_with(t))).collect()
    };
    let (en, ln) = (names(&e), names(&l));
    let missing: Vec<&String> = en.difference(&ln).collect();
    assert!(missing.is_empty(), "Legate lacks {missing:#?}");
}

/// `legate --mode validate -c <path>` from the checkout's root, as users (and
/// docker-compose.yml) run the examples: their certificate paths are relative to it.
fn validate_from_root(path: &std::path::Path) -> legate_integration::process::Finished {
    let p = path.to_string_lossy();
    run_legate(&["--mode", "validate", "-c", &p], Some(&workspace_root()))
}

/// Configs on which Legate deliberately gives a different verdict from Envoy.
/// Example configs that use an Envoy *contrib* filter, which the Envoy build from PyPI does
/// not contain: Envoy must reject them for exactly that reason (the filter's @type is unknown
/// to it), and Legate must accept them.
const CONTRIB_ONLY: &[(&str, &str)] = &[
    ("postgres-proxy.yaml", "envoy.extensions.filters.network.postgres_proxy.v3alpha.PostgresProxy"),
    ("postgres-terminate-ssl.yaml", "envoy.extensions.filters.network.postgres_proxy.v3alpha.PostgresProxy"),
];

/// Checks a contrib-only example: Envoy rejects it only for the missing contrib filter.
fn check_contrib_only(name: &str, env_ok: bool, env_stderr: &str, leg_ok: bool, leg_stderr: &str) -> bool {
    let Some((_, ty)) = CONTRIB_ONLY.iter().find(|(f, _)| *f == name) else {
        return false;
    };
    assert!(
        !env_ok && env_stderr.contains(&format!("could not find @type 'type.googleapis.com/{ty}'")),
        "{name}: Envoy should reject it only for the contrib filter {ty}:\n{env_stderr}"
    );
    assert!(leg_ok, "legate rejects {name}:\n{leg_stderr}");
    true
}

const DELIBERATE: &[(&str, &str)] = &[
    (
        "invalid/duplicate-listener-name.yaml",
        "Envoy keeps the first listener named l1 and silently drops the second; Legate rejects",
    ),
    (
        "invalid/unsupported-field.yaml",
        "valid Envoy (tcp_proxy tunneling_config); Legate names the field as not supported",
    ),
];

/// Further broken configs, written inline: (name, yaml).
fn inline_cases(dir: &TempDir) -> Vec<(String, PathBuf)> {
    let demo = std::fs::read_to_string(workspace_root().join("configs/legate-demo.yaml")).expect("read demo config");
    let variants = [
        // Envoy accepts a tcp_proxy naming a missing cluster; so does Legate (with a warning).
        ("unknown-cluster", demo.replace("cluster: admin_cluster", "cluster: no_such_cluster")),
        ("negative-duration", demo.replace("connect_timeout: 1s", "connect_timeout: -1s")),
        (
            "bad-ip",
            // The endpoint (indented 14), not the admin address.
            demo.replace(
                "              socket_address: { address: 127.0.0.1,",
                "              socket_address: { address: 999.1.1.1,",
            ),
        ),
        ("duplicate-cluster", format!("{demo}  - name: admin_cluster\n    type: STATIC\n    connect_timeout: 1s\n")),
        ("missing-cluster-specifier", demo.replace("          cluster: admin_cluster\n", "")),
    ];
    variants
        .into_iter()
        .map(|(name, text)| {
            assert_ne!(text, demo, "variant {name} did not change the demo config");
            (format!("inline/{name}"), dir.write(&format!("{name}.yaml"), &text))
        })
        .collect()
}

#[test]
fn validate_verdicts_match_envoy_except_deliberate_differences() {
    let configs = workspace_root().join("configs");
    let mut cases: Vec<(String, PathBuf)> = Vec::new();
    for sub in ["", "invalid/"] {
        let dir = configs.join(sub);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .expect("read configs")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml"))
            .collect();
        names.sort();
        cases.extend(names.into_iter().map(|n| (format!("{sub}{n}"), dir.join(&n))));
    }
    let dir = TempDir::new("verdicts");
    cases.extend(inline_cases(&dir));

    let mut report = Vec::new();
    for (name, path) in &cases {
        let env = envoy_validate(path);
        let leg = validate_from_root(path);
        let env_ok = env.code == Some(0);
        let leg_ok = leg.code == Some(0);
        assert!(
            matches!(env.code, Some(0 | 1)) && matches!(leg.code, Some(0 | 1)),
            "{name}: unexpected exit codes envoy {:?} legate {:?}\nenvoy: {}\nlegate: {}",
            env.code,
            leg.code,
            env.stderr,
            leg.stderr
        );
        if check_contrib_only(name, env_ok, &env.stderr, leg_ok, &leg.stderr) {
            continue;
        }
        let deliberate = DELIBERATE.iter().find(|(f, _)| f == name);
        match deliberate {
            Some((_, why)) => assert!(
                env_ok && !leg_ok,
                "{name} ({why}): expected envoy OK and legate rejecting, got envoy {env_ok} legate {leg_ok}"
            ),
            None => {
                if env_ok != leg_ok {
                    report.push(format!(
                        "{name}: envoy {} legate {}\n  envoy: {}\n  legate: {}",
                        if env_ok { "accepts" } else { "rejects" },
                        if leg_ok { "accepts" } else { "rejects" },
                        env.stderr.lines().last().unwrap_or(""),
                        leg.stderr.trim()
                    ));
                }
            }
        }
        if name == "inline/unknown-cluster" {
            assert!(
                leg.stderr.contains("warning") && leg.stderr.contains("no_such_cluster"),
                "Legate must warn about the unknown cluster:\n{}",
                leg.stderr
            );
        }
    }
    assert!(report.is_empty(), "verdicts differ:\n{}", report.join("\n"));
    // Keep the list of deliberate differences honest: each entry must still exist.
    for (f, _) in DELIBERATE {
        assert!(cases.iter().any(|(n, _)| n == f), "stale DELIBERATE entry {f}");
    }
}

#[test]
fn envoy_and_legate_both_accept_every_example_config() {
    // The examples are what users copy; they must run on both.
    let configs = workspace_root().join("configs");
    for entry in std::fs::read_dir(&configs).expect("read configs") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let env = envoy_validate(&path);
            let leg = validate_from_root(&path);
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if check_contrib_only(&name, env.code == Some(0), &env.stderr, leg.code == Some(0), &leg.stderr) {
                continue;
            }
            assert_eq!(env.code, Some(0), "envoy rejects {}:\n{}", path.display(), env.stderr);
            assert_eq!(leg.code, Some(0), "legate rejects {}:\n{}", path.display(), leg.stderr);
        }
    }
}

/// Every counter and gauge that both proxies have under `trees` (listener address normalised,
/// per-worker stats left out: which worker accepts is not deterministic) and that differs.
fn differing_values(envoy: &Side, legate: &Side, trees: &[String]) -> Vec<String> {
    let norm = |side: &Side| -> std::collections::BTreeMap<String, u64> {
        let listener = side.listener_prefix();
        side.stats()
            .0
            .into_iter()
            .map(|(k, v)| (k.replacen(&listener, "listener.<addr>.", 1), v))
            .filter(|(k, _)| trees.iter().any(|t| k.starts_with(t.as_str())))
            .filter(|(k, _)| !k.contains(".worker_"))
            .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
            .collect()
    };
    let (e, l) = (norm(envoy), norm(legate));
    e.iter()
        .filter_map(|(k, ev)| {
            let lv = l.get(k)?;
            (lv != ev).then(|| format!("{k}: envoy {ev}, legate {lv}"))
        })
        .collect()
}

fn all_trees() -> Vec<String> {
    vec!["tcp.diff.".into(), "cluster.diff_echo.".into(), "listener.<addr>.".into()]
}

#[test]
fn every_shared_counter_matches_envoy_after_echo_traffic() {
    let echo = TcpEcho::start();
    let cfg = yaml::simple_tcp_proxy("diff", "diff_echo", &[echo.addr()]);
    let (_envoy, _legate, e, l) = both(&cfg, "diff");
    echo_traffic(&e);
    echo_traffic(&l);
    for side in [&e, &l] {
        side.wait_eq("cluster.diff_echo.upstream_cx_active", 0);
    }
    let diff = differing_values(&e, &l, &all_trees());
    assert!(diff.is_empty(), "{} values differ:\n{}", diff.len(), diff.join("\n"));
}

#[test]
fn every_shared_counter_matches_envoy_after_a_refused_connection() {
    let dead = DeadPort::new();
    let cfg = yaml::simple_tcp_proxy("diff", "diff_echo", &[dead.addr()]);
    let (_envoy, _legate, e, l) = both(&cfg, "diff");
    for side in [&e, &l] {
        let mut c = peers::connect(side.port);
        assert!(peers::is_closed_by_peer(&mut c), "{}", side.name);
        side.wait_eq("cluster.diff_echo.upstream_cx_connect_fail", 1);
        let destroyed = format!("{}downstream_cx_destroy", side.listener_prefix());
        side.wait_eq(&destroyed, 1);
    }
    let diff = differing_values(&e, &l, &all_trees());
    assert!(diff.is_empty(), "{} values differ:\n{}", diff.len(), diff.join("\n"));
}
