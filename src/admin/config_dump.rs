//! `/config_dump`: the loaded configuration in Envoy's `ConfigDump` shape, pretty-printed.
//!
//! `configs[]` holds, in Envoy's order, a `BootstrapConfigDump` (the merged bootstrap as
//! written, with the node as the server uses it), a `ClustersConfigDump` (`static_clusters`
//! sorted by name), an `EndpointsConfigDump` with `?include_eds` (built from the live hosts),
//! a `ListenersConfigDump` (`static_listeners` in config order) and an empty
//! `SecretsConfigDump`. Legate has no dynamic configuration yet, so the `dynamic_*` fields are
//! always empty. Each resource is shown as written in the config (Envoy re-serialises its
//! protobuf, so Envoy orders fields by field number and spells out some defaults).
//!
//! Parameters, with Envoy's error texts:
//! - `resource=<repeated field>` lists that field's elements, each packed with its own `@type`;
//!   a field that is not repeated is a 400, one not in the dump a 404.
//! - `mask=a.b,c` keeps only those field paths (of each config, or of each element with
//!   `resource`); `@type` always stays. Configs the mask does not fit are left out, and a mask
//!   that fits none is a 400.
//! - `name_regex=<regex>` keeps only resources whose name matches (the whole name).
//! - `include_eds` adds the endpoints dump.
//!
//! Secrets never leave the process: every string under a `private_key`, `password` or
//! `pkcs12` field is replaced by `[redacted]`, as Envoy does for its sensitive fields.

use regex::Regex;
use serde_json::{json, Map, Value};

use super::json::{locality, pretty, socket_address, start_time, timestamp};
use super::{AdminRequest, AdminState, Reply, TEXT_BARE};
use crate::upstream::ClusterManager;

const BOOTSTRAP_DUMP: &str = "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump";
const CLUSTERS_DUMP: &str = "type.googleapis.com/envoy.admin.v3.ClustersConfigDump";
const ENDPOINTS_DUMP: &str = "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump";
const LISTENERS_DUMP: &str = "type.googleapis.com/envoy.admin.v3.ListenersConfigDump";
const SECRETS_DUMP: &str = "type.googleapis.com/envoy.admin.v3.SecretsConfigDump";
const CLUSTER_TYPE: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
const LISTENER_TYPE: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
const CLA_TYPE: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

/// Fields whose contents are secret (Envoy's `sensitive` annotation on the TLS messages).
const SENSITIVE_FIELDS: &[&str] = &["private_key", "password", "pkcs12"];

/// One element type of a repeated field: its `@type` and its field names (for masks).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ElemType {
    type_url: &'static str,
    fields: &'static [&'static str],
}

const STATIC_CLUSTER: ElemType = ElemType {
    type_url: "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.StaticCluster",
    fields: &["cluster", "last_updated"],
};
const DYNAMIC_CLUSTER: ElemType = ElemType {
    type_url: "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster",
    fields: &["version_info", "cluster", "last_updated", "error_state", "client_status"],
};
const STATIC_ENDPOINT: ElemType = ElemType {
    type_url: "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump.StaticEndpointConfig",
    fields: &["endpoint_config", "last_updated"],
};
const DYNAMIC_ENDPOINT: ElemType = ElemType {
    type_url: "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump.DynamicEndpointConfig",
    fields: &["version_info", "endpoint_config", "last_updated", "error_state", "client_status"],
};
const STATIC_LISTENER: ElemType = ElemType {
    type_url: "type.googleapis.com/envoy.admin.v3.ListenersConfigDump.StaticListener",
    fields: &["listener", "last_updated"],
};
const DYNAMIC_LISTENER: ElemType = ElemType {
    type_url: "type.googleapis.com/envoy.admin.v3.ListenersConfigDump.DynamicListener",
    fields: &["name", "active_state", "warming_state", "draining_state", "error_state", "client_status"],
};
const STATIC_SECRET: ElemType = ElemType {
    type_url: "type.googleapis.com/envoy.admin.v3.SecretsConfigDump.StaticSecret",
    fields: &["name", "last_updated", "secret"],
};
const DYNAMIC_SECRET: ElemType = ElemType {
    type_url: "type.googleapis.com/envoy.admin.v3.SecretsConfigDump.DynamicSecret",
    fields: &["name", "version_info", "last_updated", "secret", "error_state", "client_status"],
};

/// A named element of a repeated field (the name is what `name_regex` matches).
#[derive(Debug, Clone)]
pub(crate) struct Item {
    name: String,
    value: Value,
}

#[derive(Debug, Clone)]
pub(crate) enum Field {
    /// A singular field; `Null` is unset.
    Single(Value),
    Repeated(ElemType, Vec<Item>),
}

/// One entry of `configs[]`.
#[derive(Debug, Clone)]
pub(crate) struct Section {
    type_url: &'static str,
    fields: Vec<(&'static str, Field)>,
}

impl Section {
    fn field_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.fields.iter().map(|(n, _)| *n)
    }

    /// The section as protobuf JSON: `@type`, then every set field.
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("@type".into(), self.type_url.into());
        for (name, f) in &self.fields {
            match f {
                Field::Single(Value::Null) => {}
                Field::Single(v) => {
                    m.insert((*name).into(), v.clone());
                }
                Field::Repeated(_, items) if items.is_empty() => {}
                Field::Repeated(_, items) => {
                    m.insert((*name).into(), Value::Array(items.iter().map(|i| i.value.clone()).collect()));
                }
            }
        }
        Value::Object(m)
    }
}

/// `{"@type": type_url, ...raw}` with `@type` first.
fn packed(type_url: &str, raw: &Value) -> Value {
    let mut m = Map::new();
    m.insert("@type".into(), type_url.into());
    if let Value::Object(o) = raw {
        for (k, v) in o {
            if k != "@type" {
                m.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(m)
}

/// Replaces every string under a sensitive field with `[redacted]`.
pub(crate) fn redact(v: &mut Value, sensitive: bool) {
    match v {
        Value::String(s) if sensitive => *s = "[redacted]".to_string(),
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                redact(x, sensitive || SENSITIVE_FIELDS.contains(&k.as_str()));
            }
        }
        Value::Array(a) => {
            for x in a {
                redact(x, sensitive);
            }
        }
        _ => {}
    }
}

/// The bootstrap as written, with the node as the server uses it (after `--service-*`
/// overrides) and, as Envoy adds them, `user_agent_name` and `user_agent_build_version`.
fn bootstrap_json(state: &AdminState) -> Value {
    let b = &state.bootstrap;
    let mut raw = b.raw.clone();
    let mut node = Map::new();
    if !b.node.id.is_empty() {
        node.insert("id".into(), b.node.id.clone().into());
    }
    if !b.node.cluster.is_empty() {
        node.insert("cluster".into(), b.node.cluster.clone().into());
    }
    if !b.node.metadata.is_null() {
        node.insert("metadata".into(), b.node.metadata.clone());
    }
    if !b.node.locality.is_null() {
        node.insert("locality".into(), b.node.locality.clone());
    }
    node.insert("user_agent_name".into(), "legate".into());
    node.insert("user_agent_build_version".into(), super::json::build_version(false));
    if let Some(Value::Object(written)) = raw.get("node") {
        for (k, v) in written {
            if !node.contains_key(k) {
                node.insert(k.clone(), v.clone());
            }
        }
    }
    if let Value::Object(m) = &mut raw {
        if m.contains_key("node") {
            m.insert("node".into(), Value::Object(node));
        } else {
            // Envoy prints the node first.
            let mut with_node = Map::new();
            with_node.insert("node".into(), Value::Object(node));
            with_node.extend(std::mem::take(m));
            *m = with_node;
        }
    }
    raw
}

/// `ClusterLoadAssignment`s of the live hosts, grouped by priority then locality.
fn endpoint_items(cm: &ClusterManager, updated: &str) -> Vec<Item> {
    let mut items: Vec<Item> = cm
        .iter()
        .map(|c| {
            let mut hosts = c.hosts().all.clone();
            hosts.sort_by_key(|h| h.priority);
            let mut groups: Vec<Value> = Vec::new();
            let mut key: Option<(u32, &crate::upstream::host::Locality)> = None;
            let mut lb_endpoints: Vec<Value> = Vec::new();
            let flush = |key: Option<(u32, &crate::upstream::host::Locality)>,
                         lbs: &mut Vec<Value>,
                         groups: &mut Vec<Value>| {
                if let Some((prio, loc)) = key {
                    let mut g = Map::new();
                    g.insert("locality".into(), locality(&loc.region, &loc.zone, &loc.sub_zone));
                    g.insert("lb_endpoints".into(), Value::Array(std::mem::take(lbs)));
                    g.insert("load_balancing_weight".into(), 0.into());
                    if prio != 0 {
                        g.insert("priority".into(), prio.into());
                    }
                    groups.push(Value::Object(g));
                }
            };
            for h in &hosts {
                let k = (h.priority, &h.locality);
                if key != Some(k) {
                    flush(key, &mut lb_endpoints, &mut groups);
                    key = Some(k);
                }
                let mut ep = Map::new();
                ep.insert("address".into(), socket_address(h.address));
                ep.insert("health_check_config".into(), json!({}));
                if !h.hostname.is_empty() {
                    ep.insert("hostname".into(), h.hostname.clone().into());
                }
                lb_endpoints.push(json!({
                    "endpoint": ep,
                    "health_status": "HEALTHY",
                    "load_balancing_weight": h.weight,
                }));
            }
            flush(key, &mut lb_endpoints, &mut groups);
            let mut cla = Map::new();
            cla.insert("@type".into(), CLA_TYPE.into());
            cla.insert("cluster_name".into(), c.name.clone().into());
            if !groups.is_empty() {
                cla.insert("endpoints".into(), Value::Array(groups));
            }
            cla.insert("policy".into(), json!({"overprovisioning_factor": 140}));
            Item { name: c.name.clone(), value: json!({"endpoint_config": cla, "last_updated": updated}) }
        })
        .collect();
    items.sort_by(|a, b| a.name.cmp(&b.name));
    items
}

/// Every section of the dump, in Envoy's order, redacted.
pub(crate) fn sections(state: &AdminState, include_eds: bool) -> Vec<Section> {
    let updated = timestamp(start_time(&state.server));
    let mut bootstrap = bootstrap_json(state);
    redact(&mut bootstrap, false);
    let mut clusters: Vec<Item> = state
        .bootstrap
        .clusters
        .iter()
        .map(|c| Item {
            name: c.name.clone(),
            value: json!({"cluster": packed(CLUSTER_TYPE, &c.raw), "last_updated": updated}),
        })
        .collect();
    clusters.sort_by(|a, b| a.name.cmp(&b.name));
    let listeners: Vec<Item> = state
        .bootstrap
        .listeners
        .iter()
        .map(|l| Item {
            name: l.name.clone(),
            value: json!({"listener": packed(LISTENER_TYPE, &l.raw), "last_updated": updated}),
        })
        .collect();
    let mut out = vec![
        Section {
            type_url: BOOTSTRAP_DUMP,
            fields: vec![
                ("bootstrap", Field::Single(bootstrap)),
                ("last_updated", Field::Single(updated.clone().into())),
            ],
        },
        Section {
            type_url: CLUSTERS_DUMP,
            fields: vec![
                ("version_info", Field::Single(Value::Null)),
                ("static_clusters", Field::Repeated(STATIC_CLUSTER, clusters)),
                ("dynamic_active_clusters", Field::Repeated(DYNAMIC_CLUSTER, Vec::new())),
                ("dynamic_warming_clusters", Field::Repeated(DYNAMIC_CLUSTER, Vec::new())),
            ],
        },
    ];
    if include_eds {
        out.push(Section {
            type_url: ENDPOINTS_DUMP,
            fields: vec![
                ("static_endpoint_configs", Field::Repeated(STATIC_ENDPOINT, endpoint_items(&state.cm, &updated))),
                ("dynamic_endpoint_configs", Field::Repeated(DYNAMIC_ENDPOINT, Vec::new())),
            ],
        });
    }
    out.push(Section {
        type_url: LISTENERS_DUMP,
        fields: vec![
            ("version_info", Field::Single(Value::Null)),
            ("static_listeners", Field::Repeated(STATIC_LISTENER, listeners)),
            ("dynamic_listeners", Field::Repeated(DYNAMIC_LISTENER, Vec::new())),
        ],
    });
    out.push(Section {
        type_url: SECRETS_DUMP,
        fields: vec![
            ("static_secrets", Field::Repeated(STATIC_SECRET, Vec::new())),
            ("dynamic_active_secrets", Field::Repeated(DYNAMIC_SECRET, Vec::new())),
            ("dynamic_warming_secrets", Field::Repeated(DYNAMIC_SECRET, Vec::new())),
        ],
    });
    for s in &mut out {
        for (_, f) in &mut s.fields {
            if let Field::Repeated(_, items) = f {
                for i in items {
                    redact(&mut i.value, false);
                }
            }
        }
    }
    out
}

/// A parsed `FieldMask`: comma-separated dotted paths.
struct Mask<'a> {
    text: &'a str,
    paths: Vec<Vec<&'a str>>,
}

impl<'a> Mask<'a> {
    fn parse(text: &'a str) -> Mask<'a> {
        let paths = text.split(',').map(str::trim).filter(|p| !p.is_empty()).map(|p| p.split('.').collect()).collect();
        Mask { text, paths }
    }

    /// Whether every path starts with a field of the message.
    fn fits(&self, fields: &[&str]) -> bool {
        !self.paths.is_empty() && self.paths.iter().all(|p| p.first().is_some_and(|f| fields.contains(f)))
    }

    fn error(&self) -> Reply {
        Reply::new(400, TEXT_BARE, format!("FieldMask {} could not be successfully applied to any configs.", self.text))
    }
}

/// Keeps only the masked paths of `v` (and every `@type`). A path that reaches an array goes
/// on into each of its elements.
fn trim(v: &Value, paths: &[&[&str]]) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                if k == "@type" {
                    out.insert(k.clone(), x.clone());
                    continue;
                }
                let subs: Vec<&[&str]> =
                    paths.iter().filter(|p| p.first() == Some(&k.as_str())).map(|p| &p[1..]).collect();
                if subs.is_empty() {
                    continue;
                }
                if subs.iter().any(|s| s.is_empty()) {
                    out.insert(k.clone(), x.clone());
                } else {
                    out.insert(k.clone(), trim(x, &subs));
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| trim(x, paths)).collect()),
        other => other.clone(),
    }
}

fn apply_mask(v: &Value, mask: &Mask<'_>) -> Value {
    let paths: Vec<&[&str]> = mask.paths.iter().map(Vec::as_slice).collect();
    trim(v, &paths)
}

/// What the query asks for.
#[derive(Debug, Default)]
pub(crate) struct DumpQuery<'a> {
    pub resource: Option<&'a str>,
    pub mask: Option<&'a str>,
    pub name_regex: Option<&'a str>,
}

/// Renders the dump of `sections` for a query (status, content type and body).
pub(crate) fn render(mut sections: Vec<Section>, q: &DumpQuery<'_>) -> Reply {
    if let Some(re) = q.name_regex.filter(|r| !r.is_empty()) {
        let full = match Regex::new(&format!("^(?:{re})$")) {
            Ok(r) => r,
            Err(e) => {
                return Reply::new(
                    400,
                    TEXT_BARE,
                    format!(
                        "INVALID_ARGUMENT: Error while parsing name_regex from {re}: {}",
                        crate::stats::re2_error(re, &e).trim_start_matches("Invalid re2 regex: ")
                    ),
                )
            }
        };
        for s in &mut sections {
            for (_, f) in &mut s.fields {
                if let Field::Repeated(_, items) = f {
                    items.retain(|i| full.is_match(&i.name));
                }
            }
        }
    }
    let mask = q.mask.filter(|m| !m.is_empty()).map(Mask::parse);
    let configs: Vec<Value> = match q.resource.filter(|r| !r.is_empty()) {
        Some(resource) => {
            let found = sections.iter().flat_map(|s| s.fields.iter()).find(|(n, _)| *n == resource);
            match found {
                None => return Reply::new(404, TEXT_BARE, format!("{resource} not found in config dump")),
                Some((_, Field::Single(_))) => {
                    return Reply::new(
                        400,
                        TEXT_BARE,
                        format!("{resource} is not a repeated field. Use ?mask={resource} to get only this field"),
                    )
                }
                Some((_, Field::Repeated(elem, items))) => {
                    if let Some(m) = &mask {
                        if !m.fits(elem.fields) {
                            return m.error();
                        }
                    }
                    items
                        .iter()
                        .map(|i| {
                            let v = packed(elem.type_url, &i.value);
                            match &mask {
                                Some(m) => apply_mask(&v, m),
                                None => v,
                            }
                        })
                        .collect()
                }
            }
        }
        None => match &mask {
            None => sections.iter().map(Section::to_json).collect(),
            Some(m) => {
                let fitting: Vec<Value> = sections
                    .iter()
                    .filter(|s| m.fits(&s.field_names().collect::<Vec<_>>()))
                    .map(|s| apply_mask(&s.to_json(), m))
                    .collect();
                if fitting.is_empty() {
                    return m.error();
                }
                fitting
            }
        },
    };
    if configs.is_empty() {
        return Reply::json(pretty(&json!({})));
    }
    Reply::json(pretty(&json!({ "configs": configs })))
}

/// `GET /config_dump`.
pub(crate) fn handle(state: &AdminState, req: &AdminRequest) -> Reply {
    let q = DumpQuery {
        resource: req.params.get("resource"),
        mask: req.params.get("mask"),
        name_regex: req.params.get("name_regex"),
    };
    render(sections(state, req.params.has("include_eds")), &q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_fields_are_redacted_at_any_depth() {
        let mut v = json!({
            "tls_certificates": [{
                "certificate_chain": {"filename": "/c.pem"},
                "private_key": {"inline_string": "KEY", "filename": "/k.pem"},
                "password": {"inline_string": "pw"},
            }],
            "name": "x",
            "port": 1,
        });
        redact(&mut v, false);
        assert_eq!(
            v,
            json!({
                "tls_certificates": [{
                    "certificate_chain": {"filename": "/c.pem"},
                    "private_key": {"inline_string": "[redacted]", "filename": "[redacted]"},
                    "password": {"inline_string": "[redacted]"},
                }],
                "name": "x",
                "port": 1,
            })
        );
    }

    #[test]
    fn trim_keeps_masked_paths_and_type_urls() {
        let v = json!({
            "@type": "T",
            "listener": {"@type": "L", "name": "a", "address": {"x": 1}},
            "last_updated": "t",
        });
        let m = Mask::parse("listener.name");
        assert_eq!(apply_mask(&v, &m), json!({"@type": "T", "listener": {"@type": "L", "name": "a"}}));
        assert!(m.fits(STATIC_LISTENER.fields));
        assert!(!m.fits(STATIC_CLUSTER.fields));
        assert!(!Mask::parse("").fits(STATIC_LISTENER.fields));
    }
}
