//! Builds running access loggers from their config (formats parsed once per generation).

use std::sync::{Arc, Mutex, Weak};

use crate::access_log::{AccessLog, Formatter, SinkTarget};
use crate::config::access_log::{AccessLogConfig, AccessLogSink, LogFormat};

/// Opens every logger of a list; the first failure is returned with the logger's name.
pub fn build_all(configs: &[AccessLogConfig]) -> Result<Vec<Arc<AccessLog>>, String> {
    configs.iter().map(build).collect()
}

fn build(c: &AccessLogConfig) -> Result<Arc<AccessLog>, String> {
    let formatter = match &c.format {
        LogFormat::Default => Formatter::envoy_default(),
        LogFormat::Text(t) => Formatter::parse_text(t).map_err(|e| format!("access log '{}': {e}", c.name))?,
        LogFormat::Json { map, omit_empty_values } => {
            Formatter::parse_json(map, *omit_empty_values).map_err(|e| format!("access log '{}': {e}", c.name))?
        }
    };
    let target = match &c.sink {
        AccessLogSink::File(p) => SinkTarget::File(p.into()),
        AccessLogSink::Stdout => SinkTarget::Stdout,
        AccessLogSink::Stderr => SinkTarget::Stderr,
    };
    let log =
        Arc::new(AccessLog::open(target, formatter).map_err(|e| format!("access log '{}': cannot open: {e}", c.name))?);
    if let Ok(mut r) = OPEN_LOGS.lock() {
        r.retain(|w| w.strong_count() > 0);
        r.push(Arc::downgrade(&log));
    }
    Ok(log)
}

/// Every access log opened by this process (like Envoy's AccessLogManager), for `/reopen_logs`.
static OPEN_LOGS: Mutex<Vec<Weak<AccessLog>>> = Mutex::new(Vec::new());

/// Reopens every open access log (after rotation); returns the first error.
pub fn reopen_all() -> std::io::Result<()> {
    let logs: Vec<Arc<AccessLog>> =
        OPEN_LOGS.lock().map(|r| r.iter().filter_map(Weak::upgrade).collect()).unwrap_or_default();
    let mut first = Ok(());
    for l in logs {
        if let Err(e) = l.reopen() {
            if first.is_ok() {
                first = Err(e);
            }
        }
    }
    first
}
