//! `/clusters`: every cluster's circuit-breaker thresholds and every host with its counters,
//! as Envoy's `<cluster>::<host>::<field>::<value>` lines or, with `?format=json`, Envoy's
//! `ClusterStatuses` message. `?filter=<regex>` keeps clusters whose name it matches
//! (partially); an unknown `format` falls back to text, as in Envoy.
//!
//! Legate has neither outlier detection nor health checking yet, so there are no `outlier::`
//! lines, every host is `healthy`, and success rates are Envoy's "not computed" `-1`.

use std::fmt::Write;

use regex::Regex;
use serde_json::{json, Map, Value};

use super::json::{locality, pretty, socket_address};
use super::{AdminRequest, AdminState, Reply, TEXT};
use crate::config::cluster::Thresholds;
use crate::upstream::cluster::Cluster;
use crate::upstream::host::{Host, HostStats};

/// `GET /clusters`.
pub(crate) fn handle(state: &AdminState, req: &AdminRequest) -> Reply {
    let filter = match req.params.get("filter").filter(|f| !f.is_empty()) {
        Some(f) => match Regex::new(f) {
            Ok(r) => Some(r),
            Err(e) => return Reply::new(400, TEXT, crate::stats::re2_error(f, &e)),
        },
        None => None,
    };
    let clusters: Vec<&Cluster> =
        state.cm.iter().map(|c| c.as_ref()).filter(|c| filter.as_ref().is_none_or(|r| r.is_match(&c.name))).collect();
    if req.params.get("format") == Some("json") {
        Reply::json(pretty(&clusters_json(&clusters)))
    } else {
        Reply::text(clusters_text(&clusters))
    }
}

/// A host's `(name, value)` pairs sorted by name, with `rq_pending_active` (always 0 for
/// TCP, where nothing waits for a request slot) added if the host does not track it.
fn host_stats(stats: &HostStats) -> Vec<(&'static str, u64)> {
    let mut v: Vec<(&'static str, u64)> = stats.pairs().to_vec();
    if !v.iter().any(|(n, _)| *n == "rq_pending_active") {
        v.push(("rq_pending_active", 0));
    }
    v.sort_by_key(|(n, _)| *n);
    v
}

fn is_gauge(name: &str) -> bool {
    HostStats::is_gauge(name) || name == "rq_pending_active"
}

/// Hosts in Envoy's order: by priority, then as the cluster lists them.
fn hosts_in_order(c: &Cluster) -> Vec<std::sync::Arc<Host>> {
    let mut hosts = c.hosts().all.clone();
    hosts.sort_by_key(|h| h.priority);
    hosts
}

/// The text form.
pub(crate) fn clusters_text(clusters: &[&Cluster]) -> String {
    let mut s = String::new();
    for c in clusters {
        let n = &c.name;
        let _ = writeln!(s, "{n}::observability_name::{}", c.config.stat_name());
        for (prio, t) in
            [("default_priority", &c.config.default_thresholds), ("high_priority", &c.config.high_thresholds)]
        {
            let _ = writeln!(s, "{n}::{prio}::max_connections::{}", t.max_connections);
            let _ = writeln!(s, "{n}::{prio}::max_pending_requests::{}", t.max_pending_requests);
            let _ = writeln!(s, "{n}::{prio}::max_requests::{}", t.max_requests);
            let _ = writeln!(s, "{n}::{prio}::max_retries::{}", t.max_retries);
        }
        let _ = writeln!(s, "{n}::added_via_api::false");
        for h in hosts_in_order(c) {
            let a = h.address;
            for (name, v) in host_stats(&h.stats) {
                let _ = writeln!(s, "{n}::{a}::{name}::{v}");
            }
            let _ = writeln!(s, "{n}::{a}::hostname::{}", h.hostname);
            let _ = writeln!(s, "{n}::{a}::health_flags::healthy");
            let _ = writeln!(s, "{n}::{a}::weight::{}", h.weight);
            let _ = writeln!(s, "{n}::{a}::region::{}", h.locality.region);
            let _ = writeln!(s, "{n}::{a}::zone::{}", h.locality.zone);
            let _ = writeln!(s, "{n}::{a}::sub_zone::{}", h.locality.sub_zone);
            let _ = writeln!(s, "{n}::{a}::canary::false");
            let _ = writeln!(s, "{n}::{a}::priority::{}", h.priority);
            let _ = writeln!(s, "{n}::{a}::success_rate::-1");
            let _ = writeln!(s, "{n}::{a}::local_origin_success_rate::-1");
        }
    }
    s
}

fn thresholds_json(t: &Thresholds, high: bool) -> Value {
    let mut m = Map::new();
    if high {
        m.insert("priority".into(), "HIGH".into());
    }
    m.insert("max_connections".into(), t.max_connections.into());
    m.insert("max_pending_requests".into(), t.max_pending_requests.into());
    m.insert("max_requests".into(), t.max_requests.into());
    m.insert("max_retries".into(), t.max_retries.into());
    Value::Object(m)
}

/// `SimpleMetric` list: counters then gauges, each sorted; protobuf JSON leaves out zero
/// values and the default type (COUNTER), and prints uint64 as a string.
fn host_stats_json(stats: &HostStats) -> Value {
    let all = host_stats(stats);
    let mut out = Vec::new();
    for gauges in [false, true] {
        for (name, v) in all.iter().filter(|(n, _)| is_gauge(n) == gauges) {
            let mut m = Map::new();
            if gauges {
                m.insert("type".into(), "GAUGE".into());
            }
            if *v != 0 {
                m.insert("value".into(), Value::String(v.to_string()));
            }
            m.insert("name".into(), (*name).into());
            out.push(Value::Object(m));
        }
    }
    Value::Array(out)
}

fn host_json(h: &Host) -> Value {
    let mut m = Map::new();
    m.insert("address".into(), socket_address(h.address));
    m.insert("stats".into(), host_stats_json(&h.stats));
    m.insert("health_status".into(), json!({"eds_health_status": "HEALTHY"}));
    if h.weight != 0 {
        m.insert("weight".into(), h.weight.into());
    }
    if !h.hostname.is_empty() {
        m.insert("hostname".into(), h.hostname.clone().into());
    }
    if h.priority != 0 {
        m.insert("priority".into(), h.priority.into());
    }
    m.insert("locality".into(), locality(&h.locality.region, &h.locality.zone, &h.locality.sub_zone));
    Value::Object(m)
}

/// The JSON form (`envoy.admin.v3.Clusters`).
pub(crate) fn clusters_json(clusters: &[&Cluster]) -> Value {
    let statuses: Vec<Value> = clusters
        .iter()
        .map(|c| {
            let mut m = Map::new();
            m.insert("name".into(), c.name.clone().into());
            let hosts: Vec<Value> = hosts_in_order(c).iter().map(|h| host_json(h)).collect();
            if !hosts.is_empty() {
                m.insert("host_statuses".into(), Value::Array(hosts));
            }
            m.insert(
                "circuit_breakers".into(),
                json!({"thresholds": [
                    thresholds_json(&c.config.default_thresholds, false),
                    thresholds_json(&c.config.high_thresholds, true),
                ]}),
            );
            m.insert("observability_name".into(), c.config.stat_name().to_string().into());
            Value::Object(m)
        })
        .collect();
    // Protobuf JSON leaves an empty repeated field out.
    if statuses.is_empty() {
        return json!({});
    }
    json!({ "cluster_statuses": statuses })
}
