//! `envoy.config.listener.v3.Listener`, its filter chains and `FilterChainMatch`.

use std::time::Duration;

use serde_json::Value;

use super::access_log::{access_logs, AccessLogConfig};
use super::address::{address, CidrRange, Protocol, SocketAddress};
use super::decode::Obj;
use super::filters::{NetworkFilterConfig, UdpProxyConfig};

/// Envoy's default `per_connection_buffer_limit_bytes` (1 MiB).
pub const DEFAULT_BUFFER_LIMIT: u32 = 1024 * 1024;
/// Envoy's default `listener_filters_timeout`.
pub const DEFAULT_LISTENER_FILTERS_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceType {
    Any,
    SameIpOrLoopback,
    External,
}

/// `FilterChainMatch`: every criterion that is set must match. SNI, transport protocol and
/// ALPN are decoded here so the matcher has its seam; they need TLS (`tls_inspector`).
#[derive(Debug, Clone, PartialEq)]
pub struct FilterChainMatch {
    pub destination_port: Option<u16>,
    pub prefix_ranges: Vec<CidrRange>,
    pub server_names: Vec<String>,
    pub transport_protocol: Option<String>,
    pub application_protocols: Vec<String>,
    pub direct_source_prefix_ranges: Vec<CidrRange>,
    pub source_type: SourceType,
    pub source_prefix_ranges: Vec<CidrRange>,
    pub source_ports: Vec<u16>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FilterChainConfig {
    pub name: String,
    pub matcher: FilterChainMatch,
    pub filters: Vec<NetworkFilterConfig>,
    /// Path of the chain in the config, for messages.
    pub path: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListenerConfig {
    pub name: String,
    pub address: SocketAddress,
    pub stat_prefix: Option<String>,
    pub filter_chains: Vec<FilterChainConfig>,
    pub default_filter_chain: Option<FilterChainConfig>,
    pub udp_proxy: Option<UdpProxyConfig>,
    pub per_connection_buffer_limit_bytes: u32,
    pub tcp_backlog_size: u32,
    pub access_log: Vec<AccessLogConfig>,
    pub path: String,
    pub raw: Value,
}

pub const UDP_PROXY_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.udp.udp_proxy.v3.UdpProxyConfig";

impl ListenerConfig {
    pub fn decode(o: &mut Obj, raw: &Value, index: usize) -> ListenerConfig {
        // Envoy names unnamed listeners by a generated UUID; we use a stable index-based name.
        let name = o.string("name").filter(|s| !s.is_empty()).unwrap_or_else(|| format!("listener_{index}"));
        let addr = address(o, "address");
        if addr.is_none() && !o.has("address") {
            o.missing("address");
        }
        let address = addr.unwrap_or(SocketAddress { protocol: Protocol::Tcp, address: "0.0.0.0".into(), port: 0 });
        if !address.address.is_empty() && address.ip().is_none() {
            o.error(
                "address.socket_address.address",
                format!("listener address '{}' is not an IP address", address.address),
            );
        }
        let stat_prefix = o.string("stat_prefix").filter(|s| !s.is_empty());
        let filter_chains = o.list_of("filter_chains", "FilterChain", decode_chain);
        let default_filter_chain = o.obj("default_filter_chain", "FilterChain").map(|mut c| {
            let chain = decode_chain(&mut c);
            c.finish(&[]);
            chain
        });
        let mut udp_proxy = None;
        let cx = o.cx;
        for (path, v) in o.list("listener_filters") {
            let Some(mut lf) = Obj::new(cx, &path, v, "ListenerFilter") else {
                continue;
            };
            let fname = lf.string("name").unwrap_or_default();
            if let Some(mut tc) = lf.obj("typed_config", "Any") {
                let ty = tc.string("@type").unwrap_or_default();
                if ty == UDP_PROXY_TYPE || (ty.is_empty() && fname == "envoy.filters.udp_listener.udp_proxy") {
                    tc.retype("UdpProxyConfig");
                    udp_proxy = Some(UdpProxyConfig::decode(&mut tc));
                    tc.finish(&[]);
                } else {
                    let what = if ty.is_empty() { fname.clone() } else { ty };
                    cx.error(&path, format!("listener filter '{what}' is not supported by Legate yet"));
                }
            } else {
                cx.error(&path, format!("listener filter '{fname}' needs a typed_config with an @type"));
            }
            lf.finish(&["filter_disabled"]);
        }
        if address.protocol == Protocol::Udp {
            if udp_proxy.is_none() {
                o.error(
                    "listener_filters",
                    "a UDP listener needs the envoy.filters.udp_listener.udp_proxy listener filter",
                );
            }
            if !filter_chains.is_empty() {
                o.error("filter_chains", "a UDP listener takes its filter from listener_filters, not filter_chains");
            }
        } else {
            if udp_proxy.is_some() {
                o.error("listener_filters", "udp_proxy needs a listener with socket_address.protocol: UDP");
            }
            if filter_chains.is_empty() && default_filter_chain.is_none() {
                o.error("filter_chains", "a TCP listener needs at least one filter chain or a default_filter_chain");
            }
        }
        let per_connection_buffer_limit_bytes = o
            .uint("per_connection_buffer_limit_bytes", 1, u64::from(u32::MAX))
            .map_or(DEFAULT_BUFFER_LIMIT, |v| v as u32);
        let tcp_backlog_size = o.uint("tcp_backlog_size", 1, 65535).map_or(1024, |v| v as u32);
        let access_log = access_logs(o);
        // Accepted and honoured implicitly: we always bind, and reuse_port does not change
        // behaviour for a single process. traffic_direction is informational.
        o.accept(&[
            "bind_to_port",
            "enable_reuse_port",
            "traffic_direction",
            "listener_filters_timeout",
            "continue_on_listener_filters_timeout",
            "metadata",
            "udp_listener_config",
            "drain_type",
        ]);
        o.finish(&[
            "additional_addresses",
            "filter_chain_matcher",
            "use_original_dst",
            "transparent",
            "freebind",
            "socket_options",
            "connection_balance_config",
            "api_listener",
            "internal_listener",
            "reuse_port",
            "enable_mptcp",
            "ignore_global_conn_limit",
            "max_connections_to_accept_per_socket_event",
        ]);
        ListenerConfig {
            name,
            address,
            stat_prefix,
            filter_chains,
            default_filter_chain,
            udp_proxy,
            per_connection_buffer_limit_bytes,
            tcp_backlog_size,
            access_log,
            path: o.path.clone(),
            raw: raw.clone(),
        }
    }

    /// The `<address>` part of `listener.<address>.` stats: `stat_prefix` or `ip_port` of the
    /// configured address (Envoy keeps `_0` for a port-0 listener; `/listeners` shows the port).
    pub fn stats_name(&self) -> String {
        let bound_port = self.address.port;
        match &self.stat_prefix {
            Some(p) => p.clone(),
            None => {
                let ip = self.address.address.trim_start_matches('[').trim_end_matches(']');
                let host = if ip.contains(':') { format!("[{ip}]") } else { ip.to_string() };
                format!("{host}_{bound_port}")
            }
        }
    }
}

fn decode_chain(o: &mut Obj) -> FilterChainConfig {
    let name = o.string("name").unwrap_or_default();
    let matcher = o
        .obj("filter_chain_match", "FilterChainMatch")
        .map(|mut m| {
            let fcm = decode_match(&mut m);
            m.finish(&[]);
            fcm
        })
        .unwrap_or(FilterChainMatch::any());
    let cx = o.cx;
    let mut filters = Vec::new();
    for (path, v) in o.list("filters") {
        if let Some(mut f) = Obj::new(cx, &path, v, "Filter") {
            if let Some(nf) = NetworkFilterConfig::decode(&mut f) {
                filters.push(nf);
            }
            f.finish(&["config_discovery"]);
        }
    }
    if filters.is_empty() {
        o.error("filters", "a filter chain needs at least one network filter");
    } else {
        // Observers first, exactly one terminal filter, last.
        let terminals = filters.iter().filter(|f| f.is_terminal()).count();
        if terminals == 0 {
            o.error("filters", "the last network filter must be a terminal filter (tcp_proxy)");
        } else if !filters.last().is_some_and(NetworkFilterConfig::is_terminal) || terminals > 1 {
            o.error("filters", "a terminal filter (tcp_proxy) must be the last and only terminal filter in the chain");
        }
    }
    if o.has("transport_socket") {
        o.error("transport_socket", "TLS transport sockets are not supported by Legate yet");
    }
    o.finish(&["use_proxy_proto", "metadata", "transport_socket_connect_timeout", "filter_chain_match_predicate"]);
    FilterChainConfig { name, matcher, filters, path: o.path.clone() }
}

fn cidrs(o: &mut Obj, key: &'static str) -> Vec<CidrRange> {
    o.list_of(key, "CidrRange", CidrRange::decode).into_iter().flatten().collect()
}

fn decode_match(m: &mut Obj) -> FilterChainMatch {
    let destination_port = m.uint("destination_port", 1, 65535).map(|p| p as u16);
    let prefix_ranges = cidrs(m, "prefix_ranges");
    let server_names = m.strings("server_names");
    let transport_protocol = m.string("transport_protocol").filter(|s| !s.is_empty());
    let application_protocols = m.strings("application_protocols");
    let direct_source_prefix_ranges = cidrs(m, "direct_source_prefix_ranges");
    let source_type = match m.enumeration("source_type", &["ANY", "SAME_IP_OR_LOOPBACK", "EXTERNAL"]) {
        Some("SAME_IP_OR_LOOPBACK") => SourceType::SameIpOrLoopback,
        Some("EXTERNAL") => SourceType::External,
        _ => SourceType::Any,
    };
    let source_prefix_ranges = cidrs(m, "source_prefix_ranges");
    let cx = m.cx;
    let source_ports = m
        .list("source_ports")
        .into_iter()
        .filter_map(|(p, v)| match v.as_u64() {
            Some(n @ 1..=65535) => Some(n as u16),
            _ => {
                cx.error(&p, "expected a port number");
                None
            }
        })
        .collect();
    if !server_names.is_empty() || transport_protocol.is_some() || !application_protocols.is_empty() {
        m.cx.error(&m.path, "matching on server_names, transport_protocol or application_protocols needs TLS, which is not supported by Legate yet");
    }
    FilterChainMatch {
        destination_port,
        prefix_ranges,
        server_names,
        transport_protocol,
        application_protocols,
        direct_source_prefix_ranges,
        source_type,
        source_prefix_ranges,
        source_ports,
    }
}

impl FilterChainMatch {
    pub fn any() -> Self {
        FilterChainMatch {
            destination_port: None,
            prefix_ranges: Vec::new(),
            server_names: Vec::new(),
            transport_protocol: None,
            application_protocols: Vec::new(),
            direct_source_prefix_ranges: Vec::new(),
            source_type: SourceType::Any,
            source_prefix_ranges: Vec::new(),
            source_ports: Vec::new(),
        }
    }
}
