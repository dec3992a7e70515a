//! Envoy's plain-text `/stats` output: text readouts (`name: "value"`), then counters and gauges
//! mixed and sorted (`name: value`), then histograms (quantile summary, bucket views or the
//! detailed dump; `No recorded values` before the first merge).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::hist_stats::{disjoint, DetailedBucket, HistogramSnapshot, DEFAULT_BUCKETS, SUPPORTED_QUANTILES};
use super::numfmt::{fmt_g, fmt_shortest};
use super::query::{BucketMode, StatsKind, StatsQuery};
use super::store::{MetricValue, Store};

/// `P0(i,c) P25(i,c) ... P100(i,c)` (Envoy's `ParentHistogramImpl::quantileSummary`).
pub(crate) fn quantile_summary(h: &HistogramSnapshot) -> String {
    let interval = h.interval_quantiles();
    let cumulative = h.cumulative_quantiles();
    SUPPORTED_QUANTILES
        .iter()
        .zip(interval.iter().zip(cumulative.iter()))
        .map(|(q, (i, c))| format!("P{}({},{})", fmt_g(100.0 * q, 6), fmt_shortest(*i), fmt_shortest(*c)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `B0.5(i,c) B1(i,c) ...` from per-bound interval and cumulative counts.
fn bucket_summary(interval: &[u64], cumulative: &[u64]) -> String {
    DEFAULT_BUCKETS
        .iter()
        .zip(interval.iter().zip(cumulative.iter()))
        .map(|(b, (i, c))| format!("B{}({},{})", fmt_g(*b, 6), i, c))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `lower,width:count, ...` with `%.15g` numbers.
fn detail(buckets: &[DetailedBucket]) -> String {
    buckets
        .iter()
        .map(|b| format!("{},{}:{}", fmt_g(b.lower_bound, 15), fmt_g(b.width, 15), b.count))
        .collect::<Vec<_>>()
        .join(", ")
}

fn histogram_line(out: &mut String, name: &str, h: &HistogramSnapshot, mode: BucketMode) {
    if !h.used {
        let _ = writeln!(out, "{name}: No recorded values");
        return;
    }
    match mode {
        BucketMode::Summary => {
            let _ = writeln!(out, "{name}: {}", quantile_summary(h));
        }
        BucketMode::Cumulative => {
            let i = h.interval_buckets(&DEFAULT_BUCKETS);
            let c = h.cumulative_buckets(&DEFAULT_BUCKETS);
            let _ = writeln!(out, "{name}: {}", bucket_summary(&i, &c));
        }
        BucketMode::Disjoint => {
            let i = disjoint(&h.interval_buckets(&DEFAULT_BUCKETS));
            let c = disjoint(&h.cumulative_buckets(&DEFAULT_BUCKETS));
            let _ = writeln!(out, "{name}: {}", bucket_summary(&i, &c));
        }
        BucketMode::Detailed => {
            let _ = writeln!(
                out,
                "{name}:\n  totals={}\n  intervals={}\n  summary={}",
                detail(&h.detailed_totals()),
                detail(&h.detailed_intervals()),
                quantile_summary(h)
            );
        }
    }
}

/// Renders `/stats` in Envoy's text format.
pub fn render_text(store: &Store, q: &StatsQuery) -> String {
    let metrics = store.snapshot();
    let mut out = String::new();

    if matches!(q.kind, StatsKind::All | StatsKind::TextReadouts) {
        for m in &metrics {
            if let MetricValue::TextReadout(v) = &m.value {
                if q.matches(&m.name, m.used) {
                    let _ = writeln!(out, "{}: \"{}\"", m.name, v);
                }
            }
        }
    }

    if matches!(q.kind, StatsKind::All | StatsKind::Counters | StatsKind::Gauges) {
        // Envoy keys this phase by name; a gauge replaces a counter of the same name.
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
            let _ = writeln!(out, "{name}: {value}");
        }
    }

    if matches!(q.kind, StatsKind::All | StatsKind::Histograms) {
        for m in &metrics {
            if let MetricValue::Histogram(h) = &m.value {
                if q.matches(&m.name, m.used) {
                    histogram_line(&mut out, &m.name, h, q.histogram_buckets);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::HistogramUnit;

    fn q(s: &str) -> StatsQuery {
        StatsQuery::parse(s).expect("valid query")
    }

    #[test]
    fn layout_and_order() {
        let s = Store::new();
        s.counter("b.counter").add(3);
        s.gauge("a.gauge").set(2);
        s.gauge("c.gauge");
        s.text_readout("z.text").set("hello");
        s.histogram("a.hist", HistogramUnit::Milliseconds);
        let h = s.histogram("b.hist", HistogramUnit::Milliseconds);
        for _ in 0..5 {
            h.record(1);
        }
        s.merge_histograms();
        s.merge_histograms();
        assert_eq!(
            render_text(&s, &q("")),
            "z.text: \"hello\"\n\
             a.gauge: 2\n\
             b.counter: 3\n\
             c.gauge: 0\n\
             a.hist: No recorded values\n\
             b.hist: P0(nan,1.0166666666666666) P25(nan,1.0333333333333334) P50(nan,1.05) \
             P75(nan,1.0666666666666667) P90(nan,1.0833333333333333) P95(nan,1.0833333333333333) \
             P99(nan,1.0833333333333333) P99.5(nan,1.0833333333333333) P99.9(nan,1.0833333333333333) \
             P100(nan,1.0833333333333333)\n"
        );
        assert_eq!(render_text(&s, &q("usedonly")).lines().count(), 4);
        assert_eq!(render_text(&s, &q("type=Gauges")), "a.gauge: 2\nc.gauge: 0\n");
        assert_eq!(render_text(&s, &q("type=Counters")), "b.counter: 3\n");
        assert_eq!(render_text(&s, &q("type=TextReadouts")), "z.text: \"hello\"\n");
        assert_eq!(render_text(&s, &q("filter=gauge$")), "a.gauge: 2\nc.gauge: 0\n");
        assert_eq!(render_text(&s, &q("filter=nothing")), "");
        assert_eq!(
            render_text(&s, &q("type=Histograms&histogram_buckets=cumulative&filter=b.hist")),
            "b.hist: B0.5(0,0) B1(0,5) B5(0,5) B10(0,5) B25(0,5) B50(0,5) B100(0,5) B250(0,5) \
             B500(0,5) B1000(0,5) B2500(0,5) B5000(0,5) B10000(0,5) B30000(0,5) B60000(0,5) \
             B300000(0,5) B600000(0,5) B1.8e+06(0,5) B3.6e+06(0,5)\n"
        );
        assert!(render_text(&s, &q("histogram_buckets=detailed&filter=b.hist"))
            .starts_with("b.hist:\n  totals=1,0.1:5\n  intervals=\n  summary=P0(nan,1.0166666666666666) "));
    }
}
