//! `envoy.config.accesslog.v3.AccessLog` with the file, stdout and stderr loggers.

use serde_json::Value;

use super::decode::Obj;

pub const FILE_ACCESS_LOG: &str = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog";
pub const STDOUT_ACCESS_LOG: &str = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog";
pub const STDERR_ACCESS_LOG: &str = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog";

/// Where the lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogSink {
    File(String),
    Stdout,
    Stderr,
}

/// How lines are formatted.
#[derive(Debug, Clone, PartialEq)]
pub enum LogFormat {
    /// Envoy's default format.
    Default,
    Text(String),
    Json {
        map: Value,
        omit_empty_values: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct AccessLogConfig {
    pub name: String,
    pub sink: AccessLogSink,
    pub format: LogFormat,
}

impl AccessLogConfig {
    pub fn decode(o: &mut Obj) -> Option<AccessLogConfig> {
        let name = o.string("name").unwrap_or_default();
        let mut tc = o.obj("typed_config", "AccessLog.typed_config")?;
        let ty = tc.string("@type").unwrap_or_default();
        let sink = match ty.as_str() {
            FILE_ACCESS_LOG => AccessLogSink::File(tc.req_string("path")),
            STDOUT_ACCESS_LOG => AccessLogSink::Stdout,
            STDERR_ACCESS_LOG => AccessLogSink::Stderr,
            other => {
                let known = [FILE_ACCESS_LOG, STDOUT_ACCESS_LOG, STDERR_ACCESS_LOG];
                let mut msg =
                    format!("access logger type '{other}' is not supported by Legate; supported: {}", known.join(", "));
                if let Some(b) = super::decode::did_you_mean(other, known.iter().copied()) {
                    msg = format!("unknown access logger type '{other}' (did you mean '{b}'?)");
                }
                tc.error("@type", msg);
                return None;
            }
        };
        let mut format = LogFormat::Default;
        // Deprecated string forms that Envoy still accepts.
        if let Some(f) = tc.string("format") {
            format = LogFormat::Text(f);
        }
        if let Some(j) = tc.raw("json_format") {
            format = LogFormat::Json { map: j.clone(), omit_empty_values: false };
        }
        if let Some(mut lf) = tc.obj("log_format", "SubstitutionFormatString") {
            let omit = lf.bool("omit_empty_values").unwrap_or(false);
            if let Some(t) = lf.string("text_format") {
                format = LogFormat::Text(t);
            }
            if let Some(mut src) = lf.obj("text_format_source", "DataSource") {
                if let Some(s) = src.string("inline_string") {
                    format = LogFormat::Text(s);
                }
                src.finish(&["filename", "inline_bytes", "environment_variable"]);
            }
            if let Some(j) = lf.raw("json_format") {
                format = LogFormat::Json { map: j.clone(), omit_empty_values: omit };
            }
            lf.accept(&["content_type"]);
            lf.finish(&["typed_json_format", "formatters", "json_format_options"]);
        }
        tc.finish(&["typed_json_format"]);
        o.finish_filter();
        Some(AccessLogConfig { name, sink, format })
    }
}

impl Obj<'_, '_> {
    /// Access-log `filter`s are not implemented yet: say so instead of logging everything.
    fn finish_filter(&mut self) {
        if self.has("filter") {
            self.error(
                "filter",
                "access log filters are not supported by Legate yet; remove 'filter' to log every connection",
            );
        }
    }
}

/// Decodes the `access_log` list of a message.
pub fn access_logs(o: &mut Obj) -> Vec<AccessLogConfig> {
    o.list_of("access_log", "AccessLog", AccessLogConfig::decode).into_iter().flatten().collect()
}
