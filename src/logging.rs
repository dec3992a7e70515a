//! The application log: Envoy's layout (`[time][thread][level][component] message`), one
//! level per component (Envoy's logger names) changeable at run time through `/logging`,
//! written to stderr or `--log-path` (reopened by `/reopen_logs`).
//!
//! Components are tracing targets: `tracing::debug!(target: "upstream", ...)`.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Arc;

use parking_lot::Mutex;
use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt;

/// Envoy's logger names that Legate's code logs under (sorted, as `/logging` lists them).
pub const COMPONENTS: &[&str] = &[
    "admin",
    "aws",
    "client",
    "config",
    "connection",
    "conn_handler",
    "dns",
    "file",
    "filter",
    "grpc",
    "hc",
    "http",
    "http2",
    "init",
    "main",
    "misc",
    "mongo",
    "pool",
    "postgres",
    "redis",
    "router",
    "runtime",
    "stats",
    "tcp",
    "udp",
    "upstream",
];

/// Envoy's level names in the order `/logging` documents them.
pub const LEVEL_NAMES: &[&str] = &["trace", "debug", "info", "warning", "error", "critical", "off"];

fn normalize(level: &str) -> Option<&'static str> {
    match level {
        "warn" => Some("warning"),
        l => LEVEL_NAMES.iter().find(|x| **x == l).copied(),
    }
}

fn directive(level: &str) -> &'static str {
    match level {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warning" => "warn",
        "error" | "critical" => "error",
        _ => "off",
    }
}

/// Where log lines go; reopenable.
#[derive(Clone)]
struct Sink {
    path: Option<String>,
    file: Arc<Mutex<Option<File>>>,
}

impl Sink {
    fn open(path: &str) -> std::io::Result<File> {
        OpenOptions::new().create(true).append(true).open(path)
    }
}

struct SinkWriter(Sink);

impl Write for SinkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut *self.0.file.lock() {
            Some(f) => f.write(buf),
            None => std::io::stderr().write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Sink {
    type Writer = SinkWriter;
    fn make_writer(&'a self) -> SinkWriter {
        SinkWriter(self.clone())
    }
}

struct EnvoyFormat;

impl<S, N> FormatEvent<S, N> for EnvoyFormat
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        let level = match *meta.level() {
            tracing::Level::TRACE => "trace",
            tracing::Level::DEBUG => "debug",
            tracing::Level::INFO => "info",
            tracing::Level::WARN => "warning",
            tracing::Level::ERROR => "error",
        };
        let target = meta.target();
        let component = if COMPONENTS.contains(&target) { target } else { "misc" };
        let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S%.3f");
        write!(w, "[{now}][{}][{level}][{component}] ", thread_id())?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

fn thread_id() -> u64 {
    // A stable small number per thread (Envoy prints the OS thread id).
    thread_local!(static ID: u64 = next_id());
    ID.with(|i| *i)
}

fn next_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

type ReloadHandle = reload::Handle<EnvFilter, tracing_subscriber::Registry>;

/// Run-time control of the log: component levels and reopening the file.
pub struct LogControl {
    levels: Mutex<BTreeMap<&'static str, &'static str>>,
    reload: Option<ReloadHandle>,
    sink: Sink,
}

impl LogControl {
    /// Installs the global subscriber. `base` is `-l`; `components` come from
    /// `--component-log-level` (already checked).
    pub fn init(
        base: &str,
        components: &[(String, String)],
        log_path: Option<&str>,
    ) -> std::io::Result<Arc<LogControl>> {
        let base = normalize(base).unwrap_or("info");
        let mut levels = BTreeMap::new();
        for c in COMPONENTS {
            levels.insert(*c, base);
        }
        for (c, l) in components {
            if let (Some(c), Some(l)) = (COMPONENTS.iter().find(|x| **x == c.as_str()), normalize(l)) {
                levels.insert(*c, l);
            }
        }
        let file = match log_path {
            Some(p) => Some(Sink::open(p)?),
            None => None,
        };
        let sink = Sink { path: log_path.map(str::to_string), file: Arc::new(Mutex::new(file)) };
        let filter = build_filter(&levels);
        let (layer, handle) = reload::Layer::new(filter);
        let fmt = tracing_subscriber::fmt::layer().event_format(EnvoyFormat).with_writer(sink.clone()).with_ansi(false);
        let installed = tracing_subscriber::registry().with(layer).with(fmt).try_init().is_ok();
        Ok(Arc::new(LogControl { levels: Mutex::new(levels), reload: installed.then_some(handle), sink }))
    }

    /// `(component, level)` sorted by component.
    pub fn levels(&self) -> Vec<(&'static str, &'static str)> {
        self.levels.lock().iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// Sets one component (`Err` names what was wrong, in Envoy's words).
    pub fn set(&self, component: &str, level: &str) -> Result<(), String> {
        let l = normalize(level).ok_or_else(|| format!("unknown logger level {level}"))?;
        let mut levels = self.levels.lock();
        let c =
            *COMPONENTS.iter().find(|x| **x == component).ok_or_else(|| format!("unknown logger name {component}"))?;
        levels.insert(c, l);
        self.apply(&levels);
        Ok(())
    }

    /// Sets every component.
    pub fn set_all(&self, level: &str) -> Result<(), String> {
        let l = normalize(level).ok_or_else(|| format!("unknown logger level {level}"))?;
        let mut levels = self.levels.lock();
        for v in levels.values_mut() {
            *v = l;
        }
        self.apply(&levels);
        Ok(())
    }

    fn apply(&self, levels: &BTreeMap<&'static str, &'static str>) {
        if let Some(h) = &self.reload {
            let _ = h.reload(build_filter(levels));
        }
    }

    /// Reopens `--log-path` (after rotation).
    pub fn reopen(&self) -> std::io::Result<()> {
        if let Some(p) = &self.sink.path {
            *self.sink.file.lock() = Some(Sink::open(p)?);
        }
        Ok(())
    }
}

fn build_filter(levels: &BTreeMap<&'static str, &'static str>) -> EnvFilter {
    // Libraries' own targets log under "misc"'s level, capped at warning unless debugging.
    let misc = levels.get("misc").copied().unwrap_or("info");
    let lib = if matches!(misc, "trace" | "debug") { directive(misc) } else { "warn" };
    let mut spec = lib.to_string();
    for (c, l) in levels {
        spec.push_str(&format!(",{c}={}", directive(l)));
    }
    EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new("info"))
}
