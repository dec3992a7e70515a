//! TEMPORARY stand-in for the compiled route table (the full one is being written on the
//! `routes` branch, with this interface): exact and `*` domains, prefix/path matches, a
//! cluster action.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::config::route::{RetryPolicyConfig, RouteConfig};

pub struct RequestView<'a> {
    pub authority: &'a str,
    pub path: &'a str,
    pub method: &'a http::Method,
    pub headers: &'a HeaderMap,
}

pub enum Selection<'a> {
    NoVirtualHost,
    NoRoute(&'a VirtualHost),
    Route(&'a VirtualHost, &'a Route),
}

#[derive(Default)]
pub struct HeaderMutations {}

pub struct HeaderVars<'a> {
    pub downstream_remote: SocketAddr,
    pub downstream_local: SocketAddr,
    pub protocol: &'a str,
    pub upstream_remote: Option<SocketAddr>,
}

impl HeaderMutations {
    pub fn is_empty(&self) -> bool {
        true
    }
    pub fn apply(&self, _headers: &mut HeaderMap, _vars: &HeaderVars<'_>) {}
}

pub struct VirtualHost {
    pub name: String,
    pub retry_policy: Option<Arc<RetryPolicy>>,
    pub include_request_attempt_count: bool,
    pub include_attempt_count_in_response: bool,
    pub request_headers: HeaderMutations,
    pub response_headers: HeaderMutations,
    domains: Vec<String>,
    routes: Vec<(Option<String>, Option<String>, Route)>,
}

pub struct Route {
    pub name: Option<String>,
    pub action: RouteAction,
    pub request_headers: HeaderMutations,
    pub response_headers: HeaderMutations,
}

pub enum RouteAction {
    Forward(Box<ForwardAction>),
    Redirect(Box<RedirectAction>),
    DirectResponse { status: u16, body: bytes::Bytes },
}

pub struct WeightedCluster {
    pub name: String,
    pub request_headers: HeaderMutations,
    pub response_headers: HeaderMutations,
}

pub struct WeightedClusters {
    clusters: Vec<(WeightedCluster, u64)>,
    total: u64,
}

impl WeightedClusters {
    pub fn pick(&self, r: u64) -> &WeightedCluster {
        let mut x = r % self.total.max(1);
        for (c, w) in &self.clusters {
            if x < *w {
                return c;
            }
            x -= w;
        }
        &self.clusters[0].0
    }
}

pub enum ClusterChoice {
    Name(String),
    Header(HeaderName),
    Weighted(WeightedClusters),
}

pub struct MirrorPolicy {
    pub cluster: String,
    pub per_million: u32,
}

pub enum HostRewrite {
    None,
    Literal(HeaderValue),
    Auto,
    Header(HeaderName),
}

pub struct ForwardAction {
    pub cluster: ClusterChoice,
    pub cluster_not_found_response_code: u16,
    pub timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub retry_policy: Option<Arc<RetryPolicy>>,
    pub mirrors: Vec<MirrorPolicy>,
    pub host_rewrite: HostRewrite,
    pub upgrade_configs: Vec<(String, bool)>,
    pub max_stream_duration: Option<Duration>,
    pub grpc_timeout_header_max: Option<Duration>,
    pub grpc_timeout_header_offset: Option<Duration>,
}

impl ForwardAction {
    pub fn rewrite_path(&self, _route: &Route, _path: &str) -> Option<String> {
        None
    }
}

pub struct RedirectAction {}

impl RedirectAction {
    pub fn status(&self) -> u16 {
        301
    }
    pub fn location(&self, _route: &Route, scheme: &str, authority: &str, path: &str) -> String {
        format!("{scheme}://{authority}{path}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetryOn(u32);

impl RetryOn {
    pub const FIVE_XX: RetryOn = RetryOn(1);
    pub const GATEWAY_ERROR: RetryOn = RetryOn(1 << 1);
    pub const RESET: RetryOn = RetryOn(1 << 2);
    pub const CONNECT_FAILURE: RetryOn = RetryOn(1 << 3);
    pub const RETRIABLE_4XX: RetryOn = RetryOn(1 << 4);
    pub const REFUSED_STREAM: RetryOn = RetryOn(1 << 5);
    pub const RETRIABLE_STATUS_CODES: RetryOn = RetryOn(1 << 6);
    pub const RETRIABLE_HEADERS: RetryOn = RetryOn(1 << 7);
    pub const ENVOY_RATELIMITED: RetryOn = RetryOn(1 << 8);
    pub const GRPC_CANCELLED: RetryOn = RetryOn(1 << 9);
    pub const GRPC_DEADLINE_EXCEEDED: RetryOn = RetryOn(1 << 10);
    pub const GRPC_INTERNAL: RetryOn = RetryOn(1 << 11);
    pub const GRPC_RESOURCE_EXHAUSTED: RetryOn = RetryOn(1 << 12);
    pub const GRPC_UNAVAILABLE: RetryOn = RetryOn(1 << 13);

    pub fn parse(list: &str) -> RetryOn {
        let mut r = 0;
        for p in list.split(',').map(str::trim) {
            r |= match p {
                "5xx" => Self::FIVE_XX.0,
                "gateway-error" => Self::GATEWAY_ERROR.0,
                "reset" => Self::RESET.0,
                "connect-failure" => Self::CONNECT_FAILURE.0,
                "retriable-4xx" => Self::RETRIABLE_4XX.0,
                "refused-stream" => Self::REFUSED_STREAM.0,
                "retriable-status-codes" => Self::RETRIABLE_STATUS_CODES.0,
                "retriable-headers" => Self::RETRIABLE_HEADERS.0,
                "envoy-ratelimited" => Self::ENVOY_RATELIMITED.0,
                "cancelled" => Self::GRPC_CANCELLED.0,
                "deadline-exceeded" => Self::GRPC_DEADLINE_EXCEEDED.0,
                "internal" => Self::GRPC_INTERNAL.0,
                "resource-exhausted" => Self::GRPC_RESOURCE_EXHAUSTED.0,
                "unavailable" => Self::GRPC_UNAVAILABLE.0,
                _ => 0,
            };
        }
        RetryOn(r)
    }
    pub fn contains(self, o: RetryOn) -> bool {
        self.0 & o.0 != 0
    }
    pub fn union(self, o: RetryOn) -> RetryOn {
        RetryOn(self.0 | o.0)
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

pub struct RetryPolicy {
    pub retry_on: RetryOn,
    pub num_retries: u32,
    pub per_try_timeout: Option<Duration>,
    pub base_interval: Duration,
    pub max_interval: Duration,
    pub retriable_status_codes: Vec<u16>,
}

fn retry(c: &RetryPolicyConfig) -> Arc<RetryPolicy> {
    Arc::new(RetryPolicy {
        retry_on: RetryOn::parse(&c.retry_on),
        num_retries: c.num_retries,
        per_try_timeout: c.per_try_timeout,
        base_interval: Duration::from_millis(25),
        max_interval: Duration::from_millis(250),
        retriable_status_codes: Vec::new(),
    })
}

pub struct RouteTable {
    vhosts: Vec<VirtualHost>,
    none: HeaderMutations,
}

impl RouteTable {
    pub fn build(cfg: &RouteConfig) -> RouteTable {
        let vhosts = cfg
            .virtual_hosts
            .iter()
            .map(|v| VirtualHost {
                name: v.name.clone(),
                retry_policy: v.retry_policy.as_ref().map(retry),
                include_request_attempt_count: false,
                include_attempt_count_in_response: false,
                request_headers: HeaderMutations::default(),
                response_headers: HeaderMutations::default(),
                domains: v.domains.clone(),
                routes: v
                    .routes
                    .iter()
                    .map(|r| {
                        let fwd = ForwardAction {
                            cluster: ClusterChoice::Name(r.cluster.clone()),
                            cluster_not_found_response_code: 503,
                            timeout: r.timeout,
                            idle_timeout: None,
                            retry_policy: r.retry_policy.as_ref().map(retry),
                            mirrors: Vec::new(),
                            host_rewrite: HostRewrite::None,
                            upgrade_configs: Vec::new(),
                            max_stream_duration: None,
                            grpc_timeout_header_max: None,
                            grpc_timeout_header_offset: None,
                        };
                        let route = Route {
                            name: None,
                            action: RouteAction::Forward(Box::new(fwd)),
                            request_headers: HeaderMutations::default(),
                            response_headers: HeaderMutations::default(),
                        };
                        (r.prefix.clone(), r.path.clone(), route)
                    })
                    .collect(),
            })
            .collect();
        RouteTable { vhosts, none: HeaderMutations::default() }
    }

    pub fn select(&self, req: &RequestView<'_>) -> Selection<'_> {
        let host = req.authority;
        let vh = self
            .vhosts
            .iter()
            .find(|v| v.domains.iter().any(|d| d == host))
            .or_else(|| self.vhosts.iter().find(|v| v.domains.iter().any(|d| d == "*")));
        let Some(vh) = vh else { return Selection::NoVirtualHost };
        let path = req.path.split('?').next().unwrap_or("");
        for (prefix, exact, route) in &vh.routes {
            let ok = match (prefix, exact) {
                (Some(p), _) => path.starts_with(p.as_str()),
                (_, Some(e)) => path == e,
                _ => false,
            };
            if ok {
                return Selection::Route(vh, route);
            }
        }
        Selection::NoRoute(vh)
    }

    pub fn request_headers(&self) -> &HeaderMutations {
        &self.none
    }
    pub fn response_headers(&self) -> &HeaderMutations {
        &self.none
    }
}
