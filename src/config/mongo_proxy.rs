//! `envoy.extensions.filters.network.mongo_proxy.v3.MongoProxy`: Envoy's fields with Envoy's
//! defaults. Legate-only knobs (how many command, collection and call-site names get their own
//! stats) are runtime keys, so the YAML stays Envoy's.

use std::time::Duration;

use super::decode::Obj;
use super::http_filters::{decode_fault_delay, FaultDelayKind, FractionalPercent};

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
/// Envoy's runtime key: the percent of drain closes that happen (`featureEnabled(.., 100)`).
pub const RUNTIME_DRAIN_CLOSE_ENABLED: &str = "mongo.drain_close_enabled";
/// Envoy's runtime keys for `delay`: the percentage (an integer percent or a fraction) and
/// the duration in milliseconds, each overriding the configured value.
pub const RUNTIME_DELAY_PERCENT: &str = "mongo.fault.fixed_delay.percent";
pub const RUNTIME_DELAY_DURATION_MS: &str = "mongo.fault.fixed_delay.duration_ms";

/// `extensions.filters.common.fault.v3.FaultDelay` as mongo_proxy uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MongoDelay {
    /// `fixed_delay`; `None` for `header_delay`, which never delays here (a Mongo connection
    /// has no headers: Envoy's `duration(nullptr)` is empty, so it does not delay either).
    pub fixed: Option<Duration>,
    pub percentage: FractionalPercent,
}

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
    /// Fault injection: hold requests back before they go upstream.
    pub delay: Option<MongoDelay>,
    pub path: String,
}

impl MongoProxyConfig {
    pub fn decode(o: &mut Obj) -> MongoProxyConfig {
        let stat_prefix = o.req_string("stat_prefix");
        let access_log = o.string("access_log").filter(|s| !s.is_empty());
        let emit_dynamic_metadata = o.bool("emit_dynamic_metadata").unwrap_or(false);
        let commands = o.strings("commands");
        let delay = o.obj("delay", "FaultDelay").and_then(|mut d| decode_delay(&mut d));
        o.finish(&[]);
        MongoProxyConfig {
            stat_prefix,
            access_log,
            emit_dynamic_metadata,
            commands: (!commands.is_empty()).then_some(commands),
            delay,
            path: o.path.clone(),
        }
    }
}

/// `FaultDelay`: exactly one of `fixed_delay` (> 0) and `header_delay`, and a `percentage`
/// (Envoy's default when absent: 0%, never).
fn decode_delay(d: &mut Obj) -> Option<MongoDelay> {
    let delay = decode_fault_delay(d)?;
    let fixed = match delay.kind {
        FaultDelayKind::Fixed(f) => Some(f),
        FaultDelayKind::Header => {
            d.cx.warn(&d.path, "header_delay never delays a Mongo request (there are no headers), as in Envoy");
            None
        }
    };
    Some(MongoDelay { fixed, percentage: delay.percentage })
}
