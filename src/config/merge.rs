//! `--config-yaml` over `-c`: Envoy parses the flag into a second Bootstrap and calls protobuf
//! `MergeFrom` (source/server/server.cc `loadBootstrapConfig`). On the JSON form that means:
//! set scalars replace, messages merge field by field, repeated fields append. Proto3 default
//! scalars (0, "", false) in the override are not copied, as MergeFrom skips unset fields.

use serde_json::Value;

/// Merges `over` into `base` with protobuf MergeFrom semantics.
pub fn merge_from(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge_from(existing, v),
                    None => {
                        if !is_proto_default(&v) {
                            b.insert(k, v);
                        }
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(o)) => b.extend(o),
        (b, o) => {
            if !is_proto_default(&o) {
                *b = o;
            }
        }
    }
}

fn is_proto_default(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_replace_messages_merge_lists_append() {
        let mut base = json!({"admin": {"address": {"socket_address": {"address": "0.0.0.0", "port_value": 9901}}},
                              "static_resources": {"listeners": [{"name": "a"}]}, "node": {"id": "x"}});
        merge_from(
            &mut base,
            json!({"admin": {"address": {"socket_address": {"port_value": 9902}}},
                                      "static_resources": {"listeners": [{"name": "b"}]}}),
        );
        assert_eq!(base["admin"]["address"]["socket_address"]["address"], "0.0.0.0");
        assert_eq!(base["admin"]["address"]["socket_address"]["port_value"], 9902);
        assert_eq!(base["static_resources"]["listeners"].as_array().map(Vec::len), Some(2));
        assert_eq!(base["node"]["id"], "x");
    }

    #[test]
    fn proto3_defaults_in_the_override_do_not_clear_values() {
        let mut base = json!({"node": {"id": "x", "cluster": "c"}});
        merge_from(&mut base, json!({"node": {"id": "", "cluster": "d"}}));
        assert_eq!(base["node"]["id"], "x");
        assert_eq!(base["node"]["cluster"], "d");
    }
}
