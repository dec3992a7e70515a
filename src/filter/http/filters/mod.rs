//! HTTP filters other than the router. TEMPORARY: the interface only (the filters are being
//! written on the `hfilters` branch).

use std::sync::Arc;
use std::time::Duration;

use crate::config::http_filters::HttpFilterConfig;
use crate::filter::http::local_reply::LocalReply;
use crate::stats::Store;

pub trait HttpFilterFactory: Send + Sync {
    fn create(&self) -> Box<dyn StreamFilter>;
}

pub struct RouteInfo<'a> {
    pub cluster: Option<&'a str>,
    pub route_name: Option<&'a str>,
}

#[derive(Default)]
pub struct RequestVerdict {
    pub delay: Option<Duration>,
    pub local_reply: Option<LocalReply>,
}

pub struct StreamEnd<'a> {
    pub response_code: Option<u16>,
    pub upstream_time: Option<Duration>,
    pub local_reply: bool,
    pub cluster: Option<&'a str>,
}

pub trait StreamFilter: Send {
    fn on_request_headers(&mut self, _req: &mut http::request::Parts, _route: &RouteInfo<'_>) -> RequestVerdict {
        RequestVerdict::default()
    }
    fn on_response_headers(&mut self, _resp: &mut http::response::Parts) {}
    fn on_request_data(&mut self, _data: &[u8]) {}
    fn on_response_data(&mut self, _data: &[u8]) {}
    fn on_response_trailers(&mut self, _trailers: &http::HeaderMap) {}
    fn on_complete(&mut self, _end: &StreamEnd<'_>) {}
}

pub fn build(_cfg: &HttpFilterConfig, _store: &Store, _stat_prefix: &str) -> Option<Arc<dyn HttpFilterFactory>> {
    None
}
