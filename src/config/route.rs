//! TEMPORARY stand-in for `envoy.config.route.v3.RouteConfiguration` decoding (the full decoder
//! is being written on the `routes` branch): virtual hosts, prefix/path matches, a cluster
//! action with `timeout` and `retry_policy`.

use std::time::Duration;

use super::decode::Obj;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RouteConfig {
    pub virtual_hosts: Vec<VirtualHostConfig>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VirtualHostConfig {
    pub name: String,
    pub domains: Vec<String>,
    pub routes: Vec<RouteEntryConfig>,
    pub retry_policy: Option<RetryPolicyConfig>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteEntryConfig {
    pub prefix: Option<String>,
    pub path: Option<String>,
    pub cluster: String,
    pub timeout: Option<Duration>,
    pub retry_policy: Option<RetryPolicyConfig>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicyConfig {
    pub retry_on: String,
    pub num_retries: u32,
    pub per_try_timeout: Option<Duration>,
}

impl RouteConfig {
    pub fn clusters(&self) -> impl Iterator<Item = &str> {
        self.virtual_hosts.iter().flat_map(|v| v.routes.iter().map(|r| r.cluster.as_str()))
    }
}

pub fn decode_retry_policy(o: &mut Obj) -> RetryPolicyConfig {
    let out = RetryPolicyConfig {
        retry_on: o.string("retry_on").unwrap_or_default(),
        num_retries: o.uint("num_retries", 0, u64::from(u32::MAX)).map_or(1, |v| v as u32),
        per_try_timeout: o.duration("per_try_timeout"),
    };
    o.finish(&[]);
    out
}

pub fn decode_route_config(o: &mut Obj) -> RouteConfig {
    o.accept(&["name"]);
    let virtual_hosts = o.list_of("virtual_hosts", "VirtualHost", |v| {
        let name = v.req_string("name");
        let domains = v.strings("domains");
        let retry_policy = v.obj("retry_policy", "RetryPolicy").map(|mut r| decode_retry_policy(&mut r));
        let routes = v.list_of("routes", "Route", |r| {
            let (mut prefix, mut path) = (None, None);
            if let Some(mut m) = r.obj("match", "RouteMatch") {
                prefix = m.string("prefix");
                path = m.string("path");
                m.finish(&[]);
            }
            let (mut cluster, mut timeout, mut retry_policy) = (String::new(), Some(Duration::from_secs(15)), None);
            if let Some(mut a) = r.obj("route", "RouteAction") {
                cluster = a.req_string("cluster");
                if let Some(t) = a.duration("timeout") {
                    timeout = Some(t).filter(|t| !t.is_zero());
                }
                retry_policy = a.obj("retry_policy", "RetryPolicy").map(|mut r| decode_retry_policy(&mut r));
                a.finish(&[]);
            }
            r.accept(&["name"]);
            RouteEntryConfig { prefix, path, cluster, timeout, retry_policy }
        });
        VirtualHostConfig { name, domains, routes, retry_policy }
    });
    RouteConfig { virtual_hosts }
}
