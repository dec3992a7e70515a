//! Envoy's `/stats?format=json` output: `{"stats":[...]}` with text readouts, then counters and
//! gauges mixed and sorted (`{"name":..,"value":..}`), then one `{"histograms":...}` element in
//! the layout of the selected bucket mode. Doubles are written like `std::to_chars` (`3e+05`),
//! NaN as `null`.

use std::collections::BTreeMap;

use super::hist_stats::{disjoint, DetailedBucket, HistogramSnapshot, DEFAULT_BUCKETS, SUPPORTED_QUANTILES};
use super::numfmt::fmt_to_chars;
use super::query::{BucketMode, StatsKind, StatsQuery};
use super::store::{MetricValue, Store};

fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

fn json_num(x: f64) -> String {
    if x.is_finite() {
        fmt_to_chars(x)
    } else {
        "null".to_string()
    }
}

fn supported_percentiles() -> String {
    let values: Vec<String> = SUPPORTED_QUANTILES.iter().map(|q| json_num(q * 100.0)).collect();
    format!("[{}]", values.join(","))
}

fn percentiles(h: &HistogramSnapshot) -> String {
    let cumulative = h.cumulative_quantiles();
    let interval = h.interval_quantiles();
    let items: Vec<String> = cumulative
        .iter()
        .zip(interval.iter())
        .map(|(c, i)| format!("{{\"cumulative\":{},\"interval\":{}}}", json_num(*c), json_num(*i)))
        .collect();
    format!("[{}]", items.join(","))
}

fn buckets(h: &HistogramSnapshot, disjoint_view: bool) -> String {
    let mut interval = h.interval_buckets(&DEFAULT_BUCKETS);
    let mut cumulative = h.cumulative_buckets(&DEFAULT_BUCKETS);
    if disjoint_view {
        interval = disjoint(&interval);
        cumulative = disjoint(&cumulative);
    }
    let items: Vec<String> = DEFAULT_BUCKETS
        .iter()
        .zip(interval.iter().zip(cumulative.iter()))
        .map(|(b, (i, c))| format!("{{\"upper_bound\":{},\"interval\":{},\"cumulative\":{}}}", json_num(*b), i, c))
        .collect();
    format!("[{}]", items.join(","))
}

fn verbose(buckets: &[DetailedBucket]) -> String {
    let items: Vec<String> = buckets
        .iter()
        .map(|b| {
            format!(
                "{{\"lower_bound\":{},\"width\":{},\"count\":{}}}",
                json_num(b.lower_bound),
                json_num(b.width),
                b.count
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn histogram_entry(name: &str, h: &HistogramSnapshot, mode: BucketMode) -> String {
    let name = json_str(name);
    match mode {
        BucketMode::Summary => format!("{{\"name\":{name},\"values\":{}}}", percentiles(h)),
        BucketMode::Cumulative => format!("{{\"name\":{name},\"buckets\":{}}}", buckets(h, false)),
        BucketMode::Disjoint => format!("{{\"name\":{name},\"buckets\":{}}}", buckets(h, true)),
        BucketMode::Detailed => format!(
            "{{\"name\":{name},\"totals\":{},\"intervals\":{},\"percentiles\":{}}}",
            verbose(&h.detailed_totals()),
            verbose(&h.detailed_intervals()),
            percentiles(h)
        ),
    }
}

fn histograms_block(entries: &[String], mode: BucketMode) -> String {
    let list = entries.join(",");
    match mode {
        BucketMode::Summary => format!(
            "{{\"histograms\":{{\"supported_quantiles\":{},\"computed_quantiles\":[{list}]}}}}",
            supported_percentiles()
        ),
        BucketMode::Cumulative | BucketMode::Disjoint => format!("{{\"histograms\":[{list}]}}"),
        BucketMode::Detailed => {
            format!("{{\"histograms\":{{\"supported_percentiles\":{},\"details\":[{list}]}}}}", supported_percentiles())
        }
    }
}

/// Renders `/stats?format=json` exactly as Envoy does (compact, no trailing newline).
pub fn render_json(store: &Store, q: &StatsQuery) -> String {
    let metrics = store.snapshot();
    let mut items: Vec<String> = Vec::new();

    if matches!(q.kind, StatsKind::All | StatsKind::TextReadouts) {
        for m in &metrics {
            if let MetricValue::TextReadout(v) = &m.value {
                if q.matches(&m.name, m.used) {
                    items.push(format!("{{\"name\":{},\"value\":{}}}", json_str(&m.name), json_str(v)));
                }
            }
        }
    }

    if matches!(q.kind, StatsKind::All | StatsKind::Counters | StatsKind::Gauges) {
        let mut numeric: BTreeMap<&str, u64> = BTreeMap::new();
        for m in &metrics {
            let value = match (&m.value, q.kind) {
                (MetricValue::Counter(v), StatsKind::All | StatsKind::Counters) => *v,
                (MetricValue::Gauge(v), StatsKind::All | StatsKind::Gauges) => *v,
                _ => continue,
            };
            if q.matches(&m.name, m.used) {
                numeric.insert(&m.name, value);
            }
        }
        for (name, value) in numeric {
            items.push(format!("{{\"name\":{},\"value\":{}}}", json_str(name), value));
        }
    }

    if matches!(q.kind, StatsKind::All | StatsKind::Histograms) {
        let entries: Vec<String> = metrics
            .iter()
            .filter_map(|m| match &m.value {
                MetricValue::Histogram(h) if q.matches(&m.name, m.used) => {
                    Some(histogram_entry(&m.name, h, q.histogram_buckets))
                }
                _ => None,
            })
            .collect();
        if !entries.is_empty() {
            items.push(histograms_block(&entries, q.histogram_buckets));
        }
    }

    format!("{{\"stats\":[{}]}}", items.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::HistogramUnit;

    fn q(s: &str) -> StatsQuery {
        StatsQuery::parse(s).expect("valid query")
    }

    #[test]
    fn empty_and_basic() {
        let s = Store::new();
        assert_eq!(render_json(&s, &q("format=json")), "{\"stats\":[]}");
        s.counter("c").add(2);
        s.text_readout("t").set("a\"b");
        s.histogram("h", HistogramUnit::Milliseconds).record(4);
        s.merge_histograms();
        let out = render_json(&s, &q("format=json"));
        assert!(out.starts_with(
            "{\"stats\":[{\"name\":\"t\",\"value\":\"a\\\"b\"},{\"name\":\"c\",\"value\":2},\
             {\"histograms\":{\"supported_quantiles\":[0,25,50,75,90,95,99,99.5,99.9,100],\
             \"computed_quantiles\":[{\"name\":\"h\",\"values\":[{\"cumulative\":4.05,\"interval\":4.05}"
        ));
        assert!(serde_json::from_str::<serde_json::Value>(&out).is_ok());
        let cum = render_json(&s, &q("format=json&type=Histograms&histogram_buckets=cumulative"));
        assert!(cum.contains("{\"upper_bound\":3e+05,\"interval\":1,\"cumulative\":1}"));
        assert!(cum.starts_with("{\"stats\":[{\"histograms\":[{\"name\":\"h\",\"buckets\":[{\"upper_bound\":0.5,"));
        let det = render_json(&s, &q("format=json&type=Histograms&histogram_buckets=detailed"));
        assert!(det.contains("\"totals\":[{\"lower_bound\":4,\"width\":0.1,\"count\":1}]"));
        assert_eq!(render_json(&s, &q("format=json&type=Counters")), "{\"stats\":[{\"name\":\"c\",\"value\":2}]}");
    }
}
