//! `envoy.filters.http.local_ratelimit`: one token bucket per filter config, shared by every
//! worker (Envoy's default, `local_rate_limit_per_downstream_connection: false`).
//!
//! Per request, as Envoy's `Filter::decodeHeaders`: not enabled (`filter_enabled`, 0% by
//! default) → nothing; else `enabled`++, take a token → `ok`++; none left → `rate_limited`++,
//! and if enforced (`filter_enforced`, 0% by default) `enforced`++ and a local reply
//! (429 `local_rate_limited`, flag `RL`, details `local_rate_limited`, plus
//! `response_headers_to_add`), else `request_headers_to_add_when_not_enforced` go upstream.
//! Envoy 1.40 does not add `x-envoy-ratelimited` to this reply (checked against the binary);
//! neither does Legate. Runtime keys are read from the static layers once per generation.

use std::sync::Arc;

use http::HeaderMap;

use super::headers::apply;
use super::percent::{percent_or, roll};
use super::token_bucket::{Clock, TokenBucket};
use super::{HttpFilterFactory, RequestVerdict, RouteInfo, StreamFilter};
use crate::access_log::ResponseFlags;
use crate::config::http_filters::{
    FractionalPercent, HeaderValueOptionConfig, LocalRateLimitConfig, RuntimeFractionalPercent,
};
use crate::define_stats;
use crate::filter::http::local_reply::LocalReply;
use crate::runtime::Runtime;
use crate::stats::Store;

/// Envoy's body and `%RESPONSE_CODE_DETAILS%`.
pub const BODY: &str = "local_rate_limited";
pub const DETAILS: &str = "local_rate_limited";
/// `rate_limited_as_resource_exhausted`: gRPC RESOURCE_EXHAUSTED.
const GRPC_RESOURCE_EXHAUSTED: u32 = 8;

define_stats! {
    /// `<stat_prefix>.http_local_rate_limit.*` (no `http.` in front).
    pub struct LocalRateLimitStats {
        counter enabled,
        counter enforced,
        counter rate_limited,
        counter ok,
        /// Registered as Envoy 1.40 registers it; Legate has no shadow mode, so it stays 0.
        counter shadow_mode,
    }
}

struct Shared {
    bucket: Option<TokenBucket>,
    enabled: FractionalPercent,
    enforced: FractionalPercent,
    status: u16,
    response_headers: Vec<HeaderValueOptionConfig>,
    request_headers: Vec<HeaderValueOptionConfig>,
    grpc_status: Option<u32>,
    stats: LocalRateLimitStats,
}

/// The factory; owns the bucket.
pub struct LocalRateLimit(Arc<Shared>);

fn resolve(rt: &Runtime, p: &Option<RuntimeFractionalPercent>) -> FractionalPercent {
    match p {
        Some(p) => percent_or(rt, p.runtime_key.as_deref(), p.default_value),
        None => FractionalPercent::ZERO,
    }
}

impl LocalRateLimit {
    pub fn new(cfg: &LocalRateLimitConfig, store: &Store, rt: &Runtime, clock: Arc<dyn Clock>) -> LocalRateLimit {
        let bucket =
            cfg.token_bucket.map(|t| TokenBucket::new(t.max_tokens, t.tokens_per_fill, t.fill_interval, clock));
        LocalRateLimit(Arc::new(Shared {
            bucket,
            enabled: resolve(rt, &cfg.filter_enabled),
            enforced: resolve(rt, &cfg.filter_enforced),
            status: cfg.status,
            response_headers: cfg.response_headers_to_add.clone(),
            request_headers: cfg.request_headers_to_add_when_not_enforced.clone(),
            grpc_status: cfg.rate_limited_as_resource_exhausted.then_some(GRPC_RESOURCE_EXHAUSTED),
            stats: LocalRateLimitStats::new(store, &format!("{}.http_local_rate_limit.", cfg.stat_prefix)),
        }))
    }

    pub fn filter(&self) -> LocalRateLimitFilter {
        LocalRateLimitFilter(self.0.clone())
    }
}

impl HttpFilterFactory for LocalRateLimit {
    fn create(&self) -> Box<dyn StreamFilter> {
        Box::new(self.filter())
    }
}

/// One stream's view of the shared limiter.
pub struct LocalRateLimitFilter(Arc<Shared>);

impl StreamFilter for LocalRateLimitFilter {
    fn on_request_headers(&mut self, req: &mut http::request::Parts, _route: &RouteInfo<'_>) -> RequestVerdict {
        let s = &self.0;
        if !roll(s.enabled) {
            return RequestVerdict::default();
        }
        s.stats.enabled.inc();
        if s.bucket.as_ref().is_none_or(TokenBucket::try_consume) {
            s.stats.ok.inc();
            return RequestVerdict::default();
        }
        s.stats.rate_limited.inc();
        if !roll(s.enforced) {
            apply(&mut req.headers, &s.request_headers);
            return RequestVerdict::default();
        }
        s.stats.enforced.inc();
        let mut reply = LocalReply::new(s.status, BODY, ResponseFlags::RL, DETAILS);
        let mut extra = HeaderMap::new();
        apply(&mut extra, &s.response_headers);
        reply.headers = extra.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
        reply.grpc_status = s.grpc_status;
        RequestVerdict { delay: None, local_reply: Some(reply) }
    }
}
