//! Golden tests against real Envoy 1.40 admin output (`src/stats/fixtures/`, captured
//! from a real Envoy 1.40 admin endpoint): the store is rebuilt from Envoy's detailed JSON dump (same names,
//! values, used flags and histogram buckets) and every renderer must reproduce Envoy's bytes.

use std::collections::HashSet;
use std::path::PathBuf;

use serde_json::Value;

use super::{render_json, render_prometheus, render_text, HistogramUnit, StatsQuery, Store};

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/stats/fixtures")
}

fn read(name: &str) -> String {
    let path = fixture_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn names_in(text: &str) -> HashSet<String> {
    text.lines().filter_map(|l| l.split_once(": ").map(|(n, _)| n.to_string())).collect()
}

/// Rebuilds Envoy's stats in a fresh store; returns it with the capture's filter.
fn rebuild() -> (Store, String) {
    let counters = names_in(&read("envoy_stats_counters.txt"));
    let gauges = names_in(&read("envoy_stats_gauges.txt"));
    let used = names_in(&read("envoy_stats_usedonly.txt"));
    let store = rebuild_from("envoy_detailed.json", &counters, &gauges, &used);
    let filter = read("envoy_filter.txt").trim_end().to_string();
    (store, filter)
}

/// Recreates the counters, gauges and histograms of a `histogram_buckets=detailed` JSON dump.
fn rebuild_from(detailed: &str, counters: &HashSet<String>, gauges: &HashSet<String>, used: &HashSet<String>) -> Store {
    let detailed: Value = serde_json::from_str(&read(detailed)).expect("json");
    let store = Store::new();
    let mut histograms = Vec::new();
    for entry in detailed["stats"].as_array().expect("stats array") {
        if let Some(details) = entry["histograms"]["details"].as_array() {
            histograms.extend(details.iter().cloned());
            continue;
        }
        let name = entry["name"].as_str().expect("name");
        let value = entry["value"].as_u64().expect("numeric value");
        if counters.contains(name) {
            let c = store.counter(name);
            if used.contains(name) {
                c.add(value);
            }
        } else if gauges.contains(name) {
            let g = store.gauge(name);
            if used.contains(name) {
                g.set(value);
            }
        } else {
            panic!("{name} is neither a counter nor a gauge");
        }
        assert!(used.contains(name) || value == 0, "unused {name} has a value");
    }
    // Samples of earlier intervals first, then the last interval, with a merge after each.
    let samples = |list: &Value| -> Vec<(u64, u64)> {
        list.as_array()
            .expect("bucket list")
            .iter()
            .map(|b| {
                let lower = b["lower_bound"].as_f64().expect("lower_bound");
                (lower.round() as u64, b["count"].as_u64().expect("count"))
            })
            .collect()
    };
    let mut last = Vec::new();
    for h in &histograms {
        let hist = store.histogram(h["name"].as_str().expect("name"), HistogramUnit::Milliseconds);
        let totals = samples(&h["totals"]);
        let intervals = samples(&h["intervals"]);
        for (value, count) in totals {
            let recent = intervals.iter().find(|(v, _)| *v == value).map_or(0, |x| x.1);
            for _ in 0..count - recent {
                hist.record(value);
            }
        }
        last.push((hist, intervals));
    }
    store.merge_histograms();
    for (hist, intervals) in last {
        for (value, count) in intervals {
            for _ in 0..count {
                hist.record(value);
            }
        }
    }
    store.merge_histograms();
    store
}

/// The fixtures ship with the source: a missing one is a failure, never a skip.
fn fixtures_present() -> bool {
    let path = fixture_dir().join("envoy_detailed.json");
    assert!(path.exists(), "Envoy fixtures missing: {}", path.display());
    true
}

fn query(filter: &str, extra: &str) -> StatsQuery {
    StatsQuery::parse(&format!("filter={filter}{extra}")).expect("query")
}

fn assert_same(ours: &str, fixture: &str) {
    let envoy = read(fixture);
    if ours != envoy {
        let diff = ours
            .lines()
            .zip(envoy.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| format!("line {}:\n ours:  {a}\n envoy: {b}", i + 1))
            .unwrap_or_else(|| format!("lengths {} vs {}", ours.len(), envoy.len()));
        panic!("{fixture} differs: {diff}");
    }
}

#[test]
fn text_matches_envoy() {
    if !fixtures_present() {
        return;
    }
    let (store, f) = rebuild();
    assert_same(&render_text(&store, &query(&f, "")), "envoy_stats.txt");
    assert_same(&render_text(&store, &query(&f, "&usedonly")), "envoy_stats_usedonly.txt");
    assert_same(&render_text(&store, &query(&f, "&type=Counters")), "envoy_stats_counters.txt");
    assert_same(&render_text(&store, &query(&f, "&type=Gauges")), "envoy_stats_gauges.txt");
    assert_same(&render_text(&store, &query(&f, "&type=Histograms")), "envoy_stats_histograms.txt");
    assert_same(
        &render_text(&store, &query(&f, "&type=Histograms&histogram_buckets=cumulative")),
        "envoy_stats_cumulative.txt",
    );
    assert_same(
        &render_text(&store, &query(&f, "&type=Histograms&histogram_buckets=disjoint")),
        "envoy_stats_disjoint.txt",
    );
    assert_same(
        &render_text(&store, &query(&f, "&type=Histograms&histogram_buckets=detailed")),
        "envoy_stats_detailed.txt",
    );
}

#[test]
fn json_matches_envoy() {
    if !fixtures_present() {
        return;
    }
    let (store, f) = rebuild();
    assert_same(&render_json(&store, &query(&f, "&format=json")), "envoy_stats.json");
    assert_same(&render_json(&store, &query(&f, "&format=json&usedonly")), "envoy_stats_usedonly.json");
    assert_same(&render_json(&store, &query(&f, "&format=json&histogram_buckets=detailed")), "envoy_detailed.json");
    assert_same(
        &render_json(&store, &query(&f, "&format=json&type=Histograms&histogram_buckets=cumulative")),
        "envoy_json_cumulative.json",
    );
    assert_same(
        &render_json(&store, &query(&f, "&format=json&type=Histograms&histogram_buckets=disjoint")),
        "envoy_json_disjoint.json",
    );
}

#[test]
fn prometheus_matches_envoy() {
    if !fixtures_present() {
        return;
    }
    let (store, f) = rebuild();
    let q = |extra: &str| StatsQuery::parse_prometheus(&format!("filter={f}{extra}")).expect("query");
    assert_same(&render_prometheus(&store, &q("")), "envoy_prometheus.txt");
    assert_same(&render_prometheus(&store, &q("&usedonly")), "envoy_prometheus_usedonly.txt");
}

/// `envoy/envoy_tags.yaml`: a `fixed_value` tag, a user regex and a re-added default.
#[test]
fn custom_stats_tags_match_envoy() {
    if !fixtures_present() {
        return;
    }
    use super::TagRule;
    let store = Store::new();
    let mut extra = Vec::new();
    extra.extend(TagRule::from_specifier("region", None, Some("e\"u")).expect("fixed"));
    extra.extend(TagRule::from_specifier("my_tag", Some(r"^tcp\.ingress\.(down(stream))"), None).expect("regex"));
    extra.extend(TagRule::from_specifier("envoy.cluster_name", None, None).expect("default"));
    store.set_tag_rules(extra);
    let gauges = names_in(&read("envoy_stats_custom_tags_gauges.txt"));
    let used = names_in(&read("envoy_stats_custom_tags_usedonly.txt"));
    for line in read("envoy_stats_custom_tags.txt").lines() {
        let Some((name, value)) = line.split_once(": ") else {
            continue;
        };
        if value == "No recorded values" {
            store.histogram(name, HistogramUnit::Milliseconds);
        } else if gauges.contains(name) {
            let g = store.gauge(name);
            if used.contains(name) {
                g.set(value.parse().expect("gauge value"));
            }
        } else {
            store.counter(name);
        }
    }
    assert_same(&render_text(&store, &StatsQuery::default()), "envoy_stats_custom_tags.txt");
    assert_same(&render_prometheus(&store, &StatsQuery::default()), "envoy_prometheus_custom_tags.txt");
}

/// Connections held open 100 ms .. 3.1 s: buckets with exponents 3 and 4, whose lower bounds
/// are not exact in binary (`110.00000000000001`).
#[test]
fn large_values_match_envoy() {
    if !fixtures_present() {
        return;
    }
    let counter: HashSet<String> = ["tcp.ingress.downstream_cx_total".to_string()].into();
    let store = rebuild_from("envoy_large_detailed.json", &counter, &HashSet::new(), &counter);
    let q = |s: &str| StatsQuery::parse(s).expect("query");
    assert_same(&render_text(&store, &q("")), "envoy_large_stats.txt");
    assert_same(&render_json(&store, &q("format=json")), "envoy_large_stats.json");
    assert_same(&render_json(&store, &q("format=json&histogram_buckets=detailed")), "envoy_large_detailed.json");
    assert_same(
        &render_text(&store, &q("type=Histograms&histogram_buckets=detailed")),
        "envoy_large_stats_detailed.txt",
    );
    assert_same(&render_prometheus(&store, &StatsQuery::default()), "envoy_large_prometheus.txt");
}

/// Text readouts from an Envoy with ADS configured (`envoy/envoy_xds.yaml`).
#[test]
fn text_readouts_match_envoy() {
    if !fixtures_present() {
        return;
    }
    let store = Store::new();
    store.text_readout("cluster_manager.cds.version_text");
    store.text_readout("control_plane.identifier");
    store.gauge("control_plane.connected_state").set(0);
    store.gauge("control_plane.pending_requests");
    store.counter("control_plane.rate_limit_enforced");
    let q = |s: &str| StatsQuery::parse(s).expect("query");
    let p = |s: &str| StatsQuery::parse_prometheus(s).expect("query");
    assert_same(&render_text(&store, &q("")), "envoy_textreadout_stats.txt");
    assert_same(&render_json(&store, &q("format=json")), "envoy_textreadout_stats.json");
    assert_same(&render_prometheus(&store, &p("text_readouts")), "envoy_textreadout_prometheus.txt");
    assert_same(&render_prometheus(&store, &p("text_readouts&usedonly")), "envoy_textreadout_prometheus_usedonly.txt");
}
