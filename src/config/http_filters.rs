//! TEMPORARY stand-in for the HTTP filter configs (the full decoder is being written on the
//! `hfilters` branch): the router only.

use super::decode::Obj;

pub const ROUTER_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RouterConfig {
    pub suppress_envoy_headers: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HttpFilterConfig {
    Router(RouterConfig),
}

pub fn decode_http_filter(o: &mut Obj) -> Option<HttpFilterConfig> {
    let name = o.req_string("name");
    let mut cfg = RouterConfig::default();
    if let Some(mut tc) = o.obj("typed_config", "Any") {
        let ty = tc.string("@type").unwrap_or_default();
        if ty != ROUTER_TYPE {
            tc.error("@type", format!("HTTP filter '{ty}' is not supported by Legate yet"));
            return None;
        }
        cfg.suppress_envoy_headers = tc.bool("suppress_envoy_headers").unwrap_or(false);
        tc.accept(&["dynamic_stats", "start_child_span"]);
        tc.finish(&[]);
    } else if name != "envoy.filters.http.router" {
        o.error("name", format!("HTTP filter '{name}' is not supported by Legate yet"));
        return None;
    }
    Some(HttpFilterConfig::Router(cfg))
}
