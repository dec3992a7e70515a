//! HTTP filters other than the router: `fault`, `local_ratelimit` and `grpc_stats`.
//!
//! A filter config becomes an [`HttpFilterFactory`] once per config generation ([`build`]:
//! stats, token buckets and runtime values are resolved then); the factory makes one
//! [`StreamFilter`] per request. The HCM drives a stream's filters in config order on the
//! request side and in reverse order on the response side:
//!
//! 1. `on_request_headers` once the route is chosen. A [`RequestVerdict`] may ask for a delay
//!    (the HCM sets response flag `DI`, sleeps, then calls `on_delay_elapsed`) and/or a local
//!    reply (sent after the delay; later filters and the router are skipped).
//! 2. `on_request_data` per request body chunk.
//! 3. `on_response_headers`, `on_response_data`, `on_response_trailers` — for local replies
//!    too (with the gRPC status the HCM put in them), as Envoy's encoder filters see them.
//! 4. `on_complete` once, after the last byte.

mod fault;
mod grpc_stats;
mod headers;
mod local_ratelimit;
pub(crate) mod percent;
mod token_bucket;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::config::http_filters::HttpFilterConfig;
use crate::filter::http::local_reply::LocalReply;
use crate::runtime::Runtime;
use crate::stats::Store;

pub use fault::{Fault, FaultFilter, FaultStats};
pub use grpc_stats::{GrpcStats, GrpcStatsFilter, GrpcStatsOverflow};
pub use local_ratelimit::{LocalRateLimit, LocalRateLimitFilter, LocalRateLimitStats};
pub use token_bucket::{Clock, MonotonicClock, TokenBucket};

/// Built once per generation; makes one filter per stream.
pub trait HttpFilterFactory: Send + Sync {
    fn create(&self) -> Box<dyn StreamFilter>;
}

/// One filter instance on one stream. Every method defaults to "continue".
pub trait StreamFilter: Send {
    /// Request headers arrived and the route was chosen (`route.cluster` None when no route).
    fn on_request_headers(&mut self, _req: &mut http::request::Parts, _route: &RouteInfo<'_>) -> RequestVerdict {
        RequestVerdict::default()
    }
    /// The delay a [`RequestVerdict`] asked for has elapsed (called before its local reply is
    /// sent). Not called when the stream ends during the delay.
    fn on_delay_elapsed(&mut self) {}
    fn on_request_data(&mut self, _data: &[u8]) {}
    fn on_response_headers(&mut self, _resp: &mut http::response::Parts) {}
    fn on_response_data(&mut self, _data: &[u8]) {}
    fn on_response_trailers(&mut self, _trailers: &http::HeaderMap) {}
    /// Once per stream, after the last byte (local replies included).
    fn on_complete(&mut self, _end: &StreamEnd<'_>) {}
}

/// A stream's filters, shared by the request body (which feeds them `on_request_data` as it
/// goes upstream) and the response side. Nothing is allocated when there are none.
#[derive(Clone, Default)]
pub struct SharedFilters(Option<Arc<Mutex<FilterList>>>);

type FilterList = Vec<Box<dyn StreamFilter>>;

impl SharedFilters {
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Calls `f` on each filter in config order.
    pub fn for_each(&self, mut f: impl FnMut(&mut dyn StreamFilter)) {
        if let Some(list) = &self.0 {
            for filter in list.lock().iter_mut() {
                f(filter.as_mut());
            }
        }
    }
}

impl From<FilterList> for SharedFilters {
    fn from(v: FilterList) -> SharedFilters {
        SharedFilters((!v.is_empty()).then(|| Arc::new(Mutex::new(v))))
    }
}

/// What the route table decided for this request.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteInfo<'a> {
    pub cluster: Option<&'a str>,
    pub route_name: Option<&'a str>,
}

/// The HCM sleeps `delay`, then sends `local_reply` or continues.
#[derive(Debug, Default)]
pub struct RequestVerdict {
    pub delay: Option<Duration>,
    pub local_reply: Option<LocalReply>,
}

/// How a stream ended.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamEnd<'a> {
    pub response_code: Option<u16>,
    /// From the first byte sent upstream to the last byte received from it.
    pub upstream_time: Option<Duration>,
    pub local_reply: bool,
    pub cluster: Option<&'a str>,
}

/// Builds the factory of one filter; `None` for the router (the HCM's own job).
/// `hcm_stat_prefix` is the HCM's `stat_prefix` as configured (`ingress_http`, not
/// `http.ingress_http.`).
pub fn build(
    cfg: &HttpFilterConfig,
    store: &Store,
    hcm_stat_prefix: &str,
    runtime: &Runtime,
) -> Option<Arc<dyn HttpFilterFactory>> {
    match cfg {
        HttpFilterConfig::Router(_) => None,
        HttpFilterConfig::Fault(f) => Some(Arc::new(Fault::new(f, store, hcm_stat_prefix, runtime))),
        HttpFilterConfig::LocalRateLimit(l) => {
            Some(Arc::new(LocalRateLimit::new(l, store, runtime, Arc::new(MonotonicClock::new()))))
        }
        HttpFilterConfig::GrpcStats(g) => Some(Arc::new(GrpcStats::new(g, store, hcm_stat_prefix, runtime))),
    }
}

#[cfg(test)]
mod tests;
