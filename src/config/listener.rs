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
    /// TLS termination (`transport_socket` with a `DownstreamTlsContext`).
    pub tls: Option<super::tls::DownstreamTlsConfig>,
    /// TLS after an in-band switch (`envoy.transport_sockets.starttls`): postgres_proxy's
    /// `terminate_ssl` / `downstream_ssl`.
    pub starttls: Option<super::tls::DownstreamTlsConfig>,
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
    pub tls_inspector: Option<TlsInspectorConfig>,
    /// How long listener filters (the TLS inspector) may wait for bytes (15 s; 0 = no limit).
    pub listener_filters_timeout: Option<Duration>,
    /// On that timeout: go on with what is known (true) or close the connection (false).
    pub continue_on_listener_filters_timeout: bool,
    pub per_connection_buffer_limit_bytes: u32,
    pub tcp_backlog_size: u32,
    pub access_log: Vec<AccessLogConfig>,
    pub path: String,
    pub raw: Value,
}

pub const UDP_PROXY_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.udp.udp_proxy.v3.UdpProxyConfig";
pub const TLS_INSPECTOR_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector";
pub const TLS_INSPECTOR_NAME: &str = "envoy.filters.listener.tls_inspector";
/// Envoy's largest ClientHello the inspector reads (`TLS_MAX_CLIENT_HELLO`, 64 KiB).
pub const DEFAULT_MAX_CLIENT_HELLO: u32 = 64 * 1024;

/// `envoy.filters.listener.tls_inspector`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsInspectorConfig {
    pub max_client_hello_size: u32,
}

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
        let mut tls_inspector = None;
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
                } else if ty == TLS_INSPECTOR_TYPE || (ty.is_empty() && fname == TLS_INSPECTOR_NAME) {
                    tc.retype("TlsInspector");
                    let max = tc.uint("max_client_hello_size", 1, u64::from(DEFAULT_MAX_CLIENT_HELLO));
                    tc.accept(&["initial_read_buffer_size"]);
                    tc.finish(&[
                        "enable_ja3_fingerprinting",
                        "enable_ja4_fingerprinting",
                        "close_connection_on_client_hello_parsing_errors",
                    ]);
                    tls_inspector = Some(TlsInspectorConfig {
                        max_client_hello_size: max.map_or(DEFAULT_MAX_CLIENT_HELLO, |v| v as u32),
                    });
                } else {
                    let what = if ty.is_empty() { fname.clone() } else { ty };
                    cx.error(&path, format!("listener filter '{what}' is not supported by Legate yet"));
                }
            } else if fname == TLS_INSPECTOR_NAME {
                // Envoy accepts the inspector by name with an empty typed_config.
                tls_inspector = Some(TlsInspectorConfig { max_client_hello_size: DEFAULT_MAX_CLIENT_HELLO });
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
        let listener_filters_timeout = match o.duration("listener_filters_timeout") {
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
            None => Some(DEFAULT_LISTENER_FILTERS_TIMEOUT),
        };
        let continue_on_listener_filters_timeout = o.bool("continue_on_listener_filters_timeout").unwrap_or(false);
        let tls_matching = filter_chains.iter().any(|c| {
            !c.matcher.server_names.is_empty()
                || !c.matcher.application_protocols.is_empty()
                || c.matcher.transport_protocol.as_deref() == Some("tls")
        });
        if tls_matching && tls_inspector.is_none() {
            // Envoy accepts this too; such chains can never match without the inspector.
            o.cx.warn(&o.at("filter_chains"), format!("filter chains match on server_names, application_protocols or transport_protocol 'tls', which only the {TLS_INSPECTOR_NAME} listener filter can detect; add it to listener_filters"));
        }
        let access_log = access_logs(o);
        // Accepted and honoured implicitly: we always bind, and reuse_port does not change
        // behaviour for a single process. traffic_direction is informational.
        o.accept(&[
            "bind_to_port",
            "enable_reuse_port",
            "traffic_direction",
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
            tls_inspector,
            listener_filters_timeout,
            continue_on_listener_filters_timeout,
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
            o.error(
                "filters",
                "the last network filter must be a terminal filter (tcp_proxy, http_connection_manager, redis_proxy)",
            );
        } else if !filters.last().is_some_and(NetworkFilterConfig::is_terminal) || terminals > 1 {
            o.error("filters", "a terminal filter (tcp_proxy, http_connection_manager, redis_proxy) must be the last and only terminal filter in the chain");
        }
    }
    let socket = o.obj("transport_socket", "TransportSocket").and_then(|mut ts| {
        let t = super::tls::DownstreamTlsConfig::decode_transport_socket(&mut ts);
        ts.finish(&[]);
        t
    });
    let (tls, starttls) = match socket {
        Some(super::tls::ChainTls::Tls(t)) => (Some(t), None),
        Some(super::tls::ChainTls::StartTls(t)) => (None, Some(t)),
        None => (None, None),
    };
    check_starttls(o, &filters, starttls.is_some());
    if tls.is_some()
        && filters
            .iter()
            .any(|f| !matches!(f, NetworkFilterConfig::TcpProxy(_) | NetworkFilterConfig::HttpConnectionManager(_)))
    {
        o.error(
            "transport_socket",
            "TLS termination is supported in front of tcp_proxy and http_connection_manager only so far",
        );
    }
    o.finish(&["use_proxy_proto", "metadata", "transport_socket_connect_timeout", "filter_chain_match_predicate"]);
    FilterChainConfig { name, matcher, filters, tls, starttls, path: o.path.clone() }
}

/// The starttls socket and postgres_proxy's termination go together: a filter that must answer
/// SSLRequest needs the socket's certificate (Envoy closes such connections at run time; a
/// config error says it up front), and only postgres_proxy can drive the switch.
fn check_starttls(o: &Obj, filters: &[NetworkFilterConfig], has_starttls: bool) {
    let mut terminating = false;
    for (i, f) in filters.iter().enumerate() {
        if let NetworkFilterConfig::PostgresProxy(p) = f {
            terminating |= p.terminates_ssl();
            if p.terminates_ssl() && !has_starttls {
                let field = if p.terminate_ssl { "terminate_ssl" } else { "downstream_ssl" };
                o.error(
                    &format!("filters[{i}].typed_config.{field}"),
                    format!(
                        "{field} needs the filter chain's transport_socket to be {} ({}) with a tls_socket_config",
                        super::tls::STARTTLS_SOCKET_NAME,
                        super::tls::STARTTLS_TYPE
                    ),
                );
            }
        }
    }
    let tcp_proxy_last = matches!(filters.last(), Some(NetworkFilterConfig::TcpProxy(_)));
    for (i, f) in filters.iter().enumerate() {
        if let NetworkFilterConfig::PostgresProxy(p) = f {
            if p.upstream_ssl != super::postgres_proxy::SslMode::Disable && !tcp_proxy_last {
                o.error(
                    &format!("filters[{i}].typed_config.upstream_ssl"),
                    "upstream_ssl needs tcp_proxy as the chain's terminal filter (it switches tcp_proxy's upstream connection to TLS)",
                );
            }
        }
    }
    if has_starttls && !(terminating && tcp_proxy_last) {
        o.error(
            "transport_socket",
            "the starttls transport socket is supported for postgres_proxy (with terminate_ssl or downstream_ssl) in front of tcp_proxy only",
        );
    }
}

fn cidrs(o: &mut Obj, key: &'static str) -> Vec<CidrRange> {
    o.list_of(key, "CidrRange", CidrRange::decode).into_iter().flatten().collect()
}

fn decode_match(m: &mut Obj) -> FilterChainMatch {
    let destination_port = m.uint("destination_port", 1, 65535).map(|p| p as u16);
    let prefix_ranges = cidrs(m, "prefix_ranges");
    let server_names: Vec<String> = m.strings("server_names").into_iter().map(|s| s.to_ascii_lowercase()).collect();
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
    for (i, n) in server_names.iter().enumerate() {
        // Envoy: exact names, or a wildcard `*.` prefix (`*.example.com`); no other `*`.
        let rest = n.strip_prefix("*.").unwrap_or(n);
        if n.is_empty() || rest.contains('*') {
            m.cx.error(
                &format!("{}[{i}]", m.at("server_names")),
                format!("invalid server name '{n}': use an exact name or a '*.' wildcard prefix"),
            );
        }
    }
    if let Some(t) = &transport_protocol {
        if t != "tls" && t != "raw_buffer" {
            m.error(
                "transport_protocol",
                format!("transport_protocol '{t}' is not one Legate detects ('tls' or 'raw_buffer')"),
            );
        }
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
