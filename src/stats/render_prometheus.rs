//! Envoy's `/stats/prometheus` output (text exposition 0.0.4): counters, gauges, optionally text
//! readouts, then histograms; within each, one `# TYPE` line per tag-extracted name (sorted),
//! followed by that name's stats ordered by their full names token by token. Names become
//! `envoy_<sanitized>`, tags become sanitized labels with escaped values.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use regex::Regex;

use super::hist_stats::{HistogramSnapshot, DEFAULT_BUCKETS};
use super::numfmt::fmt_g;
use super::query::StatsQuery;
use super::store::{Metric, MetricValue, Store};

/// Replaces every character outside `[a-zA-Z0-9_]` by `_`.
fn sanitize_name(name: &str) -> String {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    match RE.get_or_init(|| Regex::new("[^a-zA-Z0-9_]").ok()) {
        Some(re) => re.replace_all(name, "_").into_owned(),
        None => name.to_string(),
    }
}

/// Escapes `\`, newline and `"` in a label value.
fn sanitize_value(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\n', "\\n").replace('"', "\\\"")
}

fn formatted_tags(tags: &[(String, String)]) -> String {
    tags.iter().map(|(k, v)| format!("{}=\"{}\"", sanitize_name(k), sanitize_value(v))).collect::<Vec<_>>().join(",")
}

/// `envoy_` + sanitized tag-extracted name.
pub(crate) fn metric_name(tag_extracted: &str) -> String {
    format!("envoy_{}", sanitize_name(tag_extracted))
}

/// A stat of one `# TYPE` group with its tags.
type Member<'a> = (&'a Metric, Vec<(String, String)>);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Counters,
    Gauges,
    TextReadouts,
    Histograms,
}

fn in_phase(m: &Metric, phase: Phase) -> bool {
    matches!(
        (&m.value, phase),
        (MetricValue::Counter(_), Phase::Counters)
            | (MetricValue::Gauge(_), Phase::Gauges)
            | (MetricValue::TextReadout(_), Phase::TextReadouts)
            | (MetricValue::Histogram(_), Phase::Histograms)
    )
}

fn histogram_lines(out: &mut String, name: &str, tags: &str, h: &HistogramSnapshot) {
    let hist_tags = if tags.is_empty() { String::new() } else { format!("{tags},") };
    let counts = h.cumulative_buckets(&DEFAULT_BUCKETS);
    for (bound, count) in DEFAULT_BUCKETS.iter().zip(counts.iter()) {
        let _ = writeln!(out, "{name}_bucket{{{hist_tags}le=\"{}\"}} {count}", fmt_g(*bound, 32));
    }
    let count = h.sample_count();
    let _ = writeln!(out, "{name}_bucket{{{hist_tags}le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "{name}_sum{{{tags}}} {}", fmt_g(h.sample_sum(), 32));
    let _ = writeln!(out, "{name}_count{{{tags}}} {count}");
}

/// Renders `/stats/prometheus` exactly as Envoy does, with the store's tag rules.
pub fn render_prometheus(store: &Store, q: &StatsQuery) -> String {
    let metrics = store.snapshot();
    let mut out = String::new();
    let mut phases = vec![Phase::Counters, Phase::Gauges];
    if q.text_readouts {
        phases.push(Phase::TextReadouts);
    }
    phases.push(Phase::Histograms);

    for phase in phases {
        let mut groups: BTreeMap<String, Vec<Member>> = BTreeMap::new();
        for m in metrics.iter().filter(|m| in_phase(m, phase)) {
            if !q.matches(&m.name, m.used) {
                continue;
            }
            let tagged = store.tagged(&m.name);
            groups.entry(tagged.0.clone()).or_default().push((m, tagged.1.clone()));
        }
        let type_name = match phase {
            Phase::Counters => "counter",
            Phase::Gauges | Phase::TextReadouts => "gauge",
            Phase::Histograms => "histogram",
        };
        for (extracted, mut members) in groups {
            let name = metric_name(&extracted);
            let _ = writeln!(out, "# TYPE {name} {type_name}");
            // Envoy orders by the symbolized stat name: token by token.
            members.sort_by(|a, b| a.0.name.split('.').cmp(b.0.name.split('.')));
            for (m, tags) in members {
                match &m.value {
                    MetricValue::Counter(v) | MetricValue::Gauge(v) => {
                        let _ = writeln!(out, "{name}{{{}}} {v}", formatted_tags(&tags));
                    }
                    MetricValue::TextReadout(text) => {
                        let mut tags = tags;
                        tags.push(("text_value".to_string(), text.clone()));
                        let _ = writeln!(out, "{name}{{{}}} 0", formatted_tags(&tags));
                    }
                    MetricValue::Histogram(h) => {
                        histogram_lines(&mut out, &name, &formatted_tags(&tags), h);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{HistogramUnit, TagRule};

    fn q(s: &str) -> StatsQuery {
        StatsQuery::parse_prometheus(s).expect("valid query")
    }

    #[test]
    fn docs_examples() {
        let s = Store::new();
        s.counter("cluster.c.upstream_rq_200").add(3);
        s.counter("listener.0.0.0.0_10000.downstream_cx_total").inc();
        s.counter("listener.admin.downstream_cx_total").inc();
        s.counter("tcp.ingress.downstream_cx_total").add(2);
        s.counter("redis.egress_redis.command.get.total").add(4);
        s.counter("mongo.p.cmd.find.total").inc();
        s.counter("http.ingress_http.downstream_rq_2xx").add(5);
        s.gauge("server.live").set(1);
        assert_eq!(
            render_prometheus(&s, &q("")),
            "# TYPE envoy_cluster_upstream_rq counter\n\
             envoy_cluster_upstream_rq{envoy_response_code=\"200\",envoy_cluster_name=\"c\"} 3\n\
             # TYPE envoy_http_downstream_rq_xx counter\n\
             envoy_http_downstream_rq_xx{envoy_response_code_class=\"2\",envoy_http_conn_manager_prefix=\"ingress_http\"} 5\n\
             # TYPE envoy_listener_admin_downstream_cx_total counter\n\
             envoy_listener_admin_downstream_cx_total{} 1\n\
             # TYPE envoy_listener_downstream_cx_total counter\n\
             envoy_listener_downstream_cx_total{envoy_listener_address=\"0.0.0.0_10000\"} 1\n\
             # TYPE envoy_mongo_cmd_total counter\n\
             envoy_mongo_cmd_total{envoy_mongo_cmd=\"find\",envoy_mongo_prefix=\"p\"} 1\n\
             # TYPE envoy_redis_command_get_total counter\n\
             envoy_redis_command_get_total{envoy_redis_prefix=\"egress_redis\"} 4\n\
             # TYPE envoy_tcp_downstream_cx_total counter\n\
             envoy_tcp_downstream_cx_total{envoy_tcp_prefix=\"ingress\"} 2\n\
             # TYPE envoy_server_live gauge\n\
             envoy_server_live{} 1\n"
        );
    }

    #[test]
    fn histograms_text_readouts_and_fixed_tags() {
        let s = Store::new();
        s.set_tag_rules(vec![TagRule::fixed("region", "e\"u")]);
        let h = s.histogram("listener.1.2.3.4_80.connections_accepted_per_socket_event", HistogramUnit::Unspecified);
        for _ in 0..5 {
            h.record(1);
        }
        s.merge_histograms();
        s.text_readout("server.version_label").set("1.0");
        let out = render_prometheus(&s, &q("text_readouts"));
        assert!(out.starts_with(
            "# TYPE envoy_server_version_label gauge\n\
             envoy_server_version_label{region=\"e\\\"u\",text_value=\"1.0\"} 0\n\
             # TYPE envoy_listener_connections_accepted_per_socket_event histogram\n\
             envoy_listener_connections_accepted_per_socket_event_bucket{region=\"e\\\"u\",envoy_listener_address=\"1.2.3.4_80\",le=\"0.5\"} 0\n\
             envoy_listener_connections_accepted_per_socket_event_bucket{region=\"e\\\"u\",envoy_listener_address=\"1.2.3.4_80\",le=\"1\"} 5\n"
        ), "{out}");
        assert!(out.contains(
            "_sum{region=\"e\\\"u\",envoy_listener_address=\"1.2.3.4_80\"} 5.238095238095238137532305700006\n"
        ));
        assert!(out.ends_with("_count{region=\"e\\\"u\",envoy_listener_address=\"1.2.3.4_80\"} 5\n"));
        assert!(!render_prometheus(&s, &q("")).contains("text_value"));
        assert_eq!(render_prometheus(&s, &q("filter=nomatch")), "");
    }

    #[test]
    fn group_members_sort_token_wise() {
        let s = Store::new();
        s.counter("cluster.a-b.upstream_cx_total").inc();
        s.counter("cluster.a.upstream_cx_total").inc();
        let out = render_prometheus(&s, &q(""));
        let a = out.find("\"a\"").unwrap_or(usize::MAX);
        let ab = out.find("\"a-b\"").unwrap_or(0);
        assert!(a < ab, "{out}");
    }
}
