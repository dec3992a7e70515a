//! Envoy-compatible statistics for Legate: lock-free counters, gauges and log-linear
//! histograms in a shared [`Store`], Envoy's default tag extraction, and the admin renderers
//! whose output matches Envoy's `/stats`, `/stats?format=json` and `/stats/prometheus`
//! character for character.
//!
//! Histograms behave like Envoy's: samples become visible at the next
//! [`Store::merge_histograms`] (the stats flush); the "interval" view holds the samples of the
//! last flush interval and the "cumulative" view everything up to the last flush.

pub mod counted_io;
mod hist_stats;
mod histogram;
mod llhist;
pub mod macros;
mod metrics;
mod numfmt;
mod query;
mod render_json;
mod render_prometheus;
mod render_text;
mod store;
mod tag_defaults;
mod tags;

#[cfg(test)]
mod envoy_fixtures;

pub use hist_stats::{DetailedBucket, HistogramSnapshot, DEFAULT_BUCKETS, SUPPORTED_QUANTILES};
pub use histogram::{Histogram, HistogramUnit, PERCENT_SCALE};
pub use llhist::{Bucket, BucketCount};
pub use metrics::{Counter, Gauge, TextReadout};
pub(crate) use query::re2_error;
pub use query::{BucketMode, StatsFormat, StatsKind, StatsQuery};
pub use render_json::render_json;
pub use render_prometheus::render_prometheus;
pub use render_text::render_text;
pub use store::{Metric, MetricValue, Store};
pub use tags::{extract_tags, TagRule};
