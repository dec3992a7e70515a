//! Builds one config generation (stats, clusters, listeners, admin) and runs it until SIGTERM,
//! SIGINT or `/quitquitquit`; then stops accepting, lets open connections finish for up to
//! `--drain-time-s`, and returns.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::{self, AdminState};
use crate::cli::Options;
use crate::config::filters::NetworkFilterConfig;
use crate::config::listener::{FilterChainConfig, ListenerConfig};
use crate::config::Loaded;
use crate::define_stats;
use crate::filter::network::mongo_proxy::MongoProxy;
use crate::filter::network::tcp_proxy::TcpProxy;
use crate::filter::network::udp_proxy::UdpProxy;
use crate::filter::{FilterChain, Terminal};
use crate::listener::tls_inspector::TlsInspectorStats;
use crate::listener::{self, Bound, ListenerShared};
use crate::logging::LogControl;
use crate::stats::Store;
use crate::upstream::ClusterManager;

define_stats! {
    /// `server.*`.
    pub struct ServerStats {
        gauge uptime,
        gauge concurrency,
        gauge memory_allocated,
        gauge memory_heap_size,
        gauge memory_physical_size,
        gauge live,
        gauge state,
        gauge parent_connections,
        gauge total_connections,
        gauge version,
        gauge days_until_first_cert_expiring,
        gauge seconds_until_first_ocsp_response_expiring,
        gauge hot_restart_epoch,
        gauge hot_restart_generation,
        histogram initialization_time_ms: Milliseconds,
        counter debug_assertion_failures,
        counter envoy_bug_failures,
        counter envoy_notifications,
        counter static_unknown_fields,
        counter dynamic_unknown_fields,
        counter wip_protos,
        gauge stats_recent_lookups,
        counter dropped_stat_flushes,
    }
}

define_stats! {
    /// `server.compilation_settings.*` (rustls with ring: not a FIPS build).
    pub struct CompilationSettingsStats {
        gauge fips_mode,
    }
}

define_stats! {
    /// `listener_manager.*`.
    pub struct ListenerManagerStats {
        counter listener_added,
        counter listener_modified,
        counter listener_removed,
        counter listener_stopped,
        counter listener_create_success,
        counter listener_create_failure,
        counter listener_in_place_updated,
        gauge total_listeners_warming,
        gauge total_listeners_active,
        gauge total_listeners_draining,
        gauge total_filter_chains_draining,
        gauge workers_started,
        gauge workers_pinned,
    }
}

/// Envoy's `server.state` values.
pub const STATE_LIVE: u8 = 0;
pub const STATE_DRAINING: u8 = 1;
pub const STATE_PRE_INITIALIZING: u8 = 2;
pub const STATE_INITIALIZING: u8 = 3;

/// Process-wide state the admin endpoint reads and changes.
pub struct ServerState {
    pub stats: ServerStats,
    /// False after `/healthcheck/fail`.
    pub healthy: AtomicBool,
    pub state: AtomicU8,
    /// Cancelled by `/quitquitquit` (or a signal) to start shutdown.
    pub quit: CancellationToken,
    pub started: Instant,
}

impl ServerState {
    pub fn set_state(&self, s: u8) {
        self.state.store(s, Ordering::Relaxed);
        self.stats.state.set(u64::from(s));
        self.refresh_live();
    }

    pub fn set_healthy(&self, h: bool) {
        self.healthy.store(h, Ordering::Relaxed);
        self.refresh_live();
    }

    fn refresh_live(&self) {
        let live = self.healthy.load(Ordering::Relaxed) && self.state.load(Ordering::Relaxed) == STATE_LIVE;
        self.stats.live.set(u64::from(live));
    }

    /// What `/ready` and `/server_info` print.
    pub fn state_name(&self) -> &'static str {
        if !self.healthy.load(Ordering::Relaxed) {
            return "DRAINING";
        }
        match self.state.load(Ordering::Relaxed) {
            STATE_LIVE => "LIVE",
            STATE_DRAINING => "DRAINING",
            STATE_PRE_INITIALIZING => "PRE_INITIALIZING",
            _ => "INITIALIZING",
        }
    }
}

/// A listener as `/listeners` shows it.
#[derive(Debug, Clone)]
pub struct ListenerInfo {
    pub name: String,
    pub local: SocketAddr,
    pub udp: bool,
}

/// Builds the filter chains of one TCP listener.
/// `ssl_prefix` is the listener's `listener.<addr>.ssl.` stats prefix.
/// `buffer_limit` is the listener's `per_connection_buffer_limit_bytes` (the HTTP router's retry buffer).
fn build_chain(
    cfg: &FilterChainConfig,
    b: &BuildCx,
    ssl_prefix: &str,
    buffer_limit: usize,
) -> Result<FilterChain, String> {
    let (store, cm) = (b.store, b.cm);
    let starttls_server = match &cfg.starttls {
        Some(t) => Some(
            crate::tls::server::TlsServer::new(t, store, ssl_prefix)
                .map_err(|e| format!("{}.transport_socket: {e}", cfg.path))?,
        ),
        None => None,
    };
    let mut starttls = None;
    let mut terminal = None;
    let mut observers: Vec<Arc<dyn crate::filter::ObserverFactory>> = Vec::new();
    for f in &cfg.filters {
        match f {
            NetworkFilterConfig::RedisProxy(r) => {
                terminal = Some(Terminal::RedisProxy(Arc::new(
                    crate::filter::network::redis_proxy::RedisProxy::new(r, store, cm)
                        .map_err(|e| format!("{}: {e}", r.path))?,
                )))
            }
            NetworkFilterConfig::MongoProxy(m) => observers.push(Arc::new(Arc::new(
                MongoProxy::new(m, store, b.runtime).map_err(|e| format!("{}: {e}", m.path))?,
            ))),
            NetworkFilterConfig::PostgresProxy(p) => {
                let proxy = crate::filter::network::postgres_proxy::PostgresProxy::new(p, store);
                if starttls.is_none() {
                    starttls = proxy.starttls(p, starttls_server.as_ref());
                }
                observers.push(Arc::new(proxy))
            }
            NetworkFilterConfig::HttpConnectionManager(h) => {
                terminal = Some(Terminal::Http(Arc::new(
                    crate::filter::http::conn_manager::HttpConnectionManager::new(
                        h,
                        store,
                        cm,
                        buffer_limit,
                        ssl_prefix.trim_end_matches("ssl."),
                        b.runtime,
                    )
                    .map_err(|e| format!("{}: {e}", h.path))?,
                )))
            }
            NetworkFilterConfig::TcpProxy(t) => {
                terminal = Some(Terminal::TcpProxy(Arc::new(
                    TcpProxy::new(t, store, cm).map_err(|e| format!("{}: {e}", t.path))?,
                )))
            }
        }
    }
    let terminal = terminal.ok_or_else(|| format!("{}: no terminal filter", cfg.path))?;
    let tls = match &cfg.tls {
        Some(t) => Some(
            crate::tls::server::TlsServer::new(t, store, ssl_prefix)
                .map_err(|e| format!("{}.transport_socket: {e}", cfg.path))?,
        ),
        None => None,
    };
    Ok(FilterChain { name: cfg.name.clone(), observers, terminal, tls, starttls })
}

/// What building a listener needs from its generation.
struct BuildCx<'a> {
    store: &'a Store,
    cm: &'a ClusterManager,
    concurrency: usize,
    total: crate::stats::Gauge,
    global_limit: Option<u64>,
    runtime: &'a crate::runtime::Runtime,
}

fn build_listener(cfg: &ListenerConfig, local: SocketAddr, b: &BuildCx) -> Result<ListenerShared, String> {
    let (stats, workers) = listener::listener_stats(b.store, cfg, b.concurrency);
    let ssl_prefix = format!("listener.{}.ssl.", cfg.stats_name());
    let mut chains = Vec::new();
    for c in &cfg.filter_chains {
        chains
            .push((c.matcher.clone(), build_chain(c, b, &ssl_prefix, cfg.per_connection_buffer_limit_bytes as usize)?));
    }
    let default_chain = cfg
        .default_filter_chain
        .as_ref()
        .map(|c| build_chain(c, b, &ssl_prefix, cfg.per_connection_buffer_limit_bytes as usize))
        .transpose()?;
    let access_logs =
        crate::access_log_build::build_all(&cfg.access_log).map_err(|e| format!("listener '{}': {e}", cfg.name))?;
    let connection_limit = b.runtime.get_u64(&format!("envoy.resource_limits.listener.{}.connection_limit", cfg.name));
    Ok(ListenerShared {
        name: cfg.name.clone(),
        stats,
        workers,
        buffer_limit: cfg.per_connection_buffer_limit_bytes,
        access_logs,
        chains,
        default_chain,
        local,
        total_connections: b.total.clone(),
        global_limit: b.global_limit,
        connection_limit,
        tls_inspector: cfg.tls_inspector.map(|t| (t, TlsInspectorStats::new(b.store, "tls_inspector."))),
        listener_filters_timeout: cfg.listener_filters_timeout,
        continue_on_listener_filters_timeout: cfg.continue_on_listener_filters_timeout,
    })
}

/// Checks what validation can check without binding: filters and access logs build.
pub async fn check_buildable(loaded: &Loaded) -> Result<(), Vec<String>> {
    let store = Store::new();
    let mut errors = Vec::new();
    // DNS is not resolved in validate mode (Envoy's validation server does not resolve either).
    let cm = match ClusterManager::build_unresolved(&loaded.bootstrap.clusters, &store) {
        Ok(cm) => cm,
        Err(e) => return Err(e),
    };
    let runtime = crate::runtime::Runtime::from_config(&loaded.bootstrap.layered_runtime);
    let bcx = BuildCx {
        store: &store,
        cm: &cm,
        concurrency: 1,
        total: store.gauge("server.total_connections"),
        global_limit: loaded.bootstrap.max_active_downstream_connections,
        runtime: &runtime,
    };
    for l in &loaded.bootstrap.listeners {
        let local = l.address.ip().unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        if l.udp_proxy.is_none() {
            if let Err(e) = build_listener(l, local, &bcx) {
                errors.push(e);
            }
        }
    }
    if let Some(a) = &loaded.bootstrap.admin {
        if let Err(e) = crate::access_log_build::build_all(&a.access_log) {
            errors.push(format!("admin: {e}"));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Runs the server. Returns when shutdown has finished; `Err` only for start-up failures.
pub async fn run(opts: Options, loaded: Loaded, log: Arc<LogControl>, init_only: bool) -> Result<(), Vec<String>> {
    let init_started = Instant::now();
    let store = Store::new();
    let bootstrap = Arc::new(loaded.bootstrap);
    let concurrency = opts.workers();
    let server = Arc::new(ServerState {
        stats: ServerStats::new(&store, "server."),
        healthy: AtomicBool::new(true),
        state: AtomicU8::new(STATE_INITIALIZING),
        quit: CancellationToken::new(),
        started: Instant::now(),
    });
    server.set_state(STATE_INITIALIZING);
    server.stats.concurrency.set(concurrency as u64);
    server.stats.static_unknown_fields.add(loaded.unknown_fields);
    for w in &loaded.warnings {
        tracing::warn!(target: "config", "{w}");
    }
    crate::stats_setup::apply_tag_rules(&store, &bootstrap.stats).map_err(|e| vec![e])?;
    let lm = ListenerManagerStats::new(&store, "listener_manager.");
    let _ = CompilationSettingsStats::new(&store, "server.compilation_settings.");

    let cm = Arc::new(ClusterManager::build(&bootstrap.clusters, &store).await?);

    // Bind every listener before serving any, so a port in use fails the start cleanly.
    let mut errors = Vec::new();
    let mut bound = Vec::new();
    for l in &bootstrap.listeners {
        match listener::bind(l).await {
            Ok((b, local)) => bound.push((l, b, local)),
            Err(e) => {
                lm.listener_create_failure.inc();
                errors.push(e);
            }
        }
    }
    let admin_listener = match bootstrap.admin.as_ref().and_then(|a| a.address.as_ref()) {
        Some(addr) => match admin::bind(addr).await {
            Ok(l) => Some(l),
            Err(e) => {
                errors.push(e);
                None
            }
        },
        None => None,
    };
    if !errors.is_empty() {
        return Err(errors);
    }

    let runtime = crate::runtime::Runtime::from_config(&bootstrap.layered_runtime);
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    let mut infos = Vec::new();
    let mut udp_tasks = Vec::new();
    for (cfg, b, local) in bound {
        lm.listener_added.inc();
        lm.listener_create_success.inc();
        infos.push(ListenerInfo { name: cfg.name.clone(), local, udp: matches!(b, Bound::Udp(_)) });
        match b {
            Bound::Tcp(l) => {
                let bcx = BuildCx {
                    store: &store,
                    cm: &cm,
                    concurrency,
                    total: server.stats.total_connections.clone(),
                    global_limit: bootstrap.max_active_downstream_connections,
                    runtime: &runtime,
                };
                let shared = Arc::new(build_listener(cfg, local, &bcx).map_err(|e| vec![e])?);
                if !init_only {
                    tokio::spawn(listener::run_tcp(l, shared, stop.clone(), tracker.clone()));
                }
            }
            Bound::Udp(sock) => {
                let Some(u) = &cfg.udp_proxy else { continue };
                // UDP listeners have the same `listener.<addr>.` tree plus `udp.*`.
                let _ = listener::listener_stats(&store, cfg, concurrency);
                let _ = listener::UdpListenerStats::new(&store, &format!("listener.{}.udp.", cfg.stats_name()));
                let proxy = Arc::new(
                    UdpProxy::new(u, &store, &cm, local).map_err(|e| vec![format!("listener '{}': {e}", cfg.name)])?,
                );
                if !init_only {
                    udp_tasks.push(tokio::spawn(proxy.run(sock)));
                }
            }
        }
    }
    lm.total_listeners_active.set(infos.len() as u64);
    lm.workers_started.set(1);
    // `server.parent_connections` is Envoy's hot-restart parent count: always 0 here.
    server.stats.parent_connections.set(0);

    let admin_state = Arc::new(AdminState {
        store: store.clone(),
        cm: cm.clone(),
        listeners: infos,
        bootstrap: bootstrap.clone(),
        server: server.clone(),
        log,
        options: opts.clone(),
        listeners_stop: stop.clone(),
    });
    let admin_stop = CancellationToken::new();
    if let Some(l) = admin_listener {
        if let Some(path) = &opts.admin_address_path {
            if let Ok(a) = l.local_addr() {
                let _ = std::fs::write(path, a.to_string());
            }
        }
        if !init_only {
            tokio::spawn(admin::serve(l, admin_state.clone(), admin_stop.clone()));
        }
    }
    server.stats.initialization_time_ms.record(init_started.elapsed().as_millis() as u64);
    server.set_state(STATE_LIVE);
    tracing::info!(target: "main", "starting main dispatch loop");
    if init_only {
        return Ok(());
    }
    let flush = tokio::spawn(flush_loop(store.clone(), server.clone(), bootstrap.stats_flush_interval));
    // Certificate files are checked for rotation every second (no SDS needed).
    let cert_reload = tokio::spawn(crate::tls::server::reload_loop(Duration::from_secs(1)));

    wait_for_shutdown(&server.quit).await;
    tracing::info!(target: "main", "shutting down: draining listeners for up to {}s", opts.drain_time_s);
    server.set_state(STATE_DRAINING);
    stop.cancel();
    for t in &udp_tasks {
        t.abort();
    }
    tracker.close();
    let drained = tokio::time::timeout(Duration::from_secs(u64::from(opts.drain_time_s)), tracker.wait()).await;
    if drained.is_err() {
        tracing::info!(target: "main", "drain time elapsed with {} connections open; closing them", server.stats.total_connections.value());
    }
    flush.abort();
    cert_reload.abort();
    admin_stop.cancel();
    tracing::info!(target: "main", "exiting");
    Ok(())
}

async fn wait_for_shutdown(quit: &CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).ok();
        let mut int = signal(SignalKind::interrupt()).ok();
        let mut hup = signal(SignalKind::hangup()).ok();
        // SIGHUP is logged and ignored, as Envoy does ("caught and eating SIGHUP").
        let eat_hup = async {
            loop {
                match hup.as_mut() {
                    Some(s) => {
                        s.recv().await;
                        tracing::info!(target: "main", "caught and eating SIGHUP. See documentation for how to hot restart.");
                    }
                    None => std::future::pending::<()>().await,
                }
            }
        };
        tokio::select! {
            _ = eat_hup => {}
            _ = quit.cancelled() => {}
            _ = async { match term.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
            _ = async { match int.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
        }
    }
    #[cfg(not(unix))]
    {
        tokio::select! {
            _ = quit.cancelled() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
}

/// Every `stats_flush_interval`: uptime, memory, and the histograms' interval window.
async fn flush_loop(store: Store, server: Arc<ServerState>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        refresh_gauges(&server);
        store.merge_histograms();
    }
}

/// Updates `server.uptime` and the memory gauges.
pub fn refresh_gauges(server: &ServerState) {
    server.stats.uptime.set(server.started.elapsed().as_secs());
    if let Some(days) = crate::tls::server::days_until_first_cert_expiring() {
        server.stats.days_until_first_cert_expiring.set(days.max(0) as u64);
    }
    let mem = crate::memory::read();
    server.stats.memory_allocated.set(mem.allocated);
    server.stats.memory_heap_size.set(mem.heap_size);
    server.stats.memory_physical_size.set(mem.physical_size);
}
