//! `layered_runtime` with static layers: later layers override earlier ones, nested maps are
//! flattened with `.` as Envoy does (`{envoy: {a: 1}}` is key `envoy.a`). Disk, admin and RTDS
//! layers are rejected at config time as not supported.

use std::collections::BTreeMap;

use serde_json::Value;

/// One key's values per layer and the winning value.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// One value per layer, in layer order (`""` where the layer does not set the key).
    pub layer_values: Vec<String>,
    pub final_value: String,
}

/// The merged runtime snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Runtime {
    pub layer_names: Vec<String>,
    pub entries: BTreeMap<String, Entry>,
}

impl Runtime {
    /// Builds the snapshot from the bootstrap's `layered_runtime` (Null → empty).
    pub fn from_config(layered: &Value) -> Runtime {
        let layers = layered.get("layers").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut rt = Runtime::default();
        let mut per_layer: Vec<BTreeMap<String, String>> = Vec::new();
        for layer in &layers {
            rt.layer_names.push(layer.get("name").and_then(Value::as_str).unwrap_or("").to_string());
            let mut flat = BTreeMap::new();
            if let Some(s) = layer.get("static_layer") {
                flatten("", s, &mut flat);
            }
            per_layer.push(flat);
        }
        let keys: std::collections::BTreeSet<&String> = per_layer.iter().flat_map(|m| m.keys()).collect();
        for k in keys {
            let layer_values: Vec<String> = per_layer.iter().map(|m| m.get(k).cloned().unwrap_or_default()).collect();
            let final_value = per_layer.iter().rev().find_map(|m| m.get(k).cloned()).unwrap_or_default();
            rt.entries.insert(k.clone(), Entry { layer_values, final_value });
        }
        rt
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(|e| e.final_value.as_str())
    }

    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key)?.trim().parse().ok()
    }
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn later_layers_override_and_nested_keys_flatten() {
        let rt = Runtime::from_config(&json!({"layers": [
            {"name": "base", "static_layer": {"envoy": {"resource_limits": {"listener": {"l1": {"connection_limit": 10}}}}, "a": "x"}},
            {"name": "over", "static_layer": {"a": "y"}}
        ]}));
        assert_eq!(rt.get_u64("envoy.resource_limits.listener.l1.connection_limit"), Some(10));
        assert_eq!(rt.get("a"), Some("y"));
        assert_eq!(rt.entries["a"].layer_values, vec!["x".to_string(), "y".to_string()]);
        assert_eq!(rt.layer_names, vec!["base", "over"]);
    }
}
