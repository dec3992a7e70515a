//! Checks across resources, after each one decoded on its own: names are unique, ports are
//! not bound twice, and every cluster a filter names exists. Envoy accepts a tcp_proxy or
//! udp_proxy naming a missing cluster (it counts `downstream_cx_no_route` /
//! `downstream_sess_no_route` at run time), so that is a warning here, not an error.

use std::collections::{HashMap, HashSet};

use super::bootstrap::Bootstrap;
use super::decode::{did_you_mean, Cx, Issue};
use super::filters::NetworkFilterConfig;

pub fn cross_check(cx: &Cx, b: &Bootstrap) {
    let mut names = HashSet::new();
    for c in &b.clusters {
        if !c.name.is_empty() && !names.insert(c.name.as_str()) {
            cx.error(&cluster_path(b, &c.name), format!("duplicate cluster name '{}'", c.name));
        }
    }
    let mut listener_names = HashSet::new();
    let mut bound: HashMap<(String, u16, bool), &str> = HashMap::new();
    for l in &b.listeners {
        if !listener_names.insert(l.name.as_str()) {
            cx.error(
                &l.path,
                format!("error adding listener named '{}': listener with the same name already exists", l.name),
            );
        }
        if l.address.port != 0 {
            let key = (l.address.address.clone(), l.address.port, l.udp_proxy.is_some());
            if let Some(other) = bound.insert(key, &l.name) {
                cx.error(
                    &format!("{}.address", l.path),
                    format!(
                        "listener '{}' uses address {}:{} already used by listener '{other}'",
                        l.name, l.address.address, l.address.port
                    ),
                );
            }
        }
        let chains = l.filter_chains.iter().chain(l.default_filter_chain.iter());
        for chain in chains {
            for f in &chain.filters {
                match f {
                    NetworkFilterConfig::RedisProxy(r) => {
                        for name in r.prefix_routes.clusters() {
                            check_cluster(cx, &names, &r.path, name, "redis_proxy", "no upstream host replies");
                        }
                    }
                    NetworkFilterConfig::TcpProxy(t) => {
                        for name in t.cluster.names() {
                            check_cluster(
                                cx,
                                &names,
                                &t.path,
                                name,
                                "tcp_proxy",
                                "tcp.<stat_prefix>.downstream_cx_no_route",
                            );
                        }
                    }
                    NetworkFilterConfig::HttpConnectionManager(h) => {
                        for name in h.clusters() {
                            check_cluster(cx, &names, &h.path, name, "a route", "http.<stat_prefix>.no_cluster");
                        }
                    }
                    NetworkFilterConfig::MongoProxy(_) => {}
                    NetworkFilterConfig::PostgresProxy(_) => {}
                }
            }
        }
        if let Some(u) = &l.udp_proxy {
            check_cluster(cx, &names, &u.path, &u.cluster, "udp_proxy", "udp.<stat_prefix>.downstream_sess_no_route");
        }
    }
}

fn check_cluster(cx: &Cx, names: &HashSet<&str>, path: &str, name: &str, filter: &str, stat: &str) {
    if name.is_empty() || names.contains(name) {
        return;
    }
    let mut msg = format!(
        "{filter} names cluster '{name}', which is not defined; connections will be closed and counted in {stat}"
    );
    if let Some(best) = did_you_mean(name, names.iter().copied()) {
        msg.push_str(&format!(" (did you mean '{best}'?)"));
    }
    cx.warn(path, msg);
}

fn cluster_path(b: &Bootstrap, name: &str) -> String {
    let i = b.clusters.iter().rposition(|c| c.name == name).unwrap_or(0);
    format!("static_resources.clusters[{i}]")
}

/// Whether a warning came from an unknown/unsupported field (for `server.static_unknown_fields`).
pub fn is_unknown_field_warning(w: &Issue) -> bool {
    w.message.starts_with("unknown field") || w.message.starts_with("field '")
}
