//! `envoy.extensions.filters.network.mongo_proxy.v3.MongoProxy`: Envoy's fields with Envoy's
//! defaults. Legate-only knobs (how many command, collection and call-site names get their own
//! stats) are runtime keys, so the YAML stays Envoy's.

use super::decode::Obj;

pub const MONGO_PROXY_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.network.mongo_proxy.v3.MongoProxy";
pub const MONGO_PROXY_NAME: &str = "envoy.filters.network.mongo_proxy";

/// Runtime key: most distinct command names with their own `cmd.<cmd>.*` stats when
/// `commands` is not given (later ones fold into `cmd.unknown_command.*`).
pub const RUNTIME_MAX_COMMANDS: &str = "legate.mongo.max_commands";
pub const DEFAULT_MAX_COMMANDS: u64 = 64;
/// Runtime key: most distinct collections with their own `collection.<coll>.*` stats.
pub const RUNTIME_MAX_COLLECTIONS: &str = "legate.mongo.max_collections";
pub const DEFAULT_MAX_COLLECTIONS: u64 = 256;
/// Runtime key: most distinct (collection, calling function) pairs with call-site stats.
pub const RUNTIME_MAX_CALLSITES: &str = "legate.mongo.max_callsites";
pub const DEFAULT_MAX_CALLSITES: u64 = 256;

/// `MongoProxy`.
#[derive(Debug, Clone, PartialEq)]
pub struct MongoProxyConfig {
    pub stat_prefix: String,
    /// A file path; one JSON object per message (empty: no log).
    pub access_log: Option<String>,
    /// Accepted; Legate has no consumer of connection dynamic metadata yet.
    pub emit_dynamic_metadata: bool,
    /// Commands with their own `cmd.*` stats; `None`: every command (capped at runtime).
    pub commands: Option<Vec<String>>,
    pub path: String,
}

impl MongoProxyConfig {
    pub fn decode(o: &mut Obj) -> MongoProxyConfig {
        let stat_prefix = o.req_string("stat_prefix");
        let access_log = o.string("access_log").filter(|s| !s.is_empty());
        let emit_dynamic_metadata = o.bool("emit_dynamic_metadata").unwrap_or(false);
        let commands = o.strings("commands");
        // `delay` is fault injection: the observer cannot hold bytes back yet, so a config that
        // asks for delays is refused rather than silently not delayed.
        o.finish(&["delay"]);
        MongoProxyConfig {
            stat_prefix,
            access_log,
            emit_dynamic_metadata,
            commands: (!commands.is_empty()).then_some(commands),
            path: o.path.clone(),
        }
    }
}
