//! The Envoy v3 bootstrap subset Legate implements: loading (`-c` file plus `--config-yaml`
//! merged as protobuf MergeFrom), a typed decoding pass that collects every problem with its
//! YAML path and position, and the cross-reference checks Envoy makes at start-up.

pub mod access_log;
pub mod address;
pub mod bootstrap;
pub mod cluster;
pub mod decode;
pub mod filters;
pub mod http;
pub mod http_filters;
pub mod listener;
pub mod merge;
pub mod mongo_proxy;
pub mod postgres_proxy;
pub mod redis_cluster;
pub mod redis_proxy;
pub mod route;
pub mod source;
pub mod tls;
pub mod typed_config;
pub mod upstream_tls;
mod validate;

use std::path::Path;

pub use bootstrap::Bootstrap;
pub use decode::Issue;

/// What to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub config_path: Option<String>,
    pub config_yaml: Option<String>,
    pub allow_unknown_static_fields: bool,
}

/// A loaded, validated config.
#[derive(Debug)]
pub struct Loaded {
    pub bootstrap: Bootstrap,
    pub warnings: Vec<Issue>,
    /// Unknown or unsupported fields turned into warnings by `--allow-unknown-static-fields`.
    pub unknown_fields: u64,
}

/// Every problem found, in document order.
#[derive(Debug)]
pub struct LoadError {
    pub origin: String,
    pub errors: Vec<Issue>,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.errors.len();
        writeln!(f, "configuration '{}' is invalid ({n} error{}):", self.origin, if n == 1 { "" } else { "s" })?;
        for e in &self.errors {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

/// Loads and validates the bootstrap.
pub fn load(opts: &LoadOptions) -> Result<Loaded, LoadError> {
    let origin = opts.config_path.clone().unwrap_or_default();
    let fail = |errors: Vec<Issue>| LoadError { origin: origin.clone(), errors };
    let one = |path: &str, message: String| Issue { path: path.to_string(), pos: None, message };
    if opts.config_path.as_deref().unwrap_or("").is_empty() && opts.config_yaml.as_deref().unwrap_or("").is_empty() {
        return Err(fail(vec![one("", "At least one of --config-path or --config-yaml should be non-empty".into())]));
    }
    let (mut value, positions) = match opts.config_path.as_deref().filter(|p| !p.is_empty()) {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| fail(vec![one("", format!("cannot read '{path}': {e}"))]))?;
            let ext = Path::new(path).extension().and_then(|e| e.to_str()).unwrap_or("");
            if matches!(ext, "pb" | "pb_text") {
                return Err(fail(vec![one(
                    "",
                    format!("'{path}': binary and text protobuf configs are not supported by Legate; use YAML or JSON"),
                )]));
            }
            source::parse(&text, ext == "json").map_err(|e| fail(vec![parse_issue(path, e)]))?
        }
        None => (serde_json::Value::Object(Default::default()), source::Positions::default()),
    };
    if let Some(yaml) = opts.config_yaml.as_deref().filter(|y| !y.is_empty()) {
        let (over, _) = source::parse(yaml, false).map_err(|e| fail(vec![parse_issue("--config-yaml", e)]))?;
        merge::merge_from(&mut value, over);
    }
    let cx = decode::Cx::new(&positions, opts.allow_unknown_static_fields);
    let bootstrap = match decode::Obj::new(&cx, "", &value, "Bootstrap") {
        Some(mut root) => {
            let b = Bootstrap::decode(&mut root, &value);
            root.finish(&[]);
            Some(b)
        }
        None => None,
    };
    if let Some(b) = &bootstrap {
        validate::cross_check(&cx, b);
    }
    let (errors, warnings) = cx.into_parts();
    match bootstrap {
        Some(bootstrap) if errors.is_empty() => {
            let unknown_fields = warnings.iter().filter(|w| validate::is_unknown_field_warning(w)).count() as u64;
            Ok(Loaded { bootstrap, warnings, unknown_fields })
        }
        _ => Err(fail(errors)),
    }
}

fn parse_issue(origin: &str, e: source::ParseFailure) -> Issue {
    Issue { path: String::new(), pos: e.pos, message: format!("unable to parse {origin}: {}", e.message) }
}

#[cfg(test)]
mod redis_proxy_tests;
#[cfg(test)]
mod tests;
