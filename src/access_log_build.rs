//! Builds running access loggers from their config (formats parsed once per generation).

use std::sync::Arc;

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
    let log = AccessLog::open(target, formatter).map_err(|e| format!("access log '{}': cannot open: {e}", c.name))?;
    Ok(Arc::new(log))
}
