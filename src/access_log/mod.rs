//! TEMPORARY stand-in for the access log module (replaced by the real one).
#![allow(dead_code)]
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct ResponseFlags(u32);
impl ResponseFlags {
    pub const UH: ResponseFlags = ResponseFlags(1);
    pub const UF: ResponseFlags = ResponseFlags(2);
    pub const UO: ResponseFlags = ResponseFlags(4);
    pub const NR: ResponseFlags = ResponseFlags(8);
    pub const URX: ResponseFlags = ResponseFlags(16);
    pub const NC: ResponseFlags = ResponseFlags(32);
    pub const DT: ResponseFlags = ResponseFlags(64);
    pub fn set(&mut self, f: ResponseFlags) {
        self.0 |= f.0
    }
    pub fn contains(&self, f: ResponseFlags) -> bool {
        self.0 & f.0 == f.0
    }
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }
}
pub struct StreamInfo {
    pub start_time: SystemTime,
    pub duration: Option<Duration>,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub protocol: Option<&'static str>,
    pub response_code: Option<u16>,
    pub response_code_details: Option<String>,
    pub response_flags: ResponseFlags,
    pub upstream_host: Option<SocketAddr>,
    pub upstream_cluster: Option<String>,
    pub upstream_local_address: Option<SocketAddr>,
    pub upstream_transport_failure_reason: Option<String>,
    pub downstream_remote_address: Option<SocketAddr>,
    pub downstream_local_address: Option<SocketAddr>,
    pub connection_id: u64,
    pub route_name: Option<String>,
    pub requested_server_name: Option<String>,
    pub request_headers: Vec<(String, String)>,
    pub response_headers: Vec<(String, String)>,
    pub response_trailers: Vec<(String, String)>,
}
impl Default for StreamInfo {
    fn default() -> Self {
        StreamInfo {
            start_time: SystemTime::now(),
            duration: None,
            bytes_received: 0,
            bytes_sent: 0,
            protocol: None,
            response_code: None,
            response_code_details: None,
            response_flags: ResponseFlags::default(),
            upstream_host: None,
            upstream_cluster: None,
            upstream_local_address: None,
            upstream_transport_failure_reason: None,
            downstream_remote_address: None,
            downstream_local_address: None,
            connection_id: 0,
            route_name: None,
            requested_server_name: None,
            request_headers: vec![],
            response_headers: vec![],
            response_trailers: vec![],
        }
    }
}
pub struct Formatter;
impl Formatter {
    pub fn parse_text(_f: &str) -> Result<Formatter, String> {
        Ok(Formatter)
    }
    pub fn envoy_default() -> Formatter {
        Formatter
    }
    pub fn parse_json(_m: &serde_json::Value, _o: bool) -> Result<Formatter, String> {
        Ok(Formatter)
    }
    pub fn format(&self, _i: &StreamInfo) -> String {
        String::new()
    }
}
pub enum SinkTarget {
    File(std::path::PathBuf),
    Stdout,
    Stderr,
}
pub struct AccessLog;
impl AccessLog {
    pub fn open(_t: SinkTarget, _f: Formatter) -> std::io::Result<AccessLog> {
        Ok(AccessLog)
    }
    pub fn log(&self, _i: &StreamInfo) {}
    pub fn reopen(&self) -> std::io::Result<()> {
        Ok(())
    }
}
