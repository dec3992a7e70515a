//! `/listeners`: each listener's name and the address it is bound to (the real port when the
//! config asked for port 0), as `name::ip:port` lines or, with `?format=json`, Envoy's
//! `Listeners` message. An unknown `format` falls back to text, as in Envoy.

use std::fmt::Write;

use serde_json::{json, Value};

use super::json::{pretty, socket_address};
use super::{AdminRequest, AdminState, Reply};
use crate::server::ListenerInfo;

/// `GET /listeners`.
pub(crate) fn handle(state: &AdminState, req: &AdminRequest) -> Reply {
    if req.params.get("format") == Some("json") {
        Reply::json(pretty(&listeners_json(&state.listeners)))
    } else {
        Reply::text(listeners_text(&state.listeners))
    }
}

/// `name::address` per listener (`[::1]:80` for IPv6).
pub(crate) fn listeners_text(listeners: &[ListenerInfo]) -> String {
    let mut s = String::new();
    for l in listeners {
        let _ = writeln!(s, "{}::{}", l.name, l.local);
    }
    s
}

/// `{"listener_statuses": [{"name", "local_address"}]}`; `{}` when there is none.
pub(crate) fn listeners_json(listeners: &[ListenerInfo]) -> Value {
    if listeners.is_empty() {
        return json!({});
    }
    let statuses: Vec<Value> =
        listeners.iter().map(|l| json!({"name": l.name, "local_address": socket_address(l.local)})).collect();
    json!({ "listener_statuses": statuses })
}
