//! The typed decoding pass over the merged config `Value`.
//!
//! Each Envoy message has a `decode(&mut Obj) -> Self` function that asks for its fields by
//! name. Every problem is recorded (never returned early) with its YAML path and position, so
//! one run reports all errors at once. When a message is done, `Obj::finish` reports the keys
//! nobody asked for: an Envoy field Legate does not implement is "not supported by Legate";
//! anything else is an unknown field with a "did you mean" from the names the decoder knows.
//! With `--allow-unknown-static-fields` both become warnings, counted in
//! `server.static_unknown_fields`.

use std::cell::RefCell;
use std::time::Duration;

use serde_json::{Map, Value};

use super::source::{Pos, Positions};

/// One problem found in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub path: String,
    pub pos: Option<Pos>,
    pub message: String,
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.path.is_empty() { "<root>" } else { &self.path };
        match self.pos {
            Some(p) => write!(f, "{path} (line {}, column {}): {}", p.line, p.col, self.message),
            None => write!(f, "{path}: {}", self.message),
        }
    }
}

/// Collects errors and warnings for one decoding pass.
pub struct Cx<'a> {
    positions: &'a Positions,
    allow_unknown: bool,
    errors: RefCell<Vec<Issue>>,
    warnings: RefCell<Vec<Issue>>,
}

impl<'a> Cx<'a> {
    pub fn new(positions: &'a Positions, allow_unknown: bool) -> Self {
        Cx { positions, allow_unknown, errors: RefCell::default(), warnings: RefCell::default() }
    }

    /// Records an error at `path`.
    pub fn error(&self, path: &str, message: impl Into<String>) {
        let issue = Issue { path: path.to_string(), pos: self.pos_of(path), message: message.into() };
        self.errors.borrow_mut().push(issue);
    }

    /// Records a warning at `path`.
    pub fn warn(&self, path: &str, message: impl Into<String>) {
        let issue = Issue { path: path.to_string(), pos: self.pos_of(path), message: message.into() };
        self.warnings.borrow_mut().push(issue);
    }

    fn pos_of(&self, path: &str) -> Option<Pos> {
        // Fall back to the nearest ancestor that has a position.
        let mut p = path;
        loop {
            if let Some(pos) = self.positions.get(p) {
                return Some(pos);
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return None,
            }
        }
    }

    /// Errors and warnings, each in document order (those without a position last).
    pub fn into_parts(self) -> (Vec<Issue>, Vec<Issue>) {
        let order = |i: &Issue| i.pos.map_or((usize::MAX, usize::MAX), |p| (p.line, p.col));
        let mut errors = self.errors.into_inner();
        let mut warnings = self.warnings.into_inner();
        errors.sort_by_key(order);
        warnings.sort_by_key(order);
        (errors, warnings)
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.borrow().is_empty()
    }
}

/// A JSON object being decoded as one Envoy message.
pub struct Obj<'c, 'v> {
    pub cx: &'c Cx<'c>,
    pub path: String,
    map: &'v Map<String, Value>,
    type_name: &'static str,
    asked: Vec<&'static str>,
    finished: bool,
}

/// Joins a path and a key.
pub fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl<'c, 'v> Obj<'c, 'v> {
    /// Starts decoding `value` as message `type_name`; records an error if it is not an object.
    pub fn new(cx: &'c Cx<'c>, path: &str, value: &'v Value, type_name: &'static str) -> Option<Self> {
        match value {
            Value::Object(map) => {
                Some(Obj { cx, path: path.to_string(), map, type_name, asked: Vec::new(), finished: false })
            }
            Value::Null => None,
            other => {
                cx.error(path, format!("expected a {type_name} message (a mapping), found {}", kind(other)));
                None
            }
        }
    }

    /// Names the message once its `@type` is known (typed_config starts as `Any`).
    pub fn retype(&mut self, type_name: &'static str) {
        self.type_name = type_name;
    }

    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// The path of field `key`.
    pub fn at(&self, key: &str) -> String {
        child(&self.path, key)
    }

    /// Whether field `key` is present (and not null).
    pub fn has(&mut self, key: &'static str) -> bool {
        self.asked.push(key);
        self.map.get(key).is_some_and(|v| !v.is_null())
    }

    /// The raw value of field `key`, marking it as known.
    pub fn raw(&mut self, key: &'static str) -> Option<&'v Value> {
        self.asked.push(key);
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// Records an error on field `key`.
    pub fn error(&self, key: &str, message: impl Into<String>) {
        self.cx.error(&self.at(key), message);
    }

    pub fn string(&mut self, key: &'static str) -> Option<String> {
        let v = self.raw(key)?;
        match v {
            Value::String(s) => Some(s.clone()),
            other => {
                self.error(key, format!("expected a string, found {}", kind(other)));
                None
            }
        }
    }

    /// A required, non-empty string.
    pub fn req_string(&mut self, key: &'static str) -> String {
        match self.string(key) {
            Some(s) if !s.is_empty() => s,
            Some(_) => {
                self.error(key, "must not be empty");
                String::new()
            }
            None => {
                if !self.map.contains_key(key) {
                    self.missing(key);
                }
                String::new()
            }
        }
    }

    /// Records that required field `key` is missing.
    pub fn missing(&self, key: &str) {
        self.cx.error(&self.path, format!("missing required field '{key}' in {}", self.type_name));
    }

    pub fn bool(&mut self, key: &'static str) -> Option<bool> {
        let v = self.raw(key)?;
        match v {
            Value::Bool(b) => Some(*b),
            // google.protobuf.BoolValue in its object form.
            Value::Object(m) if m.len() == 1 && m.get("value").is_some_and(Value::is_boolean) => m["value"].as_bool(),
            other => {
                self.error(key, format!("expected a boolean, found {}", kind(other)));
                None
            }
        }
    }

    /// An unsigned integer in `[min, max]`; proto JSON also allows numeric strings, and
    /// wrapper types (`UInt32Value`) may use `{value: N}`.
    pub fn uint(&mut self, key: &'static str, min: u64, max: u64) -> Option<u64> {
        let v = self.raw(key)?;
        let n = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            Value::Object(m) if m.len() == 1 => m.get("value").and_then(|v| v.as_u64()),
            _ => None,
        };
        match n {
            Some(n) if n >= min && n <= max => Some(n),
            Some(n) => {
                self.error(key, format!("value {n} is out of range [{min}, {max}]"));
                None
            }
            None => {
                self.error(key, format!("expected an unsigned integer, found {}", kind(v)));
                None
            }
        }
    }

    /// A `google.protobuf.Duration`: `"5s"`, `"0.25s"`, or `{seconds, nanos}`.
    pub fn duration(&mut self, key: &'static str) -> Option<Duration> {
        let v = self.raw(key)?;
        match parse_duration(v) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(key, e);
                None
            }
        }
    }

    /// An enum given by name (or by number, as proto JSON allows).
    pub fn enumeration(&mut self, key: &'static str, variants: &[&'static str]) -> Option<&'static str> {
        let v = self.raw(key)?;
        let found = match v {
            Value::String(s) => variants.iter().find(|x| **x == s.as_str()).copied(),
            Value::Number(n) => n.as_u64().and_then(|i| variants.get(i as usize)).copied(),
            _ => None,
        };
        if found.is_none() {
            let shown = match v {
                Value::String(s) => format!("'{s}'"),
                other => other.to_string(),
            };
            let mut msg = format!("invalid value {shown} for enum; expected one of {}", variants.join(", "));
            if let Value::String(s) = v {
                if let Some(best) = did_you_mean(s, variants.iter().copied()) {
                    msg.push_str(&format!(" (did you mean '{best}'?)"));
                }
            }
            self.error(key, msg);
        }
        found
    }

    /// A nested message.
    pub fn obj(&mut self, key: &'static str, type_name: &'static str) -> Option<Obj<'c, 'v>> {
        let v = self.raw(key)?;
        Obj::new(self.cx, &self.at(key), v, type_name)
    }

    /// A repeated field: `(path, value)` per item. A single mapping where a list is expected is
    /// accepted as a one-item list, as Envoy's JSON→proto conversion does.
    pub fn list(&mut self, key: &'static str) -> Vec<(String, &'v Value)> {
        let base = self.at(key);
        match self.raw(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => items.iter().enumerate().map(|(i, v)| (format!("{base}[{i}]"), v)).collect(),
            Some(v @ Value::Object(_)) => vec![(format!("{base}[0]"), v)],
            Some(other) => {
                self.cx.error(&base, format!("expected a list, found {}", kind(other)));
                Vec::new()
            }
        }
    }

    /// A repeated field of messages, each decoded with `f`.
    pub fn list_of<T>(
        &mut self,
        key: &'static str,
        type_name: &'static str,
        mut f: impl FnMut(&mut Obj<'c, 'v>) -> T,
    ) -> Vec<T> {
        let cx = self.cx;
        self.list(key)
            .into_iter()
            .filter_map(|(path, v)| {
                let mut o = Obj::new(cx, &path, v, type_name)?;
                let t = f(&mut o);
                o.finish(&[]);
                Some(t)
            })
            .collect()
    }

    /// A repeated string field.
    pub fn strings(&mut self, key: &'static str) -> Vec<String> {
        let cx = self.cx;
        self.list(key)
            .into_iter()
            .filter_map(|(path, v)| match v {
                Value::String(s) => Some(s.clone()),
                other => {
                    cx.error(&path, format!("expected a string, found {}", kind(other)));
                    None
                }
            })
            .collect()
    }

    /// Marks Envoy fields Legate accepts without acting on them (each documented at the call).
    pub fn accept(&mut self, keys: &[&'static str]) {
        self.asked.extend_from_slice(keys);
    }

    /// Reports every key nobody asked for. `envoy_only` lists the Envoy fields of this message
    /// that Legate does not implement, so they are named as such rather than as typos.
    /// Only the first call reports (a caller's generic wrapper may call it again).
    pub fn finish(&mut self, envoy_only: &[&'static str]) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        for key in self.map.keys() {
            if self.asked.iter().any(|a| a == key) || key == "@type" {
                continue;
            }
            let path = self.at(key);
            let msg = if envoy_only.contains(&key.as_str()) {
                format!("field '{key}' of {} is not supported by Legate", self.type_name)
            } else {
                let mut m = format!("unknown field '{key}' in {}", self.type_name);
                let candidates = self.asked.iter().chain(envoy_only.iter()).copied();
                if let Some(best) = did_you_mean(key, candidates) {
                    m.push_str(&format!(" (did you mean '{best}'?)"));
                }
                m
            };
            if self.cx.allow_unknown {
                self.cx.warn(&path, msg);
            } else {
                self.cx.error(&path, msg);
            }
        }
    }
}

/// The closest known name to a misspelt one, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(typo: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    known
        .filter(|k| *k != typo)
        .map(|k| (strsim::damerau_levenshtein(typo, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Describes a JSON value's kind for error messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Parses a protobuf JSON Duration (`"1.5s"`) or its object form (`{seconds: 1, nanos: 5}`).
pub fn parse_duration(v: &Value) -> Result<Duration, String> {
    match v {
        Value::String(s) => {
            let num = s.strip_suffix('s').ok_or_else(|| {
                format!("invalid duration '{s}': a duration is a number of seconds with an 's' suffix, e.g. \"5s\" or \"0.25s\"")
            })?;
            let secs: f64 = num
                .parse()
                .ok()
                .filter(|x: &f64| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| format!("invalid duration '{s}': a duration is a non-negative number of seconds with an 's' suffix, e.g. \"5s\" or \"0.25s\""))?;
            if secs > 315_576_000_000.0 {
                return Err(format!("invalid duration '{s}': out of range"));
            }
            Ok(Duration::from_secs_f64(secs))
        }
        Value::Object(m) => {
            let secs = m.get("seconds").map_or(Some(0), |v| v.as_u64().or_else(|| v.as_str()?.parse().ok()));
            let nanos = m.get("nanos").map_or(Some(0), |v| v.as_u64());
            match (secs, nanos) {
                (Some(s), Some(n)) if n < 1_000_000_000 => Ok(Duration::new(s, n as u32)),
                _ => Err("invalid duration: expected {seconds, nanos} with non-negative values".to_string()),
            }
        }
        other => Err(format!("expected a duration such as \"5s\", found {}", kind(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_accept_envoy_forms() {
        assert_eq!(parse_duration(&json!("5s")), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration(&json!("0.25s")), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration(&json!({"seconds": 2, "nanos": 500000000})), Ok(Duration::from_millis(2500)));
        assert!(parse_duration(&json!("5 seconds")).is_err());
        assert!(parse_duration(&json!("-1s")).is_err());
        assert!(parse_duration(&json!(5)).is_err());
    }

    #[test]
    fn unknown_fields_get_did_you_mean_and_unsupported_ones_are_named() {
        let p = Positions::default();
        let cx = Cx::new(&p, false);
        let v = json!({"stat_prefx": "x", "tunneling_config": {}, "cluster": "c"});
        let mut o = Obj::new(&cx, "f", &v, "TcpProxy").expect("object");
        let _ = o.string("stat_prefix");
        let _ = o.string("cluster");
        o.finish(&["tunneling_config"]);
        let (errors, _) = cx.into_parts();
        let msgs: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert!(
            msgs.contains(
                &"f.stat_prefx: unknown field 'stat_prefx' in TcpProxy (did you mean 'stat_prefix'?)".to_string()
            ),
            "{msgs:?}"
        );
        assert!(
            msgs.contains(
                &"f.tunneling_config: field 'tunneling_config' of TcpProxy is not supported by Legate".to_string()
            ),
            "{msgs:?}"
        );
    }

    #[test]
    fn allow_unknown_turns_errors_into_warnings() {
        let p = Positions::default();
        let cx = Cx::new(&p, true);
        let v = json!({"bogus": 1});
        Obj::new(&cx, "", &v, "Bootstrap").expect("object").finish(&[]);
        let (errors, warnings) = cx.into_parts();
        assert!(errors.is_empty());
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn type_errors_and_ranges_are_reported_with_paths() {
        let p = Positions::default();
        let cx = Cx::new(&p, false);
        let v = json!({"port_value": 70000, "name": 3, "lb": "ROUND_ROBN"});
        let mut o = Obj::new(&cx, "x", &v, "M").expect("object");
        assert_eq!(o.uint("port_value", 0, 65535), None);
        assert_eq!(o.string("name"), None);
        assert_eq!(o.enumeration("lb", &["ROUND_ROBIN", "RANDOM"]), None);
        o.finish(&[]);
        let (errors, _) = cx.into_parts();
        assert_eq!(errors.len(), 3);
        assert!(errors[2].message.contains("did you mean 'ROUND_ROBIN'"));
    }
}
