//! `/runtime`: the runtime layers of `layered_runtime` and every key's value in each layer,
//! as Envoy prints them: `{"layers": [names], "entries": {key: {"layer_values": [one per
//! layer, "" where unset], "final_value": the winning value}}}`. The values come from
//! `crate::runtime::Runtime`, the same snapshot the server reads its runtime keys from.

use serde_json::{json, Map, Value};

use super::json::pretty;
use super::{AdminRequest, AdminState, Reply};
use crate::runtime::Runtime;

/// `GET /runtime`.
pub(crate) fn handle(state: &AdminState, _req: &AdminRequest) -> Reply {
    Reply::json(pretty(&runtime_json(&Runtime::from_config(&state.bootstrap.layered_runtime))))
}

/// The `/runtime` document.
pub(crate) fn runtime_json(rt: &Runtime) -> Value {
    let entries: Map<String, Value> = rt
        .entries
        .iter()
        .map(|(k, e)| (k.clone(), json!({"layer_values": e.layer_values, "final_value": e.final_value})))
        .collect();
    json!({"layers": rt.layer_names, "entries": entries})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_layered_runtime_prints_empty_layers_and_entries() {
        assert_eq!(
            pretty(&runtime_json(&Runtime::from_config(&Value::Null))),
            "{\n \"layers\": [],\n \"entries\": {}\n}\n"
        );
    }

    #[test]
    fn every_key_shows_each_layers_value_and_the_winner() {
        let rt = Runtime::from_config(&json!({"layers": [
            {"name": "base", "static_layer": {"health_check": {"min_interval": 5}, "flag": true}},
            {"name": "override", "static_layer": {"flag": false}},
        ]}));
        let v = runtime_json(&rt);
        assert_eq!(v["layers"], json!(["base", "override"]));
        assert_eq!(v["entries"]["health_check.min_interval"], json!({"layer_values": ["5", ""], "final_value": "5"}));
        assert_eq!(v["entries"]["flag"], json!({"layer_values": ["true", "false"], "final_value": "false"}));
    }
}
